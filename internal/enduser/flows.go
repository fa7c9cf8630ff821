package enduser

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/identity/throttle"
	"github.com/abacusbilling/abacus/internal/identity/token"
)

// The public flows a tenant's front-end drives: sign-up, e-mailed links
// and codes, passwords. Each takes the app (found by its publishable
// client id) or the tenant explicitly, never a staff principal.

// SignUpInput is a new end user signing themself up.
type SignUpInput struct {
	Email    string
	Password string
	Name     string
	Locale   string
	TimeZone string
}

// SignUp creates an end user in app's tenant if its policy lets them
// (signup open, e-mail domain allowed), mails a verification link and
// starts a session on the device. Errors: signup_closed,
// signup_invite_only (403), email_domain_not_allowed, invalid_email, the
// password policy's codes, end_user_exists (409), too_many_attempts
// (20 sign-ups an hour per IP); ErrVerifyEmail (with
// the user) when the tenant requires a verified address first.
func (s *Service) SignUp(ctx context.Context, app App, in SignUpInput, dev Device) (Session, User, error) {
	ctx = systemCtx(ctx, app.TenantID)
	set, err := s.settings(ctx, app.TenantID)
	if err != nil {
		return Session{}, User{}, err
	}
	switch set.Signup {
	case SignupClosed:
		return Session{}, User{}, abacus.Errorf(abacus.KindForbidden, "signup_closed", "sign-up is closed for this app")
	case SignupInviteOnly:
		return Session{}, User{}, abacus.Errorf(abacus.KindForbidden, "signup_invite_only", "this app takes new accounts by invitation only")
	}
	if err := domainAllowed(set, in.Email); err != nil {
		return Session{}, User{}, err
	}
	if in.Password == "" {
		return Session{}, User{}, abacus.Invalid("password_required", "choose a password").WithField("password", "required")
	}
	if wait, ok := s.signupLimit.Allow("t:" + app.TenantID + "|ip:" + dev.IP); !ok {
		return Session{}, User{}, throttle.TooManyAttempts(wait)
	}
	p, err := s.prepareUser(ctx, NewUser{Email: in.Email, Password: in.Password, Name: in.Name,
		Locale: in.Locale, TimeZone: in.TimeZone})
	if err != nil {
		return Session{}, User{}, err
	}
	var u User
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		u, err = s.createUser(ctx, tx, app.TenantID, p)
		if err != nil {
			return err
		}
		return s.SendVerification(ctx, tx, u, app.ID)
	})
	if err != nil {
		return Session{}, User{}, err
	}
	if set.RequireVerifiedEmail {
		return Session{}, u, ErrVerifyEmail
	}
	return s.finishSignIn(withMethod(ctx, "sign_up"), u, dev, app.ID, false)
}

// ErrVerifyEmail is what SignUp returns, with the new user, when the
// tenant requires a verified address before the first sign-in: not a
// failure, the answer is "check your mail".
var ErrVerifyEmail = errors.New("enduser: verify the e-mail address to sign in")

var errNotVerified = abacus.Errorf(abacus.KindForbidden, "email_not_verified",
	"verify your e-mail address first: open the link we mailed you, or sign in with a magic link")

func domainAllowed(set Settings, email string) error {
	if len(set.AllowedEmailDomains) == 0 {
		return nil
	}
	e, err := normalizeEmail(email)
	if err != nil {
		return err
	}
	dom := e[strings.LastIndexByte(e, '@')+1:]
	for _, d := range set.AllowedEmailDomains {
		if dom == d {
			return nil
		}
	}
	return abacus.Invalid("email_domain_not_allowed", "this app takes addresses at %s only", strings.Join(set.AllowedEmailDomains, ", ")).
		WithField("email", "domain not allowed")
}

// signupRate bounds sign-ups per (tenant, client IP), as identity does
// for staff: enough for a household or an office, not for a script.
var signupRate = throttle.RateConfig{Limit: 20, Window: time.Hour}

// mailRate bounds how often one address can be sent links and codes from
// one IP, so the forms cannot be used to flood a mailbox.
var mailRate = throttle.RateConfig{Limit: 5, Window: time.Hour}

func (s *Service) allowMail(tenant, email, ip string) error {
	if wait, ok := s.mailLimit.Allow("t:" + tenant + "|" + email + "|" + ip); !ok {
		return throttle.TooManyAttempts(wait)
	}
	return nil
}

// ForgotPassword mails a password reset link (end_user.reset_password)
// when email belongs to an active end user of app's tenant, and does
// nothing otherwise: the answer is the same either way. Errors:
// invalid_email, too_many_attempts.
func (s *Service) ForgotPassword(ctx context.Context, app App, email string, dev Device) error {
	return s.mailIfActive(ctx, app, email, dev, func(ctx context.Context, tx *db.Tx, u User) error {
		return s.mailLink(ctx, tx, u, app.ID, kindReset, "reset-password", MailResetPassword, ResetTokenTTL, "")
	})
}

