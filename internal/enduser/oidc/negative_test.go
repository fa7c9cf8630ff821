package oidc_test

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// code signs the browser in (or uses its SSO session) through rp and
// returns the callback's code.
func (e *env) code(b *browser, r *rp, f flow, redirect string, opts ...oauth2.AuthCodeOption) string {
	e.t.Helper()
	res := b.get(r.authURL(f, opts...))
	if res.status == http.StatusOK {
		res = b.signIn(res, "ada@example.com", pw)
	}
	q := backTo(e.t, res, redirect)
	if q.Get("code") == "" {
		e.t.Fatalf("no code: %v", q)
	}
	return q.Get("code")
}

// exchange trades the code of flow f for tokens, as the relying party.
func (e *env) exchange(r *rp, code string, f flow) *oauth2.Token {
	e.t.Helper()
	tok, err := r.conf.Exchange(r.ctx, code, oauth2.VerifierOption(f.verifier))
	if err != nil {
		e.t.Fatalf("exchange: %v", err)
	}
	return tok
}

// tokens signs the browser in to the relying party (or uses its SSO
// session) and returns the tokens it gets.
func (e *env) tokens(b *browser, r *rp, redirect string) *oauth2.Token {
	e.t.Helper()
	f := newFlow()
	return e.exchange(r, e.code(b, r, f, redirect), f)
}

// cookie returns the browser's cookie name for u, or nil.
func (b *browser) cookie(u *url.URL, name string) *http.Cookie {
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// tokenPost posts a form to an issuer's endpoint as a client would.
func (e *env) tokenPost(endpoint string, form url.Values, user, pass string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	res, err := e.http.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return res.StatusCode, m
}

// noRedirect checks r is an error page and sends the browser nowhere.
func noRedirect(t *testing.T, r resp, why string) {
	t.Helper()
	if r.location != nil || r.status != http.StatusBadRequest || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("%s: want a 400 error page and no redirect, got %d Location %v", why, r.status, r.location)
	}
}

// TestNoOpenRedirects: an unknown client, or a redirect_uri that is not
// exactly one the client registered, shows an error page; the browser is
// never sent to it, whatever else is wrong with the request. Likewise an
// unregistered post_logout_redirect_uri.
func TestNoOpenRedirects(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		ta := e.tenant[0]
		b := e.browser()
		base := url.Values{"response_type": {"code"}, "client_id": {ta.appA.ClientID}, "scope": {"openid"}, "state": {"s"},
			"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"}}
		authorize := func(mod func(url.Values)) resp {
			q := url.Values{}
			for k, v := range base {
				q[k] = append([]string(nil), v...)
			}
			mod(q)
			return b.get(ta.issuer + "/authorize?" + q.Encode())
		}
		for _, evil := range []string{"https://evil.test/cb", cbA + "/", cbA + "?next=https://evil.test", "https://app-a.test/cb/../evil",
			"HTTPS://app-a.test/cb", cbA + "#x", "https://app-a.test.evil.test/cb", "//evil.test/cb", ""} {
			noRedirect(t, authorize(func(q url.Values) { q.Set("redirect_uri", evil) }), "redirect_uri "+evil)
			noRedirect(t, authorize(func(q url.Values) { q.Set("redirect_uri", evil); q.Set("response_type", "token") }), "bad request to "+evil)
		}
		noRedirect(t, authorize(func(q url.Values) { q.Set("redirect_uri", cbA); q.Set("client_id", "cid_unknown") }), "unknown client")
		noRedirect(t, authorize(func(q url.Values) { q.Set("redirect_uri", cbB) }), "app B's redirect_uri for app A")
		noRedirect(t, authorize(func(q url.Values) { q["redirect_uri"] = []string{cbA, "https://evil.test/cb"} }), "redirect_uri twice")

		// A form whose carried request was changed to an unregistered URI.
		page := authorize(func(q url.Values) { q.Set("redirect_uri", cbA) })
		action, form := b.signInForm(page)
		req, _ := url.ParseQuery(form.Get("request"))
		req.Set("redirect_uri", "https://evil.test/cb")
		form.Set("request", req.Encode())
		form.Set("email", "ada@example.com")
		form.Set("password", pw)
		noRedirect(t, b.post(action, form), "tampered form")

		// Sign in for real, then try to leave through end-session.
		a := e.rp(ta, ta.appA, "", cbA)
		e.code(b, a, newFlow(), cbA)
		for _, q := range []url.Values{
			{"client_id": {ta.appA.ClientID}, "post_logout_redirect_uri": {"https://evil.test/"}},
			{"client_id": {ta.appA.ClientID}, "post_logout_redirect_uri": {cbB}},
			{"post_logout_redirect_uri": {loggedOut}},
			{"client_id": {e.tenant[1].appA.ClientID}, "post_logout_redirect_uri": {loggedOut}},
		} {
			noRedirect(t, b.get(ta.issuer+"/end-session?"+q.Encode()), "end-session "+q.Encode())
		}
		// None of those signed the browser out.
		backTo(t, b.get(a.authURL(newFlow(), oauth2.SetAuthURLParam("prompt", "none"))), cbA)
	})
}

