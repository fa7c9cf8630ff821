package oidc_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// TestTenantsAreIsolated: tenant A's clients, codes, tokens and SSO
// session are worth nothing at tenant B's issuer.
func TestTenantsAreIsolated(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		ta, tb := e.tenant[0], e.tenant[1]
		b := e.browser()
		a := e.rp(ta, ta.appA, "", cbA)
		f := newFlow()
		code := e.code(b, a, f, cbA)

		// A's code at B's token endpoint: with A's client id (unknown at
		// B), then with B's own app of the same shape.
		redeem := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {cbA}, "code_verifier": {f.verifier}}
		redeem.Set("client_id", ta.appA.ClientID)
		if _, m := e.tokenPost(tb.issuer+"/token", redeem, "", ""); m["error"] != "invalid_client" {
			t.Fatalf("A's client at B: %v", m)
		}
		redeem.Set("client_id", tb.appA.ClientID)
		if _, m := e.tokenPost(tb.issuer+"/token", redeem, "", ""); m["error"] != "invalid_grant" {
			t.Fatalf("A's code at B: %v", m)
		}
		tok, err := a.conf.Exchange(a.ctx, code, oauth2.VerifierOption(f.verifier))
		if err != nil {
			t.Fatalf("the code still works at A: %v", err)
		}

		// A's tokens at B.
		bp := e.rp(tb, tb.appA, "", cbA)
		if _, err := bp.verifier.Verify(bp.ctx, tok.Extra("id_token").(string)); err == nil {
			t.Fatal("B's verifier accepts A's ID token")
		}
		if _, err := bp.provider.UserInfo(bp.ctx, oauth2.StaticTokenSource(tok)); err == nil {
			t.Fatal("A's access token reads B's userinfo")
		}
		refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {tb.appA.ClientID}}
		if _, m := e.tokenPost(tb.issuer+"/token", refresh, "", ""); m["error"] != "invalid_grant" {
			t.Fatalf("A's refresh token at B: %v", m)
		}
		for _, tk := range []string{tok.AccessToken, tok.RefreshToken} {
			_, m := e.tokenPost(tb.issuer+"/introspect", url.Values{"token": {tk}}, tb.appB.ClientID, tb.secretB)
			if m["active"] != false {
				t.Fatalf("B introspects A's token as %v", m)
			}
			_, m = e.tokenPost(ta.issuer+"/introspect", url.Values{"token": {tk}}, ta.appB.ClientID, ta.secretB)
			if m["active"] != true {
				t.Fatalf("A introspects its own token as %v", m)
			}
		}
		if _, m := e.tokenPost(tb.issuer+"/introspect", url.Values{"token": {tok.AccessToken}}, ta.appB.ClientID, ta.secretB); m["error"] != "invalid_client" {
			t.Fatalf("A's confidential client at B's introspection: %v", m)
		}

		// A's client at B's authorize: an error page.
		aAtB := strings.Replace(a.authURL(newFlow()), ta.issuer, tb.issuer, 1)
		noRedirect(t, b.get(aAtB), "A's client at B's authorize")

		// A's SSO session does not sign the browser in at B, even when
		// its cookie is sent to B's issuer path.
		b.signInForm(b.get(bp.authURL(newFlow())))
		au, _ := url.Parse(ta.issuer + "/")
		bu, _ := url.Parse(tb.issuer + "/")
		sso := b.cookie(au, "abacus_sso")
		if sso == nil {
			t.Fatal("no SSO cookie at A's issuer")
		}
		if b.cookie(bu, "abacus_sso") != nil {
			t.Fatal("A's SSO cookie is sent to B's issuer")
		}
		b.c.Jar.SetCookies(bu, []*http.Cookie{{Name: "abacus_sso", Value: sso.Value, Path: bu.Path}})
		b.signInForm(b.get(bp.authURL(newFlow())))

		// A nonexistent issuer has nothing, and no keys are made for it.
		if res, err := e.http.Get(e.url + "/oidc/ten_nobody/.well-known/openid-configuration"); err != nil || res.StatusCode != 404 {
			t.Fatalf("unknown issuer: %v %v", res.StatusCode, err)
		}
		if _, err := gooidc.NewProvider(bp.ctx, e.url+"/oidc/ten_nobody"); err == nil {
			t.Fatal("discovery of an unknown tenant")
		}
	})
}

