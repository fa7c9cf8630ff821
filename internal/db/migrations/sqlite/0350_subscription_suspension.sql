-- Access follows payment (issue 15): a subscription suspended for an
-- overdue or disputed payment. suspended_at is set while suspended (kept
-- when a suspended subscription is canceled: it stays without access);
-- access_until keeps suspendable features open until a prepaid period
-- that was paid ends; suspend_reason is payment_overdue or
-- payment_disputed.
ALTER TABLE subscriptions ADD COLUMN suspended_at BIGINT;
ALTER TABLE subscriptions ADD COLUMN access_until BIGINT;
ALTER TABLE subscriptions ADD COLUMN suspend_reason TEXT;
