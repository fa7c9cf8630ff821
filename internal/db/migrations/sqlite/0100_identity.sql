-- Identity: users, memberships, sessions and refresh tokens, e-mail
-- tokens, TOTP, OAuth clients, signing keys, audit log, mail outbox.
-- Users are global (one person, several tenants); everything a tenant owns
-- carries tenant_id.

CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    email             TEXT NOT NULL UNIQUE, -- normalised: trimmed, lower-case
    password_hash     TEXT NOT NULL,        -- argon2id PHC string
    email_verified_at BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

CREATE TABLE memberships (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    user_id    TEXT NOT NULL REFERENCES users (id),
    role       TEXT NOT NULL, -- owner | admin | member | viewer | billing
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE sessions (
    id             TEXT PRIMARY KEY, -- also the refresh-token family id
    tenant_id      TEXT NOT NULL REFERENCES tenants (id),
    user_id        TEXT NOT NULL REFERENCES users (id),
    ip             TEXT NOT NULL,
    user_agent     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    last_used_at   BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    revoked_reason TEXT
);
CREATE INDEX sessions_user ON sessions (user_id, tenant_id);

CREATE TABLE refresh_tokens (
    id         TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id),
    hash       TEXT NOT NULL UNIQUE, -- SHA-256 of the opaque token
    parent_id  TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    rotated_at BIGINT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE email_tokens (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL, -- verify | reset | invite
    hash       TEXT NOT NULL UNIQUE,
    tenant_id  TEXT NOT NULL,
    user_id    TEXT,
    email      TEXT NOT NULL,
    role       TEXT,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    revoked_at BIGINT
);
CREATE INDEX email_tokens_tenant ON email_tokens (tenant_id, kind, id);

CREATE TABLE totp_secrets (
    user_id      TEXT PRIMARY KEY REFERENCES users (id),
    secret       TEXT NOT NULL,
    confirmed_at BIGINT,
    last_step    BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL
);

CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users (id),
    hash    TEXT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (user_id, hash)
);

CREATE TABLE oauth_clients (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    name        TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX oauth_clients_tenant ON oauth_clients (tenant_id, id);

CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    private_jwk  TEXT NOT NULL, -- secret: never logged
    created_at   BIGINT NOT NULL,
    retire_after BIGINT
);

CREATE TABLE audit_events (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    action      TEXT NOT NULL,
    actor_type  TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    ip          TEXT NOT NULL,
    data        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX audit_events_tenant ON audit_events (tenant_id, id);

CREATE TABLE mail_outbox (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    to_addr    TEXT NOT NULL,
    template   TEXT NOT NULL,
    subject    TEXT NOT NULL,
    text_body  TEXT NOT NULL, -- kept only when no SMTP server is configured
    html_body  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    sent_at    BIGINT,
    error      TEXT
);
CREATE INDEX mail_outbox_tenant ON mail_outbox (tenant_id, id);
