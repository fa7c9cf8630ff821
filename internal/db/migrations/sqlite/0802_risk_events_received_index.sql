-- Nothing reads risk events by received_at: the index only cost a page
-- write per group commit.
DROP INDEX risk_events_received;
