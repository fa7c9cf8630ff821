package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/identity/token"
)

// Session is one sign-in of a user to a tenant. Its refresh tokens form
// one family: each refresh rotates the token; presenting a rotated token
// again means it was stolen, and the whole session is revoked.
//
//	login ──▶ active ──refresh (rotate)──▶ active
//	            │ logout, revoke, reset password, reuse detected, expiry
//	            ▼
//	         revoked
type Session struct {
	ID         string     `json:"id"`
	TenantID   string     `json:"tenant_id"`
	IP         string     `json:"ip"`
	UserAgent  string     `json:"user_agent"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt time.Time  `json:"last_used_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	Current    bool       `json:"current" doc:"the session of the token making this request"`
}

// startSession creates a session and its first refresh token.
func (s *Service) startSession(ctx context.Context, tx *db.Tx, tenant, user string, role Role) (Tokens, error) {
	now := s.clock.Now()
	r := requestFrom(ctx)
	id := abacus.NewID("ses")
	ua := r.UserAgent
	if len(ua) > 300 {
		ua = ua[:300]
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO sessions (id, tenant_id, user_id, ip, user_agent, created_at, last_used_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6, $7)`, id, tenant, user, s.clientIP(ctx), ua, db.TimeOf(now), db.TimeOf(now.Add(s.a.opt.session))); err != nil {
		return Tokens{}, fmt.Errorf("creating session: %w", err)
	}
	return s.issueTokens(ctx, tx, tenant, user, id, role, "")
}

func (s *Service) issueTokens(ctx context.Context, tx *db.Tx, tenant, user, session string, role Role, parent string) (Tokens, error) {
	now := s.clock.Now()
	plain, hash := token.NewOpaque("rt")
	var par any
	if parent != "" {
		par = parent
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO refresh_tokens (id, session_id, hash, parent_id, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, abacus.NewID("rtk"), session, hash, par, db.TimeOf(now), db.TimeOf(now.Add(s.a.opt.refresh))); err != nil {
		return Tokens{}, fmt.Errorf("creating refresh token: %w", err)
	}
	// The access token is signed after commit (signAccess): loading the
	// keyring may write, which must not happen inside this transaction.
	return Tokens{RefreshToken: plain, role: role, user: user, TokenType: "Bearer", ExpiresIn: int(s.a.opt.access / time.Second),
		TenantID: tenant, SessionID: session}, nil
}

// signAccess fills in the access token of tokens issued in a transaction
// that has committed.
func (s *Service) signAccess(ctx context.Context, t *Tokens) error {
	access, err := s.issueAccess(ctx, t.TenantID, t.user, t.SessionID, t.role)
	if err != nil {
		return err
	}
	t.AccessToken = access
	return nil
}

var (
	errRefreshInvalid = abacus.Errorf(abacus.KindUnauthorized, "refresh_token_invalid",
		"the refresh token is unknown or its session has ended; sign in again")
	errRefreshExpired = abacus.Errorf(abacus.KindUnauthorized, "refresh_token_expired",
		"the refresh token has expired; sign in again")
	errRefreshReused = abacus.Errorf(abacus.KindUnauthorized, "refresh_token_reused",
		"this refresh token was already used, so it may have been stolen: the session is now revoked everywhere; sign in again")
)

// Refresh exchanges a refresh token for a new access token and a new
// refresh token; the presented one stops working. Presenting an already
// rotated token revokes the whole session (the token family) and records
// the security event auth.refresh_reused. Errors (all 401):
// refresh_token_invalid, refresh_token_expired, refresh_token_reused,
// token_revoked (membership gone).
func (s *Service) Refresh(ctx context.Context, plain string) (Tokens, error) {
	now := s.clock.Now()
	var tok Tokens
	var reused bool
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		var id, session, tenant, user string
		var expires, sesExpires db.Time
		var rotated, revoked db.NullTime
		err := tx.QueryRowContext(ctx, `SELECT r.id, r.session_id, r.expires_at, r.rotated_at, s.tenant_id, s.user_id, s.expires_at, s.revoked_at
			FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.hash = $1`, token.Hash(strings.TrimSpace(plain))).
			Scan(&id, &session, &expires, &rotated, &tenant, &user, &sesExpires, &revoked)
		if errors.Is(err, sql.ErrNoRows) {
			return errRefreshInvalid
		}
		if err != nil {
			return fmt.Errorf("reading refresh token: %w", err)
		}
		actx := withActor(ctx, "user", user)
		if rotated.Valid {
			reused = true
			if !revoked.Valid {
				if _, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = $1, revoked_reason = 'refresh_reused' WHERE id = $2`, db.TimeOf(now), session); err != nil {
					return fmt.Errorf("revoking session: %w", err)
				}
			}
			return s.audit(actx, tx, tenant, "auth.refresh_reused", "session", session, map[string]any{"security": true, "refresh_token_id": id})
		}
		if revoked.Valid {
			return errRefreshInvalid
		}
		if !now.Before(expires.Time) || !now.Before(sesExpires.Time) {
			return errRefreshExpired
		}
		res, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET rotated_at = $1 WHERE id = $2 AND rotated_at IS NULL`, db.TimeOf(now), id)
		if err != nil {
			return fmt.Errorf("rotating refresh token: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errRefreshInvalid // a concurrent refresh won the race
		}
		var role string
		err = tx.QueryRowContext(ctx, `SELECT role FROM memberships WHERE tenant_id = $1 AND user_id = $2`, tenant, user).Scan(&role)
		if errors.Is(err, sql.ErrNoRows) {
			return errTokenRevoked
		}
		if err != nil {
			return fmt.Errorf("reading membership: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET last_used_at = $1 WHERE id = $2`, db.TimeOf(now), session); err != nil {
			return fmt.Errorf("touching session: %w", err)
		}
		tok, err = s.issueTokens(actx, tx, tenant, user, session, Role(role), id)
		return err
	})
	if err == nil && !reused {
		err = s.signAccess(ctx, &tok)
	}
	if reused && err == nil {
		// The revocation and the audit event commit; the caller still fails.
		s.log.WarnContext(ctx, "refresh token reuse detected; session revoked", "ip", s.clientIP(ctx))
		s.forgetAuth()
		return Tokens{}, errRefreshReused
	}
	return tok, err
}

