-- The local index of the upstream's batches, kept current by the watcher.
-- Pages and event streams read from here, never from the upstream.
CREATE TABLE batches (
    id              TEXT PRIMARY KEY,
    status          TEXT   NOT NULL,
    terminal        BIGINT NOT NULL,           -- 1 once the status cannot change
    endpoint        TEXT   NOT NULL,
    model           TEXT,
    creator         TEXT,                      -- metadata.created_by
    created_at      BIGINT NOT NULL,
    input_file_id   TEXT   NOT NULL,
    output_file_id  TEXT,
    error_file_id   TEXT,
    input_file_name TEXT,
    data            TEXT   NOT NULL,           -- the Batch as JSON
    seen_at         BIGINT NOT NULL,           -- when the watcher last read it
    changed_at      BIGINT NOT NULL,           -- when it last changed
    next_check_at   BIGINT NOT NULL            -- when the watcher reads it again
);
CREATE INDEX batches_created ON batches (created_at DESC, id DESC);
CREATE INDEX batches_status ON batches (status, created_at DESC);
CREATE INDEX batches_creator ON batches (creator, created_at DESC);
CREATE INDEX batches_model ON batches (model, created_at DESC);
CREATE INDEX batches_endpoint ON batches (endpoint, created_at DESC);
CREATE INDEX batches_due ON batches (terminal, next_check_at);

CREATE TABLE batch_metadata (
    batch_id TEXT NOT NULL,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (batch_id, key)
);
CREATE INDEX batch_metadata_kv ON batch_metadata (key, value);

-- One row: how the watcher is doing, for every replica's pages.
CREATE TABLE watcher_state (
    id              BIGINT PRIMARY KEY,
    holder          TEXT,
    last_success_at BIGINT,
    last_error      TEXT,
    last_error_at   BIGINT,
    full_sweep_at   BIGINT
);
INSERT INTO watcher_state (id) VALUES (1);
