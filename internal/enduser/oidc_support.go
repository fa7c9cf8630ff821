package enduser

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/golang-jwt/jwt/v5"
)

// What the OpenID Connect provider (package oidc) needs of the service
// beyond the sign-in machinery.

// DeviceFromRequest is the device an HTTP request comes from: its
// User-Agent and its client address (WithClientIP decides which proxy
// headers count).
func (s *Service) DeviceFromRequest(r *http.Request) Device {
	ip := r.RemoteAddr
	if s.opt.clientIP != nil {
		ip = s.opt.clientIP.Resolve(r.RemoteAddr, r.Header)
	}
	return Device{UserAgent: r.UserAgent(), IP: ip}
}

// VerifyIDTokenHint checks an ID token the tenant issued, as an
// end-session request's id_token_hint: signature by one of the tenant's
// keys, type and issuer; an expired token is accepted (OIDC RP-Initiated
// Logout §2). Errors: token_invalid.
func (s *Service) VerifyIDTokenHint(ctx context.Context, tenantID, tok string) (Claims, error) {
	mc, err := s.parse(ctx, tenantID, tok, typID)
	if errors.Is(err, errTokenExpired) {
		// Expiry is the only check that failed; read the claims unverified
		// only after the signature was found good.
		mc = jwt.MapClaims{}
		p := jwt.NewParser(jwt.WithValidMethods([]string{AlgRS256}), jwt.WithIssuer(s.Issuer(tenantID)), jwt.WithoutClaimsValidation())
		if _, err = p.ParseWithClaims(tok, mc, s.idKey(ctx, tenantID)); err != nil {
			return Claims{}, errTokenInvalid
		}
	} else if err != nil {
		return Claims{}, err
	}
	return claimsOf(mc), nil
}

// idKey finds the verification key of an ID token of tenantID.
func (s *Service) idKey(ctx context.Context, tenantID string) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		if h, _ := t.Header["typ"].(string); h != typID {
			return nil, errTokenInvalid
		}
		kid, _ := t.Header["kid"].(string)
		keys, err := s.keys.find(ctx, tenantID)
		if err != nil {
			return nil, err
		}
		k, ok := keys.verifier(kid, s.clock.Now())
		if !ok || k.alg != t.Method.Alg() {
			return nil, errTokenInvalid
		}
		return k.pub, nil
	}
}

// UserInfo returns the OpenID Connect claims of end user userID of
// tenantID for the scopes granted (OIDC Core §5.3): sub always; email and
// email_verified for "email"; name, locale, zoneinfo, picture for
// "profile"; and the tenant's custom and ClaimsFor claims (org, org_role),
// as in the ID token. Errors: end_user_not_found, end_user_disabled.
func (s *Service) UserInfo(ctx context.Context, tenantID, userID string, scopes []string) (map[string]any, error) {
	u, err := s.userIn(ctx, s.db, tenantID, userID)
	if err != nil {
		return nil, err
	}
	if u.Status != StatusActive {
		return nil, errDisabled
	}
	set, err := s.settings(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	c, err := s.extraClaims(ctx, set, tenantID, userID)
	if err != nil {
		return nil, err
	}
	c["sub"] = u.ID
	if slices.Contains(scopes, "email") {
		c["email"], c["email_verified"] = u.Email, u.EmailVerified
	}
	if slices.Contains(scopes, "profile") {
		c["name"] = u.Name
		for k, v := range map[string]string{"locale": u.Locale, "zoneinfo": u.TimeZone, "picture": u.AvatarURL} {
			if v != "" {
				c[k] = v
			}
		}
	}
	return c, nil
}
