package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/identity/password"
	"github.com/abacusbilling/abacus/internal/identity/token"
)

// User is a person who can sign in. One user may belong to several
// tenants, each with a role.
type User struct {
	ID            string    `json:"id"`
	Email         string    `json:"email"`
	EmailVerified bool      `json:"email_verified"`
	MFAEnabled    bool      `json:"mfa_enabled"`
	CreatedAt     time.Time `json:"created_at"`
}

// NormalizeEmail trims and lower-cases an e-mail address and checks its
// form. It returns an invalid_email error for anything that is not a bare
// address (no display name) with a domain.
func NormalizeEmail(field, raw string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(raw))
	a, err := mail.ParseAddress(e)
	at := strings.LastIndexByte(e, '@')
	if err != nil || a.Address != e || len(e) > 254 || at < 1 || !strings.Contains(e[at+1:], ".") {
		return "", abacus.Invalid("invalid_email", "%s must be an e-mail address such as ada@example.com", field).
			WithField(field, "not an e-mail address")
	}
	return e, nil
}

// SignupInput is a new account and organization.
type SignupInput struct {
	Email        string `json:"email" maxLength:"254" doc:"the new user's e-mail address"`
	Password     string `json:"password" maxLength:"1024" doc:"8 to 128 characters, not a common password, not containing the e-mail's local part"`
	Organization string `json:"organization,omitempty" maxLength:"200" doc:"name of the new tenant; not used with invitation_token"`
	// InvitationToken joins the organization that sent the invitation
	// instead of creating one; required when sign-up is invite_only.
	InvitationToken string `json:"invitation_token,omitempty" maxLength:"200" doc:"the token of an e-mailed invitation: the account joins the inviting organization with the invited role, and its address counts as verified; required when identity.signup is invite_only"`
}

// SignupResult is what sign-up created.
type SignupResult struct {
	User   User   `json:"user"`
	Tenant Tenant `json:"tenant"`
	Role   Role   `json:"role"`
}

// Signup creates a user and a tenant with the user as owner, and mails a
// verification link; with an invitation token it joins the inviting
// tenant instead. Errors: signup_closed, signup_invite_only (403, by
// WithSignupMode), invalid_email, password_* (policy), invalid_signup
// (organization), email_taken (409), invitation_email_mismatch,
// email_token_*, too_many_attempts (429, per client IP).
func (s *Service) Signup(ctx context.Context, in SignupInput) (SignupResult, error) {
	if err := s.signupAllowed(in); err != nil {
		return SignupResult{}, err
	}
	if err := s.limit("signup", s.clientIP(ctx)); err != nil {
		return SignupResult{}, err
	}
	email, err := NormalizeEmail("email", in.Email)
	if err != nil {
		return SignupResult{}, err
	}
	if strings.TrimSpace(in.InvitationToken) != "" {
		return s.signupInvited(ctx, email, in)
	}
	if err := password.DefaultPolicy.Check(in.Password, email); err != nil {
		return SignupResult{}, err
	}
	org := strings.TrimSpace(in.Organization)
	if org == "" || len(org) > 200 {
		return SignupResult{}, abacus.Invalid("invalid_signup", "organization must be 1 to 200 characters").WithField("organization", "must be 1 to 200 characters")
	}
	hash, err := s.hashPassword(ctx, in.Password)
	if err != nil {
		return SignupResult{}, err
	}
	now := s.clock.Now()
	res := SignupResult{
		User:   User{ID: abacus.NewID("usr"), Email: email, CreatedAt: now},
		Tenant: Tenant{ID: abacus.NewID("ten"), Name: org, CreatedAt: now},
		Role:   RoleOwner,
	}
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, email, password_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)`,
			res.User.ID, email, hash, db.TimeOf(now)); err != nil {
			if db.IsUniqueViolation(err) {
				return abacus.Conflict("email_taken", "an account with this e-mail already exists; sign in, or reset its password").WithField("email", "already registered")
			}
			return fmt.Errorf("creating user: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)`, res.Tenant.ID, org, db.TimeOf(now)); err != nil {
			return fmt.Errorf("creating tenant: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)`,
			res.Tenant.ID, res.User.ID, RoleOwner, db.TimeOf(now)); err != nil {
			return fmt.Errorf("creating membership: %w", err)
		}
		actx := withActor(ctx, "user", res.User.ID)
		if err := s.audit(actx, tx, res.Tenant.ID, "user.signed_up", "user", res.User.ID, map[string]any{"email": email}); err != nil {
			return err
		}
		if _, err := TenantCreated.Record(ctx, tx, res.Tenant.ID, res.Tenant.ID, now, res.Tenant); err != nil {
			return err
		}
		return s.sendVerification(ctx, tx, res.Tenant.ID, res.User.ID, email)
	})
	if err != nil {
		return SignupResult{}, err
	}
	return res, nil
}

