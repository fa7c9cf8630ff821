package identity_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/identity/totp"
)

// browser is a client with a cookie jar, as the dashboard's page is.
type browser struct {
	e   *env
	jar *cookiejar.Jar
	hc  *http.Client
}

func newBrowser(e *env) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, jar: jar, hc: &http.Client{Jar: jar}}
}

func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.e.url + "/api/v1/auth/session")
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// do sends a request with the jar's cookies; csrf adds the CSRF header
// from the readable cookie, as the dashboard does.
func (b *browser) do(method, path, body string, csrf bool, headers ...string) res {
	b.e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, b.e.url+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c := b.cookie(httpapi.CSRFCookie); csrf && c != nil {
		req.Header.Set(httpapi.CSRFHeader, c.Value)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	r, err := b.hc.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer r.Body.Close()
	out, _ := io.ReadAll(r.Body)
	return res{status: r.StatusCode, header: r.Header, body: out}
}

// TestBrowserSessionWithCookies: the dashboard's sign-in keeps the tokens
// in HttpOnly, SameSite=Strict cookies (never in the body), the access
// cookie authenticates API calls, state-changing calls need the CSRF
// header (and a same-site Origin), refresh rotates, sign-out ends the
// session and clears the cookies; MFA is the same step as for tokens.
func TestBrowserSessionWithCookies(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		pw := "correct horse battery staple 9"
		e.signup("ada@acme.test", pw, "Acme")
		b := newBrowser(e)
		login := `{"email":"ada@acme.test","password":"` + pw + `"}`

		e.problem(b.do("POST", "/api/v1/auth/session", `{"email":"ada@acme.test","password":"wrong one here"}`, false), 401, "invalid_credentials")
		r := e.want(b.do("POST", "/api/v1/auth/session", login, false), 200)
		if bytes.Contains(r.body, []byte("access_token")) || bytes.Contains(r.body, []byte("rt_")) || r.str(t, "session_id") == "" {
			t.Fatalf("the body must not carry tokens: %s", r.body)
		}
		for _, line := range r.header.Values("Set-Cookie") {
			httpOnly := !strings.HasPrefix(line, httpapi.CSRFCookie+"=")
			if !strings.Contains(line, "SameSite=Strict") || strings.Contains(line, "HttpOnly") != httpOnly || strings.Contains(line, "Secure") {
				t.Errorf("cookie %q: want SameSite=Strict, HttpOnly %v, not Secure over plain HTTP", line, httpOnly)
			}
		}
		if c := b.cookie(httpapi.RefreshCookie); c == nil {
			t.Fatal("no refresh cookie for the session path")
		}

		// The access cookie authenticates; reads need no CSRF header.
		if me := e.want(b.do("GET", "/api/v1/me", "", false), 200).obj(t); me["kind"] != "user" {
			t.Fatalf("me: %v", me)
		}
		sessions := e.want(b.do("GET", "/api/v1/me/sessions", "", false), 200)
		if !strings.Contains(string(sessions.body), `"current":true`) {
			t.Errorf("the cookie's session is not marked current: %s", sessions.body)
		}
		// A state-changing request without the header (what another site's form sends) is refused.
		e.problem(b.do("POST", "/api/v1/api-keys", `{"name":"x","scopes":["read"]}`, false), 403, "csrf_failed")
		e.problem(b.do("POST", "/api/v1/api-keys", `{"name":"x","scopes":["read"]}`, true, "Origin", "https://evil.example"), 403, "csrf_failed")
		e.want(b.do("POST", "/api/v1/api-keys", `{"name":"x","scopes":["read"]}`, true, "Origin", e.url), 201)
		e.problem(b.do("POST", "/api/v1/auth/session/refresh", "", false), 403, "csrf_failed")

		// The hosted pages' plain forms are not API calls: no session cookie reaches them.
		if r := b.do("POST", "/verify-email", "", false, "Content-Type", "application/x-www-form-urlencoded"); r.status == 403 {
			t.Errorf("a hosted page's form is refused for a signed-in browser: %d %s", r.status, r.body)
		}

		// Refresh rotates the refresh cookie; the old token is then reuse.
		old := b.cookie(httpapi.RefreshCookie).Value
		e.want(b.do("POST", "/api/v1/auth/session/refresh", "", true), 200)
		if b.cookie(httpapi.RefreshCookie).Value == old {
			t.Fatal("refresh did not rotate the cookie")
		}
		e.want(b.do("GET", "/api/v1/me", "", false), 200)

		// Sign-out ends the session and clears the cookies.
		current := b.cookie(httpapi.RefreshCookie).Value
		out := e.want(b.do("DELETE", "/api/v1/auth/session", "", true), 204)
		if len(out.header.Values("Set-Cookie")) != 3 || b.cookie(httpapi.AccessCookie) != nil {
			t.Fatalf("cookies not cleared: %v", out.header.Values("Set-Cookie"))
		}
		e.problem(b.do("GET", "/api/v1/me", "", false), 401, "unauthenticated")
		if r := e.do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": current}); r.status != 401 {
			t.Fatalf("the signed-out session's refresh token still works: %d %s", r.status, r.body)
		}

		// Over TLS (here: a proxy saying so) the cookies are Secure.
		r = e.want(newBrowser(e).do("POST", "/api/v1/auth/session", login, false, "X-Forwarded-Proto", "https"), 200)
		for _, line := range r.header.Values("Set-Cookie") {
			if !strings.Contains(line, "Secure") {
				t.Errorf("cookie over TLS without Secure: %q", line)
			}
		}
	})
}

// TestBrowserSessionMFAStep: with TOTP on, the cookie sign-in asks for the
// code (401 mfa_required, no cookie set) and accepts it as the token
// sign-in does; MFA itself is enrolled through the cookie session.
func TestBrowserSessionMFAStep(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		pw := "correct horse battery staple 10"
		e.signup("bo@acme.test", pw, "Acme")
		b := newBrowser(e)
		login := `{"email":"bo@acme.test","password":"` + pw + `"}`
		e.want(b.do("POST", "/api/v1/auth/session", login, false), 200)
		en := e.want(b.do("POST", "/api/v1/me/mfa/totp/enroll", "", true), 200)
		code, _ := totp.Default.Code(en.str(t, "secret"), e.clock.Now())
		e.want(b.do("POST", "/api/v1/me/mfa/totp/confirm", `{"code":"`+code+`"}`, true), 200)
		e.want(b.do("DELETE", "/api/v1/auth/session", "", true), 204)

		r := b.do("POST", "/api/v1/auth/session", login, false)
		e.problem(r, 401, "mfa_required")
		if len(r.header.Values("Set-Cookie")) != 0 {
			t.Fatalf("cookies set before the MFA step: %v", r.header.Values("Set-Cookie"))
		}
		e.clock.Advance(30 * time.Second)
		code, _ = totp.Default.Code(en.str(t, "secret"), e.clock.Now())
		e.want(b.do("POST", "/api/v1/auth/session", `{"email":"bo@acme.test","password":"`+pw+`","totp_code":"`+code+`"}`, false), 200)
		e.want(b.do("GET", "/api/v1/me", "", false), 200)
	})
}
