-- A subscription canceled now ended before the cycle boundary its billing
-- cycle waited for, so its final invoice (with the credit for the rest of
-- the period) was never issued. Billing now moves the cycle to the end
-- when the subscription ends; this brings the cycles of subscriptions that
-- ended that way before the fix forward to their end, so the next billing
-- round issues their final invoices.
UPDATE billing_cycles SET next_at = (SELECT s.ended_at FROM subscriptions s WHERE s.id = billing_cycles.subscription_id)
WHERE done = 0 AND EXISTS (SELECT 1 FROM subscriptions s WHERE s.id = billing_cycles.subscription_id
    AND s.ended_at IS NOT NULL AND s.ended_at < billing_cycles.next_at);
