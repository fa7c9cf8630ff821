package enduser

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/identity/token"
	"github.com/golang-jwt/jwt/v5"
)

// Token errors, all 401.
var (
	errRefreshInvalid = unauthorized("refresh_token_invalid", "the refresh token is not valid; sign in again")
	errRefreshExpired = unauthorized("refresh_token_expired", "the refresh token has expired; sign in again")
	errRefreshReused  = unauthorized("refresh_token_reused", "this refresh token was already used; the session is signed out for safety; sign in again")
	errTokenInvalid   = unauthorized("token_invalid", "the access token is not valid")
	errTokenExpired   = unauthorized("token_expired", "the access token has expired; refresh it")
	errTokenRevoked   = unauthorized("token_revoked", "the session of this access token was signed out; sign in again")
)

func unauthorized(code, msg string) *abacus.Error {
	return &abacus.Error{Kind: abacus.KindUnauthorized, Code: code, Message: msg}
}

// Token header types: an access token is "at+jwt" (RFC 9068), so an ID
// token (plain "JWT") is never accepted as one.
const (
	typAccess = "at+jwt"
	typID     = "JWT"
	leeway    = 30 * time.Second
)

// IssueTokens hands out tokens for an active session to app: a JWT access
// token (iss = Issuer(tenant), sub = user id, aud = client_id, sid, scope,
// the tenant's custom claims and the ClaimsFor claims), a new rotating
// refresh token bound to the app, and an ID token (RS256, with nonce when
// given) when scopes include "openid". Errors: session_not_found,
// token_revoked (session no longer active), end_user_disabled.
func (s *Service) IssueTokens(ctx context.Context, sess Session, app App, scopes []string, nonce string) (Tokens, error) {
	if app.TenantID != sess.TenantID {
		return Tokens{}, abacus.NotFound("app", app.ID)
	}
	cur, err := s.Session(ctx, sess.TenantID, sess.ID)
	if err != nil {
		return Tokens{}, err
	}
	if !cur.Active(s.clock.Now()) {
		return Tokens{}, errTokenRevoked
	}
	u, err := s.userIn(ctx, s.db, sess.TenantID, sess.UserID)
	if err != nil {
		return Tokens{}, err
	}
	if u.Status != StatusActive {
		return Tokens{}, errDisabled
	}
	scope := strings.Join(scopes, " ")
	var tok Tokens
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		tok.RefreshToken, err = s.newRefreshToken(ctx, tx, cur, app.ID, scope, "")
		return err
	})
	if err != nil {
		return Tokens{}, err
	}
	if err := s.signAccess(ctx, &tok, cur, app, scope); err != nil {
		return Tokens{}, err
	}
	if slices.Contains(scopes, "openid") {
		if tok.IDToken, err = s.signID(ctx, u.User, cur, app, scopes, nonce); err != nil {
			return Tokens{}, err
		}
	}
	return tok, nil
}

