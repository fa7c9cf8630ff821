package app_test

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/abacusbilling/abacus/internal/enduser"
)

// TestOIDCProviderIsServed: the whole program serves each tenant's OpenID
// Connect issuer: a relying party (go-oidc) discovers it, signs an end
// user in through the hosted page and reads userinfo with the access
// token, which the HTTP edge authenticates as an end user; the same token
// opens no staff route.
func TestOIDCProviderIsServed(t *testing.T) {
	t.Parallel()
	a := start(t, "sqlite", nil)
	tenant := a.tenantOf(t, a.key)
	ctx := enduser.SystemContext(context.Background(), tenant)
	eu := a.EndUsers()
	client, _, err := eu.CreateApp(ctx, enduser.NewApp{Name: "Web", Type: enduser.AppPublic, RedirectURIs: []string{"https://app.test/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eu.CreateUser(ctx, enduser.NewUser{Email: "ada@example.com", Password: "correct horse battery staple"}); err != nil {
		t.Fatal(err)
	}
	prov, err := gooidc.NewProvider(context.Background(), a.base+"/oidc/"+tenant)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	conf := oauth2.Config{ClientID: client.ClientID, Endpoint: prov.Endpoint(), RedirectURL: "https://app.test/cb", Scopes: []string{"openid", "email"}}
	verifier := oauth2.GenerateVerifier()

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := browser.Get(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	form := url.Values{"email": {"ada@example.com"}, "password": {"correct horse battery staple"}}
	for _, m := range regexp.MustCompile(`name="(csrf_token|request)" value="([^"]*)"`).FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	req, _ := http.NewRequest("POST", a.base+"/oidc/"+tenant+"/authorize", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if res, err = browser.Do(req); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusSeeOther || loc.Query().Get("code") == "" {
		t.Fatalf("sign-in: %d, Location %q", res.StatusCode, res.Header.Get("Location"))
	}
	tok, err := conf.Exchange(context.Background(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if _, err := prov.Verifier(&gooidc.Config{ClientID: client.ClientID}).Verify(context.Background(), tok.Extra("id_token").(string)); err != nil {
		t.Fatalf("ID token: %v", err)
	}
	if info, err := prov.UserInfo(context.Background(), oauth2.StaticTokenSource(tok)); err != nil || info.Email != "ada@example.com" {
		t.Fatalf("userinfo: %+v %v", info, err)
	}
	if r := a.do("GET", "/api/v1/api-keys", tok.AccessToken, nil); r.status/100 == 2 {
		t.Fatalf("an end user's token opens a staff route: %d", r.status)
	}
}
