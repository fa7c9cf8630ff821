-- The customer portal (issue 20): links a tenant's backend creates for one
-- customer, the browser sessions opened from them, and each tenant's
-- portal settings. Times are unix micros; secrets are stored as SHA-256
-- hashes only (a link or session secret is shown once, then never again).
CREATE TABLE portal_links (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    token_hash  TEXT NOT NULL,
    return_url  TEXT NOT NULL,
    created_by  TEXT NOT NULL,  -- the principal that created it (key, user, end user)
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    last_used_at BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX portal_links_token ON portal_links (token_hash);
CREATE INDEX portal_links_customer ON portal_links (tenant_id, customer_id, id);

-- A browser session opened from a link (or by an end user holding the
-- billing-admin role of the customer's organization: link_id empty).
CREATE TABLE portal_sessions (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    link_id     TEXT NOT NULL,
    token_hash  TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX portal_sessions_token ON portal_sessions (token_hash);
CREATE INDEX portal_sessions_link ON portal_sessions (tenant_id, link_id);

-- One row per tenant that changed the defaults: branding and what
-- customers may change themselves (JSON, see portal.Settings).
CREATE TABLE portal_settings (
    tenant_id  TEXT PRIMARY KEY,
    settings   TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
