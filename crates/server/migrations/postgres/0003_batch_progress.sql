-- Each batch's request counts whenever the watcher saw them change: the
-- batch page draws progress over time, and its rate, from these.
CREATE TABLE batch_progress (
    batch_id  TEXT   NOT NULL,
    at        BIGINT NOT NULL,           -- Unix seconds of the observation
    completed BIGINT NOT NULL,
    failed    BIGINT NOT NULL,
    total     BIGINT NOT NULL,
    PRIMARY KEY (batch_id, at)
);
