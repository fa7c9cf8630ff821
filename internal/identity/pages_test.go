package identity_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/identity"
)

var linkInMail = regexp.MustCompile(`https?://\S+\?token=[a-z0-9_]+`)

// mailedLink is the link in a message's text part.
func mailedLink(t *testing.T, m received) string {
	t.Helper()
	l := linkInMail.FindString(m.Text)
	if l == "" {
		t.Fatalf("no link in %q", m.Text)
	}
	return l
}

// page GETs a mailed link and checks it is a hosted page with a form.
func (e *env) page(link string, status int) string {
	e.t.Helper()
	req, _ := http.NewRequest("GET", link, nil)
	r := e.send(req)
	if r.status != status || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		e.t.Fatalf("GET %s: %d %s, want %d text/html: %s", link, r.status, r.header.Get("Content-Type"), status, r.body)
	}
	csp := r.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(string(r.body), "<script") {
		e.t.Fatalf("page not locked down: CSP %q\n%s", csp, r.body)
	}
	return string(r.body)
}

// submit posts a hosted page's form as a browser would.
func (e *env) submit(link string, form url.Values, status int) string {
	e.t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		e.t.Fatal(err)
	}
	form.Set("token", u.Query().Get("token"))
	req, _ := http.NewRequest("POST", e.url+u.Path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r := e.send(req)
	if r.status != status {
		e.t.Fatalf("POST %s: %d, want %d: %s", u.Path, r.status, status, r.body)
	}
	return string(r.body)
}

func (e *env) verified(access string) bool {
	e.t.Helper()
	return e.want(e.do("GET", "/api/v1/me", access, nil), 200).obj(e.t)["user"].(map[string]any)["email_verified"] == true
}

// TestMailedLinksOpenHostedPages: the verification link answered 404.
// Without an application URL, links open Abacus's own pages, which act
// on the form's POST only (a scanner's GET changes nothing).
func TestMailedLinksOpenHostedPages(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		pw := "correct horse battery staple 7"
		e.want(e.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": "ada@pages.test", "password": pw, "organization": "Acme"}), 201)
		link := mailedLink(t, e.mail.next(t))
		if !strings.HasPrefix(link, e.url+"/verify-email?token=") {
			t.Fatalf("verification link %s is not on this server's /verify-email", link)
		}
		access := e.want(e.login("ada@pages.test", pw), 200).str(t, "access_token")

		// Verify: GET shows a button and verifies nothing; its POST does.
		if body := e.page(link, 200); !strings.Contains(body, `<form method="post" action="/verify-email">`) {
			t.Fatalf("verify page has no form:\n%s", body)
		}
		e.page(link, 200) // a second prefetch changes nothing either
		if e.verified(access) {
			t.Fatal("GET of the link verified the address")
		}
		if body := e.submit(link, url.Values{}, 200); !strings.Contains(body, "ada@pages.test is confirmed") {
			t.Fatalf("verify answer:\n%s", body)
		}
		if !e.verified(access) {
			t.Fatal("address not verified after the page's POST")
		}
		if body := e.submit(link, url.Values{}, 400); !strings.Contains(body, "already used") || strings.Contains(body, "<form") {
			t.Fatalf("second use:\n%s", body)
		}
		e.page(e.url+"/verify-email", 400) // no token

		// Reset: a weak password shows the form again; a good one resets.
		e.want(e.do("POST", "/api/v1/auth/password/forgot", "", map[string]any{"email": "ada@pages.test"}), 202)
		link = mailedLink(t, e.mail.next(t))
		if !strings.HasPrefix(link, e.url+"/reset-password?token=") {
			t.Fatalf("reset link %s is not on this server's /reset-password", link)
		}
		if body := e.page(link, 200); !strings.Contains(body, `type="password"`) {
			t.Fatalf("reset page has no password field:\n%s", body)
		}
		if body := e.submit(link, url.Values{"password": {"password123"}}, 400); !strings.Contains(body, `type="password"`) {
			t.Fatalf("a weak password should show the form again:\n%s", body)
		}
		newPW := "a brand new passphrase 42"
		if body := e.submit(link, url.Values{"password": {newPW}}, 200); !strings.Contains(body, "password is changed") {
			t.Fatalf("reset answer:\n%s", body)
		}
		e.problem(e.login("ada@pages.test", pw), 401, "invalid_credentials")
		access = e.want(e.login("ada@pages.test", newPW), 200).str(t, "access_token")

		// Invitation: the page creates the account with the chosen password.
		e.want(e.do("POST", "/api/v1/invitations", access, map[string]any{"email": "bob@pages.test", "role": "member"}), 201)
		link = mailedLink(t, e.mail.next(t))
		e.page(link, 200)
		e.submit(link, url.Values{"password": {"sunlit harbour passphrase 9"}}, 200)
		e.want(e.login("bob@pages.test", "sunlit harbour passphrase 9"), 200)
	})
}

// TestMailedLinksGoToAppURL: with an application URL, links point there.
func TestMailedLinksGoToAppURL(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dbtest.Open(t, db.SQLite), identity.WithAppURL("https://app.example.com/"))
	e.want(e.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": "ada@app.test", "password": "correct horse battery staple 7", "organization": "Acme"}), 201)
	if link := mailedLink(t, e.mail.next(t)); !strings.HasPrefix(link, "https://app.example.com/verify-email?token=et_") {
		t.Fatalf("verification link %s, want it on the app URL", link)
	}
	e.want(e.do("POST", "/api/v1/auth/password/forgot", "", map[string]any{"email": "ada@app.test"}), 202)
	if link := mailedLink(t, e.mail.next(t)); !strings.HasPrefix(link, "https://app.example.com/reset-password?token=et_") {
		t.Fatalf("reset link %s, want it on the app URL", link)
	}
}
