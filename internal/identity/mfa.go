package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/identity/totp"
)

// TOTPEnrollment is what an authenticator app needs to enrol.
type TOTPEnrollment struct {
	Secret          string `json:"secret" doc:"base32 secret, for apps that cannot scan the URI"`
	ProvisioningURI string `json:"provisioning_uri" doc:"otpauth:// URI to show as a QR code"`
}

// EnrollTOTP starts (or restarts) TOTP enrolment for the signed-in user.
// MFA is not on until ConfirmTOTP. Errors: user_required,
// mfa_already_enabled (disable it first).
func (s *Service) EnrollTOTP(ctx context.Context) (TOTPEnrollment, error) {
	p, err := userPrincipal(ctx)
	if err != nil {
		return TOTPEnrollment{}, err
	}
	u, err := s.getUser(ctx, p.ID)
	if err != nil {
		return TOTPEnrollment{}, err
	}
	if u.MFAEnabled {
		return TOTPEnrollment{}, abacus.Conflict("mfa_already_enabled", "two-factor sign-in is already on; disable it first to enrol a new device")
	}
	secret := totp.NewSecret()
	now := db.TimeOf(s.clock.Now())
	_, err = s.db.ExecContext(ctx, `INSERT INTO totp_secrets (user_id, secret, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at, confirmed_at = NULL, last_step = 0`,
		p.ID, secret, now)
	if err != nil {
		return TOTPEnrollment{}, fmt.Errorf("enrolling TOTP: %w", err)
	}
	return TOTPEnrollment{Secret: secret, ProvisioningURI: totp.ProvisioningURI("Abacus", u.Email, secret)}, nil
}

// ConfirmTOTP turns MFA on when code is right for the pending secret and
// returns 10 single-use recovery codes, shown only now. Errors:
// user_required, mfa_not_enrolled, mfa_already_enabled, invalid_mfa_code.
func (s *Service) ConfirmTOTP(ctx context.Context, code string) ([]string, error) {
	p, err := userPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	var codes []string
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		var secret string
		var confirmed db.NullTime
		err := tx.QueryRowContext(ctx, `SELECT secret, confirmed_at FROM totp_secrets WHERE user_id = $1`, p.ID).Scan(&secret, &confirmed)
		if errors.Is(err, sql.ErrNoRows) {
			return abacus.Conflict("mfa_not_enrolled", "start with POST /api/v1/me/mfa/totp/enroll")
		}
		if err != nil {
			return fmt.Errorf("reading TOTP: %w", err)
		}
		if confirmed.Valid {
			return abacus.Conflict("mfa_already_enabled", "two-factor sign-in is already on")
		}
		step, ok := totp.Validate(secret, code, s.clock.Now())
		if !ok {
			return errBadMFACode
		}
		if _, err := tx.ExecContext(ctx, `UPDATE totp_secrets SET confirmed_at = $1, last_step = $2 WHERE user_id = $3`,
			db.TimeOf(s.clock.Now()), step, p.ID); err != nil {
			return fmt.Errorf("confirming TOTP: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, p.ID); err != nil {
			return fmt.Errorf("replacing recovery codes: %w", err)
		}
		plain, hashes := totp.NewRecoveryCodes(totp.RecoveryCodeCount)
		for _, h := range hashes {
			if _, err := tx.ExecContext(ctx, `INSERT INTO recovery_codes (user_id, hash) VALUES ($1, $2)`, p.ID, h); err != nil {
				return fmt.Errorf("storing recovery codes: %w", err)
			}
		}
		codes = plain
		return s.audit(ctx, tx, p.TenantID, "user.mfa_enabled", "user", p.ID, nil)
	})
	return codes, err
}

// DisableTOTP turns MFA off after re-checking the user's password.
// Errors: user_required, invalid_credentials, mfa_not_enrolled.
func (s *Service) DisableTOTP(ctx context.Context, pw string) error {
	p, err := userPrincipal(ctx)
	if err != nil {
		return err
	}
	var hash string
	if err := s.db.QueryRowContext(ctx, `SELECT password_hash FROM users WHERE id = $1`, p.ID).Scan(&hash); err != nil {
		return fmt.Errorf("reading user: %w", err)
	}
	if wait, ok := s.a.backoff.Check("reauth:" + p.ID); !ok {
		return throttleErr(wait)
	}
	ok, _, err := s.verifyPassword(ctx, pw, hash)
	if err != nil {
		return err
	}
	if !ok {
		s.a.backoff.Fail("reauth:" + p.ID)
		return abacus.Errorf(abacus.KindUnauthorized, "invalid_credentials", "the password is wrong; re-enter your current password to turn two-factor sign-in off").
			WithField("password", "wrong password")
	}
	s.a.backoff.Succeed("reauth:" + p.ID)
	return s.db.InTx(ctx, func(tx *db.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM totp_secrets WHERE user_id = $1`, p.ID)
		if err != nil {
			return fmt.Errorf("disabling TOTP: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return abacus.Conflict("mfa_not_enrolled", "two-factor sign-in is not on")
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, p.ID); err != nil {
			return fmt.Errorf("deleting recovery codes: %w", err)
		}
		return s.audit(ctx, tx, p.TenantID, "user.mfa_disabled", "user", p.ID, nil)
	})
}

var errBadMFACode = abacus.Errorf(abacus.KindUnauthorized, "invalid_mfa_code",
	"the two-factor code is wrong or was already used; enter the current code from your app, or a recovery code")

// checkMFA passes when the user has no confirmed TOTP, or code is a
// current unused TOTP code or an unused recovery code (consumed here).
func (s *Service) checkMFA(ctx context.Context, user, code string) error {
	var secret string
	var last int64
	err := s.db.QueryRowContext(ctx, `SELECT secret, last_step FROM totp_secrets WHERE user_id = $1 AND confirmed_at IS NOT NULL`, user).Scan(&secret, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading TOTP: %w", err)
	}
	code = strings.TrimSpace(code)
	if code == "" {
		return abacus.Errorf(abacus.KindUnauthorized, "mfa_required",
			"this account has two-factor sign-in: send totp_code with the code from your authenticator app (or a recovery code)").
			WithField("totp_code", "required")
	}
	now := s.clock.Now()
	if step, ok := totp.Validate(secret, code, now); ok {
		// Only a step after the last used one: a code cannot be replayed.
		res, err := s.db.ExecContext(ctx, `UPDATE totp_secrets SET last_step = $1 WHERE user_id = $2 AND last_step < $1`, step, user)
		if err != nil {
			return fmt.Errorf("recording TOTP step: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		return errBadMFACode
	}
	if len(code) < 12 {
		return errBadMFACode
	}
	res, err := s.db.ExecContext(ctx, `UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND hash = $3 AND used_at IS NULL`,
		db.TimeOf(now), user, totp.HashRecoveryCode(code))
	if err != nil {
		return fmt.Errorf("using recovery code: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return errBadMFACode
	}
	s.auditAllTenants(ctx, user, "user.recovery_code_used", nil)
	return nil
}
