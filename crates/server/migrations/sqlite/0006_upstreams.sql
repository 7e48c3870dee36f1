-- Several upstreams: each batch row names its upstream ('' for the first,
-- whose ids are kept as they are; the others' ids are `name.id`), so that
-- each upstream's poller reads only its own due batches, and the table can
-- be filtered by upstream. Each upstream's last contact has a row of its own.
ALTER TABLE batches ADD COLUMN upstream TEXT NOT NULL DEFAULT '';
CREATE INDEX batches_upstream_due ON batches (upstream, terminal, next_check_at);
CREATE INDEX batches_upstream ON batches (upstream, created_at DESC, id DESC);

CREATE TABLE upstream_state (
    name            TEXT PRIMARY KEY,
    holder          TEXT,
    last_success_at BIGINT,
    last_error      TEXT,
    last_error_at   BIGINT
);
INSERT INTO upstream_state (name, holder, last_success_at, last_error, last_error_at)
SELECT '', holder, last_success_at, last_error, last_error_at FROM watcher_state WHERE id = 1;
DROP TABLE watcher_state;
