-- An invoice is unique per billing cycle, not per period start: a
-- subscription canceled at the very instant its period starts, after that
-- period was invoiced, gets a final cycle at the same instant that
-- credits the period's in-advance fees.
DROP INDEX invoices_cycle;
CREATE UNIQUE INDEX invoices_cycle ON invoices (tenant_id, subscription_id, cycle_index);