// Logout ends the session of a refresh token. An unknown or already
// revoked token is not an error, so logout can be retried.
func (s *Service) Logout(ctx context.Context, plain string) error {
	now := s.clock.Now()
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		var session, tenant, user string
		err := tx.QueryRowContext(ctx, `SELECT s.id, s.tenant_id, s.user_id FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id
			WHERE r.hash = $1 AND s.revoked_at IS NULL`, token.Hash(strings.TrimSpace(plain))).Scan(&session, &tenant, &user)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading refresh token: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = $1, revoked_reason = 'logout' WHERE id = $2`, db.TimeOf(now), session); err != nil {
			return fmt.Errorf("ending session: %w", err)
		}
		return s.audit(withActor(ctx, "user", user), tx, tenant, "auth.logout", "session", session, nil)
	})
	s.forgetAuth()
	return err
}

// ListSessions lists the signed-in user's active sessions in every tenant.
// Error: user_required for API keys and clients.
func (s *Service) ListSessions(ctx context.Context) ([]Session, error) {
	p, err := userPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	current := currentSession(ctx)
	rows, err := s.db.QueryContext(ctx, `SELECT id, tenant_id, ip, user_agent, created_at, last_used_at, expires_at, revoked_at
		FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY id`, p.ID, db.TimeOf(s.clock.Now()))
	if err != nil {
		return nil, fmt.Errorf("listing sessions: %w", err)
	}
	defer rows.Close()
	out := []Session{}
	for rows.Next() {
		var x Session
		var c, l, e db.Time
		var r db.NullTime
		if err := rows.Scan(&x.ID, &x.TenantID, &x.IP, &x.UserAgent, &c, &l, &e, &r); err != nil {
			return nil, err
		}
		x.CreatedAt, x.LastUsedAt, x.ExpiresAt, x.RevokedAt, x.Current = c.Time, l.Time, e.Time, r.Ptr(), x.ID == current
		out = append(out, x)
	}
	return out, rows.Err()
}

// RevokeSession ends one of the signed-in user's sessions; another user's
// session is not found. Revoking twice is not an error.
func (s *Service) RevokeSession(ctx context.Context, id string) error {
	p, err := userPrincipal(ctx)
	if err != nil {
		return abacus.NotFound("session", id) // keys and clients own no sessions
	}
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		var tenant string
		err := tx.QueryRowContext(ctx, `SELECT tenant_id FROM sessions WHERE id = $1 AND user_id = $2`, id, p.ID).Scan(&tenant)
		if errors.Is(err, sql.ErrNoRows) {
			return abacus.NotFound("session", id)
		}
		if err != nil {
			return fmt.Errorf("reading session: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = $1, revoked_reason = 'revoked' WHERE id = $2 AND revoked_at IS NULL`,
			db.TimeOf(s.clock.Now()), id); err != nil {
			return fmt.Errorf("revoking session: %w", err)
		}
		return s.audit(ctx, tx, tenant, "session.revoked", "session", id, nil)
	})
	s.forgetAuth()
	return err
}

// RevokeAllSessions signs the user out everywhere (every session in every
// tenant, this one included) and returns how many sessions ended.
func (s *Service) RevokeAllSessions(ctx context.Context) (int, error) {
	p, err := userPrincipal(ctx)
	if err != nil {
		return 0, err
	}
	var n int
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL`, p.ID).Scan(&n); err != nil {
			return err
		}
		if err := s.revokeUserSessions(ctx, tx, p.ID, "", "sign_out_everywhere"); err != nil {
			return err
		}
		return s.audit(ctx, tx, p.TenantID, "session.revoked_all", "user", p.ID, map[string]any{"sessions": n})
	})
	s.forgetAuth()
	return n, err
}

// revokeUserSessions ends the user's sessions, in one tenant or (tenant
// "") everywhere.
func (s *Service) revokeUserSessions(ctx context.Context, tx *db.Tx, user, tenant, reason string) error {
	q := `UPDATE sessions SET revoked_at = $1, revoked_reason = $2 WHERE user_id = $3 AND revoked_at IS NULL`
	args := []any{db.TimeOf(s.clock.Now()), reason, user}
	if tenant != "" {
		q += ` AND tenant_id = $4`
		args = append(args, tenant)
	}
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("revoking sessions: %w", err)
	}
	tx.AfterCommit(s.forgetAuth)
	return nil
}

type sessionKey struct{}

// currentSession returns the session id of the access token of the
// request, when routes put it on the context.
func currentSession(ctx context.Context) string {
	v, _ := ctx.Value(sessionKey{}).(string)
	return v
}
