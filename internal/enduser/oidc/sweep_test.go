package oidc_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
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
