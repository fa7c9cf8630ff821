-- Gateway events about a payment Abacus does not know yet (a refund or a
-- dispute delivered before the payment's own event): kept by the payment's
-- reference and applied when the payment becomes known, so the order of
-- delivery does not matter (issue 15).
CREATE TABLE payment_parked_events (
    tenant_id         TEXT NOT NULL,
    provider          TEXT NOT NULL,
    event_id          TEXT NOT NULL,
    payment_reference TEXT NOT NULL,
    body              TEXT NOT NULL, -- the translated event (payments.GatewayEvent), JSON
    received_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, provider, event_id)
);
CREATE INDEX payment_parked_events_reference ON payment_parked_events (tenant_id, provider, payment_reference);
