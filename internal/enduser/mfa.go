package enduser

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/identity/token"
)

// MFARequired is the error SignIn returns when the password was right and
// the user has a second factor: Challenge, with a TOTP or recovery code,
// finishes the sign-in (SignInMFA) until ExpiresAt. To a caller that does
// not know it, it is a 401 mfa_required *abacus.Error.
type MFARequired struct {
	Challenge string
	ExpiresAt time.Time
}

func (e *MFARequired) Error() string { return "mfa_required: a second factor is needed" }

// Unwrap lets errors.As find the *abacus.Error.
func (e *MFARequired) Unwrap() error {
	return &abacus.Error{Kind: abacus.KindUnauthorized, Code: "mfa_required",
		Message: "this account has two-factor authentication; send the code from the authenticator app with the mfa_token"}
}

// mfaChallenge stores a single-use challenge for u's second step.
func (s *Service) mfaChallenge(ctx context.Context, u User, appID string) error {
	plain, hash := token.NewOpaque("mfa")
	now := s.clock.Now()
	exp := now.Add(MFAChallengeTTL)
	_, err := s.db.ExecContext(ctx, `INSERT INTO end_user_email_tokens (id, tenant_id, user_id, kind, hash, app_id, created_at, expires_at)
		VALUES ($1, $2, $3, 'mfa', $4, $5, $6, $7)`, abacus.NewID("eut"), u.TenantID, u.ID, hash, appID, db.TimeOf(now), db.TimeOf(exp))
	if err != nil {
		return fmt.Errorf("storing mfa challenge: %w", err)
	}
	return &MFARequired{Challenge: plain, ExpiresAt: exp}
}

func normEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

// recordFailure notes a failed sign-in of a known user.
func (s *Service) recordFailure(ctx context.Context, tenantID, userID, reason string, dev Device) {
	if userID == "" {
		return
	}
	s.log.InfoContext(ctx, "end-user sign-in failed", "tenant_id", tenantID, "end_user_id", userID, "reason", reason, "ip", dev.IP)
}
