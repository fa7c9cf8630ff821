package identity_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/identity"
)

const throttlePW = "correct horse battery staple 7"

// loginFrom signs in with X-Forwarded-For set to xff (none when empty).
func (e *env) loginFrom(xff, email, pw string) res {
	e.t.Helper()
	b, _ := json.Marshal(map[string]any{"email": email, "password": pw})
	req, _ := http.NewRequest("POST", e.url+"/api/v1/auth/login", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	return e.send(req)
}

// failUntilCounted makes a wrong-password attempt count as a failure,
// waiting out (on the fake clock) any backoff in the way.
func (e *env) failUntilCounted(xff, email string) {
	e.t.Helper()
	for range 10 {
		r := e.loginFrom(xff, email, "wrong wrong wrong")
		if r.status == 401 {
			return
		}
		e.problem(r, 429, "too_many_attempts")
		secs, _ := strconv.Atoi(r.header.Get("Retry-After"))
		e.clock.Advance(time.Duration(secs) * time.Second)
	}
	e.t.Fatalf("wrong password for %s from %q never got through", email, xff)
}

func retryAfter(t *testing.T, r res) time.Duration {
	t.Helper()
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil {
		t.Fatalf("429 without a Retry-After: %v", r.header)
	}
	return time.Duration(secs) * time.Second
}

func trustLoopback(t *testing.T) identity.Option {
	t.Helper()
	c, err := httpapi.NewClientIP([]string{"127.0.0.0/8", "::1"}, "")
	if err != nil {
		t.Fatal(err)
	}
	return identity.WithClientIP(c)
}

// TestSignInThrottleSparesOtherAccountsBehindOneIP is the reproduction:
// after 23 wrong passwords from one address, another account's correct
// password from the same address was refused for 15 minutes.
func TestSignInThrottleSparesOtherAccountsBehindOneIP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dbtest.Open(t, db.SQLite))
	e.signup("a@nat.test", throttlePW, "A")
	e.signup("b@nat.test", throttlePW, "B")
	for range 23 {
		e.failUntilCounted("", "a@nat.test")
	}
	e.want(e.loginFrom("", "b@nat.test", throttlePW), 200)
	// The account under attack is still held back from that address.
	e.problem(e.loginFrom("", "a@nat.test", throttlePW), 429, "too_many_attempts")
}

// TestSignInThrottlePerIPIsBriefAndOnlyPastABurst: password spraying from
// one address (one failure per account) is slowed after 100 failures,
// and then only for seconds; other addresses, and accounts that signed
// in from that address before, are not affected.
func TestSignInThrottlePerIPIsBriefAndOnlyPastABurst(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dbtest.Open(t, db.SQLite), trustLoopback(t))
	e.signup("victim@nat.test", throttlePW, "V")
	e.signup("regular@nat.test", throttlePW, "R")
	const sprayer = "198.51.100.1"
	e.want(e.loginFrom(sprayer, "regular@nat.test", throttlePW), 200)
	for i := range 100 {
		e.problem(e.loginFrom(sprayer, fmt.Sprintf("user%d@nat.test", i), "Winter2026!"), 401, "invalid_credentials")
	}
	r := e.loginFrom(sprayer, "victim@nat.test", throttlePW)
	e.problem(r, 429, "too_many_attempts")
	if d := retryAfter(t, r); d > 6*time.Second {
		t.Fatalf("per-IP wait %s, want at most 6s", d)
	}
	e.want(e.loginFrom("198.51.100.2", "victim@nat.test", throttlePW), 200)
	e.want(e.loginFrom(sprayer, "regular@nat.test", throttlePW), 200)
	e.clock.Advance(retryAfter(t, r))
	e.want(e.loginFrom(sprayer, "victim@nat.test", throttlePW), 200)
}

// TestSignInThrottlePerAccountAcrossIPs: guessing one account from many
// addresses is slowed, but its owner waits a minute at most.
func TestSignInThrottlePerAccountAcrossIPs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dbtest.Open(t, db.SQLite), trustLoopback(t))
	e.signup("a@spread.test", throttlePW, "A")
	for i := range 40 {
		e.failUntilCounted(fmt.Sprintf("203.0.113.%d", i+1), "a@spread.test")
	}
	r := e.loginFrom("192.0.2.200", "a@spread.test", throttlePW)
	e.problem(r, 429, "too_many_attempts")
	if d := retryAfter(t, r); d > time.Minute {
		t.Fatalf("account-wide wait %s, want at most 1m", d)
	}
	e.clock.Advance(retryAfter(t, r))
	e.want(e.loginFrom("192.0.2.200", "a@spread.test", throttlePW), 200)
}

// TestSignInThrottleIgnoresForwardingFromUntrustedPeer: without trusted
// proxies a client cannot escape its budget by inventing addresses.
func TestSignInThrottleIgnoresForwardingFromUntrustedPeer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dbtest.Open(t, db.SQLite))
	e.signup("a@spoof.test", throttlePW, "A")
	for i := range 6 {
		e.problem(e.loginFrom(fmt.Sprintf("203.0.113.%d", i+1), "a@spoof.test", "wrong wrong wrong"), 401, "invalid_credentials")
	}
	e.problem(e.loginFrom("203.0.113.99", "a@spoof.test", throttlePW), 429, "too_many_attempts")
}
