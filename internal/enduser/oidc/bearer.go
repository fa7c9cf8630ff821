package oidc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// Authenticate wraps the HTTP edge's authenticator so that an end user's
// access token (a JWT whose issuer is one of this provider's) is checked
// by the end-user service and becomes a principal without scopes (kind
// "end_user"): public routes such as userinfo receive it, and no staff
// route accepts it. Every other credential goes to next.
func (p *Provider) Authenticate(next httpapi.Authenticator) httpapi.Authenticator {
	prefix := p.eu.BaseURL() + "/oidc/"
	return func(ctx context.Context, tok string) (*abacus.Principal, error) {
		tenant, ok := strings.CutPrefix(unverifiedIssuer(tok), prefix)
		if !ok && next != nil {
			return next(ctx, tok)
		}
		c, err := p.verifyAccess(ctx, tenant, tok)
		if e, ok := abacus.AsError(err); ok && e.Kind == abacus.KindUnauthorized {
			return nil, e // token_expired, token_revoked…: the documented codes tell the app to refresh or sign in again
		}
		if err != nil {
			return nil, abacus.Errorf(abacus.KindUnauthorized, "token_invalid", "the access token is not valid, expired or revoked")
		}
		return &abacus.Principal{TenantID: tenant, Kind: "end_user", ID: c.Subject}, nil
	}
}

// unverifiedIssuer reads a JWT's iss without checking anything: only to
// route the token to the verifier that will.
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
