package oidc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/enduser"
	"github.com/abacusbilling/abacus/internal/identity/token"
)

// newCode stores a single-use authorization code for sess, bound to the
// request's client, redirect_uri, PKCE challenge, scopes and nonce.
func (p *Provider) newCode(ctx context.Context, req authRequest, sess enduser.Session) (string, error) {
	plain, hash := token.NewOpaque("euac")
	now := p.clock.Now()
	method := ""
	if req.challenge != "" {
		method = "S256"
	}
	_, err := p.db.ExecContext(ctx, `INSERT INTO end_user_auth_codes (hash, tenant_id, app_id, session_id, user_id, redirect_uri,
		code_challenge, code_challenge_method, scopes, nonce, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		hash, req.tenant, req.app.ID, sess.ID, sess.UserID, req.redirectURI, req.challenge, method,
		strings.Join(req.scopes, " "), req.nonce, db.TimeOf(now), db.TimeOf(now.Add(CodeTTL)))
	if err != nil {
		return "", fmt.Errorf("storing authorization code: %w", err)
	}
	p.maybeSweep(ctx)
	return plain, nil
}

// grant is what a redeemed code grants.
type grant struct {
	sessionID string
	scopes    []string
	nonce     string
}

// codeRedeem is a token request's code grant.
type codeRedeem struct {
	tenant, code, redirectURI, verifier string
	app                                 enduser.App
}

var errBadGrant = &tokenError{status: 400, code: "invalid_grant", desc: "the code is invalid, expired, already used, or was issued to another client or redirect_uri"}

// redeemCode uses up a code. A code presented a second time is taken as
// stolen: the session it signed in is revoked, and with it every token
// the first redemption issued (RFC 6749 §4.1.2). Errors: invalid_grant.
func (p *Provider) redeemCode(ctx context.Context, in codeRedeem) (grant, error) {
	var g grant
	var replayed bool
	now := p.clock.Now()
	err := p.db.InTx(ctx, func(tx *db.Tx) error {
		var appID, redirect, challenge, scopes string
		var expires db.Time
		var used db.NullTime
		err := tx.QueryRowContext(ctx, `SELECT app_id, session_id, redirect_uri, code_challenge, scopes, nonce, expires_at, used_at
			FROM end_user_auth_codes WHERE tenant_id = $1 AND hash = $2`, in.tenant, token.Hash(in.code)).
			Scan(&appID, &g.sessionID, &redirect, &challenge, &scopes, &g.nonce, &expires, &used)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return errBadGrant
		case err != nil:
			return fmt.Errorf("reading authorization code: %w", err)
		case appID != in.app.ID:
			return errBadGrant
		case used.Valid:
			replayed = true
			return nil
		case !now.Before(expires.Time), redirect != in.redirectURI, !pkceMatches(challenge, in.verifier):
			return errBadGrant
		}
		res, err := tx.ExecContext(ctx, `UPDATE end_user_auth_codes SET used_at = $1 WHERE tenant_id = $2 AND hash = $3 AND used_at IS NULL`,
			db.TimeOf(now), in.tenant, token.Hash(in.code))
		if err != nil {
			return fmt.Errorf("using authorization code: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			replayed = true // a concurrent redemption won
		}
		g.scopes = strings.Fields(scopes)
		return nil
	})
	if err != nil {
		return grant{}, err
	}
	if replayed {
		p.log.WarnContext(ctx, "oidc: authorization code replayed; session revoked", "tenant_id", in.tenant, "session_id", g.sessionID)
		if err := p.eu.RevokeSession(ctx, in.tenant, g.sessionID); err != nil && abacus.ErrorKind(err) != abacus.KindNotFound {
			return grant{}, err
		}
		if _, err := p.db.ExecContext(ctx, `DELETE FROM end_user_sso_sessions WHERE tenant_id = $1 AND session_id = $2`, in.tenant, g.sessionID); err != nil {
			return grant{}, fmt.Errorf("ending SSO session: %w", err)
		}
		return grant{}, errBadGrant
	}
	return g, nil
}

// pkceMatches checks a code_verifier against the code's challenge (RFC
// 7636 §4.6). A code without a challenge refuses a verifier: that
// mismatch is how a PKCE downgrade shows.
func pkceMatches(challenge, verifier string) bool {
	if challenge == "" {
		return verifier == ""
	}
	if !pkceVerifier.MatchString(verifier) {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
}

func ignoreNotFound(err error) error {
	if abacus.ErrorKind(err) == abacus.KindNotFound {
		return nil
	}
	return err
}
