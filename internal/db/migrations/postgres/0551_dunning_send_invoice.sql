-- Dunning of send_invoice invoices (issue 15): a run waits for its
-- invoice's due date (status 'scheduled', next step 'overdue'), then
-- reminds with the pay link instead of charging. Existing runs are the
-- card kind.
ALTER TABLE dunning_runs ADD COLUMN collection_method TEXT NOT NULL DEFAULT 'charge_automatically';
