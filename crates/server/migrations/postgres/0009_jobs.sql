-- Jobs larger than one batch (issue 20): a job is one upload on one
-- upstream, cut into parts that each fit its limits; each part is one
-- batch at a time, and a part whose requests failed transiently gets a
-- retry part. The parts' input files live at the upstream, so any replica
-- holding the upstream's lease can schedule them.
CREATE TABLE jobs (
    id                TEXT PRIMARY KEY,
    upstream          TEXT NOT NULL,
    endpoint          TEXT NOT NULL,
    model             TEXT,
    completion_window TEXT NOT NULL,
    metadata          TEXT NOT NULL,            -- JSON object
    max_attempts      BIGINT NOT NULL,
    filename          TEXT NOT NULL,
    requests          BIGINT NOT NULL,
    tokens            BIGINT NOT NULL,
    created_by        TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    status            TEXT NOT NULL,            -- running | cancelling | completed | cancelled
    ended_at          BIGINT
);
CREATE INDEX jobs_active ON jobs (upstream, status);
CREATE INDEX jobs_created ON jobs (created_at);

CREATE TABLE job_parts (
    job_id        TEXT NOT NULL,
    part          BIGINT NOT NULL,
    attempt       BIGINT NOT NULL,
    retry_of      BIGINT,                       -- the part whose failures it sends again
    origin        BIGINT NOT NULL,              -- the first-attempt part its lines come from
    first_line    BIGINT NOT NULL,
    last_line     BIGINT NOT NULL,
    requests      BIGINT NOT NULL,
    tokens        BIGINT NOT NULL,
    input_file_id TEXT NOT NULL,                -- the dashboard's id of its file upstream
    state         TEXT NOT NULL,                -- queued | submitting | running | done | failed | cancelled
    not_before    BIGINT NOT NULL DEFAULT 0,
    submitting_at BIGINT,
    batch_id      TEXT,
    waits         BIGINT NOT NULL DEFAULT 0,
    ok            BIGINT NOT NULL DEFAULT 0,
    failed        BIGINT NOT NULL DEFAULT 0,
    retried       BIGINT NOT NULL DEFAULT 0,
    error         TEXT,
    PRIMARY KEY (job_id, part)
);
CREATE INDEX job_parts_state ON job_parts (state);
