-- Usage anomalies raised (issue 18): one row per customer (metering
-- subject), meter and UTC day, so a spike is announced once. day is the
-- unix micros of the day's start.
CREATE TABLE risk_usage_alerts (
    tenant_id  TEXT NOT NULL,
    meter      TEXT NOT NULL,
    subject    TEXT NOT NULL,
    day        BIGINT NOT NULL,
    value      TEXT NOT NULL, -- decimal
    median     TEXT NOT NULL, -- decimal, the baseline's median
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, meter, subject, day)
);
