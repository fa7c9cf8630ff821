package enduser

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
	"github.com/abacusbilling/abacus/internal/identity/totp"
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

// recordFailure records end_user.sign_in_failed for a known user. It is
// best effort: the sign-in fails either way.
func (s *Service) recordFailure(ctx context.Context, tenantID, userID, reason string, dev Device, appID string) {
	if userID == "" {
		return
	}
	ev := SignInFailedEvent{EndUserID: userID, Reason: reason, AppID: appID, UserAgent: truncate(dev.UserAgent, 512), IP: dev.IP}
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		_, err := SignInFailed.Record(ctx, tx, tenantID, userID, s.clock.Now(), ev)
		return err
	})
	if err != nil {
		s.log.WarnContext(ctx, "recording a failed end-user sign-in", "tenant_id", tenantID, "err", err)
	}
}

// TOTPEnrollment is what EnrollTOTP hands the user's authenticator app.
type TOTPEnrollment struct {
	Secret string `json:"secret" doc:"base32 secret, for typing in by hand"`
	URI    string `json:"otpauth_uri" doc:"otpauth:// URI, for a QR code"`
}

// EnrollTOTP starts (or restarts) TOTP enrolment for an end user: a new
// secret, unconfirmed until ConfirmTOTP. Errors: mfa_already_enabled.
func (s *Service) EnrollTOTP(ctx context.Context, tenantID, userID string) (TOTPEnrollment, error) {
	ctx = systemCtx(ctx, tenantID)
	u, err := s.userIn(ctx, s.db, tenantID, userID)
	if err != nil {
		return TOTPEnrollment{}, err
	}
	if u.MFAEnabled {
		return TOTPEnrollment{}, abacus.Conflict("mfa_already_enabled", "two-factor authentication is already on; disable it first")
	}
	secret := totp.NewSecret()
	now := db.TimeOf(s.clock.Now())
	_, err = s.db.ExecContext(ctx, `INSERT INTO end_user_mfa (user_id, tenant_id, secret, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at, confirmed_at = NULL, last_step = 0`,
		u.ID, tenantID, secret, now)
	if err != nil {
		return TOTPEnrollment{}, fmt.Errorf("storing TOTP secret: %w", err)
	}
	issuer := s.opt.base
	if name, err := s.tenantName(ctx, tenantID); err == nil && name != "" {
		issuer = name
	}
	return TOTPEnrollment{Secret: secret, URI: totp.ProvisioningURI(issuer, u.Email, secret)}, nil
}

var errMFACode = abacus.Invalid("invalid_mfa_code", "the code is wrong; use the current code of the authenticator app or a recovery code").WithField("code", "wrong")

// ConfirmTOTP turns MFA on once the user proves their app works, and
// returns 10 recovery codes, shown once (stored hashed). Errors:
// mfa_not_enrolled, invalid_mfa_code.
func (s *Service) ConfirmTOTP(ctx context.Context, tenantID, userID, code string) ([]string, error) {
	ctx = systemCtx(ctx, tenantID)
	var plain []string
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		var secret string
		var lastStep int64
		err := tx.QueryRowContext(ctx, `SELECT secret, last_step FROM end_user_mfa WHERE tenant_id = $1 AND user_id = $2 AND confirmed_at IS NULL`,
			tenantID, userID).Scan(&secret, &lastStep)
		if errors.Is(err, sql.ErrNoRows) {
			return abacus.Conflict("mfa_not_enrolled", "start TOTP enrolment first")
		}
		if err != nil {
			return fmt.Errorf("reading TOTP secret: %w", err)
		}
		step, ok := totp.Validate(secret, strings.TrimSpace(code), s.clock.Now())
		if !ok || step <= lastStep {
			return errMFACode
		}
		now := s.clock.Now()
		if _, err := tx.ExecContext(ctx, `UPDATE end_user_mfa SET confirmed_at = $1, last_step = $2 WHERE user_id = $3`, db.TimeOf(now), step, userID); err != nil {
			return fmt.Errorf("confirming TOTP: %w", err)
		}
		var hashes []string
		plain, hashes = totp.NewRecoveryCodes(0)
		if _, err := tx.ExecContext(ctx, `DELETE FROM end_user_recovery_codes WHERE user_id = $1`, userID); err != nil {
			return err
		}
		for _, h := range hashes {
			if _, err := tx.ExecContext(ctx, `INSERT INTO end_user_recovery_codes (user_id, tenant_id, hash) VALUES ($1, $2, $3)`, userID, tenantID, h); err != nil {
				return fmt.Errorf("storing recovery codes: %w", err)
			}
		}
		u, err := s.userIn(ctx, tx, tenantID, userID)
		if err != nil {
			return err
		}
		return s.recordUser(ctx, tx, MFAEnabled, u.User, now)
	})
	return plain, err
}