// newRefreshToken stores a refresh token of the session's family for app.
func (s *Service) newRefreshToken(ctx context.Context, tx *db.Tx, sess Session, appID, scope, parent string) (string, error) {
	plain, hash := token.NewOpaque("eurt")
	now := s.clock.Now()
	var par sql.NullString
	if parent != "" {
		par = sql.NullString{String: parent, Valid: true}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO end_user_refresh_tokens (id, tenant_id, session_id, app_id, hash, parent_id, scopes, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, abacus.NewID("rt"), sess.TenantID, sess.ID, appID, hash, par, scope,
		db.TimeOf(now), db.TimeOf(now.Add(s.opt.refresh)))
	if err != nil {
		return "", fmt.Errorf("storing refresh token: %w", err)
	}
	return plain, nil
}

// extraClaims merges the tenant's custom claims and the ClaimsFor hooks.
func (s *Service) extraClaims(ctx context.Context, set Settings, tenant, user string) (map[string]any, error) {
	out := maps.Clone(set.CustomClaims)
	if out == nil {
		out = map[string]any{}
	}
	s.hookMu.RLock()
	hooks := s.claimsFor
	s.hookMu.RUnlock()
	for _, h := range hooks {
		c, err := h(ctx, tenant, user)
		if err != nil {
			return nil, err
		}
		maps.Copy(out, c)
	}
	for _, k := range reservedClaims {
		delete(out, k)
	}
	return out, nil
}

func (s *Service) signAccess(ctx context.Context, tok *Tokens, sess Session, app App, scope string) error {
	set, err := s.settings(ctx, sess.TenantID)
	if err != nil {
		return err
	}
	c, err := s.extraClaims(ctx, set, sess.TenantID, sess.UserID)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	ttl := time.Duration(set.AccessTokenTTL) * time.Second
	c["iss"], c["sub"], c["aud"], c["client_id"] = s.Issuer(sess.TenantID), sess.UserID, app.ClientID, app.ClientID
	c["sid"], c["iat"], c["exp"], c["jti"] = sess.ID, now.Unix(), now.Add(ttl).Unix(), abacus.NewID("at")
	if scope != "" {
		c["scope"] = scope
	}
	tok.AccessToken, err = s.sign(ctx, sess.TenantID, set.AccessTokenAlg, typAccess, c)
	tok.TokenType, tok.ExpiresIn, tok.Scope, tok.SessionID = "Bearer", int(ttl/time.Second), scope, sess.ID
	return err
}

// signID signs an OpenID Connect ID token; profile and email claims only
// for the scopes that ask for them.
func (s *Service) signID(ctx context.Context, u User, sess Session, app App, scopes []string, nonce string) (string, error) {
	set, err := s.settings(ctx, sess.TenantID)
	if err != nil {
		return "", err
	}
	c, err := s.extraClaims(ctx, set, sess.TenantID, u.ID)
	if err != nil {
		return "", err
	}
	now := s.clock.Now()
	c["iss"], c["sub"], c["aud"], c["azp"] = s.Issuer(sess.TenantID), u.ID, app.ClientID, app.ClientID
	c["iat"], c["exp"], c["auth_time"], c["sid"] = now.Unix(), now.Add(time.Duration(set.AccessTokenTTL)*time.Second).Unix(), sess.CreatedAt.Unix(), sess.ID
	if nonce != "" {
		c["nonce"] = nonce
	}
	if slices.Contains(scopes, "email") {
		c["email"], c["email_verified"] = u.Email, u.EmailVerified
	}
	if slices.Contains(scopes, "profile") {
		c["name"] = u.Name
		for k, v := range map[string]string{"locale": u.Locale, "zoneinfo": u.TimeZone, "picture": u.AvatarURL} {
			if v != "" {
				c[k] = v
			}
		}
	}
	return s.sign(ctx, sess.TenantID, AlgRS256, typID, c)
}

func (s *Service) sign(ctx context.Context, tenant, alg, typ string, c jwt.MapClaims) (string, error) {
	t, err := s.keys.get(ctx, tenant)
	if err != nil {
		return "", err
	}
	k, ok := t.signer(alg)
	if !ok {
		return "", fmt.Errorf("tenant %s has no %s signing key", tenant, alg)
	}
	m := jwt.GetSigningMethod(alg)
	j := jwt.NewWithClaims(m, c)
	j.Header["kid"], j.Header["typ"] = k.kid, typ
	out, err := j.SignedString(k.priv)
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}
	return out, nil
}

// Refresh trades a refresh token of tenantID for new tokens, for the app
// it was issued to (clientID), and rotates it: the presented token stops
// working. Presenting an already rotated token is taken as theft: the
// whole family and its session are revoked and refresh_token_reused
// returned. No ID token is issued on refresh (OIDC Core 12.2 allows it),
// which keeps a refresh to one fast signature. Errors (401):
// refresh_token_invalid (unknown, other tenant or app, revoked session),
// refresh_token_expired, refresh_token_reused; 403 end_user_disabled.
func (s *Service) Refresh(ctx context.Context, tenantID, refreshToken, clientID string) (Tokens, error) {
	ctx = systemCtx(ctx, tenantID)
	app, err := s.AppByClientID(ctx, tenantID, clientID)
	if abacus.ErrorKind(err) == abacus.KindNotFound {
		return Tokens{}, errRefreshInvalid
	}
	if err != nil {
		return Tokens{}, err
	}
	now := s.clock.Now()
	var tok Tokens
	var sess Session
	var scope string
	var reused bool
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		var id, appID, status string
		var expires db.Time
		var rotated db.NullTime
		dest, finish := sessionDest(&sess)
		dest = append(dest, &id, &appID, &expires, &rotated, &scope, &status)
		err := tx.QueryRowContext(ctx, `SELECT `+prefixed("s.", sessionColumns)+`, r.id, r.app_id, r.expires_at, r.rotated_at, r.scopes, u.status
			FROM end_user_refresh_tokens r JOIN end_user_sessions s ON s.id = r.session_id JOIN end_users u ON u.id = s.user_id
			WHERE r.tenant_id = $1 AND r.hash = $2`, tenantID, token.Hash(strings.TrimSpace(refreshToken))).Scan(dest...)
		if errors.Is(err, sql.ErrNoRows) {
			return errRefreshInvalid
		}
		if err != nil {
			return fmt.Errorf("reading refresh token: %w", err)
		}
		finish()
		switch {
		case appID != app.ID:
			return errRefreshInvalid
		case rotated.Valid:
			reused = true
			return s.revokeSessions(ctx, tx, tenantID, []string{sess.ID}, ReasonReuse)
		case sess.RevokedAt != nil:
			return errRefreshInvalid
		case !now.Before(expires.Time) || !now.Before(sess.ExpiresAt):
			return errRefreshExpired
		case status != StatusActive:
			return errDisabled
		}
		res, err := tx.ExecContext(ctx, `UPDATE end_user_refresh_tokens SET rotated_at = $1 WHERE id = $2 AND rotated_at IS NULL`, db.TimeOf(now), id)
		if err != nil {
			return fmt.Errorf("rotating refresh token: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errRefreshInvalid // a concurrent refresh won the race
		}
		if _, err := tx.ExecContext(ctx, `UPDATE end_user_sessions SET last_seen_at = $1 WHERE id = $2`, db.TimeOf(now), sess.ID); err != nil {
			return fmt.Errorf("touching session: %w", err)
		}
		sess.LastSeenAt = now
		tok.RefreshToken, err = s.newRefreshToken(ctx, tx, sess, app.ID, scope, id)
		return err
	})
	if reused && err == nil {
		s.log.WarnContext(ctx, "end-user refresh token reuse; session revoked", "tenant_id", tenantID, "session_id", sess.ID)
		return Tokens{}, errRefreshReused
	}
	if err != nil {
		return Tokens{}, err
	}
	if err := s.signAccess(ctx, &tok, sess, app, scope); err != nil {
		return Tokens{}, err
	}
	return tok, nil
}

