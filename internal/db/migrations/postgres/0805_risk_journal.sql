-- The last batch of the risk journal (internal/risk/journal.go) stored in
-- the tables: the applier sets it in the transaction that stores the
-- batch, so a replay after a crash stores every later batch exactly once.
CREATE TABLE risk_journal (
    id INTEGER PRIMARY KEY,
    applied_seq BIGINT NOT NULL
);