// mailIfActive runs send in a transaction when email belongs to an active
// end user of app's tenant, and does nothing otherwise, so the answer does
// not tell whether the address has an account. Mail per (address, IP) is
// rate-limited.
func (s *Service) mailIfActive(ctx context.Context, app App, email string, dev Device, send func(context.Context, *db.Tx, User) error) error {
	ctx = systemCtx(ctx, app.TenantID)
	e, err := normalizeEmail(email)
	if err != nil {
		return err
	}
	if err := s.allowMail(app.TenantID, e, dev.IP); err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *db.Tx) error {
		u, err := s.userByEmail(ctx, tx, app.TenantID, e)
		if abacus.ErrorKind(err) == abacus.KindNotFound || (err == nil && u.Status != StatusActive) {
			return nil
		}
		if err != nil {
			return err
		}
		return send(ctx, tx, u.User)
	})
}

// mailLink stores a single-use link token of kind and mails it; code,
// when set, is sent beside the link.
func (s *Service) mailLink(ctx context.Context, tx *db.Tx, u User, appID, kind, page, template string, ttl time.Duration, code string) error {
	set, err := s.settings(ctx, u.TenantID)
	if err != nil {
		return err
	}
	plain, hash := token.NewOpaque("eul")
	exp, err := s.newEmailToken(ctx, tx, u, kind, appID, hash, ttl)
	if err != nil {
		return err
	}
	data, err := s.mailData(ctx, tx, u, appID, exp)
	if err != nil {
		return err
	}
	if kind != kindMagic || set.AppURL != "" {
		// A magic link signs in to the app; without an app_url there is
		// nothing to open, and the mail carries the code alone.
		data["link"] = s.linkFor(set, u.TenantID, page, plain)
	}
	if code != "" {
		data["code"] = code
	}
	return s.send(ctx, tx, Mail{TenantID: u.TenantID, To: u.Email, Name: u.Name, Locale: u.Locale, Template: template, Data: data})
}

