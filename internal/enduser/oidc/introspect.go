package oidc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/enduser"
	"github.com/abacusbilling/abacus/internal/identity/token"
)

// Introspection (RFC 7662) and revocation (RFC 7009) serve the tenant's
// confidential apps (their servers); a public app is refused
// (invalid_client). Any token of the tenant may be introspected; another
// tenant's is inactive.

// confidentialClient authenticates the caller of introspect and revoke.
func (p *Provider) confidentialClient(r *http.Request, tenant string) (enduser.App, error) {
	form, err := readForm(r)
	if err != nil {
		return enduser.App{}, err
	}
	_, _, basic := r.BasicAuth()
	app, err := p.authenticateClient(enduser.SystemContext(r.Context(), tenant), r, form, tenant)
	if err == nil && app.Type != enduser.AppConfidential {
		err = &tokenError{status: http.StatusUnauthorized, code: "invalid_client", basic: basic,
			desc: "introspection and revocation are for confidential clients"}
	}
	return app, err
}

// introspect is POST {issuer}/introspect.
func (p *Provider) introspect(w http.ResponseWriter, r *http.Request, tenant string) {
	if _, err := p.confidentialClient(r, tenant); err != nil {
		p.writeTokenError(w, r, err)
		return
	}
	tok := r.PostForm.Get("token")
	ctx := enduser.SystemContext(r.Context(), tenant)
	if strings.Count(tok, ".") == 2 {
		if c, err := p.verifyAccess(ctx, tenant, tok); err == nil {
			writeJSON(w, http.StatusOK, map[string]any{"active": true, "token_type": "access_token", "scope": c.Scope,
				"client_id": c.ClientID, "sub": c.Subject, "aud": c.Audience, "iss": c.Issuer, "jti": c.ID, "sid": c.SessionID,
				"iat": c.IssuedAt.Unix(), "exp": c.ExpiresAt.Unix()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	rt, ok, err := p.refreshToken(ctx, tenant, tok)
	if err != nil {
		p.writeTokenError(w, r, err)
		return
	}
	if !ok {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"active": true, "token_type": "refresh_token", "scope": rt.scope,
		"client_id": rt.clientID, "sub": rt.userID, "iss": p.eu.Issuer(tenant), "sid": rt.sessionID, "exp": rt.expires.Unix()})
}

// refreshInfo is a live refresh token as introspection shows it.
type refreshInfo struct {
	sessionID, appID, clientID, userID, scope string
	expires                                   db.Time
}

// refreshToken finds a refresh token of tenant that is still usable:
// not rotated, not expired, its session signed in.
func (p *Provider) refreshToken(ctx context.Context, tenant, plain string) (refreshInfo, bool, error) {
	var ri refreshInfo
	var rotated db.NullTime
	err := p.db.QueryRowContext(ctx, `SELECT r.session_id, r.app_id, r.scopes, r.expires_at, r.rotated_at
		FROM end_user_refresh_tokens r WHERE r.tenant_id = $1 AND r.hash = $2`, tenant, token.Hash(strings.TrimSpace(plain))).
		Scan(&ri.sessionID, &ri.appID, &ri.scope, &ri.expires, &rotated)
	if errors.Is(err, sql.ErrNoRows) {
		return refreshInfo{}, false, nil
	}
	if err != nil {
		return refreshInfo{}, false, fmt.Errorf("reading refresh token: %w", err)
	}
	now := p.clock.Now()
	if rotated.Valid || !now.Before(ri.expires.Time) {
		return refreshInfo{}, false, nil
	}
	sess, err := p.eu.Session(ctx, tenant, ri.sessionID)
	if err != nil || !sess.Active(now) {
		return refreshInfo{}, false, ignoreNotFound(err)
	}
	app, err := p.eu.App(ctx, ri.appID)
	if err != nil {
		return refreshInfo{}, false, ignoreNotFound(err)
	}
	ri.userID, ri.clientID = sess.UserID, app.ClientID
	return ri, true, nil
}

// revoke is POST {issuer}/revoke (RFC 7009). A refresh token ends the
// calling app's grant in its session (every refresh token of that app
// there); the session, which other apps may share through SSO, stays. An
// access token is refused from then on by introspection and userinfo
// (relying parties that verify it locally accept it until it expires).
// Unknown tokens, and tokens of another app, answer 200 and change
// nothing (§2.2: the client cannot tell).
func (p *Provider) revoke(w http.ResponseWriter, r *http.Request, tenant string) {
	app, err := p.confidentialClient(r, tenant)
	if err == nil {
		err = p.revokeToken(enduser.SystemContext(r.Context(), tenant), tenant, app, r.PostForm.Get("token"))
	}
	if err != nil {
		p.writeTokenError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func (p *Provider) revokeToken(ctx context.Context, tenant string, app enduser.App, tok string) error {
	if tok == "" {
		return invalidRequest("token is missing")
	}
	if strings.Count(tok, ".") == 2 {
		c, err := p.eu.VerifyAccessToken(ctx, tenant, tok)
		if err != nil || c.ClientID != app.ClientID {
			return nil
		}
		_, err = p.db.ExecContext(ctx, `INSERT INTO end_user_revoked_tokens (tenant_id, jti, expires_at) VALUES ($1, $2, $3)
			ON CONFLICT (tenant_id, jti) DO NOTHING`, tenant, c.ID, db.TimeOf(c.ExpiresAt.Add(time.Minute)))
		if err != nil {
			return fmt.Errorf("revoking access token: %w", err)
		}
		return nil
	}
	var sid, appID string
	err := p.db.QueryRowContext(ctx, `SELECT session_id, app_id FROM end_user_refresh_tokens WHERE tenant_id = $1 AND hash = $2`,
		tenant, token.Hash(strings.TrimSpace(tok))).Scan(&sid, &appID)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && appID != app.ID) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading refresh token: %w", err)
	}
	_, err = p.db.ExecContext(ctx, `DELETE FROM end_user_refresh_tokens WHERE tenant_id = $1 AND session_id = $2 AND app_id = $3`, tenant, sid, appID)
	if err != nil {
		return fmt.Errorf("revoking refresh tokens: %w", err)
	}
	return nil
}

// accessRevoked reports whether the access token jti was revoked.
func (p *Provider) accessRevoked(ctx context.Context, tenant, jti string) (bool, error) {
	var n int
	err := p.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM end_user_revoked_tokens WHERE tenant_id = $1 AND jti = $2`, tenant, jti).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("reading revoked tokens: %w", err)
	}
	return n > 0, nil
}
