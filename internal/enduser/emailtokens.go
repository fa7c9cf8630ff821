package enduser

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/identity"
	"github.com/abacusbilling/abacus/internal/identity/token"
)

// E-mailed token kinds (end_user_email_tokens.kind).
const (
	kindVerify = "verify"
	kindReset  = "reset"
	kindMagic  = "magic_link"
	kindCode   = "code"
	kindMFA    = "mfa"
)

var errLinkInvalid = abacus.Invalid("token_invalid", "this link is not valid or has expired; ask for a new one").WithField("token", "invalid or expired")

// newEmailToken stores a single-use token of kind for u and returns its
// plaintext. Earlier unused tokens of the same kind stop working, so only
// the newest link in the user's mailbox opens.
func (s *Service) newEmailToken(ctx context.Context, tx *db.Tx, u User, kind, appID, plain, hash string, ttl time.Duration) (time.Time, error) {
	now := s.clock.Now()
	if _, err := tx.ExecContext(ctx, `UPDATE end_user_email_tokens SET used_at = $1
		WHERE tenant_id = $2 AND user_id = $3 AND kind = $4 AND used_at IS NULL`, db.TimeOf(now), u.TenantID, u.ID, kind); err != nil {
		return time.Time{}, fmt.Errorf("replacing e-mail tokens: %w", err)
	}
	exp := now.Add(ttl)
	_, err := tx.ExecContext(ctx, `INSERT INTO end_user_email_tokens (id, tenant_id, user_id, kind, hash, email, app_id, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, abacus.NewID("eut"), u.TenantID, u.ID, kind, hash, u.Email, appID, db.TimeOf(now), db.TimeOf(exp))
	if err != nil {
		return time.Time{}, fmt.Errorf("storing e-mail token: %w", err)
	}
	return exp, nil
}

// useEmailToken consumes a link token of kind at tenantID and returns its
// user and app. The token must be unused, unexpired, and still name the
// user's current e-mail (a link sent before an address change is dead).
func (s *Service) useEmailToken(ctx context.Context, tx *db.Tx, tenantID, kind, plain string) (userRow, string, error) {
	var id, userID, email, appID string
	var expires db.Time
	var used db.NullTime
	err := tx.QueryRowContext(ctx, `SELECT id, user_id, email, app_id, expires_at, used_at FROM end_user_email_tokens
		WHERE tenant_id = $1 AND kind = $2 AND hash = $3`, tenantID, kind, token.Hash(plain)).Scan(&id, &userID, &email, &appID, &expires, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return userRow{}, "", errLinkInvalid
	}
	if err != nil {
		return userRow{}, "", fmt.Errorf("reading e-mail token: %w", err)
	}
	now := s.clock.Now()
	if used.Valid || !now.Before(expires.Time) {
		return userRow{}, "", errLinkInvalid
	}
	res, err := tx.ExecContext(ctx, `UPDATE end_user_email_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL`, db.TimeOf(now), id)
	if err != nil {
		return userRow{}, "", fmt.Errorf("using e-mail token: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return userRow{}, "", errLinkInvalid
	}
	u, err := s.userIn(ctx, tx, tenantID, userID)
	if abacus.ErrorKind(err) == abacus.KindNotFound || (err == nil && u.Email != email) {
		return userRow{}, "", errLinkInvalid
	}
	return u, appID, err
}

// linkFor returns the link a mail of this kind carries: the tenant's
// app_url when set (the app shows its own page and calls the API), else
// the page under the tenant's issuer.
func (s *Service) linkFor(set Settings, tenantID, page, plain string) string {
	base := set.AppURL
	if base == "" {
		base = s.Issuer(tenantID)
	}
	return base + "/" + page + "?token=" + url.QueryEscape(plain)
}

// mailData returns the Data every end-user mail has.
func (s *Service) mailData(ctx context.Context, tx *db.Tx, u User, appID string, expires time.Time) (map[string]any, error) {
	tenantName, err := identity.TenantName(ctx, tx, u.TenantID)
	if err != nil && abacus.ErrorKind(err) != abacus.KindNotFound {
		return nil, err
	}
	appName := ""
	if appID != "" {
		if a, err := s.App(systemCtx(ctx, u.TenantID), appID); err == nil {
			appName = a.Name
		}
	}
	d := map[string]any{
		"user":   map[string]any{"name": u.Name, "email": u.Email},
		"app":    map[string]any{"name": appName},
		"tenant": map[string]any{"name": tenantName},
	}
	if !expires.IsZero() {
		d["expires_at"] = expires.UTC().Format(time.RFC3339)
	}
	return d, nil
}

// SendVerification mails u a link that verifies their address (template
// end_user.verify_email), in tx.
func (s *Service) SendVerification(ctx context.Context, tx *db.Tx, u User, appID string) error {
	set, err := s.settings(ctx, u.TenantID)
	if err != nil {
		return err
	}
	plain, hash := token.NewOpaque("euv")
	exp, err := s.newEmailToken(ctx, tx, u, kindVerify, appID, plain, hash, VerifyTokenTTL)
	if err != nil {
		return err
	}
	data, err := s.mailData(ctx, tx, u, appID, exp)
	if err != nil {
		return err
	}
	data["link"] = s.linkFor(set, u.TenantID, "verify-email", plain)
	return s.send(ctx, tx, Mail{TenantID: u.TenantID, To: u.Email, Name: u.Name, Locale: u.Locale, Template: MailVerifyEmail, Data: data})
}

// VerifyEmail marks the address of the link's user verified and returns
// the user. Errors: token_invalid (unknown, used, expired, or the address
// changed since).
func (s *Service) VerifyEmail(ctx context.Context, tenantID, plain string) (User, error) {
	ctx = systemCtx(ctx, tenantID)
	var u userRow
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		var err error
		if u, _, err = s.useEmailToken(ctx, tx, tenantID, kindVerify, plain); err != nil {
			return err
		}
		now := s.clock.Now()
		if _, err := tx.ExecContext(ctx, `UPDATE end_users SET email_verified_at = $1, updated_at = $1 WHERE tenant_id = $2 AND id = $3`,
			db.TimeOf(now), tenantID, u.ID); err != nil {
			return fmt.Errorf("verifying e-mail: %w", err)
		}
		u.EmailVerified = true
		return nil
	})
	return u.User, err
}