// ResetPassword sets a new password with the e-mailed reset token, marks
// the address verified (the link proved the mailbox) and signs every
// session out. Errors: token_invalid, the password policy's codes.
func (s *Service) ResetPassword(ctx context.Context, tenantID, plain, newPassword string) (User, error) {
	ctx = systemCtx(ctx, tenantID)
	var out User
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		u, _, err := s.useEmailToken(ctx, tx, tenantID, kindReset, plain)
		if err != nil {
			return err
		}
		if err := s.setPassword(ctx, tx, u.User, newPassword, ""); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE end_users SET email_verified_at = COALESCE(email_verified_at, $1) WHERE id = $2`,
			db.TimeOf(s.clock.Now()), u.ID); err != nil {
			return fmt.Errorf("verifying e-mail: %w", err)
		}
		u.EmailVerified = true
		out = u.User
		return nil
	})
	return out, err
}

// setPassword checks and stores a new password, signs every session but
// keep out and records end_user.password_changed.
func (s *Service) setPassword(ctx context.Context, tx *db.Tx, u User, pw, keep string) error {
	if err := checkPassword(pw, u.Email); err != nil {
		return err
	}
	h, err := s.hashPassword(ctx, pw)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	if _, err := tx.ExecContext(ctx, `UPDATE end_users SET password_hash = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4`,
		h, db.TimeOf(now), u.TenantID, u.ID); err != nil {
		return fmt.Errorf("storing password: %w", err)
	}
	if _, err := s.RevokeUserSessions(ctx, tx, u.TenantID, u.ID, keep, ReasonPassword); err != nil {
		return err
	}
	return s.recordUser(ctx, tx, PasswordChanged, u, now)
}

// ChangePassword replaces the signed-in user's password after checking the
// current one (throttled like a sign-in), and signs every other session
// out. A user without a password (magic link only) sets one without
// current. Errors: invalid_credentials, too_many_attempts, the password
// policy's codes.
func (s *Service) ChangePassword(ctx context.Context, tenantID, userID, sessionID, current, newPassword string, dev Device) error {
	ctx = systemCtx(ctx, tenantID)
	u, err := s.userIn(ctx, s.db, tenantID, userID)
	if err != nil {
		return err
	}
	if err := s.checkCurrentPassword(ctx, u, current, dev); err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *db.Tx) error { return s.setPassword(ctx, tx, u.User, newPassword, sessionID) })
}

// checkCurrentPassword re-authenticates u with their password, throttled
// like a sign-in. A user without a password passes.
func (s *Service) checkCurrentPassword(ctx context.Context, u userRow, pw string, dev Device) error {
	if u.hash == "" {
		return nil
	}
	keys := keysFor(u.TenantID, u.Email, dev.IP)
	if err := s.checkThrottle(keys); err != nil {
		return err
	}
	ok, _, err := s.verifyPassword(ctx, pw, u.hash)
	if err != nil {
		return err
	}
	if !ok {
		s.failThrottle(keys)
		return abacus.Errorf(abacus.KindUnauthorized, "invalid_credentials", "the current password is wrong").WithField("current_password", "wrong")
	}
	return nil
}

// StartPasswordless mails a magic sign-in link and a one-time code
// (end_user.magic_link, both valid 15 minutes, single use) when email
// belongs to an active end user of app's tenant; otherwise it does
// nothing, with the same answer. Errors: invalid_email, too_many_attempts.
func (s *Service) StartPasswordless(ctx context.Context, app App, email string, dev Device) error {
	return s.mailIfActive(ctx, app, email, dev, func(ctx context.Context, tx *db.Tx, u User) error {
		code := sixDigits()
		if _, err := s.newEmailToken(ctx, tx, u, kindCode, app.ID, codeHash(u.ID, code), MagicLinkTTL); err != nil {
			return err
		}
		return s.mailLink(ctx, tx, u, app.ID, kindMagic, "magic-link", MailMagicLink, MagicLinkTTL, code)
	})
}

func sixDigits() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic("enduser: crypto/rand failed: " + err.Error()) // never happens; see crypto/rand.Read
	}
	return fmt.Sprintf("%06d", n.Int64())
}

// codeHash binds a one-time code to its user, so equal codes of two
// users do not collide in the index.
func codeHash(userID, code string) string { return token.Hash(userID + ":" + strings.TrimSpace(code)) }

// SignInWithLink signs in with a magic link's token, which also proves
// the address. Errors: token_invalid, end_user_disabled, *MFARequired.
func (s *Service) SignInWithLink(ctx context.Context, tenantID, plain string, dev Device) (Session, User, error) {
	ctx = systemCtx(ctx, tenantID)
	var u userRow
	var appID string
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		var err error
		if u, appID, err = s.useEmailToken(ctx, tx, tenantID, kindMagic, plain); err != nil {
			return err
		}
		if err := s.expireTokens(ctx, tx, u.User, kindCode); err != nil {
			return err
		}
		return s.markVerified(ctx, tx, &u.User)
	})
	if err != nil {
		return Session{}, User{}, err
	}
	return s.finishSignIn(withMethod(ctx, "magic_link"), u.User, dev, appID, false)
}

// expireTokens ends u's unused tokens of kind: a magic link and its code
// are one sign-in, so using either ends the other.
func (s *Service) expireTokens(ctx context.Context, tx *db.Tx, u User, kind string) error {
	_, err := tx.ExecContext(ctx, `UPDATE end_user_email_tokens SET used_at = $1 WHERE tenant_id = $2 AND user_id = $3 AND kind = $4 AND used_at IS NULL`,
		db.TimeOf(s.clock.Now()), u.TenantID, u.ID, kind)
	if err != nil {
		return fmt.Errorf("expiring tokens: %w", err)
	}
	return nil
}

func (s *Service) markVerified(ctx context.Context, tx *db.Tx, u *User) error {
	_, err := tx.ExecContext(ctx, `UPDATE end_users SET email_verified_at = COALESCE(email_verified_at, $1) WHERE id = $2`, db.TimeOf(s.clock.Now()), u.ID)
	u.EmailVerified = true
	return err
}

// maxCodeAttempts is how many wrong one-time codes (or MFA codes for one
// challenge) end the code.
const maxCodeAttempts = 5

var errCodeInvalid = abacus.Invalid("code_invalid", "the code is wrong or has expired; ask for a new one").WithField("code", "wrong or expired")

// SignInWithCode signs in with the one-time code mailed with a magic link
// to email at app's tenant. A code allows 5 wrong tries; attempts are also
// throttled per account and IP. Errors: code_invalid, too_many_attempts,
// end_user_disabled, *MFARequired.
func (s *Service) SignInWithCode(ctx context.Context, app App, email, code string, dev Device) (Session, User, error) {
	ctx = systemCtx(ctx, app.TenantID)
	keys := keysFor(app.TenantID, normEmail(email), dev.IP)
	if err := s.checkThrottle(keys); err != nil {
		return Session{}, User{}, err
	}
	u, err := s.userByEmail(ctx, s.db, app.TenantID, email)
	if abacus.ErrorKind(err) == abacus.KindNotFound {
		s.failThrottle(keys)
		return Session{}, User{}, errCodeInvalid
	}
	if err != nil {
		return Session{}, User{}, err
	}
	err = s.inTxKeep(ctx, func(tx *db.Tx) error {
		return s.useCode(ctx, tx, u.User, kindCode, codeHash(u.ID, code))
	})
	if err != nil {
		if errors.Is(err, errCodeInvalid) {
			s.failThrottle(keys)
		}
		return Session{}, User{}, err
	}
	s.passThrottle(keys)
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if err := s.expireTokens(ctx, tx, u.User, kindMagic); err != nil {
			return err
		}
		return s.markVerified(ctx, tx, &u.User)
	})
	if err != nil {
		return Session{}, User{}, err
	}
	return s.finishSignIn(withMethod(ctx, "code"), u.User, dev, app.ID, false)
}

// useCode consumes the user's newest live code of kind when hash matches,
// counting a wrong try against it (errCodeInvalid).
func (s *Service) useCode(ctx context.Context, tx *db.Tx, u User, kind, hash string) error {
	var id, want string
	var attempts int
	now := s.clock.Now()
	err := tx.QueryRowContext(ctx, `SELECT id, hash, attempts FROM end_user_email_tokens WHERE tenant_id = $1 AND user_id = $2 AND kind = $3
		AND used_at IS NULL AND expires_at > $4 ORDER BY id DESC LIMIT 1`, u.TenantID, u.ID, kind, db.TimeOf(now)).Scan(&id, &want, &attempts)
	if errors.Is(err, sql.ErrNoRows) {
		return errCodeInvalid
	}
	if err != nil {
		return fmt.Errorf("reading code: %w", err)
	}
	if attempts >= maxCodeAttempts || want != hash {
		_, err := tx.ExecContext(ctx, `UPDATE end_user_email_tokens SET attempts = attempts + 1 WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("counting a wrong code: %w", err)
		}
		return &commitThen{err: errCodeInvalid}
	}
	_, err = tx.ExecContext(ctx, `UPDATE end_user_email_tokens SET used_at = $1 WHERE id = $2`, db.TimeOf(now), id)
	return err
}

