-- Organizations of end users: each is a billed customer of the tenant
-- (customer_id names the catalog customer; catalog owns it). Members
-- have one role each; invitations are mailed, their tokens stored only as
-- SHA-256 hashes.

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    personal    INTEGER NOT NULL DEFAULT 0, -- 1: made on sign-up for one user (B2C)
    domain      TEXT,                       -- users with a verified address here may join
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX organizations_tenant ON organizations (tenant_id, id);
CREATE UNIQUE INDEX organizations_customer ON organizations (tenant_id, customer_id);
CREATE UNIQUE INDEX organizations_domain ON organizations (tenant_id, domain);

CREATE TABLE organization_members (
    tenant_id   TEXT NOT NULL,
    org_id      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    role        TEXT NOT NULL, -- owner | billing_admin | member
    selected_at BIGINT,        -- the user's chosen organization for tokens: latest wins
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX organization_members_user ON organization_members (tenant_id, user_id);

CREATE TABLE organization_invitations (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    org_id      TEXT NOT NULL,
    email       TEXT NOT NULL,
    role        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    invited_by  TEXT NOT NULL, -- end-user id, or the staff principal's id
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    accepted_at BIGINT,
    accepted_by TEXT,
    revoked_at  BIGINT
);
CREATE INDEX organization_invitations_org ON organization_invitations (tenant_id, org_id, id);
