package enduser

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

// Sign-up policies (Settings.Signup).
const (
	SignupOpen       = "open"        // anyone may sign up
	SignupInviteOnly = "invite_only" // only users staff created or invited
	SignupClosed     = "closed"      // nobody
)

// Access-token signing algorithms (Settings.AccessTokenAlg). ID tokens
// are always RS256, which every OIDC relying party supports.
const (
	AlgEdDSA = "EdDSA" // default: fast to sign, so refresh is cheap
	AlgRS256 = "RS256" // fastest to verify, slow to sign
)

// Settings is a tenant's end-user policy.
type Settings struct {
	Signup               string         `json:"signup"`
	AllowedEmailDomains  []string       `json:"allowed_email_domains"`
	PersonalOrganization bool           `json:"personal_organization"`
	AppURL               string         `json:"app_url"`
	CustomClaims         map[string]any `json:"custom_claims"`
	AccessTokenTTL       int            `json:"access_token_ttl"` // seconds
	AccessTokenAlg       string         `json:"access_token_alg"`
	RequireVerifiedEmail bool           `json:"require_verified_email"` // sign-up answers "verify your e-mail"; unverified users cannot sign in with a password
	UpdatedAt            *time.Time     `json:"updated_at,omitempty"`
}

func (s *Service) defaultSettings() Settings {
	return Settings{
		Signup: SignupOpen, AllowedEmailDomains: []string{}, CustomClaims: map[string]any{},
		AccessTokenTTL: int(s.opt.access / time.Second), AccessTokenAlg: AlgEdDSA,
	}
}

type cachedSettings struct {
	s     Settings
	until time.Time
}

// settingsCacheTTL bounds how long another node's settings change takes
// to reach this one; a change on this node applies at once.
const settingsCacheTTL = 2 * time.Second

// SignupOpen tells whether anyone may sign up in tenant's apps: the hosted
// sign-in page offers "Create an account" only then.
func (s *Service) SignupOpen(ctx context.Context, tenant string) bool {
	set, err := s.settings(systemCtx(ctx, tenant), tenant)
	return err == nil && set.Signup == SignupOpen
}

// Settings returns the tenant's end-user policy (tenant from ctx), the
// defaults when it never set one.
func (s *Service) Settings(ctx context.Context) (Settings, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Settings{}, err
	}
	return s.settings(ctx, tenant)
}

func (s *Service) settings(ctx context.Context, tenant string) (Settings, error) {
	now := s.clock.Now()
	s.settingsMu.Lock()
	c, ok := s.settingsCache[tenant]
	s.settingsMu.Unlock()
	if ok && now.Before(c.until) {
		return c.s, nil
	}
	out := s.defaultSettings()
	var raw string
	var updated db.Time
	err := s.db.QueryRowContext(ctx, `SELECT data, updated_at FROM end_user_settings WHERE tenant_id = $1`, tenant).Scan(&raw, &updated)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return Settings{}, fmt.Errorf("reading end-user settings: %w", err)
	default:
		if err := json.Unmarshal([]byte(raw), &out); err != nil {
			return Settings{}, fmt.Errorf("decoding end-user settings: %w", err)
		}
		t := updated.Time
		out.UpdatedAt = &t
	}
	s.settingsMu.Lock()
	s.settingsCache[tenant] = cachedSettings{s: out, until: now.Add(settingsCacheTTL)}
	s.settingsMu.Unlock()
	return out, nil
}

// PutSettings replaces the tenant's end-user policy (tenant from ctx) and
// returns it. Errors: invalid_settings naming each bad field.
func (s *Service) PutSettings(ctx context.Context, in Settings) (Settings, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Settings{}, err
	}
	in, err = s.normalizeSettings(in)
	if err != nil {
		return Settings{}, err
	}
	in.UpdatedAt = nil
	raw, err := json.Marshal(in)
	if err != nil {
		return Settings{}, err
	}
	now := s.clock.Now()
	_, err = s.db.ExecContext(ctx, `INSERT INTO end_user_settings (tenant_id, data, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`, tenant, string(raw), db.TimeOf(now))
	if err != nil {
		return Settings{}, fmt.Errorf("storing end-user settings: %w", err)
	}
	s.settingsMu.Lock()
	delete(s.settingsCache, tenant)
	s.settingsMu.Unlock()
	return s.settings(ctx, tenant)
}
