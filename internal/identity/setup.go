package identity

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/identity/password"
)

// The first owner of a fresh install. Bootstrap makes the default tenant
// and an admin API key; a person still needs an account to sign in to the
// dashboard. Either the operator names it in the configuration
// (bootstrap.admin_email and bootstrap.admin_password: CreateOwner), or the
// first start prints a one-time link (SetupLink) that opens the
// dashboard's /setup page, where whoever reads the console picks the
// owner's e-mail and password (POST /api/v1/auth/setup: Setup).

// SetupTokenTTL is how long the printed setup link works.
const SetupTokenTTL = 7 * 24 * time.Hour

// SetupInput creates the first owner from the printed link.
type SetupInput struct {
	Token    string `json:"token" maxLength:"200" doc:"the token of the link the first start printed"`
	Email    string `json:"email" maxLength:"254"`
	Password string `json:"password" maxLength:"1024"`
}

// CreateOwner adds an owner account to tenant, for automation (the
// bootstrap.admin_* settings). The password must pass the password policy.
// Errors: invalid_email, password_*, email_taken.
func (s *Service) CreateOwner(ctx context.Context, tenant, email, pw string) error {
	email, err := NormalizeEmail("email", email)
	if err != nil {
		return err
	}
	if err := password.DefaultPolicy.Check(pw, email); err != nil {
		return err
	}
	hash, err := s.hashPassword(ctx, pw)
	if err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *db.Tx) error { return s.insertOwner(ctx, tx, tenant, email, hash, "bootstrap") })
}

// SetupLink creates a single-use link, valid SetupTokenTTL, that creates
// an owner account in tenant (Setup). It points at the dashboard on
// Abacus's public URL (smtp.link_base_url), never at identity.app_url:
// the page that uses it is Abacus's own.
func (s *Service) SetupLink(ctx context.Context, tenant string) (string, error) {
	var tok string
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		var err error
		tok, err = s.newEmailToken(ctx, tx, emailToken{Kind: "setup", TenantID: tenant, Role: RoleOwner}, SetupTokenTTL)
		return err
	})
	if err != nil {
		return "", err
	}
	return strings.TrimRight(s.a.opt.linkBase, "/") + "/setup?token=" + tok, nil
}

// Setup uses a setup link's token once: it creates the owner account and
// signs it in. Errors: email_token_invalid, email_token_used,
// email_token_expired (field token), invalid_email, password_*,
// email_taken, too_many_attempts.
func (s *Service) Setup(ctx context.Context, in SetupInput) (Tokens, error) {
	if err := s.limit("accept", s.clientIP(ctx)); err != nil {
		return Tokens{}, err
	}
	email, err := NormalizeEmail("email", in.Email)
	if err != nil {
		return Tokens{}, err
	}
	if err := password.DefaultPolicy.Check(in.Password, email); err != nil {
		return Tokens{}, err
	}
	hash, err := s.hashPassword(ctx, in.Password)
	if err != nil {
		return Tokens{}, err
	}
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		et, err := s.useEmailToken(ctx, tx, "setup", in.Token)
		if err != nil {
			return err
		}
		return s.insertOwner(ctx, tx, et.TenantID, email, hash, et.ID)
	})
	if err != nil {
		return Tokens{}, err
	}
	return s.Login(ctx, LoginInput{Email: email, Password: in.Password})
}

// insertOwner creates the user (e-mail taken as verified: the operator
// chose it) and its owner membership of tenant.
func (s *Service) insertOwner(ctx context.Context, tx *db.Tx, tenant, email, hash, via string) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE email = $1`, email).Scan(&n); err != nil {
		return fmt.Errorf("reading user: %w", err)
	}
	if n > 0 {
		return abacus.Conflict("email_taken", "an account with this e-mail already exists; sign in instead").WithField("email", "already registered")
	}
	now := db.TimeOf(s.clock.Now())
	user := abacus.NewID("usr")
	if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, email, password_hash, email_verified_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $4, $4)`, user, email, hash, now); err != nil {
		return fmt.Errorf("creating user: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)`,
		tenant, user, RoleOwner, now); err != nil {
		return fmt.Errorf("creating membership: %w", err)
	}
	return s.audit(withActor(ctx, "user", user), tx, tenant, "member.added", "user", user, map[string]any{"role": RoleOwner, "via": via})
}

func registerSetupRoute(s *httpapi.Server, svc *Service) {
	httpapi.Register(s, huma.Operation{OperationID: "setup-owner", Method: "POST", Path: "/api/v1/auth/setup",
		Summary: "Create the first owner from the setup link", Tags: []string{"Authentication"}, DefaultStatus: 200,
		Description: "A fresh install prints a one-time link (valid 7 days) to the dashboard's /setup page, which calls this with the link's token " +
			"and the owner's e-mail and password: the account is created as owner of the default tenant and signed in with cookies, as " +
			"POST /api/v1/auth/session does. Rate-limited per client IP."},
		httpapi.ScopePublic, func(ctx context.Context, in *struct {
			Meta
			Body SetupInput
		}) (*sessionOut, error) {
			t, err := svc.Setup(in.ctx(ctx), in.Body)
			if err != nil {
				return nil, err
			}
			return svc.sessionCookies(t, in.secure), nil
		})
}
