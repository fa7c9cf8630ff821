-- Cheaper durable writes for risk decisions (issue 18).
--
-- The decision of a stored event is kept in its risk_events row (body: the
-- decision record as risk_decisions.body holds it) and its id is the
-- event's with the prefix rdec_ for rev_, so one row, not two, is written
-- per event. risk_decisions keeps pure questions and the decisions stored
-- before this migration.
ALTER TABLE risk_events ADD COLUMN body TEXT NOT NULL DEFAULT '';

-- The rule versions a decision evaluated, stored once per distinct set
-- (id: a digest of rules) instead of in every decision.
CREATE TABLE risk_rule_sets (
    tenant_id  TEXT NOT NULL,
    id         TEXT NOT NULL,
    rules      TEXT NOT NULL, -- JSON array of "rul_…@2" (":shadow" appended for shadow rules)
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