// signupAllowed applies the sign-up mode.
func (s *Service) signupAllowed(in SignupInput) error {
	switch s.a.opt.signup {
	case SignupClosed:
		return abacus.Errorf(abacus.KindForbidden, "signup_closed",
			"sign-up is closed on this server; ask an admin of your organization to invite you")
	case SignupInviteOnly:
		if strings.TrimSpace(in.InvitationToken) == "" {
			return abacus.Errorf(abacus.KindForbidden, "signup_invite_only",
				"sign-up needs an invitation on this server: send the invitation_token from your invitation e-mail, or ask an admin to invite you")
		}
	}
	return nil
}

// signupInvited creates an account by accepting an invitation sent to
// email: the account joins the inviting tenant with the invited role.
func (s *Service) signupInvited(ctx context.Context, email string, in SignupInput) (SignupResult, error) {
	a, err := s.acceptInvitation(ctx, AcceptInput{Token: in.InvitationToken, Password: in.Password}, email)
	if err != nil {
		return SignupResult{}, err
	}
	res := SignupResult{Tenant: Tenant{ID: a.TenantID}, Role: a.Role}
	if res.User, err = s.getUser(ctx, a.UserID); err != nil {
		return SignupResult{}, err
	}
	var created db.Time
	if err := s.db.QueryRowContext(ctx, `SELECT name, created_at FROM tenants WHERE id = $1`, a.TenantID).Scan(&res.Tenant.Name, &created); err != nil {
		return SignupResult{}, fmt.Errorf("reading tenant: %w", err)
	}
	res.Tenant.CreatedAt = created.Time
	return res, nil
}

func (s *Service) sendVerification(ctx context.Context, tx *db.Tx, tenant, user, email string) error {
	tok, err := s.newEmailToken(ctx, tx, emailToken{Kind: "verify", TenantID: tenant, UserID: user, Email: email}, VerifyTokenTTL)
	if err != nil {
		return err
	}
	return s.queueMail(ctx, tx, tenant, "verify", email, mailData{Email: email, Link: s.link("/verify-email", tok), Expires: humanDuration(VerifyTokenTTL)})
}

// LoginInput is a sign-in attempt.
type LoginInput struct {
	Email    string `json:"email" maxLength:"254"`
	Password string `json:"password" maxLength:"1024"`
	TOTPCode string `json:"totp_code,omitempty" maxLength:"32" doc:"the authenticator app's 6-digit code, or a recovery code; required when MFA is on"`
	TenantID string `json:"tenant_id,omitempty" doc:"the tenant to sign in to; default the oldest membership"`
}

// Tokens are what sign-in and refresh hand out.
type Tokens struct {
	AccessToken  string `json:"access_token" doc:"JWT for Authorization: Bearer; short-lived"`
	RefreshToken string `json:"refresh_token" doc:"opaque; exchange at /api/v1/auth/refresh; rotates on every use"`
	TokenType    string `json:"token_type" example:"Bearer"`
	ExpiresIn    int    `json:"expires_in" doc:"seconds until the access token expires"`
	TenantID     string `json:"tenant_id"`
	SessionID    string `json:"session_id"`

	role Role
	user string
}

var errBadLogin = abacus.Errorf(abacus.KindUnauthorized, "invalid_credentials",
	"the e-mail or password is wrong; check both, or reset your password")

