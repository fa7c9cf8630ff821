-- The billing worker claims due cycles ORDER BY next_at, subscription_id.
-- With next_at alone indexed, every claim read and sorted all due rows
-- (all of a month's subscriptions share one boundary), so closing a
-- period cost O(n²/batch); with both columns the claim reads one batch.
DROP INDEX billing_cycles_due;
CREATE INDEX billing_cycles_due ON billing_cycles (next_at, subscription_id) WHERE done = 0;