// TestPKCEIsRequiredForPublicClients: a public client without an S256
// challenge gets invalid_request at its (validated) redirect_uri; a
// confidential client may do without.
func TestPKCEIsRequiredForPublicClients(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e, ta, b, a := start(t, d)
		noPKCE := a.conf.AuthCodeURL("st", oauth2.SetAuthURLParam("nonce", "n"))
		if q := backTo(t, b.get(noPKCE), cbA); q.Get("error") != "invalid_request" || q.Get("state") != "st" {
			t.Fatalf("public client without PKCE: %v", q)
		}
		plain := a.conf.AuthCodeURL("st", oauth2.SetAuthURLParam("code_challenge", strings.Repeat("a", 43)),
			oauth2.SetAuthURLParam("code_challenge_method", "plain"))
		if q := backTo(t, b.get(plain), cbA); q.Get("error") != "invalid_request" {
			t.Fatalf("public client with plain PKCE: %v", q)
		}
		c := e.rp(ta, ta.appB, ta.secretB, cbB)
		res := b.signIn(b.get(c.conf.AuthCodeURL("st")), "ada@example.com", pw)
		code := backTo(t, res, cbB).Get("code")
		if _, err := c.conf.Exchange(c.ctx, code); err != nil {
			t.Fatalf("confidential client without PKCE: %v", err)
		}
	})
}

// TestCodesAreBoundToClientRedirectAndVerifier: a code only works for its
// client, its redirect_uri and its PKCE verifier, before it expires; a
// code issued without a challenge refuses a verifier (downgrade).
func TestCodesAreBoundToClientRedirectAndVerifier(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e, ta, b, a := start(t, d)
		f := newFlow()
		code := e.code(b, a, f, cbA)
		tokenURL := ta.issuer + "/token"
		redeem := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {cbA},
			"client_id": {ta.appA.ClientID}, "code_verifier": {f.verifier}}
		try := func(mod func(url.Values), user, pass, want string) {
			t.Helper()
			form := url.Values{}
			for k, v := range redeem {
				form[k] = v
			}
			mod(form)
			if status, m := e.tokenPost(tokenURL, form, user, pass); m["error"] != want || status < 400 {
				t.Fatalf("%v: %d %v, want %s", form, status, m, want)
			}
		}
		try(func(q url.Values) { q.Set("code_verifier", oauth2.GenerateVerifier()) }, "", "", "invalid_grant")
		try(func(q url.Values) { q.Del("code_verifier") }, "", "", "invalid_grant")
		try(func(q url.Values) { q.Set("redirect_uri", cbA2) }, "", "", "invalid_grant")
		try(func(q url.Values) { q.Del("client_id") }, ta.appB.ClientID, ta.secretB, "invalid_grant")
		try(func(q url.Values) { q.Del("client_id") }, ta.appB.ClientID, "wrong", "invalid_client")
		try(func(q url.Values) { q.Set("client_secret", "cs_guess") }, "", "", "invalid_client")
		try(func(q url.Values) { q.Set("grant_type", "password") }, "", "", "unsupported_grant_type")

		// Failed attempts did not use the code up: the right one works.
		if _, err := a.conf.Exchange(a.ctx, code, oauth2.VerifierOption(f.verifier)); err != nil {
			t.Fatalf("exchange after refused attempts: %v", err)
		}

		// Expired: a minute is all a code lives.
		f = newFlow()
		code = e.code(b, a, f, cbA)
		e.clock.Advance(61 * time.Second)
		if _, err := a.conf.Exchange(a.ctx, code, oauth2.VerifierOption(f.verifier)); tokenErr(err) != "invalid_grant" {
			t.Fatalf("expired code: %v", err)
		}

		// A confidential client's code issued without a challenge refuses
		// a verifier.
		c := e.rp(ta, ta.appB, ta.secretB, cbB)
		code = backTo(t, b.get(c.conf.AuthCodeURL("st")), cbB).Get("code")
		if _, err := c.conf.Exchange(c.ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); tokenErr(err) != "invalid_grant" {
			t.Fatalf("verifier for a code without challenge: %v", err)
		}
	})
}

// TestCodeReplayRevokesWhatItIssued: a code presented twice is taken as
// stolen; the second exchange fails and the tokens of the first stop
// working (RFC 6749 §4.1.2).
func TestCodeReplayRevokesWhatItIssued(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e, _, b, a := start(t, d)
		f := newFlow()
		code := e.code(b, a, f, cbA)
		tok := e.exchange(a, code, f)
		if _, err := a.provider.UserInfo(a.ctx, oauth2.StaticTokenSource(tok)); err != nil {
			t.Fatalf("userinfo before replay: %v", err)
		}
		if _, err := a.conf.Exchange(a.ctx, code, oauth2.VerifierOption(f.verifier)); tokenErr(err) != "invalid_grant" {
			t.Fatalf("replayed code: %v", err)
		}
		if _, err := a.provider.UserInfo(a.ctx, oauth2.StaticTokenSource(tok)); err == nil {
			t.Fatal("the replayed code's access token still reads userinfo")
		}
		if _, err := a.conf.TokenSource(a.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token(); tokenErr(err) != "invalid_grant" {
			t.Fatalf("the replayed code's refresh token: %v", err)
		}
	})
}

