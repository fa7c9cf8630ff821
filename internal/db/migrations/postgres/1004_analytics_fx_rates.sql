-- Analytics (issue 19): a tenant's exchange rates for converted totals
-- (PUT /api/v1/analytics/fx-rates): the rounding of a converted sum and
-- the rates, a JSON list of {from, to, rate} (1 from = rate to, decimal
-- strings), replaced as a whole. Not derived: a rebuild keeps it.
CREATE TABLE analytics_fx_rates (
    tenant_id  TEXT PRIMARY KEY,
    rounding   TEXT NOT NULL,
    rates      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
