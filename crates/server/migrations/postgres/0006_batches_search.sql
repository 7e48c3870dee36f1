-- The table's search ("id, file id or file name contains …") through a
-- trigram index instead of a scan of five columns. pg_trgm is a trusted
-- extension (PostgreSQL 13+): the database's owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX batches_search ON batches USING gin ((
    lower(id || ' ' || input_file_id || ' ' || coalesce(output_file_id, '') || ' '
          || coalesce(error_file_id, '') || ' ' || coalesce(input_file_name, ''))
) gin_trgm_ops);
