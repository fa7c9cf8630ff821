-- End users: the people who use a tenant's own apps (not its staff).
-- Every row carries tenant_id; the same e-mail in two tenants is two
-- people. Secrets (passwords, refresh tokens, e-mailed tokens, client
-- secrets, recovery codes) are stored only as hashes.

CREATE TABLE end_users (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL,
    email             TEXT,                       -- normalised lower-case; NULL once erased
    name              TEXT NOT NULL DEFAULT '',
    email_verified_at BIGINT,
    locale            TEXT NOT NULL DEFAULT '',
    time_zone         TEXT NOT NULL DEFAULT '',
    avatar_url        TEXT NOT NULL DEFAULT '',
    metadata          TEXT NOT NULL DEFAULT '{}', -- JSON object
    status            TEXT NOT NULL DEFAULT 'active', -- active | disabled | deleted
    password_hash     TEXT,                       -- argon2id PHC; NULL: no password (magic link, code)
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    last_seen_at      BIGINT,
    deleted_at        BIGINT
);
CREATE UNIQUE INDEX end_users_email ON end_users (tenant_id, email);
CREATE INDEX end_users_tenant ON end_users (tenant_id, id);
CREATE INDEX end_users_name ON end_users (tenant_id, name);

CREATE TABLE end_user_apps (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    name          TEXT NOT NULL,
    type          TEXT NOT NULL, -- public | confidential
    client_id     TEXT NOT NULL UNIQUE, -- publishable, not a secret
    secret_hash   TEXT,                 -- SHA-256 of the client secret (confidential apps)
    redirect_uris TEXT NOT NULL DEFAULT '[]', -- JSON array, matched exactly
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    deleted_at    BIGINT
);
CREATE INDEX end_user_apps_tenant ON end_user_apps (tenant_id, id);

-- A session is one signed-in device.
CREATE TABLE end_user_sessions (
    id             TEXT PRIMARY KEY, -- also the refresh-token family
    tenant_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL REFERENCES end_users (id),
    app_id         TEXT NOT NULL DEFAULT '',
    device_name    TEXT NOT NULL DEFAULT '',
    user_agent     TEXT NOT NULL DEFAULT '',
    ip             TEXT NOT NULL DEFAULT '',
    mfa            BIGINT NOT NULL DEFAULT 0, -- 1 when the sign-in passed a second factor
    created_at     BIGINT NOT NULL,           -- first seen
    last_seen_at   BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    revoked_reason TEXT
);
CREATE INDEX end_user_sessions_user ON end_user_sessions (tenant_id, user_id, last_seen_at);

CREATE TABLE end_user_refresh_tokens (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    session_id TEXT NOT NULL REFERENCES end_user_sessions (id), -- the token family
    app_id     TEXT NOT NULL DEFAULT '', -- the app it was issued to: only its client_id may use it
    hash       TEXT NOT NULL UNIQUE, -- SHA-256 of the opaque token
    parent_id  TEXT,
    scopes     TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    rotated_at BIGINT
);
CREATE INDEX end_user_refresh_tokens_session ON end_user_refresh_tokens (session_id);

-- Single-use secrets sent by e-mail (verify, reset, magic_link, code) and
-- the short-lived second-step token of an MFA sign-in (mfa).
CREATE TABLE end_user_email_tokens (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES end_users (id),
    kind       TEXT NOT NULL,
    hash       TEXT NOT NULL,
    email      TEXT NOT NULL DEFAULT '',
    app_id     TEXT NOT NULL DEFAULT '',
    attempts   BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX end_user_email_tokens_hash ON end_user_email_tokens (hash);
CREATE INDEX end_user_email_tokens_user ON end_user_email_tokens (tenant_id, user_id, kind);

CREATE TABLE end_user_mfa (
    user_id      TEXT PRIMARY KEY REFERENCES end_users (id),
    tenant_id    TEXT NOT NULL,
    secret       TEXT NOT NULL, -- TOTP secret, as identity keeps its own
    confirmed_at BIGINT,
    last_step    BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL
);

CREATE TABLE end_user_recovery_codes (
    user_id   TEXT NOT NULL REFERENCES end_users (id),
    tenant_id TEXT NOT NULL,
    hash      TEXT NOT NULL,
    used_at   BIGINT,
    PRIMARY KEY (user_id, hash)
);

-- Per-tenant token signing keys. private_key is PKCS #8, base64: a
-- secret, never logged.
CREATE TABLE end_user_signing_keys (
    kid          TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    alg          TEXT NOT NULL, -- RS256 | EdDSA
    private_key  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    retire_after BIGINT
);
CREATE INDEX end_user_signing_keys_tenant ON end_user_signing_keys (tenant_id, created_at);

-- Per-tenant end-user policy, one JSON document.
CREATE TABLE end_user_settings (
    tenant_id  TEXT PRIMARY KEY,
    data       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- OIDC authorization codes (single use, short-lived), for the provider
-- built on this module.
CREATE TABLE end_user_auth_codes (
    hash                  TEXT PRIMARY KEY, -- SHA-256 of the code
    tenant_id             TEXT NOT NULL,
    app_id                TEXT NOT NULL,
    session_id            TEXT NOT NULL REFERENCES end_user_sessions (id),
    user_id               TEXT NOT NULL,
    redirect_uri          TEXT NOT NULL,
    code_challenge        TEXT NOT NULL DEFAULT '',
    code_challenge_method TEXT NOT NULL DEFAULT '',
    scopes                TEXT NOT NULL DEFAULT '',
    nonce                 TEXT NOT NULL DEFAULT '',
    created_at            BIGINT NOT NULL,
    expires_at            BIGINT NOT NULL,
    used_at               BIGINT
);
