package oidc

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/enduser"
)

// bearer is the access token of a userinfo request: the Authorization
// header (RFC 6750 §2.1) or, on a form POST, access_token (§2.2).
func bearer(r *http.Request) string {
	if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(tok)
	}
	if r.Method == http.MethodPost {
		if form, err := readForm(r); err == nil {
			return form.Get("access_token")
		}
	}
	return ""
}

// userinfo is GET|POST {issuer}/userinfo (OIDC Core §5.3): the claims of
// the token's user for the token's scopes. The token must be one of this
// tenant's, with scope openid, of a session still signed in, not revoked.
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request, tenant string) {
	c, err := p.verifyAccess(r.Context(), tenant, bearer(r))
	scopes := strings.Fields(c.Scope)
	if err == nil && !slices.Contains(scopes, "openid") {
		err = fmt.Errorf("token lacks scope openid")
	}
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": "the access token is invalid, expired or revoked"})
		return
	}
	claims, err := p.eu.UserInfo(r.Context(), tenant, c.Subject, scopes)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": "the token's user is not active"})
		return
	}
	writeJSON(w, http.StatusOK, claims)
}

// verifyAccess checks an access token at tenant's issuer, including the
// revocations of the revocation endpoint.
var errAccessRevoked = abacus.Errorf(abacus.KindUnauthorized, "token_revoked", "this access token was revoked; sign in again")

func (p *Provider) verifyAccess(ctx context.Context, tenant, tok string) (enduser.Claims, error) {
	if tok == "" {
		return enduser.Claims{}, fmt.Errorf("no access token")
	}
	c, err := p.eu.VerifyAccessToken(ctx, tenant, tok)
	if err != nil {
		return enduser.Claims{}, err
	}
	revoked, err := p.accessRevoked(ctx, tenant, c.ID)
	if err != nil {
		return enduser.Claims{}, err
	}
	if revoked {
		return enduser.Claims{}, errAccessRevoked
	}
	return c, nil
}
