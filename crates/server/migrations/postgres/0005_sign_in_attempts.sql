-- Sign-in attempts within the throttle's window, shared by every replica
-- (with SQLite there is one replica, which counts in memory). A key is
-- `user:NAME@SOURCE` or `ip:SOURCE`; `at` is Unix milliseconds.
CREATE TABLE sign_in_attempts (
    key TEXT   NOT NULL,
    at  BIGINT NOT NULL
);
CREATE INDEX sign_in_attempts_key ON sign_in_attempts (key, at);
CREATE INDEX sign_in_attempts_at ON sign_in_attempts (at);
