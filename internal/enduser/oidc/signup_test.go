package oidc_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/enduser"
)

var signupLinkRe = regexp.MustCompile(`<a href="([^"]+)">Create an account</a>`)

// signupPage follows the sign-in page's "Create an account" link and
// checks the form it finds: labelled fields, no script.
func (b *browser) signupPage(signIn resp) resp {
	t := b.e.t
	t.Helper()
	m := signupLinkRe.FindStringSubmatch(signIn.body)
	if m == nil {
		t.Fatalf("the sign-in page has no Create an account link:\n%s", signIn.body)
	}
	r := b.get(b.e.url + html.UnescapeString(m[1]))
	for _, want := range []string{`<label for="name">`, `<input type="text" id="name" name="name"`, `<label for="email">`,
		`<label for="password">`, `autocomplete="new-password"`, `<button type="submit">Create account</button>`} {
		if !strings.Contains(r.body, want) {
			t.Fatalf("sign-up page (%d) lacks %s:\n%s", r.status, want, r.body)
		}
	}
	if strings.Contains(r.body, "<script") || strings.Contains(r.header.Get("Content-Security-Policy"), "unsafe-inline") {
		t.Fatal("sign-up page not locked down")
	}
	return r
}

func (b *browser) signUp(page resp, name, email, password string) resp {
	b.e.t.Helper()
	m := formRe.FindStringSubmatch(page.body)
	if m == nil {
		b.e.t.Fatalf("no form:\n%s", page.body)
	}
	form := url.Values{}
	for _, h := range hiddenRe.FindAllStringSubmatch(page.body, -1) {
		form.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	form.Set("name", name)
	form.Set("email", email)
	form.Set("password", password)
	return b.post(html.UnescapeString(m[1]), form)
}

// mailbox records the mail the service sends.
type mailbox struct {
	mu   sync.Mutex
	mail []enduser.Mail
}

func (m *mailbox) send(_ context.Context, _ *db.Tx, x enduser.Mail) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mail = append(m.mail, x)
	return nil
}

// startWithMailbox is start with the service's mail kept in a mailbox.
func startWithMailbox(t *testing.T, d *db.DB) (*env, tenantFix, *browser, *rp, *mailbox) {
	e, ta, b, a := start(t, d)
	box := &mailbox{}
	e.eu.SetMailer(enduser.MailerFunc(box.send))
	return e, ta, b, a, box
}

func (m *mailbox) last() (enduser.Mail, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.mail) == 0 {
		return enduser.Mail{}, false
	}
	return m.mail[len(m.mail)-1], true
}

// TestHostedSignUpThroughTheAuthorizationPage: a new user creates an
// account from the sign-in page and comes back to the app with a code the
// relying party exchanges; a bad password is named on its field.
func TestHostedSignUpThroughTheAuthorizationPage(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e, ta, b, a, box := startWithMailbox(t, d)
		f := newFlow()
		page := b.signupPage(b.get(a.authURL(f)))

		r := b.signUp(page, "Grace", "grace@example.com", "short")
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, `id="password-error"`) ||
			!strings.Contains(r.body, `aria-describedby="password-error"`) || strings.Contains(r.body, `id="email-error"`) {
			t.Fatalf("a short password: %d\n%s", r.status, r.body)
		}
		if !strings.Contains(r.body, `value="grace@example.com"`) || !strings.Contains(r.body, `value="Grace"`) {
			t.Fatal("the form forgot what was typed")
		}
		r = b.signUp(r, "Grace", "ada@example.com", pw)
		if r.status != http.StatusConflict || !strings.Contains(r.body, `id="email-error"`) {
			t.Fatalf("an address in use: %d\n%s", r.status, r.body)
		}

		q := backTo(t, b.signUp(r, "Grace", "grace@example.com", pw), cbA)
		if q.Get("state") != f.state || q.Get("code") == "" {
			t.Fatalf("callback %v", q)
		}
		tok, err := a.conf.Exchange(a.ctx, q.Get("code"), oauth2.VerifierOption(f.verifier))
		if err != nil {
			t.Fatal(err)
		}
		idt, err := a.verifier.Verify(a.ctx, tok.Extra("id_token").(string))
		if err != nil || idt.Nonce != f.nonce {
			t.Fatalf("ID token: %v", err)
		}
		var c struct {
			Email, Name string
			Verified    bool `json:"email_verified"`
		}
		_ = idt.Claims(&c)
		if c.Email != "grace@example.com" || c.Name != "Grace" || c.Verified {
			t.Fatalf("claims %+v", c)
		}
		if m, ok := box.last(); !ok || m.Template != enduser.MailVerifyEmail || m.To != "grace@example.com" {
			t.Fatalf("verification mail %+v", m)
		}
		// Signed in by signing up: app B needs no password now.
		bp := e.rp(ta, ta.appB, ta.secretB, cbB)
		if q := backTo(t, b.get(bp.authURL(newFlow())), cbB); q.Get("code") == "" {
			t.Fatalf("no SSO after sign-up: %v", q)
		}
	})
}

