package oidc_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/enduser"
)

// TestExpiredRowsAreSwept: codes, SSO sessions and revoked access tokens
// do not pile up; issuing a code deletes what expired (a code an hour
// after its expiry).
func TestExpiredRowsAreSwept(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e, ta, b, a := start(t, d)
		tok := e.tokens(b, e.rp(ta, ta.appB, ta.secretB, cbB), cbB)
		if status, _ := e.tokenPost(ta.issuer+"/revoke", url.Values{"token": {tok.AccessToken}}, ta.appB.ClientID, ta.secretB); status != 200 {
			t.Fatalf("revoke: %d", status)
		}
		count := func() [3]int {
			var n [3]int
			for i, table := range []string{"end_user_auth_codes", "end_user_sso_sessions", "end_user_revoked_tokens"} {
				if err := d.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM `+table).Scan(&n[i]); err != nil {
					t.Fatal(err)
				}
			}
			return n
		}
		if n := count(); n != [3]int{1, 1, 1} { // the code, the SSO session, the revoked token
			t.Fatalf("rows before: %v", n)
		}
		e.clock.Advance(91 * 24 * time.Hour) // past the session's 90 days
		e.tokens(b, a, cbA)                  // signs in again: a new code and SSO row
		if n := count(); n != [3]int{1, 1, 0} {
			t.Fatalf("rows after the sweep: %v, want only the new code and SSO session", n)
		}
	})
}

// TestSigningInAgainKeepsOneDevice: prompt=login in a browser that is
// signed in replaces its session, so the browser still counts as one
// device; the replaced session's tokens stop working.
func TestSigningInAgainKeepsOneDevice(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e, ta, b, a := start(t, d)
		first := e.tokens(b, a, cbA)
		backTo(t, b.signIn(b.get(a.authURL(newFlow(), oauth2.SetAuthURLParam("prompt", "login"))), "ada@example.com", pw), cbA)
		sessions, err := e.eu.ListSessions(enduser.SystemContext(context.Background(), ta.id), ta.user.ID)
		if err != nil || len(sessions) != 1 {
			t.Fatalf("active sessions after signing in again in one browser: %d (%v)", len(sessions), err)
		}
		if _, err := a.conf.TokenSource(a.ctx, &oauth2.Token{RefreshToken: first.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token(); tokenErr(err) != "invalid_grant" {
			t.Fatalf("the replaced session's refresh token: %v", err)
		}
		backTo(t, b.get(a.authURL(newFlow(), oauth2.SetAuthURLParam("prompt", "none"))), cbA)
	})
}

// TestSignInPageIsThrottled: the hosted form goes through the end-user
// sign-in throttles; past them it answers 429 with Retry-After and the
// form, without checking the password.
func TestSignInPageIsThrottled(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		_, _, b, a := start(t, d)
		page := b.get(a.authURL(newFlow()))
		var last resp
		for i := 0; i < 8 && last.status != http.StatusTooManyRequests; i++ {
			last = b.signIn(page, "ada@example.com", "wrong password number x")
		}
		if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" || last.location != nil {
			t.Fatalf("after repeated failures: %d Retry-After %q", last.status, last.header.Get("Retry-After"))
		}
		if r := b.signIn(page, "ada@example.com", pw); r.status != http.StatusTooManyRequests {
			t.Fatalf("the right password while throttled: %d", r.status)
		}
	})
}