// TestSignInPage: the form is CSRF-protected (token bound to a cookie,
// same origin), a wrong password shows the form again without
// redirecting, prompt=login asks again despite SSO, and no password,
// code or token reaches the logs.
func TestSignInPage(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e, ta, b, a := start(t, d)
		page := b.get(a.authURL(newFlow()))
		action, form := b.signInForm(page)
		form.Set("email", "ada@example.com")
		form.Set("password", pw)

		forged := url.Values{}
		for k, v := range form {
			forged[k] = v
		}
		forged.Set("csrf_token", "forged-token-forged-token-forged-token")
		if r := b.post(action, forged); r.status != http.StatusForbidden || r.location != nil {
			t.Fatalf("forged CSRF token: %d %v", r.status, r.location)
		}
		other := e.browser() // a browser without the page's cookie posts the page's form
		if r := other.post(action, form); r.status != http.StatusForbidden || r.location != nil {
			t.Fatalf("form without its cookie: %d %v", r.status, r.location)
		}
		req, _ := http.NewRequest("POST", e.url+action, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.test")
		if r := b.do(req); r.status != http.StatusForbidden || r.location != nil {
			t.Fatalf("cross-origin post: %d %v", r.status, r.location)
		}

		wrong := b.signIn(page, "ada@example.com", "not the password at all")
		if wrong.status != http.StatusUnauthorized || wrong.location != nil || !strings.Contains(wrong.body, `role="alert"`) {
			t.Fatalf("wrong password: %d %v", wrong.status, wrong.location)
		}
		b.signInForm(resp{status: 200, header: wrong.header, body: wrong.body})

		ok := b.post(action, form)
		code := backTo(t, ok, cbA).Get("code")
		var sso *http.Cookie
		for _, c := range ok.header.Values("Set-Cookie") {
			if strings.HasPrefix(c, "abacus_sso=") {
				sso, _ = http.ParseSetCookie(c)
			}
		}
		if sso == nil || !sso.HttpOnly || sso.SameSite != http.SameSiteLaxMode || sso.Path != "/oidc/"+ta.id+"/" {
			t.Fatalf("SSO cookie %+v", sso)
		}

		// prompt=login shows the page although the browser is signed in;
		// max_age shorter than the sign-in's age too.
		b.signInForm(b.get(a.authURL(newFlow(), oauth2.SetAuthURLParam("prompt", "login"))))
		backTo(t, b.get(a.authURL(newFlow(), oauth2.SetAuthURLParam("max_age", "60"))), cbA)
		e.clock.Advance(2 * time.Minute)
		b.signInForm(b.get(a.authURL(newFlow(), oauth2.SetAuthURLParam("max_age", "60"))))

		logs := e.logs.String()
		for _, secret := range []string{pw, code, sso.Value, form.Get("csrf_token")} {
			if strings.Contains(logs, secret) {
				t.Fatalf("a secret reached the logs: %s", logs)
			}
		}
	})
}

// TestIntrospectionAndRevocation: confidential clients introspect and
// revoke; public clients cannot. Revoking a refresh token ends that app's
// grant only; revoking an access token makes it inactive.
func TestIntrospectionAndRevocation(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e, ta, b, a := start(t, d)
		tokA := e.tokens(b, a, cbA)
		c := e.rp(ta, ta.appB, ta.secretB, cbB)
		tokB := e.tokens(b, c, cbB)
		introspect := func(tk, user, pass string) map[string]any {
			_, m := e.tokenPost(ta.issuer+"/introspect", url.Values{"token": {tk}}, user, pass)
			return m
		}
		if m := introspect(tokA.AccessToken, ta.appA.ClientID, ""); m["error"] != "invalid_client" {
			t.Fatalf("public client introspects: %v", m)
		}
		if m := introspect(tokA.AccessToken, ta.appB.ClientID, "cs_wrong"); m["error"] != "invalid_client" {
			t.Fatalf("wrong secret introspects: %v", m)
		}
		m := introspect(tokA.AccessToken, ta.appB.ClientID, ta.secretB)
		if m["active"] != true || m["sub"] != ta.user.ID || m["client_id"] != ta.appA.ClientID || m["token_type"] != "access_token" {
			t.Fatalf("introspection: %v", m)
		}
		if m := introspect("garbage", ta.appB.ClientID, ta.secretB); m["active"] != false || len(m) != 1 {
			t.Fatalf("garbage: %v", m)
		}

		revoke := func(tk string) int {
			status, _ := e.tokenPost(ta.issuer+"/revoke", url.Values{"token": {tk}}, ta.appB.ClientID, ta.secretB)
			return status
		}
		// App B revokes app A's refresh token: not its own, nothing happens.
		if revoke(tokA.RefreshToken) != 200 || introspect(tokA.RefreshToken, ta.appB.ClientID, ta.secretB)["active"] != true {
			t.Fatal("app B revoked app A's refresh token")
		}
		// App B revokes its own: gone; app A's grant in the same session stays.
		if revoke(tokB.RefreshToken) != 200 {
			t.Fatal("revoke")
		}
		if _, err := c.conf.TokenSource(c.ctx, &oauth2.Token{RefreshToken: tokB.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token(); tokenErr(err) != "invalid_grant" {
			t.Fatalf("revoked refresh token: %v", err)
		}
		if _, err := a.conf.TokenSource(a.ctx, &oauth2.Token{RefreshToken: tokA.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token(); err != nil {
			t.Fatalf("app A's refresh after app B's revocation: %v", err)
		}
		// An access token revoked is inactive and reads no userinfo.
		if revoke(tokB.AccessToken) != 200 || introspect(tokB.AccessToken, ta.appB.ClientID, ta.secretB)["active"] != false {
			t.Fatal("revoked access token is still active")
		}
		if _, err := c.provider.UserInfo(c.ctx, oauth2.StaticTokenSource(tokB)); err == nil {
			t.Fatal("revoked access token reads userinfo")
		}
	})
}

// TestCookiesAreSecureOverTLS: served over TLS, the SSO and CSRF cookies
// are Secure (and SSO still works, the browser sending them back).
func TestCookiesAreSecureOverTLS(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnvOver(t, d, true)
		ta := e.tenant[0]
		b := e.browser()
		a := e.rp(ta, ta.appA, "", cbA)
		page := b.get(a.authURL(newFlow()))
		res := b.signIn(page, "ada@example.com", pw)
		backTo(t, res, cbA)
		for _, r := range []resp{page, res} {
			for _, line := range r.header.Values("Set-Cookie") {
				if c, err := http.ParseSetCookie(line); err != nil || !c.Secure || !c.HttpOnly {
					t.Fatalf("cookie over TLS: %s", line)
				}
			}
		}
		if len(res.header.Values("Set-Cookie")) == 0 {
			t.Fatal("no SSO cookie set")
		}
		backTo(t, b.get(e.rp(ta, ta.appB, ta.secretB, cbB).authURL(newFlow())), cbB)
	})
}