// TestHostedSignUpFollowsTheTenantPolicy: closed and invite-only tenants
// offer no "Create an account" link and refuse the sign-up page typed in; a tenant that wants verified addresses first asks
// the user to open the mailed link, which verifies, then sign-in works.
func TestHostedSignUpFollowsTheTenantPolicy(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e, ta, b, a, box := startWithMailbox(t, d)
		ctx := enduser.SystemContext(context.Background(), ta.id)
		for policy, want := range map[string]string{enduser.SignupClosed: "sign-up is closed", enduser.SignupInviteOnly: "by invitation only"} {
			if _, err := e.eu.PutSettings(ctx, enduser.Settings{Signup: policy}); err != nil {
				t.Fatal(err)
			}
			auth := a.authURL(newFlow())
			if signIn := b.get(auth); signupLinkRe.MatchString(signIn.body) {
				t.Fatalf("%s: the sign-in page offers to create an account:\n%s", policy, signIn.body)
			}
			// Typed in anyway, the sign-up page refuses.
			page := b.get(strings.Replace(auth, "/authorize?", "/signup?", 1))
			if page.status != http.StatusOK || !strings.Contains(page.body, "Create account") {
				t.Fatalf("%s: the sign-up page typed in: %d\n%s", policy, page.status, page.body)
			}
			r := b.signUp(page, "Grace", "grace@example.com", pw)
			if r.status != http.StatusForbidden || !strings.Contains(r.body, want) || r.location != nil {
				t.Fatalf("%s: %d\n%s", policy, r.status, r.body)
			}
		}
		if _, err := e.eu.PutSettings(ctx, enduser.Settings{Signup: enduser.SignupOpen, RequireVerifiedEmail: true}); err != nil {
			t.Fatal(err)
		}
		f := newFlow()
		r := b.signUp(b.signupPage(b.get(a.authURL(f))), "Grace", "grace@example.com", pw)
		if r.status != http.StatusOK || r.location != nil || !strings.Contains(r.body, "Check your mailbox") {
			t.Fatalf("verification first: %d %v\n%s", r.status, r.location, r.body)
		}
		m, ok := box.last()
		if !ok || m.Template != enduser.MailVerifyEmail {
			t.Fatal("no verification mail")
		}
		link, _ := m.Data["link"].(string)
		if !strings.HasPrefix(link, ta.issuer+"/verify-email?token=") {
			t.Fatalf("link %q", link)
		}
		if _, err := e.eu.VerifyEmail(context.Background(), ta.id, link[strings.Index(link, "token=")+len("token="):]); err != nil {
			t.Fatalf("the mailed link does not verify: %v", err)
		}
		if q := backTo(t, b.signIn(b.get(a.authURL(f)), "grace@example.com", pw), cbA); q.Get("code") == "" {
			t.Fatalf("sign-in after verifying: %v", q)
		}
	})
}

// TestHostedSignUpIsPerTenant: tenant A's authorization request opens no
// sign-up form at tenant B, and posting it there makes no account.
func TestHostedSignUpIsPerTenant(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e, _, b, a := start(t, d)
		tb := e.tenant[1]
		page := b.signupPage(b.get(a.authURL(newFlow())))
		m := hiddenRe.FindAllStringSubmatch(page.body, -1)
		form := url.Values{}
		for _, h := range m {
			form.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
		}
		if r := b.get(tb.issuer + "/signup?" + form.Get("request")); r.status != http.StatusBadRequest || strings.Contains(r.body, "Create account") {
			t.Fatalf("A's request at B's sign-up: %d\n%s", r.status, r.body)
		}
		form.Set("email", "mallory@example.com")
		form.Set("password", pw)
		if r := b.post("/oidc/"+tb.id+"/signup", form); r.status == http.StatusSeeOther || r.status == http.StatusOK {
			t.Fatalf("A's request posted at B: %d %v", r.status, r.location)
		}
		ctx := enduser.SystemContext(context.Background(), tb.id)
		if l, err := e.eu.ListUsers(ctx, enduser.UserQuery{}); err != nil || len(l.Data) != 1 {
			t.Fatalf("B's users after A's request posted there: %v %v", l, err)
		}
	})
}
