-- Webhook deliveries received from upstreams (issue 21): each `webhook-id`
-- once (a replay is refused), and when each upstream last sent a valid one
-- (its unfinished batches are then polled less often).
CREATE TABLE webhook_deliveries (
    id          TEXT PRIMARY KEY,
    upstream    TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_upstream ON webhook_deliveries (upstream, received_at);
