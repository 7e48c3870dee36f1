-- Metadata Batchboard keeps itself for batches whose upstream has none
-- (Anthropic's message batches): who created them, `retry_of`, the form's
-- pairs. Read into the batch whenever it is indexed.
CREATE TABLE batch_local_metadata (
    batch_id TEXT PRIMARY KEY,
    metadata TEXT NOT NULL
);
