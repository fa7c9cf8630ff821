package enduser

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/abacusbilling/abacus"
	"github.com/danielgtaylor/huma/v2"
)

// PrincipalKind is the Kind of the principal an end user's access token
// authenticates: it carries no scope, so only public routes (this
// package's end-user routes) accept it.
const PrincipalKind = "end_user"

// unverifiedClaims reads a JWT's payload without checking anything: only
// to route a token to the tenant whose keys must then verify it.
func unverifiedClaims(tok string) (iss, sid string) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", ""
	}
	var c struct {
		Iss string `json:"iss"`
		Sid string `json:"sid"`
	}
	_ = json.Unmarshal(b, &c)
	return c.Iss, c.Sid
}

// IsAccessToken reports whether tok claims to be an end-user access token
// of this Abacus (its issuer is one of the tenants' issuers), so the HTTP
// edge sends it to Authenticate rather than to staff authentication.
func (s *Service) IsAccessToken(tok string) bool {
	iss, _ := unverifiedClaims(tok)
	return strings.HasPrefix(iss, s.opt.base+"/oidc/")
}

// Authenticate verifies an end-user access token (VerifyAccessToken at
// the tenant its issuer names) and returns its principal: Kind
// "end_user", ID the end-user id, no scopes. Errors as VerifyAccessToken.
func (s *Service) Authenticate(ctx context.Context, tok string) (*abacus.Principal, error) {
	iss, _ := unverifiedClaims(tok)
	tenant, ok := strings.CutPrefix(iss, s.opt.base+"/oidc/")
	if !ok || tenant == "" || strings.Contains(tenant, "/") {
		return nil, errTokenInvalid
	}
	c, err := s.VerifyAccessToken(ctx, tenant, tok)
	if err != nil {
		return nil, err
	}
	return &abacus.Principal{TenantID: tenant, Kind: PrincipalKind, ID: c.Subject}, nil
}

// RequestInfo is what the public routes need of the HTTP request beyond its
// body: the device (User-Agent, client address) and the session of an
// end-user bearer token (already verified by Authenticate).
type RequestInfo struct {
	peer      string
	fwd       http.Header
	userAgent string
	sid       string
}

// Resolve implements huma.Resolver.
func (r *RequestInfo) Resolve(ctx huma.Context) []error {
	r.peer, r.userAgent, r.fwd = ctx.RemoteAddr(), ctx.Header("User-Agent"), http.Header{}
	for _, k := range []string{"X-Forwarded-For", "Forwarded"} {
		if v := ctx.Header(k); v != "" {
			r.fwd.Set(k, v)
		}
	}
	if h := ctx.Header("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		_, r.sid = unverifiedClaims(strings.TrimSpace(h[7:]))
	}
	return nil
}

func (s *Service) device(r RequestInfo) Device {
	return Device{UserAgent: r.userAgent, IP: s.opt.clientIP.Resolve(r.peer, r.fwd)}
}

var errSignInFirst = &abacus.Error{Kind: abacus.KindUnauthorized, Code: "unauthenticated",
	Message: "this route needs an end user's access token: send Authorization: Bearer <access_token>"}

// signedInUser returns the signed-in end user's tenant and id from ctx.
func signedInUser(ctx context.Context) (tenant, user string, err error) {
	p := abacus.PrincipalFrom(ctx)
	if p == nil || p.Kind != PrincipalKind {
		return "", "", errSignInFirst
	}
	return p.TenantID, p.ID, nil
}
