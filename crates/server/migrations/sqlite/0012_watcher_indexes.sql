-- The watcher's round looks for batches without a file name (to name them
-- for search): with this index it reads only those. Without it, each round
-- read every row of its upstream, all of them named once seen: with
-- 100,000 batches that was most of an idle dashboard's CPU (session 24's
-- profile: SQLite's page reads every few seconds).
CREATE INDEX batches_unnamed ON batches (upstream, created_at)
    WHERE input_file_name IS NULL AND input_file_id <> '';
