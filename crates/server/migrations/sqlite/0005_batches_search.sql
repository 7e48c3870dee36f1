-- The table's search ("id, file id or file name contains …") through an
-- index instead of a scan of five columns: an FTS5 table of trigrams (case
-- does not matter), one row per batch (its rowid), kept by triggers.
CREATE VIRTUAL TABLE batches_search USING fts5(text, tokenize = 'trigram');

INSERT INTO batches_search (rowid, text)
SELECT rowid, id || ' ' || input_file_id || ' ' || coalesce(output_file_id, '') || ' '
       || coalesce(error_file_id, '') || ' ' || coalesce(input_file_name, '')
FROM batches;

CREATE TRIGGER batches_search_insert AFTER INSERT ON batches BEGIN
    INSERT INTO batches_search (rowid, text)
    VALUES (new.rowid, new.id || ' ' || new.input_file_id || ' ' || coalesce(new.output_file_id, '')
            || ' ' || coalesce(new.error_file_id, '') || ' ' || coalesce(new.input_file_name, ''));
END;

CREATE TRIGGER batches_search_update
AFTER UPDATE OF id, input_file_id, output_file_id, error_file_id, input_file_name ON batches BEGIN
    UPDATE batches_search
    SET text = new.id || ' ' || new.input_file_id || ' ' || coalesce(new.output_file_id, '')
               || ' ' || coalesce(new.error_file_id, '') || ' ' || coalesce(new.input_file_name, '')
    WHERE rowid = new.rowid;
END;

CREATE TRIGGER batches_search_delete AFTER DELETE ON batches BEGIN
    DELETE FROM batches_search WHERE rowid = old.rowid;
END;
