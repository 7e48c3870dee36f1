-- Spend: each batch's usage as the upstream reported it (NULL without
-- one), and what Batchboard estimated when it created the batch (input
-- tokens, the output bound, the model of the file), for costs by the
-- spend page and budgets without reading every batch's JSON.
ALTER TABLE batches ADD COLUMN usage_input BIGINT;
ALTER TABLE batches ADD COLUMN usage_cached BIGINT;
ALTER TABLE batches ADD COLUMN usage_output BIGINT;
ALTER TABLE batches ADD COLUMN usage_reasoning BIGINT;
ALTER TABLE batches ADD COLUMN est_model TEXT;
ALTER TABLE batches ADD COLUMN est_input BIGINT;
ALTER TABLE batches ADD COLUMN est_output_max BIGINT;
-- For a batch without usage: what its result lines said they used, summed
-- when they were read (JSON: model and tokens).
ALTER TABLE batches ADD COLUMN res_usage TEXT;

UPDATE batches SET
    usage_input = json_extract(data, '$.usage.input_tokens'),
    usage_cached = json_extract(data, '$.usage.input_tokens_details.cached_tokens'),
    usage_output = json_extract(data, '$.usage.output_tokens'),
    usage_reasoning = json_extract(data, '$.usage.output_tokens_details.reasoning_tokens')
WHERE json_extract(data, '$.usage') IS NOT NULL;

-- A file uploaded through /v1: its estimate (JSON), for the budget check
-- of the batch made from it.
ALTER TABLE token_files ADD COLUMN estimate TEXT;

-- A job's estimate as a whole (its output bound, the most it can cost),
-- for its parts' estimates and for what its unsubmitted parts hold of a
-- budget.
ALTER TABLE jobs ADD COLUMN est_output_max BIGINT;
ALTER TABLE jobs ADD COLUMN max_usd DOUBLE PRECISION;

-- Budget warnings sent (80 and 100 % of a month's budget), once each.
CREATE TABLE budget_alerts (
    scope TEXT   NOT NULL,
    name  TEXT   NOT NULL,
    month TEXT   NOT NULL,
    level BIGINT NOT NULL,
    at    BIGINT NOT NULL,
    PRIMARY KEY (scope, name, month, level)
);