// Login checks an e-mail and password (and the TOTP or a recovery code
// when MFA is on) and starts a session. Failures slow down progressively
// per account and client IP, per account, and (briefly, past a burst) per
// client IP (429 too_many_attempts with Retry-After), never locking the
// account for good. Errors: invalid_email, invalid_credentials,
// mfa_required, invalid_mfa_code, no_membership, too_many_attempts.
func (s *Service) Login(ctx context.Context, in LoginInput) (Tokens, error) {
	email, err := NormalizeEmail("email", in.Email)
	if err != nil {
		return Tokens{}, err
	}
	keys := signInKeys(email, s.clientIP(ctx))
	if err := s.checkSignIn(keys); err != nil {
		return Tokens{}, err
	}
	var userID, hash string
	err = s.db.QueryRowContext(ctx, `SELECT id, password_hash FROM users WHERE email = $1`, email).Scan(&userID, &hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Tokens{}, fmt.Errorf("looking up user: %w", err)
	}
	ok, rehash, err := s.verifyPassword(ctx, in.Password, hash)
	if err != nil {
		return Tokens{}, fmt.Errorf("verifying password: %w", err)
	}
	if !ok {
		s.failSignIn(keys)
		if userID != "" {
			s.auditAllTenants(withActor(ctx, "user", userID), userID, "auth.login_failed", map[string]any{"reason": "password"})
		}
		return Tokens{}, errBadLogin
	}
	actx := withActor(ctx, "user", userID)
	if err := s.checkMFA(actx, userID, in.TOTPCode); err != nil {
		if e, ok := abacus.AsError(err); ok && e.Code == "invalid_mfa_code" {
			s.failSignIn(keys)
			s.auditAllTenants(actx, userID, "auth.login_failed", map[string]any{"reason": "mfa"})
		}
		return Tokens{}, err
	}
	s.a.backoff.Succeed(keys.pair)
	s.a.account.Succeed(keys.account)
	s.a.known.Remember(keys.pair)
	if rehash {
		if h, err := s.hashPassword(ctx, in.Password); err == nil {
			if _, err := s.db.ExecContext(ctx, `UPDATE users SET password_hash = $1 WHERE id = $2`, h, userID); err != nil {
				s.log.WarnContext(ctx, "re-hashing password", "user_id", userID, "err", err)
			}
		}
	}
	tenant, role, err := s.pickMembership(ctx, userID, in.TenantID)
	if err != nil {
		return Tokens{}, err
	}
	var tok Tokens
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		var err error
		tok, err = s.startSession(actx, tx, tenant, userID, role)
		if err != nil {
			return err
		}
		return s.audit(actx, tx, tenant, "auth.login_succeeded", "session", tok.SessionID, nil)
	})
	if err != nil {
		return Tokens{}, err
	}
	return tok, s.signAccess(ctx, &tok)
}

// signIn names one sign-in attempt in the throttles.
type signIn struct{ account, pair, ip string }

func signInKeys(email, ip string) signIn {
	return signIn{account: "acct:" + email, pair: "acct:" + email + "|ip:" + ip, ip: "ip:" + ip}
}

// checkSignIn refuses an attempt while any of its throttles holds it
// back. The per-IP budget is only peeked: it is spent by failures, so
// other accounts' sign-ins behind one address are not what exhausts it;
// and it does not apply to an account that signed in from this address
// before, so someone spraying passwords from an office's address does not
// keep its regular users out. That is decided before the password is
// checked, so it tells a guesser nothing.
func (s *Service) checkSignIn(k signIn) error {
	if wait, ok := s.a.ipFails.Peek(k.ip); !ok && !s.a.known.Has(k.pair) {
		return throttleErr(wait)
	}
	if wait, ok := s.a.account.Check(k.account); !ok {
		return throttleErr(wait)
	}
	if wait, ok := s.a.backoff.Check(k.pair); !ok {
		return throttleErr(wait)
	}
	return nil
}

func (s *Service) failSignIn(k signIn) {
	s.a.backoff.Fail(k.pair)
	s.a.account.Fail(k.account)
	s.a.ipFails.Allow(k.ip)
}

func throttleErr(wait time.Duration) *abacus.Error {
	return &abacus.Error{Kind: abacus.KindRateLimited, Code: "too_many_attempts", RetryAfter: int((wait + time.Second - 1) / time.Second),
		Message: fmt.Sprintf("too many failed attempts; wait %s before trying again", wait.Round(time.Second))}
}