// TestStateAndNonceBelongToTheirRequest: interleaved requests of one
// browser each get their own state back and their own nonce in the ID
// token; a request without nonce gets an ID token without one.
func TestStateAndNonceBelongToTheirRequest(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e, _, b, a := start(t, d)
		e.code(b, a, newFlow(), cbA) // signs in
		f1, f2 := newFlow(), newFlow()
		q1 := backTo(t, b.get(a.authURL(f1)), cbA)
		q2 := backTo(t, b.get(a.authURL(f2)), cbA)
		if q1.Get("state") != f1.state || q2.Get("state") != f2.state {
			t.Fatalf("states %q %q, want %q %q", q1.Get("state"), q2.Get("state"), f1.state, f2.state)
		}
		for _, c := range []struct {
			code string
			f    flow
		}{{q2.Get("code"), f2}, {q1.Get("code"), f1}} {
			tok, err := a.conf.Exchange(a.ctx, c.code, oauth2.VerifierOption(c.f.verifier))
			if err != nil {
				t.Fatal(err)
			}
			idt, err := a.verifier.Verify(a.ctx, tok.Extra("id_token").(string))
			if err != nil || idt.Nonce != c.f.nonce {
				t.Fatalf("nonce %q, want %q (%v)", idt.Nonce, c.f.nonce, err)
			}
		}
		v := oauth2.GenerateVerifier()
		code := backTo(t, b.get(a.conf.AuthCodeURL("", oauth2.S256ChallengeOption(v))), cbA).Get("code")
		tok, err := a.conf.Exchange(a.ctx, code, oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		if idt, err := a.verifier.Verify(a.ctx, tok.Extra("id_token").(string)); err != nil || idt.Nonce != "" {
			t.Fatalf("no nonce asked, got %q (%v)", idt.Nonce, err)
		}
	})
}

// TestEndSessionAsksWithoutAHint: any page can send a browser to
// end-session; without an id_token_hint of the browser's current session
// the end user is asked, and only the page's own form signs out.
func TestEndSessionAsksWithoutAHint(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e, ta, b, a := start(t, d)
		oldHint := e.tokens(b, a, cbA).Extra("id_token").(string)
		signedIn := func() bool {
			q := backTo(t, b.get(a.authURL(newFlow(), oauth2.SetAuthURLParam("prompt", "none"))), cbA)
			return q.Get("code") != ""
		}
		end := ta.issuer + "/end-session?" + url.Values{"client_id": {ta.appA.ClientID}, "post_logout_redirect_uri": {loggedOut}, "state": {"s1"}}.Encode()
		page := b.get(end)
		m := formRe.FindStringSubmatch(page.body)
		if page.status != 200 || page.location != nil || m == nil || !signedIn() {
			t.Fatalf("end-session without a hint: %d %v, still signed in %v", page.status, page.location, signedIn())
		}
		form := url.Values{}
		for _, h := range hiddenRe.FindAllStringSubmatch(page.body, -1) {
			form.Set(h[1], html.UnescapeString(h[2]))
		}
		if r := e.browser().post(m[1], form); r.status != http.StatusForbidden || !signedIn() {
			t.Fatalf("the form posted by another browser: %d", r.status)
		}
		if q := backTo(t, b.post(m[1], form), loggedOut); q.Get("state") != "s1" || signedIn() {
			t.Fatalf("confirmed sign-out: %v, still signed in %v", q, signedIn())
		}

		// A hint of an earlier session does not sign out the current one.
		e.tokens(b, a, cbA)
		hinted := ta.issuer + "/end-session?" + url.Values{"id_token_hint": {oldHint}}.Encode()
		if r := b.get(hinted); r.status != 200 || !strings.Contains(r.body, "Sign out?") || !signedIn() {
			t.Fatalf("end-session with another session's hint: %d, signed in %v", r.status, signedIn())
		}
	})
}

// TestTokenEndpointAnswersBrowserAppsOnly: a single-page app may read the
// token endpoint's answer from the origin of one of its redirect URIs;
// any other origin gets no CORS permission.
func TestTokenEndpointAnswersBrowserAppsOnly(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e, ta, b, a := start(t, d)
		tok := e.tokens(b, a, cbA)
		for origin, allowed := range map[string]bool{"https://app-a.test": true, "https://evil.test": false, "https://app-b.test": false} {
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {ta.appA.ClientID}}
			req, _ := http.NewRequest("POST", ta.issuer+"/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", origin)
			res, err := e.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			_ = json.NewDecoder(res.Body).Decode(&m)
			res.Body.Close()
			if got := res.Header.Get("Access-Control-Allow-Origin"); (got == origin) != allowed || (got != "" && got != origin) {
				t.Fatalf("Origin %s: Access-Control-Allow-Origin %q", origin, got)
			}
			if rt, _ := m["refresh_token"].(string); rt != "" {
				tok.RefreshToken = rt
			}
		}
	})
}
