-- No query reads `batches_due` (terminal, next_check_at) since the
-- watcher looks for due batches one upstream at a time (through
-- `batches_upstream_due`), yet every write kept it up to date: every new
-- batch, and every watcher check, which moves the batch's next_check_at.
DROP INDEX IF EXISTS batches_due;
