package app

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/enduser"
	"github.com/abacusbilling/abacus/internal/enduser/org"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// This file stands in for the enduser branch's wiring (its own
// internal/app/enduser.go, not yet merged at its milestone M1, which the
// orgs branch starts from): on merge, keep the enduser branch's version,
// whose Authenticate gives the same principal (Kind "end_user", ID = the
// end user's id).

// EndUsers returns the process's end-user service (the tenants' own users,
// their apps, sessions and tokens), built on first use. Its issuer base
// and e-mailed links use smtp.link_base_url (else the listen address).
func (a *App) EndUsers() *enduser.Service {
	m := &a.mods
	m.euOnce.Do(func() {
		base := a.Config.SMTP.LinkBaseURL
		if base == "" {
			base = "http://" + a.Addr()
		}
		opts := []enduser.Option{enduser.WithBaseURL(base)}
		// Validated by identity's wiring at start; a bad value never gets here.
		if ip, err := httpapi.NewClientIP(a.Config.HTTP.TrustedProxies, a.Config.HTTP.ClientIPHeader); err == nil {
			opts = append(opts, enduser.WithClientIP(ip))
		}
		m.endusers = enduser.NewService(a.DB, a.Clock, a.Log.With("component", "enduser"), opts...)
	})
	return m.endusers
}

// authenticate sends an end user's access token to the end-user service
// and every other credential to identity.
func (a *App) authenticate(ctx context.Context, cred string) (*abacus.Principal, error) {
	eu := a.EndUsers()
	tenant, ok := strings.CutPrefix(unverifiedIssuer(cred), eu.BaseURL()+"/oidc/")
	if !ok || tenant == "" || strings.Contains(tenant, "/") {
		return a.Identity.Authenticate(ctx, cred)
	}
	c, err := eu.VerifyAccessToken(ctx, tenant, cred)
	if err != nil {
		return nil, err
	}
	return &abacus.Principal{TenantID: tenant, Kind: org.EndUserKind, ID: c.Subject}, nil
}

// unverifiedIssuer reads a JWT's iss without checking anything: only to
// route the token to the tenant whose keys then verify it.
func unverifiedIssuer(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Iss string `json:"iss"`
	}
	_ = json.Unmarshal(b, &c)
	return c.Iss
}