// auditAllTenants records a user-level event in every tenant the user
// belongs to (failed sign-ins have no tenant of their own). Best effort.
func (s *Service) auditAllTenants(ctx context.Context, userID, action string, data map[string]any) {
	rows, err := s.db.QueryContext(ctx, `SELECT tenant_id FROM memberships WHERE user_id = $1`, userID)
	if err != nil {
		s.log.WarnContext(ctx, "auditing", "action", action, "err", err)
		return
	}
	var tenants []string
	for rows.Next() {
		var t string
		if rows.Scan(&t) == nil {
			tenants = append(tenants, t)
		}
	}
	rows.Close()
	for _, t := range tenants {
		if err := s.audit(ctx, s.db, t, action, "user", userID, data); err != nil {
			s.log.WarnContext(ctx, "auditing", "action", action, "err", err)
		}
	}
}

func (s *Service) pickMembership(ctx context.Context, userID, want string) (string, Role, error) {
	q := `SELECT tenant_id, role FROM memberships WHERE user_id = $1 ORDER BY created_at, tenant_id LIMIT 1`
	args := []any{userID}
	if want != "" {
		q = `SELECT tenant_id, role FROM memberships WHERE user_id = $1 AND tenant_id = $2`
		args = append(args, want)
	}
	var tenant, role string
	err := s.db.QueryRowContext(ctx, q, args...).Scan(&tenant, &role)
	if errors.Is(err, sql.ErrNoRows) {
		if want != "" {
			return "", "", abacus.NotFound("tenant", want)
		}
		return "", "", abacus.Errorf(abacus.KindForbidden, "no_membership", "this account belongs to no organization; ask an admin to invite you")
	}
	if err != nil {
		return "", "", fmt.Errorf("reading memberships: %w", err)
	}
	return tenant, Role(role), nil
}

// Membership is one tenant a user belongs to.
type Membership struct {
	TenantID   string `json:"tenant_id"`
	TenantName string `json:"tenant_name"`
	Role       Role   `json:"role"`
}

// Me describes the caller.
type Me struct {
	Kind        string         `json:"kind" doc:"user, api_key or client"`
	ID          string         `json:"id"`
	TenantID    string         `json:"tenant_id"`
	Scopes      []abacus.Scope `json:"scopes"`
	Role        Role           `json:"role,omitempty"`
	User        *User          `json:"user,omitempty"`
	Memberships []Membership   `json:"memberships,omitempty"`
}

// Me returns the caller's identity: for a user, the account and every
// membership; for a key or client, its id and scopes.
func (s *Service) Me(ctx context.Context) (Me, error) {
	p := abacus.PrincipalFrom(ctx)
	if p == nil {
		return Me{}, abacus.Errorf(abacus.KindUnauthorized, "unauthenticated", "sign in first")
	}
	m := Me{Kind: p.Kind, ID: p.ID, TenantID: p.TenantID, Scopes: p.Scopes}
	if p.Kind != "user" {
		return m, nil
	}
	u, err := s.getUser(ctx, p.ID)
	if err != nil {
		return Me{}, err
	}
	m.User = &u
	rows, err := s.db.QueryContext(ctx, `SELECT m.tenant_id, t.name, m.role FROM memberships m JOIN tenants t ON t.id = m.tenant_id
		WHERE m.user_id = $1 ORDER BY m.created_at, m.tenant_id`, p.ID)
	if err != nil {
		return Me{}, fmt.Errorf("reading memberships: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ms Membership
		if err := rows.Scan(&ms.TenantID, &ms.TenantName, &ms.Role); err != nil {
			return Me{}, err
		}
		if ms.TenantID == p.TenantID {
			m.Role = ms.Role
		}
		m.Memberships = append(m.Memberships, ms)
	}
	return m, rows.Err()
}

func (s *Service) getUser(ctx context.Context, id string) (User, error) {
	var u User
	var verified db.NullTime
	var created db.Time
	var mfa int
	err := s.db.QueryRowContext(ctx, `SELECT u.id, u.email, u.email_verified_at, u.created_at,
		(SELECT count(*) FROM totp_secrets t WHERE t.user_id = u.id AND t.confirmed_at IS NOT NULL)
		FROM users u WHERE u.id = $1`, id).Scan(&u.ID, &u.Email, &verified, &created, &mfa)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, abacus.NotFound("user", id)
	}
	if err != nil {
		return User{}, fmt.Errorf("reading user: %w", err)
	}
	u.EmailVerified, u.CreatedAt, u.MFAEnabled = verified.Valid, created.Time, mfa > 0
	return u, nil
}

