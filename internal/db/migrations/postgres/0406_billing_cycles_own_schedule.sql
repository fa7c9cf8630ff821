-- Billing keeps what it needs of each subscription's schedule on its own
-- cycle row, kept in step by the subscription module's save hook, instead
-- of reading the subscription tables: the cycle exists from the
-- subscription's creation (it was discovered by the next billing round),
-- and hold_at is the subscription's next time-driven transition (trial
-- end, scheduled plan change, end of a cancellation); a cycle due at or
-- after hold_at waits until that transition is applied. This fills both
-- for the subscriptions that exist.
ALTER TABLE billing_cycles ADD COLUMN hold_at BIGINT;
UPDATE billing_cycles SET hold_at = (SELECT s.next_action_at FROM subscriptions s WHERE s.id = billing_cycles.subscription_id);
INSERT INTO billing_cycles (tenant_id, subscription_id, bill_from, next_index, next_at, done, hold_at)
SELECT s.tenant_id, s.id,
       CASE WHEN s.trial_end IS NOT NULL AND s.trial_end > s.started_at THEN s.trial_end ELSE s.started_at END, 0,
       CASE WHEN s.trial_end IS NOT NULL AND s.trial_end > s.started_at THEN s.trial_end ELSE s.started_at END, 0,
       s.next_action_at
FROM subscriptions s WHERE NOT EXISTS (SELECT 1 FROM billing_cycles c WHERE c.subscription_id = s.id);
