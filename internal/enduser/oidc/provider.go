// Package oidc is the OpenID Connect provider of a tenant's end users:
// single sign-on across the tenant's apps. Each tenant is its own issuer,
// {base}/oidc/{tenant_id} (enduser.Service.Issuer), with discovery, an
// authorization endpoint (authorization code, PKCE S256), a hosted
// sign-in page, token, userinfo, JWKS, end-session, introspection (RFC
// 7662) and revocation (RFC 7009) endpoints. Apps are enduser.App
// clients, redirect URIs matched exactly.
//
// A browser that signed in once carries an SSO cookie scoped to the
// issuer's path; it names the end-user session (one device) it started,
// and every app of the tenant the browser opens gets a code for that
// session without a password:
//
//	app A ─▶ /authorize ─▶ sign-in page ─POST─▶ session + SSO cookie ─▶ code ─▶ app A
//	app B ─▶ /authorize ─(SSO cookie, session live)──────────────────▶ code ─▶ app B
//	end-session ─▶ session revoked, cookie cleared: every app's tokens die
//
// The provider never redirects to a URI it has not matched against the
// client's registered list: an unknown client or redirect_uri shows an
// error page.
package oidc

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/enduser"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/identity"
)

// Lifetimes.
const (
	CodeTTL = time.Minute // an authorization code; single use
)

// Provider serves the OpenID Connect endpoints of every tenant.
type Provider struct {
	eu    *enduser.Service
	db    *db.DB
	clock abacus.Clock
	log   *slog.Logger

	known sync.Map // tenant id → struct{} once it was found to exist

	sweepMu   sync.Mutex
	lastSweep time.Time
}

// New returns the provider over the end-user service eu (same database
// and clock).
func New(eu *enduser.Service, d *db.DB, clock abacus.Clock, log *slog.Logger) *Provider {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provider{eu: eu, db: d, clock: clock, log: log}
}

// Paths under the issuer; the checks use them.
const (
	pathDiscovery  = "/.well-known/openid-configuration"
	pathAuthorize  = "/authorize"
	pathToken      = "/token"
	pathUserinfo   = "/userinfo"
	pathJWKS       = "/jwks"
	pathEndSession = "/end-session"
	pathIntrospect = "/introspect"
	pathRevoke     = "/revoke"
)

// RegisterRoutes serves the provider under /oidc/{tenant}. Every route is
// public: clients authenticate per OAuth 2.0, end users by the sign-in
// page or the SSO cookie, bearers by their access token.
func RegisterRoutes(s *httpapi.Server, p *Provider) {
	const base = "/oidc/{tenant}"
	routes := []struct {
		pattern string
		h       func(http.ResponseWriter, *http.Request, string)
	}{
		{"GET " + base + pathDiscovery, p.discovery},
		{"GET " + base + pathJWKS, p.jwks},
		{"GET " + base + pathAuthorize, p.authorize},
		{"POST " + base + pathAuthorize, p.signIn},
		{"GET " + base + pathSignup, p.signupPage},
		{"POST " + base + pathSignup, p.signUp},
		{"POST " + base + pathToken, p.token},
		{"GET " + base + pathUserinfo, p.userinfo},
		{"POST " + base + pathUserinfo, p.userinfo},
		{"GET " + base + pathEndSession, p.endSession},
		{"POST " + base + pathEndSession, p.endSession},
		{"POST " + base + pathIntrospect, p.introspect},
		{"POST " + base + pathRevoke, p.revoke},
	}
	for _, rt := range routes {
		s.Handle(rt.pattern, httpapi.ScopePublic, p.withTenant(rt.h))
	}
}

// withTenant answers 404 for a tenant that does not exist (before
// anything, such as signing keys, is made for it).
func (p *Provider) withTenant(h func(http.ResponseWriter, *http.Request, string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant := r.PathValue("tenant")
		ok, err := p.tenantExists(r.Context(), tenant)
		if err != nil {
			p.log.ErrorContext(r.Context(), "oidc: reading tenant", "err", err)
			httpapi.WriteError(w, r, p.log, err)
			return
		}
		if !ok {
			httpapi.WriteError(w, r, p.log, abacus.NotFound("issuer", tenant))
			return
		}
		h(w, r, tenant)
	})
}

func (p *Provider) tenantExists(ctx context.Context, tenant string) (bool, error) {
	if _, ok := p.known.Load(tenant); ok {
		return true, nil
	}
	ok, err := identity.TenantExists(ctx, p.db, tenant)
	if ok {
		p.known.Store(tenant, struct{}{})
	}
	return ok, err
}

// writeJSON answers v as JSON that no cache keeps (tokens, claims).
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// discovery serves the OpenID Provider Metadata (OIDC Discovery §3).
func (p *Provider) discovery(w http.ResponseWriter, r *http.Request, tenant string) {
	iss := p.eu.Issuer(tenant)
	clientAuth := []string{"client_secret_basic", "client_secret_post"}
	doc := map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                iss + pathAuthorize,
		"token_endpoint":                        iss + pathToken,
		"userinfo_endpoint":                     iss + pathUserinfo,
		"jwks_uri":                              iss + pathJWKS,
		"end_session_endpoint":                  iss + pathEndSession,
		"introspection_endpoint":                iss + pathIntrospect,
		"revocation_endpoint":                   iss + pathRevoke,
		"response_types_supported":              []string{"code"},
		"response_modes_supported":              []string{"query"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{enduser.AlgRS256},
		"scopes_supported":                      supportedScopes,
		"claims_supported": []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "sid", "azp",
			"email", "email_verified", "name", "locale", "zoneinfo", "picture"},
		"token_endpoint_auth_methods_supported":          append(clientAuth, "none"),
		"introspection_endpoint_auth_methods_supported":  clientAuth,
		"revocation_endpoint_auth_methods_supported":     clientAuth,
		"code_challenge_methods_supported":               []string{"S256"},
		"prompt_values_supported":                        []string{"none", "login", "consent"},
		"authorization_response_iss_parameter_supported": true,
		"request_parameter_supported":                    false,
		"request_uri_parameter_supported":                false,
		"claims_parameter_supported":                     false,
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}

// jwks serves the tenant's public keys.
func (p *Provider) jwks(w http.ResponseWriter, r *http.Request, tenant string) {
	b, err := p.eu.JWKS(r.Context(), tenant)
	if err != nil {
		httpapi.WriteError(w, r, p.log, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(b)
}