// VerifyEmail marks the address of a verification link's token verified.
// Errors: email_token_invalid, email_token_expired, email_token_used,
// too_many_attempts.
func (s *Service) VerifyEmail(ctx context.Context, tok string) (User, error) {
	if err := s.limit("verify", s.clientIP(ctx)); err != nil {
		return User{}, err
	}
	var userID string
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		et, err := s.useEmailToken(ctx, tx, "verify", tok)
		if err != nil {
			return err
		}
		userID = et.UserID
		// The address must still be the one the link was sent to.
		_, err = tx.ExecContext(ctx, `UPDATE users SET email_verified_at = $1, updated_at = $1 WHERE id = $2 AND email = $3`,
			db.TimeOf(s.clock.Now()), et.UserID, et.Email)
		if err != nil {
			return fmt.Errorf("verifying e-mail: %w", err)
		}
		return s.audit(withActor(ctx, "user", et.UserID), tx, et.TenantID, "user.email_verified", "user", et.UserID, nil)
	})
	if err != nil {
		return User{}, err
	}
	return s.getUser(ctx, userID)
}

// ResendVerification mails a new verification link to the signed-in
// user. Errors: user_required (not a user token), email_already_verified,
// too_many_attempts.
func (s *Service) ResendVerification(ctx context.Context) error {
	p, err := userPrincipal(ctx)
	if err != nil {
		return err
	}
	if err := s.limit("verify", s.clientIP(ctx)); err != nil {
		return err
	}
	u, err := s.getUser(ctx, p.ID)
	if err != nil {
		return err
	}
	if u.EmailVerified {
		return abacus.Conflict("email_already_verified", "%s is already verified", u.Email)
	}
	return s.db.InTx(ctx, func(tx *db.Tx) error { return s.sendVerification(ctx, tx, p.TenantID, u.ID, u.Email) })
}

func userPrincipal(ctx context.Context) (*abacus.Principal, error) {
	p := abacus.PrincipalFrom(ctx)
	if p == nil || p.Kind != "user" {
		return nil, abacus.Errorf(abacus.KindForbidden, "user_required", "this route acts on a user account: call it with a user's access token, not an API key or client token")
	}
	return p, nil
}

// ForgotPassword mails a reset link when an account has this address. It
// answers the same whether or not one does; only a malformed address or
// the rate limit (per client IP) is an error.
func (s *Service) ForgotPassword(ctx context.Context, rawEmail string) error {
	if err := s.limit("forgot", s.clientIP(ctx)); err != nil {
		return err
	}
	email, err := NormalizeEmail("email", rawEmail)
	if err != nil {
		return err
	}
	var userID string
	err = s.db.QueryRowContext(ctx, `SELECT id FROM users WHERE email = $1`, email).Scan(&userID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking up user: %w", err)
	}
	tenant, _, err := s.pickMembership(ctx, userID, "")
	if err != nil {
		if abacus.ErrorKind(err) == abacus.KindInternal {
			return err
		}
		return nil // no tenant to keep the mail in: nothing to send
	}
	return s.db.InTx(ctx, func(tx *db.Tx) error {
		tok, err := s.newEmailToken(ctx, tx, emailToken{Kind: "reset", TenantID: tenant, UserID: userID, Email: email}, ResetTokenTTL)
		if err != nil {
			return err
		}
		if err := s.audit(withActor(ctx, "user", userID), tx, tenant, "user.password_reset_requested", "user", userID, nil); err != nil {
			return err
		}
		return s.queueMail(ctx, tx, tenant, "reset", email, mailData{Email: email, Link: s.link("/reset-password", tok), Expires: humanDuration(ResetTokenTTL)})
	})
}

