-- An entry's detail as Batchboard worded it, untranslated (a JSON text
-- key and its arguments): the audit page shows it in the reader's
-- language; `detail` keeps the English for exports and older readers.
ALTER TABLE audit_log ADD COLUMN detail_msg TEXT;
