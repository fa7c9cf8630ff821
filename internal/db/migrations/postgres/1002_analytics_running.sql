-- Analytics (issue 19): the running totals of analytics_daily per tenant
-- and currency — each column the sum of the daily rows up to and including
-- day — so a series reads one row per point boundary (a 24-month series:
-- 25 rows) instead of every day. Derived; rebuilt with the rest.
CREATE TABLE analytics_running (
    tenant_id             TEXT NOT NULL,
    currency              TEXT NOT NULL,
    day                   INTEGER NOT NULL,
    new_mrr               TEXT NOT NULL,
    expansion             TEXT NOT NULL,
    contraction           TEXT NOT NULL,
    churn                 TEXT NOT NULL,
    reactivation          TEXT NOT NULL,
    new_customers         INTEGER NOT NULL,
    reactivated_customers INTEGER NOT NULL,
    churned_customers     INTEGER NOT NULL,
    trials_started        INTEGER NOT NULL,
    trials_converted      INTEGER NOT NULL,
    trials_lapsed         INTEGER NOT NULL,
    invoiced              TEXT NOT NULL,
    collected             TEXT NOT NULL,
    refunded              TEXT NOT NULL,
    outstanding           TEXT NOT NULL,
    PRIMARY KEY (tenant_id, currency, day)
);