// ResetPassword sets a new password with a reset link's token and ends
// every session of the account. Errors: email_token_*, password_*,
// too_many_attempts.
func (s *Service) ResetPassword(ctx context.Context, tok, newPassword string) error {
	if err := s.limit("reset", s.clientIP(ctx)); err != nil {
		return err
	}
	var email string
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		et, err := s.useEmailToken(ctx, tx, "reset", tok)
		if err != nil {
			return err
		}
		email = et.Email
		if err := password.DefaultPolicy.Check(newPassword, et.Email); err != nil {
			return err
		}
		hash, err := s.hashPassword(ctx, newPassword)
		if err != nil {
			return err
		}
		now := db.TimeOf(s.clock.Now())
		if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3`, hash, now, et.UserID); err != nil {
			return fmt.Errorf("resetting password: %w", err)
		}
		if err := s.revokeUserSessions(ctx, tx, et.UserID, "", "password_reset"); err != nil {
			return err
		}
		return s.audit(withActor(ctx, "user", et.UserID), tx, et.TenantID, "user.password_reset", "user", et.UserID, nil)
	})
	if err != nil {
		return err
	}
	s.a.account.Succeed("acct:" + email) // the owner proved control of the mailbox
	return nil
}

// emailToken is a single-use, expiring, hashed token sent by e-mail.
type emailToken struct {
	ID        string
	Kind      string
	TenantID  string
	UserID    string
	Email     string
	Role      Role
	CreatedBy string
	ExpiresAt time.Time
}

func (s *Service) newEmailToken(ctx context.Context, tx *db.Tx, et emailToken, ttl time.Duration) (string, error) {
	plain, hash := token.NewOpaque("et")
	now := s.clock.Now()
	if et.ID == "" {
		et.ID = abacus.NewID("etk")
	}
	var user, role, by any
	if et.UserID != "" {
		user = et.UserID
	}
	if et.Role != "" {
		role = string(et.Role)
	}
	if et.CreatedBy != "" {
		by = et.CreatedBy
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO email_tokens (id, kind, hash, tenant_id, user_id, email, role, created_by, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, et.ID, et.Kind, hash, et.TenantID, user, et.Email, role, by,
		db.TimeOf(now), db.TimeOf(now.Add(ttl)))
	if err != nil {
		return "", fmt.Errorf("creating %s token: %w", et.Kind, err)
	}
	return plain, nil
}

// useEmailToken consumes a token of kind: it must exist, be unexpired,
// unrevoked and unused; it is marked used in tx.
func (s *Service) useEmailToken(ctx context.Context, tx *db.Tx, kind, plain string) (emailToken, error) {
	var et emailToken
	var user, role *string
	var expires db.Time
	var used, revoked db.NullTime
	err := tx.QueryRowContext(ctx, `SELECT id, tenant_id, user_id, email, role, expires_at, used_at, revoked_at FROM email_tokens
		WHERE hash = $1 AND kind = $2`, token.Hash(strings.TrimSpace(plain)), kind).Scan(&et.ID, &et.TenantID, &user, &et.Email, &role, &expires, &used, &revoked)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && revoked.Valid) {
		return et, abacus.Invalid("email_token_invalid", "the link is not valid; use the latest link you received, or ask for a new one").WithField("token", "unknown")
	}
	if err != nil {
		return et, fmt.Errorf("reading %s token: %w", kind, err)
	}
	if used.Valid {
		return et, abacus.Invalid("email_token_used", "the link was already used; ask for a new one").WithField("token", "already used")
	}
	if !s.clock.Now().Before(expires.Time) {
		return et, abacus.Invalid("email_token_expired", "the link has expired; ask for a new one").WithField("token", "expired")
	}
	res, err := tx.ExecContext(ctx, `UPDATE email_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL`, db.TimeOf(s.clock.Now()), et.ID)
	if err != nil {
		return et, fmt.Errorf("using %s token: %w", kind, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return et, abacus.Invalid("email_token_used", "the link was already used; ask for a new one").WithField("token", "already used")
	}
	et.Kind, et.ExpiresAt = kind, expires.Time
	if user != nil {
		et.UserID = *user
	}
	if role != nil {
		et.Role = Role(*role)
	}
	return et, nil
}
