package portal

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// Store: the portal's own tables only (portal_links, portal_sessions,
// portal_settings); customers and everything billed are read through
// their modules' services.

const linkCols = `id, customer_id, return_url, created_by, expires_at, revoked_at, last_used_at, created_at`

func scanLink(r interface{ Scan(...any) error }) (PortalLink, error) {
	var l PortalLink
	var exp, created db.Time
	var revoked, used db.NullTime
	if err := r.Scan(&l.ID, &l.CustomerID, &l.ReturnURL, &l.CreatedBy, &exp, &revoked, &used, &created); err != nil {
		return l, err
	}
	l.ExpiresAt, l.CreatedAt, l.RevokedAt, l.LastUsedAt = exp.Time, created.Time, revoked.Ptr(), used.Ptr()
	return l, nil
}

func (s *Service) insertLink(ctx context.Context, tenant string, l PortalLink, hash string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO portal_links (id, tenant_id, customer_id, token_hash, return_url, created_by,
		expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		l.ID, tenant, l.CustomerID, hash, l.ReturnURL, l.CreatedBy, db.TimeOf(l.ExpiresAt), db.TimeOf(l.CreatedAt))
	if err != nil {
		return fmt.Errorf("creating portal link: %w", err)
	}
	return nil
}

// listLinks returns a page of a customer's links, newest first.
func (s *Service) listLinks(ctx context.Context, tenant, customer string, limit int, cursor string) (abacus.List[PortalLink], error) {
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	q := `SELECT ` + linkCols + ` FROM portal_links WHERE tenant_id = $1 AND customer_id = $2`
	args := []any{tenant, customer}
	if cursor != "" {
		q += ` AND id < $3`
		args = append(args, cursor)
	}
	rows, err := s.db.QueryContext(ctx, q+fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, limit+1), args...)
	if err != nil {
		return abacus.List[PortalLink]{}, fmt.Errorf("listing portal links: %w", err)
	}
	defer rows.Close()
	out := []PortalLink{}
	for rows.Next() {
		l, err := scanLink(rows)
		if err != nil {
			return abacus.List[PortalLink]{}, fmt.Errorf("listing portal links: %w", err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return abacus.List[PortalLink]{}, fmt.Errorf("listing portal links: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return abacus.ListOf(out, next), nil
}

// revokeLink marks a link of the customer revoked (once) and ends the
// sessions opened from it, in one transaction.
func (s *Service) revokeLink(ctx context.Context, tenant, customer, id string, now time.Time) (PortalLink, error) {
	var l PortalLink
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		var err error
		l, err = scanLink(tx.QueryRowContext(ctx, `SELECT `+linkCols+` FROM portal_links WHERE tenant_id = $1 AND customer_id = $2 AND id = $3`,
			tenant, customer, id))
		if errors.Is(err, sql.ErrNoRows) {
			return abacus.NotFound("portal_link", id)
		}
		if err != nil {
			return fmt.Errorf("revoking portal link: %w", err)
		}
		if l.RevokedAt != nil {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE portal_links SET revoked_at = $1 WHERE tenant_id = $2 AND id = $3`,
			db.TimeOf(now), tenant, id); err != nil {
			return fmt.Errorf("revoking portal link: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE portal_sessions SET revoked_at = $1 WHERE tenant_id = $2 AND link_id = $3 AND revoked_at IS NULL`,
			db.TimeOf(now), tenant, id); err != nil {
			return fmt.Errorf("ending the link's portal sessions: %w", err)
		}
		l.RevokedAt = &now
		return nil
	})
	return l, err
}

// linkByHash finds a usable link (not revoked, not expired) and records
// that it was opened.
func (s *Service) useLink(ctx context.Context, hash string, now time.Time) (tenant string, l PortalLink, err error) {
	l, err = scanLinkWithTenant(s.db.QueryRowContext(ctx, `SELECT tenant_id, `+linkCols+` FROM portal_links WHERE token_hash = $1`, hash), &tenant)
	if errors.Is(err, sql.ErrNoRows) {
		return "", l, errLinkInvalid
	}
	if err != nil {
		return "", l, fmt.Errorf("opening portal link: %w", err)
	}
	if l.RevokedAt != nil || !now.Before(l.ExpiresAt) {
		return "", l, errLinkInvalid
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE portal_links SET last_used_at = $1 WHERE tenant_id = $2 AND id = $3`,
		db.TimeOf(now), tenant, l.ID); err != nil {
		return "", l, fmt.Errorf("opening portal link: %w", err)
	}
	return tenant, l, nil
}

func scanLinkWithTenant(r interface{ Scan(...any) error }, tenant *string) (PortalLink, error) {
	return scanLink(scanFunc(func(dest ...any) error { return r.Scan(append([]any{tenant}, dest...)...) }))
}

type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

func (s *Service) insertSession(ctx context.Context, sess PortalSession, hash string, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO portal_sessions (id, tenant_id, customer_id, link_id, token_hash, expires_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, sess.ID, sess.TenantID, sess.CustomerID, sess.LinkID, hash,
		db.TimeOf(sess.ExpiresAt), db.TimeOf(now))
	if err != nil {
		return fmt.Errorf("opening portal session: %w", err)
	}
	return nil
}

// sessionByHash returns the session whose secret hashes to hash, with
// errSessionEnded when it was revoked or expired.
func (s *Service) sessionByHash(ctx context.Context, hash string, now time.Time) (*PortalSession, error) {
	var sess PortalSession
	var exp db.Time
	var revoked db.NullTime
	err := s.db.QueryRowContext(ctx, `SELECT id, tenant_id, customer_id, link_id, expires_at, revoked_at FROM portal_sessions WHERE token_hash = $1`,
		hash).Scan(&sess.ID, &sess.TenantID, &sess.CustomerID, &sess.LinkID, &exp, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errSessionEnded
	}
	if err != nil {
		return nil, fmt.Errorf("reading portal session: %w", err)
	}
	sess.ExpiresAt = exp.Time
	if revoked.Valid || !now.Before(sess.ExpiresAt) {
		return nil, errSessionEnded
	}
	return &sess, nil
}

func (s *Service) endSession(ctx context.Context, hash string, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE portal_sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL`, db.TimeOf(now), hash)
	if err != nil {
		return fmt.Errorf("ending portal session: %w", err)
	}
	return nil
}

func (s *Service) loadSettings(ctx context.Context, tenant string) (PortalSettings, error) {
	var raw string
	var at db.Time
	err := s.db.QueryRowContext(ctx, `SELECT settings, updated_at FROM portal_settings WHERE tenant_id = $1`, tenant).Scan(&raw, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return DefaultSettings(), nil
	}
	if err != nil {
		return PortalSettings{}, fmt.Errorf("reading portal settings: %w", err)
	}
	st := DefaultSettings()
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return PortalSettings{}, fmt.Errorf("reading portal settings: %w", err)
	}
	st.UpdatedAt = &at.Time
	return st, nil
}

func (s *Service) storeSettings(ctx context.Context, tenant string, st PortalSettings, now time.Time) error {
	st.UpdatedAt = nil
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("storing portal settings: %w", err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO portal_settings (tenant_id, settings, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at`,
		tenant, string(b), db.TimeOf(now))
	if err != nil {
		return fmt.Errorf("storing portal settings: %w", err)
	}
	return nil
}
