-- The OpenID Connect provider of end users (internal/enduser/oidc).

-- Single sign-on: a browser's SSO cookie holds an opaque token whose hash
-- names the end-user session it signed in; every app the browser opens
-- gets codes for that session until it ends (end-session, revocation,
-- expiry). No foreign key: deleting a user's sessions must not wait on it.
CREATE TABLE end_user_sso_sessions (
    hash       TEXT PRIMARY KEY, -- SHA-256 of the cookie's token
    tenant_id  TEXT NOT NULL,
    session_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX end_user_sso_sessions_session ON end_user_sso_sessions (tenant_id, session_id);
CREATE INDEX end_user_sso_sessions_expiry ON end_user_sso_sessions (expires_at);

-- Access tokens revoked through RFC 7009 before they expire, by jti;
-- introspection and userinfo refuse them. Rows go once the token expired.
CREATE TABLE end_user_revoked_tokens (
    tenant_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, jti)
);
CREATE INDEX end_user_revoked_tokens_expiry ON end_user_revoked_tokens (expires_at);

-- Authorization codes (end_user_auth_codes, 0150) are swept once expired.
CREATE INDEX end_user_auth_codes_expiry ON end_user_auth_codes (expires_at);
