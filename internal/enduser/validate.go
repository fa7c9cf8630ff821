package enduser

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/identity/password"
)

// checkProfile trims and checks the editable profile fields.
func checkProfile(v *abacus.Validation, name, locale, tz, avatar *string, meta map[string]any) {
	*name, *locale, *tz, *avatar = strings.TrimSpace(*name), strings.TrimSpace(*locale), strings.TrimSpace(*tz), strings.TrimSpace(*avatar)
	if utf8.RuneCountInString(*name) > 200 {
		v.Add("name", "at most 200 characters")
	}
	if len(*locale) > 35 || strings.ContainsAny(*locale, " /\\") {
		v.Add("locale", "a BCP 47 language tag such as en or pt-BR")
	}
	if *tz != "" {
		if _, err := time.LoadLocation(*tz); err != nil || len(*tz) > 64 {
			v.Add("time_zone", "an IANA time zone such as Europe/Paris")
		}
	}
	if *avatar != "" && !isHTTPURL(*avatar) {
		v.Add("avatar_url", "an http or https URL")
	}
	if len(meta) > 50 {
		v.Add("metadata", "at most 50 keys")
	}
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && len(s) <= 2048
}

// checkPassword applies identity's password policy.
func checkPassword(pw, email string) error {
	return password.DefaultPolicy.Check(pw, email)
}

// hashPassword hashes pw, waiting for a hashing slot: each argon2id hash
// holds Params.Memory, so their number is bounded.
func (s *Service) hashPassword(ctx context.Context, pw string) (string, error) {
	if err := s.acquireHash(ctx); err != nil {
		return "", err
	}
	defer func() { <-s.hashSem }()
	h, err := s.hasher.Hash(pw)
	if err != nil {
		return "", fmt.Errorf("hashing password: %w", err)
	}
	return h, nil
}

// verifyPassword checks pw against hash, or does the same work for
// nothing when there is no hash, so timing does not tell who exists.
func (s *Service) verifyPassword(ctx context.Context, pw, hash string) (ok, rehash bool, err error) {
	if err := s.acquireHash(ctx); err != nil {
		return false, false, err
	}
	defer func() { <-s.hashSem }()
	if hash == "" {
		s.hasher.VerifyNothing(pw)
		return false, false, nil
	}
	return s.hasher.Verify(pw, hash)
}

func (s *Service) acquireHash(ctx context.Context) error {
	select {
	case s.hashSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// reservedClaims are set by the service; a tenant's custom claims and the
// ClaimsFor hooks cannot replace them.
var reservedClaims = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid", "scope", "client_id", "nonce", "auth_time", "azp", "typ", "email", "email_verified", "name"}

func (s *Service) normalizeSettings(in Settings) (Settings, error) {
	var v abacus.Validation
	if in.Signup == "" {
		in.Signup = SignupOpen
	}
	if in.Signup != SignupOpen && in.Signup != SignupInviteOnly && in.Signup != SignupClosed {
		v.Add("signup", "one of open, invite_only, closed")
	}
	doms := make([]string, 0, len(in.AllowedEmailDomains))
	for i, d := range in.AllowedEmailDomains {
		d = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(d), "@")))
		if d == "" || !strings.Contains(d, ".") || strings.ContainsAny(d, "@/ ") {
			v.AddAt(i, "allowed_email_domains", "a domain such as example.com")
			continue
		}
		doms = append(doms, d)
	}
	in.AllowedEmailDomains = doms
	if in.AppURL != "" && !isHTTPURL(in.AppURL) {
		v.Add("app_url", "an http or https URL")
	}
	in.AppURL = strings.TrimRight(in.AppURL, "/")
	if in.CustomClaims == nil {
		in.CustomClaims = map[string]any{}
	}
	for k := range in.CustomClaims {
		if slices.Contains(reservedClaims, k) || k == "org" || k == "org_role" {
			v.Add("custom_claims."+k, "a reserved claim")
		}
	}
	if in.AccessTokenTTL == 0 {
		in.AccessTokenTTL = int(s.opt.access / time.Second)
	}
	if in.AccessTokenTTL < 60 || in.AccessTokenTTL > 24*3600 {
		v.Add("access_token_ttl", "between 60 and 86400 seconds")
	}
	if in.AccessTokenAlg == "" {
		in.AccessTokenAlg = AlgEdDSA
	}
	if in.AccessTokenAlg != AlgEdDSA && in.AccessTokenAlg != AlgRS256 {
		v.Add("access_token_alg", "EdDSA or RS256")
	}
	return in, v.Err("invalid_settings")
}
