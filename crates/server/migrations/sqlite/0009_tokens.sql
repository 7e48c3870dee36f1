-- Personal access tokens for the OpenAI-compatible /v1 (issue 21): the
-- secret is kept as its SHA-256 only; `id` is the token's public part.
CREATE TABLE tokens (
    id            TEXT PRIMARY KEY,
    user_name     TEXT NOT NULL,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    secret_hash   TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    revoked_at    BIGINT,
    last_used_at  BIGINT,
    last_used_ip  TEXT,
    upstream      TEXT                          -- its default upstream (NULL: the first)
);
CREATE INDEX tokens_user ON tokens (user_name);

-- Files uploaded through /v1, by whom: a token's user may read and delete
-- them (and files of indexed batches) and create batches from them.
CREATE TABLE token_files (
    file_id    TEXT PRIMARY KEY,
    user_name  TEXT NOT NULL,
    data       TEXT NOT NULL,                  -- the file object, as JSON
    created_at BIGINT NOT NULL
);
CREATE INDEX token_files_user ON token_files (user_name, created_at);