// commitThen is returned by a transaction's function when what it wrote
// must commit (a counted wrong try) but the caller must still fail.
type commitThen struct{ err error }

func (c *commitThen) Error() string { return c.err.Error() }
func (c *commitThen) Unwrap() error { return c.err }

// inTxKeep runs fn in a transaction that commits when fn returns nil or a
// *commitThen, and returns the *commitThen's error after the commit.
func (s *Service) inTxKeep(ctx context.Context, fn func(tx *db.Tx) error) error {
	var kept error
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		err := fn(tx)
		var c *commitThen
		if errors.As(err, &c) {
			kept = c.err
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	return kept
}

// SignOut signs session sid of tenantID out; an already signed-out
// session is not an error. Errors: session_not_found.
func (s *Service) SignOut(ctx context.Context, tenantID, sid string) error {
	ctx = systemCtx(ctx, tenantID)
	return s.db.InTx(ctx, func(tx *db.Tx) error {
		if _, err := s.sessionIn(ctx, tx, tenantID, sid); err != nil {
			return err
		}
		return s.revokeSessions(ctx, tx, tenantID, []string{sid}, ReasonSignOut)
	})
}

// SignOutRefresh signs out the session of a refresh token of tenantID;
// an unknown token is not an error, so sign-out can be retried.
func (s *Service) SignOutRefresh(ctx context.Context, tenantID, refreshToken string) error {
	ctx = systemCtx(ctx, tenantID)
	var sid string
	err := s.db.QueryRowContext(ctx, `SELECT session_id FROM end_user_refresh_tokens WHERE tenant_id = $1 AND hash = $2`,
		tenantID, token.Hash(strings.TrimSpace(refreshToken))).Scan(&sid)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading refresh token: %w", err)
	}
	return s.SignOut(ctx, tenantID, sid)
}

// SignOutEverywhere signs out every session of the user and returns how
// many there were.
func (s *Service) SignOutEverywhere(ctx context.Context, tenantID, userID string) (int, error) {
	ctx = systemCtx(ctx, tenantID)
	var n int
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		var err error
		n, err = s.RevokeUserSessions(ctx, tx, tenantID, userID, "", ReasonEverywhere)
		return err
	})
	return n, err
}

// ProfilePatch is what end users may change about themselves.
type ProfilePatch struct {
	Name      *string
	Locale    *string
	TimeZone  *string
	AvatarURL *string
}

// UpdateProfile changes the signed-in user's own profile. Errors:
// invalid_end_user.
func (s *Service) UpdateProfile(ctx context.Context, tenantID, userID string, p ProfilePatch) (User, error) {
	return s.UpdateUser(systemCtx(ctx, tenantID), userID, UserPatch{Name: p.Name, Locale: p.Locale, TimeZone: p.TimeZone, AvatarURL: p.AvatarURL})
}
