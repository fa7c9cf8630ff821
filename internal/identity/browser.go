package identity

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// Browser sessions: the dashboard signs staff in with cookies instead of
// tokens in answer bodies, so no script on the page can read a credential.
//
//	POST   /api/v1/auth/session          sign in (LoginInput, MFA step included)
//	POST   /api/v1/auth/session/refresh  rotate the refresh token
//	DELETE /api/v1/auth/session          sign out
//
// Each sets three cookies (httpapi.AccessCookie, RefreshCookie, CSRFCookie):
// the access and refresh tokens HttpOnly and SameSite=Strict, the access
// token sent only under /api/, the refresh token only to this path, Secure when the request came over TLS
// (or through a proxy saying X-Forwarded-Proto: https). The CSRF cookie
// is readable: the dashboard echoes it in X-CSRF-Token, which httpapi
// requires on every state-changing request a session cookie authenticates.
// The session is the same as a token sign-in's: listed in /me/sessions,
// revoked the same way, refresh reuse detected the same way.

// BrowserSession is what a cookie sign-in answers: the tokens are in the
// cookies, never in the body.
type BrowserSession struct {
	TenantID  string `json:"tenant_id"`
	SessionID string `json:"session_id"`
	ExpiresIn int    `json:"expires_in" doc:"seconds until the access cookie expires; refresh before"`
}

type sessionOut struct {
	SetCookie []http.Cookie `header:"Set-Cookie"`
	Body      BrowserSession
}

type cookieMeta struct {
	Meta
	Refresh string `cookie:"abacus_refresh" doc:"the refresh token cookie a cookie sign-in set"`
}

const browserSessionPath = "/api/v1/auth/session"

// accessCookiePath keeps the access token to the API: the hosted pages
// (/reset-password…) post plain forms, which must not look like a
// cookie-authenticated request needing the CSRF header.
const accessCookiePath = "/api/"

func registerBrowserRoutes(s *httpapi.Server, svc *Service) {
	tags := []string{"Authentication"}
	op := func(id, method, path, summary string, status int, desc string) huma.Operation {
		return huma.Operation{OperationID: id, Method: method, Path: path, Summary: summary, Tags: tags, DefaultStatus: status, Description: desc}
	}
	httpapi.Register(s, op("create-browser-session", "POST", browserSessionPath, "Sign in with cookies", 200,
		"Sign-in for the dashboard: checks e-mail and password (and totp_code when MFA is on, else 401 mfa_required) like "+
			"/api/v1/auth/login, and sets the session in HttpOnly, SameSite=Strict cookies instead of answering tokens. "+
			"State-changing requests authenticated by the cookie must send the abacus_csrf cookie's value in X-CSRF-Token."),
		httpapi.ScopePublic, func(ctx context.Context, in *struct {
			Meta
			Body LoginInput
		}) (*sessionOut, error) {
			t, err := svc.Login(in.ctx(ctx), in.Body)
			if err != nil {
				return nil, err
			}
			return svc.sessionCookies(t, in.secure), nil
		})
	httpapi.Register(s, op("refresh-browser-session", "POST", browserSessionPath+"/refresh", "Refresh a cookie session", 200,
		"Rotates the refresh token held in the abacus_refresh cookie and sets new cookies. Needs X-CSRF-Token."),
		httpapi.ScopePublic, func(ctx context.Context, in *cookieMeta) (*sessionOut, error) {
			if in.Refresh == "" {
				return nil, abacus.Errorf(abacus.KindUnauthorized, "refresh_token_invalid", "no session cookie; sign in again")
			}
			t, err := svc.Refresh(in.ctx(ctx), in.Refresh)
			if err != nil {
				return nil, err
			}
			return svc.sessionCookies(t, in.secure), nil
		})
	httpapi.Register(s, op("delete-browser-session", "DELETE", browserSessionPath, "Sign out of a cookie session", 204,
		"Ends the session of the abacus_refresh cookie and clears the cookies. Idempotent."),
		httpapi.ScopePublic, func(ctx context.Context, in *cookieMeta) (*struct {
			SetCookie []http.Cookie `header:"Set-Cookie"`
		}, error) {
			if in.Refresh != "" {
				if err := svc.Logout(in.ctx(ctx), in.Refresh); err != nil {
					return nil, err
				}
			}
			return &struct {
				SetCookie []http.Cookie `header:"Set-Cookie"`
			}{SetCookie: clearedCookies(in.secure)}, nil
		})
}

// sessionCookies turns a sign-in's tokens into the session's cookies.
func (s *Service) sessionCookies(t Tokens, secure bool) *sessionOut {
	refreshAge := int(s.a.opt.refresh / time.Second)
	return &sessionOut{
		SetCookie: []http.Cookie{
			sessionCookie(httpapi.AccessCookie, t.AccessToken, accessCookiePath, t.ExpiresIn, true, secure),
			sessionCookie(httpapi.RefreshCookie, t.RefreshToken, browserSessionPath, refreshAge, true, secure),
			sessionCookie(httpapi.CSRFCookie, newCSRFToken(), "/", refreshAge, false, secure),
		},
		Body: BrowserSession{TenantID: t.TenantID, SessionID: t.SessionID, ExpiresIn: t.ExpiresIn},
	}
}

func clearedCookies(secure bool) []http.Cookie {
	return []http.Cookie{
		sessionCookie(httpapi.AccessCookie, "", accessCookiePath, -1, true, secure),
		sessionCookie(httpapi.RefreshCookie, "", browserSessionPath, -1, true, secure),
		sessionCookie(httpapi.CSRFCookie, "", "/", -1, false, secure),
	}
}

func sessionCookie(name, value, path string, maxAge int, httpOnly, secure bool) http.Cookie {
	return http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge, HttpOnly: httpOnly, Secure: secure,
		SameSite: http.SameSiteStrictMode}
}

func newCSRFToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
