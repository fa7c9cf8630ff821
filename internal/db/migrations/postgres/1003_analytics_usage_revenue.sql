-- Analytics (issue 19): usage revenue beside MRR. The usage lines' net
-- amount of the invoices finalized each day (invoice events carry it as
-- usage_subtotal from now on; rows folded before count 0, as a rebuild of
-- their journal does), and its running total.
ALTER TABLE analytics_daily ADD COLUMN usage_invoiced TEXT NOT NULL DEFAULT '0';
ALTER TABLE analytics_running ADD COLUMN usage_invoiced TEXT NOT NULL DEFAULT '0';
