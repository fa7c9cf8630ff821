package oidc

import (
	"database/sql"
	"errors"
	"fmt"
	"net/http"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/enduser"
	"github.com/abacusbilling/abacus/internal/identity/token"
)

// ssoCookie holds the browser's SSO token for one tenant's issuer (its
// Path is the issuer's): opaque, 256 bits, stored only as a SHA-256.
const ssoCookie = "abacus_sso"

// startSSO remembers in the browser that it signed in as sess. A session
// the browser's cookie named before is forgotten and, when it was the same
// user's (prompt=login, max_age), signed out: one browser stays one device.
func (p *Provider) startSSO(w http.ResponseWriter, r *http.Request, tenant string, sess enduser.Session) error {
	if err := p.replaceSSO(r, tenant, sess); err != nil {
		return err
	}
	plain, hash := token.NewOpaque("sso")
	now := p.clock.Now()
	_, err := p.db.ExecContext(r.Context(), `INSERT INTO end_user_sso_sessions (hash, tenant_id, session_id, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5)`, hash, tenant, sess.ID, db.TimeOf(now), db.TimeOf(sess.ExpiresAt))
	if err != nil {
		return fmt.Errorf("storing SSO session: %w", err)
	}
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Value: plain, Path: cookiePath(tenant),
		MaxAge: int(sess.ExpiresAt.Sub(now).Seconds()), HttpOnly: true, Secure: p.secure(r), SameSite: http.SameSiteLaxMode})
	return nil
}

// ssoSession returns the end-user session the request's SSO cookie names,
// when it is still signed in and its user active.
func (p *Provider) ssoSession(r *http.Request, tenant string) (enduser.Session, bool, error) {
	c, err := r.Cookie(ssoCookie)
	if err != nil || c.Value == "" {
		return enduser.Session{}, false, nil
	}
	ctx := r.Context()
	var sid string
	var expires db.Time
	err = p.db.QueryRowContext(ctx, `SELECT session_id, expires_at FROM end_user_sso_sessions WHERE tenant_id = $1 AND hash = $2`,
		tenant, token.Hash(c.Value)).Scan(&sid, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return enduser.Session{}, false, nil
	}
	if err != nil {
		return enduser.Session{}, false, fmt.Errorf("reading SSO session: %w", err)
	}
	now := p.clock.Now()
	if !now.Before(expires.Time) {
		return enduser.Session{}, false, nil
	}
	sess, err := p.eu.Session(ctx, tenant, sid)
	if err != nil || !sess.Active(now) {
		return enduser.Session{}, false, ignoreNotFound(err)
	}
	u, err := p.eu.User(enduser.SystemContext(ctx, tenant), sess.UserID)
	if err != nil || u.Status != enduser.StatusActive {
		return enduser.Session{}, false, ignoreNotFound(err)
	}
	return sess, true, nil
}

func (p *Provider) replaceSSO(r *http.Request, tenant string, sess enduser.Session) error {
	old, ok, err := p.ssoSession(r, tenant)
	if err != nil || !ok || old.ID == sess.ID {
		return err
	}
	ctx := r.Context()
	if _, err := p.db.ExecContext(ctx, `DELETE FROM end_user_sso_sessions WHERE tenant_id = $1 AND session_id = $2`, tenant, old.ID); err != nil {
		return fmt.Errorf("replacing SSO session: %w", err)
	}
	if old.UserID != sess.UserID {
		return nil // another account's session stays with the apps that hold its tokens; only the cookie moves
	}
	return ignoreNotFound(p.eu.RevokeSession(ctx, tenant, old.ID))
}

// endSSO forgets the request's SSO cookie: its row, the cookie, and the
// end-user session it named (revoked: every app's tokens of it die).
func (p *Provider) endSSO(w http.ResponseWriter, r *http.Request, tenant string) error {
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Value: "", Path: cookiePath(tenant), MaxAge: -1,
		HttpOnly: true, Secure: p.secure(r), SameSite: http.SameSiteLaxMode})
	c, err := r.Cookie(ssoCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	ctx := r.Context()
	var sid string
	err = p.db.QueryRowContext(ctx, `SELECT session_id FROM end_user_sso_sessions WHERE tenant_id = $1 AND hash = $2`,
		tenant, token.Hash(c.Value)).Scan(&sid)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading SSO session: %w", err)
	}
	if _, err := p.db.ExecContext(ctx, `DELETE FROM end_user_sso_sessions WHERE tenant_id = $1 AND session_id = $2`, tenant, sid); err != nil {
		return fmt.Errorf("ending SSO session: %w", err)
	}
	return ignoreNotFound(p.eu.RevokeSession(ctx, tenant, sid))
}
