-- The disputes list (GET /api/v1/disputes, issue 15): each dispute names
-- its customer and when it closed. Filled in from the disputed payment and
-- from the last change of disputes already closed.
ALTER TABLE payment_disputes ADD COLUMN customer_id TEXT NOT NULL DEFAULT '';
ALTER TABLE payment_disputes ADD COLUMN closed_at BIGINT;
UPDATE payment_disputes SET customer_id = COALESCE((SELECT p.customer_id FROM payments p
    WHERE p.tenant_id = payment_disputes.tenant_id AND p.id = payment_disputes.payment_id), '');
UPDATE payment_disputes SET closed_at = updated_at WHERE rank = 2;
CREATE INDEX payment_disputes_tenant ON payment_disputes (tenant_id, id);
CREATE INDEX payment_disputes_customer ON payment_disputes (tenant_id, customer_id);