// DisableTOTP turns MFA off after checking the user's password (or, for a
// user without one, a current TOTP or recovery code). Errors:
// invalid_credentials, invalid_mfa_code, too_many_attempts.
func (s *Service) DisableTOTP(ctx context.Context, tenantID, userID, pw, code string, dev Device) error {
	ctx = systemCtx(ctx, tenantID)
	u, err := s.userIn(ctx, s.db, tenantID, userID)
	if err != nil {
		return err
	}
	if u.hash != "" {
		if err := s.checkCurrentPassword(ctx, u, pw, dev); err != nil {
			return err
		}
	}
	return s.inTxKeep(ctx, func(tx *db.Tx) error {
		if u.hash == "" {
			if err := s.checkSecondFactor(ctx, tx, u.User, code); err != nil {
				return err
			}
		}
		for _, q := range []string{`DELETE FROM end_user_mfa WHERE user_id = $1`, `DELETE FROM end_user_recovery_codes WHERE user_id = $1`} {
			if _, err := tx.ExecContext(ctx, q, userID); err != nil {
				return fmt.Errorf("disabling MFA: %w", err)
			}
		}
		u.MFAEnabled = false
		return s.recordUser(ctx, tx, MFADisabled, u.User, s.clock.Now())
	})
}

// checkSecondFactor accepts a current TOTP code (each step once) or an
// unused recovery code of u, which it uses up.
func (s *Service) checkSecondFactor(ctx context.Context, tx *db.Tx, u User, code string) error {
	code = strings.TrimSpace(code)
	var secret string
	var lastStep int64
	err := tx.QueryRowContext(ctx, `SELECT secret, last_step FROM end_user_mfa WHERE user_id = $1 AND confirmed_at IS NOT NULL`, u.ID).Scan(&secret, &lastStep)
	if errors.Is(err, sql.ErrNoRows) {
		return errMFACode
	}
	if err != nil {
		return fmt.Errorf("reading TOTP secret: %w", err)
	}
	if step, ok := totp.Validate(secret, code, s.clock.Now()); ok && step > lastStep {
		_, err := tx.ExecContext(ctx, `UPDATE end_user_mfa SET last_step = $1 WHERE user_id = $2 AND last_step < $1`, step, u.ID)
		return err
	}
	res, err := tx.ExecContext(ctx, `UPDATE end_user_recovery_codes SET used_at = $1 WHERE user_id = $2 AND hash = $3 AND used_at IS NULL`,
		db.TimeOf(s.clock.Now()), u.ID, totp.HashRecoveryCode(code))
	if err != nil {
		return fmt.Errorf("using recovery code: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	return errMFACode
}

// SignInMFA finishes a sign-in that answered *MFARequired: the challenge
// and a TOTP or recovery code start the session. A challenge allows 5
// wrong codes. Errors: mfa_challenge_invalid, invalid_mfa_code,
// too_many_attempts, end_user_disabled.
func (s *Service) SignInMFA(ctx context.Context, tenantID, challenge, code string, dev Device) (Session, User, error) {
	ctx = systemCtx(ctx, tenantID)
	var id, userID, appID string
	var attempts int
	now := s.clock.Now()
	err := s.db.QueryRowContext(ctx, `SELECT id, user_id, app_id, attempts FROM end_user_email_tokens WHERE tenant_id = $1 AND kind = 'mfa'
		AND hash = $2 AND used_at IS NULL AND expires_at > $3`, tenantID, token.Hash(strings.TrimSpace(challenge)), db.TimeOf(now)).Scan(&id, &userID, &appID, &attempts)
	if errors.Is(err, sql.ErrNoRows) || attempts >= maxCodeAttempts {
		return Session{}, User{}, abacus.Errorf(abacus.KindUnauthorized, "mfa_challenge_invalid", "the sign-in has expired; sign in again")
	}
	if err != nil {
		return Session{}, User{}, fmt.Errorf("reading MFA challenge: %w", err)
	}
	u, err := s.userIn(ctx, s.db, tenantID, userID)
	if err != nil {
		return Session{}, User{}, err
	}
	keys := keysFor(tenantID, u.Email, dev.IP)
	if err := s.checkThrottle(keys); err != nil {
		return Session{}, User{}, err
	}
	err = s.inTxKeep(ctx, func(tx *db.Tx) error {
		if err := s.checkSecondFactor(ctx, tx, u.User, code); err != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE end_user_email_tokens SET attempts = attempts + 1 WHERE id = $1`, id); err != nil {
				return err
			}
			return &commitThen{err: err}
		}
		_, err := tx.ExecContext(ctx, `UPDATE end_user_email_tokens SET used_at = $1 WHERE id = $2`, db.TimeOf(now), id)
		return err
	})
	if errors.Is(err, errMFACode) {
		s.failThrottle(keys)
		s.recordFailure(ctx, tenantID, userID, "mfa", dev, appID)
	}
	if err != nil {
		return Session{}, User{}, err
	}
	s.passThrottle(keys)
	return s.finishSignIn(withMethod(ctx, "mfa"), u.User, dev, appID, true)
}
