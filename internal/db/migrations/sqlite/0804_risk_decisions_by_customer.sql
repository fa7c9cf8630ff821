-- A customer's risk decisions (GET /api/v1/risk/decisions?customer_id=,
-- the dashboard's customer page): events and questions by the customer id
-- they name, in id order.
CREATE INDEX risk_events_customer ON risk_events (tenant_id, customer_id, id);
ALTER TABLE risk_decisions ADD COLUMN customer_id TEXT NOT NULL DEFAULT '';
CREATE INDEX risk_decisions_customer ON risk_decisions (tenant_id, customer_id, id);
UPDATE risk_decisions SET customer_id = COALESCE(
    (SELECT e.customer_id FROM risk_events e WHERE e.tenant_id = risk_decisions.tenant_id AND e.id = risk_decisions.event_id),
    json_extract(body, '$.event.customer_id'), '');