func prefixed(p, cols string) string {
	parts := strings.Split(cols, ", ")
	for i := range parts {
		parts[i] = p + parts[i]
	}
	return strings.Join(parts, ", ")
}

// VerifyAccessToken checks an access token presented at tenantID: its
// signature by one of the tenant's keys (a token of another tenant fails),
// its type (an ID token is not an access token), issuer, expiry (30 s
// leeway) and that its session is still signed in. Errors (401):
// token_invalid, token_expired, token_revoked.
func (s *Service) VerifyAccessToken(ctx context.Context, tenantID, tok string) (Claims, error) {
	mc, err := s.parse(ctx, tenantID, tok, typAccess)
	if err != nil {
		return Claims{}, err
	}
	c := claimsOf(mc)
	if c.Subject == "" || c.SessionID == "" {
		return Claims{}, errTokenInvalid
	}
	live, err := s.sessionLive(ctx, tenantID, c.SessionID, s.clock.Now())
	if err != nil {
		return Claims{}, err
	}
	if !live {
		return Claims{}, errTokenRevoked
	}
	return c, nil
}

// parse verifies a token's signature, type, issuer and times.
func (s *Service) parse(ctx context.Context, tenantID, tok, typ string) (jwt.MapClaims, error) {
	p := jwt.NewParser(jwt.WithValidMethods([]string{AlgEdDSA, AlgRS256}), jwt.WithLeeway(leeway),
		jwt.WithIssuer(s.Issuer(tenantID)), jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithTimeFunc(s.clock.Now))
	mc := jwt.MapClaims{}
	_, err := p.ParseWithClaims(tok, mc, func(t *jwt.Token) (any, error) {
		if h, _ := t.Header["typ"].(string); h != typ {
			return nil, errTokenInvalid
		}
		kid, _ := t.Header["kid"].(string)
		keys, err := s.keys.get(ctx, tenantID)
		if err != nil {
			return nil, err
		}
		k, ok := keys.verifier(kid, s.clock.Now())
		if !ok {
			if keys, ok = s.keys.reloadForKid(ctx, tenantID, kid); ok {
				k, ok = keys.verifier(kid, s.clock.Now())
			}
		}
		if !ok || k.alg != t.Method.Alg() {
			return nil, errTokenInvalid
		}
		return k.pub, nil
	})
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, errTokenExpired
	case err != nil:
		return nil, errTokenInvalid
	}
	return mc, nil
}

func claimsOf(mc jwt.MapClaims) Claims {
	str := func(k string) string { v, _ := mc[k].(string); delete(mc, k); return v }
	tm := func(k string) time.Time {
		v, _ := mc[k].(float64)
		delete(mc, k)
		return time.Unix(int64(v), 0).UTC()
	}
	c := Claims{
		Issuer: str("iss"), Subject: str("sub"), Audience: str("aud"), ClientID: str("client_id"),
		SessionID: str("sid"), Scope: str("scope"), ID: str("jti"), IssuedAt: tm("iat"), ExpiresAt: tm("exp"),
	}
	c.Extra = map[string]any(mc)
	return c
}
