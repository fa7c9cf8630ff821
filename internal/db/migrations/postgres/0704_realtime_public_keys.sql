-- Tenant-signed connection tokens (issue 16): public keys a tenant
-- registers (RS256, ES256 or EdDSA); a JWT whose kid names one is a
-- connection token of that tenant.
CREATE TABLE realtime_public_keys (
    kid        TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    algorithm  TEXT NOT NULL,
    public_key TEXT NOT NULL, -- PEM (SubjectPublicKeyInfo)
    created_at BIGINT NOT NULL
);
CREATE INDEX realtime_public_keys_tenant ON realtime_public_keys (tenant_id, kid);
