package oidc_test

import (
	"net/url"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// TestSingleSignOnWithAThirdPartyRelyingParty drives the provider with
// go-oidc and x/oauth2 over real HTTP: discovery, code + PKCE through the
// hosted sign-in page, the ID token verified by go-oidc, userinfo,
// refresh; then app B gets a code without a password (SSO); end-session
// ends SSO and every app's tokens.
func TestSingleSignOnWithAThirdPartyRelyingParty(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		ta := e.tenant[0]
		a := e.rp(ta, ta.appA, "", cbA)
		b := e.browser()

		// App A: nobody signed in → the hosted page → a code.
		fa := newFlow()
		q := backTo(t, b.signIn(b.get(a.authURL(fa)), "ada@example.com", pw), cbA)
		if q.Get("state") != fa.state || q.Get("iss") != ta.issuer || q.Get("code") == "" {
			t.Fatalf("callback query %v", q)
		}
		tok, err := a.conf.Exchange(a.ctx, q.Get("code"), oauth2.VerifierOption(fa.verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := a.verifier.Verify(a.ctx, raw)
		if err != nil {
			t.Fatalf("go-oidc rejects the ID token: %v", err)
		}
		var claims struct {
			Email    string `json:"email"`
			Verified bool   `json:"email_verified"`
			Name     string `json:"name"`
			SID      string `json:"sid"`
		}
		if err := idt.Claims(&claims); err != nil {
			t.Fatal(err)
		}
		if idt.Subject != ta.user.ID || idt.Nonce != fa.nonce || claims.Email != "ada@example.com" || !claims.Verified || claims.Name != "Ada" {
			t.Fatalf("ID token sub %s nonce %q claims %+v", idt.Subject, idt.Nonce, claims)
		}

		// Userinfo with the access token.
		ui, err := a.provider.UserInfo(a.ctx, oauth2.StaticTokenSource(tok))
		if err != nil || ui.Subject != ta.user.ID || ui.Email != "ada@example.com" {
			t.Fatalf("userinfo = %+v, %v", ui, err)
		}

		// Refresh: a new access token, verifiable with the JWKS.
		expired := &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Hour)}
		tok2, err := a.conf.TokenSource(a.ctx, expired).Token()
		if err != nil || tok2.AccessToken == tok.AccessToken || tok2.RefreshToken == tok.RefreshToken {
			t.Fatalf("refresh: %v", err)
		}
		at := a.provider.Verifier(&gooidc.Config{ClientID: ta.appA.ClientID, SupportedSigningAlgs: []string{"EdDSA", "RS256"}})
		if _, err := at.Verify(a.ctx, tok2.AccessToken); err != nil {
			t.Fatalf("refreshed access token does not verify: %v", err)
		}

		// App B (confidential, client_secret_basic): no password asked.
		bp := e.rp(ta, ta.appB, ta.secretB, cbB)
		fb := newFlow()
		q = backTo(t, b.get(bp.authURL(fb)), cbB)
		if q.Get("state") != fb.state {
			t.Fatalf("app B state %q", q.Get("state"))
		}
		tokB, err := bp.conf.Exchange(bp.ctx, q.Get("code"), oauth2.VerifierOption(fb.verifier))
		if err != nil {
			t.Fatalf("app B exchange: %v", err)
		}
		idB, err := bp.verifier.Verify(bp.ctx, tokB.Extra("id_token").(string))
		if err != nil || idB.Subject != ta.user.ID || idB.Nonce != fb.nonce {
			t.Fatalf("app B ID token: %v %+v", err, idB)
		}
		var sidB struct {
			SID string `json:"sid"`
		}
		_ = idB.Claims(&sidB)
		if sidB.SID != claims.SID {
			t.Fatalf("app B got session %s, app A %s: one browser is one device", sidB.SID, claims.SID)
		}

		// End-session (RP-initiated, with id_token_hint) → back to the
		// registered post-logout URI; SSO and the tokens are gone.
		end := ta.issuer + "/end-session?" + url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {loggedOut}, "state": {"bye"}}.Encode()
		if q := backTo(t, b.get(end), loggedOut); q.Get("state") != "bye" {
			t.Fatalf("post-logout state %v", q)
		}
		if _, err := a.conf.TokenSource(a.ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token(); tokenErr(err) != "invalid_grant" {
			t.Fatalf("refresh after end-session: %v", err)
		}
		if _, err := bp.provider.UserInfo(bp.ctx, oauth2.StaticTokenSource(tokB)); err == nil {
			t.Fatal("app B's token still reads userinfo after end-session")
		}
		fb = newFlow()
		if q := backTo(t, b.get(bp.authURL(fb, oauth2.SetAuthURLParam("prompt", "none"))), cbB); q.Get("error") != "login_required" {
			t.Fatalf("prompt=none after end-session: %v", q)
		}
		b.signInForm(b.get(bp.authURL(newFlow())))
	})
}
