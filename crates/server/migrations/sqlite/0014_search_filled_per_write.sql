-- New batches' search text is written by the store once per bulk write
-- (`upsert_batches`, the only insert into `batches`), no longer by a
-- trigger per row. FTS5 writes the terms it holds to disk as a new segment
-- at every statement of a transaction once it takes part in it, and merges
-- those segments later: with the trigger, every 500-row insert made one,
-- and writing and merging them was 12 % of a 100,000-batch load (perf).
DROP TRIGGER batches_search_insert;

-- An update rewrites the search text only when the text changes: an
-- upsert sets every column, so the trigger fired (a delete and an insert
-- in the FTS table) for each status change the watcher wrote.
DROP TRIGGER batches_search_update;
CREATE TRIGGER batches_search_update
AFTER UPDATE OF id, input_file_id, output_file_id, error_file_id, input_file_name ON batches
WHEN old.id IS NOT new.id OR old.input_file_id IS NOT new.input_file_id
  OR old.output_file_id IS NOT new.output_file_id OR old.error_file_id IS NOT new.error_file_id
  OR old.input_file_name IS NOT new.input_file_name
BEGIN
    UPDATE batches_search
    SET text = new.id || ' ' || new.input_file_id || ' ' || coalesce(new.output_file_id, '')
               || ' ' || coalesce(new.error_file_id, '') || ' ' || coalesce(new.input_file_name, '')
    WHERE rowid = new.rowid;
END;
