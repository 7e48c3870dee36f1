-- Who did what: sign-ins, creates, cancels, downloads, refusals.
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,          -- unix seconds
    actor   TEXT    NOT NULL,          -- user name, or the name tried
    action  TEXT    NOT NULL,          -- sign_in, sign_in_failed, create, ...
    target  TEXT,                      -- batch or file id
    detail  TEXT,
    ip      TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor);
