package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// A customer without an external id, created with an Idempotency-Key by a
// process that died after the customer committed and before its answer
// was stored, must not be created again by the client's retry — not even
// after the claim timeout, which used to take such a claim for abandoned.
// The crash is reproduced by putting the key's row back as the process
// left it (a claim with no answer) and ageing it past the timeout.
func TestIdempotencyCrashDoesNotDuplicateCustomer(t *testing.T) {
	t.Parallel()
	for _, e := range dbtest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			a := start(t, e, nil)
			body := map[string]any{"name": "Crash Ltd", "currency": "EUR"}
			if r := a.do("POST", "/api/v1/customers", a.key, body, "Idempotency-Key", "crash-1"); r.status != 201 {
				t.Fatalf("create: %d %s", r.status, r.body)
			}
			retry, n := retryAfterCrash(t, a, "/api/v1/customers", "crash-1", body, `SELECT count(*) FROM customers WHERE name = 'Crash Ltd'`)
			if n != 1 {
				t.Fatalf("%d customers after the retry (answered %d %s), want 1", n, retry.status, retry.body)
			}
			expectProblem(t, retry, 409, "idempotency_outcome_unknown")
			if !strings.Contains(string(retry.body), "changed data") {
				t.Fatalf("the problem does not say the request changed data: %s", retry.body)
			}
		})
	}
}

// A risk event is stored by the risk module's group commit, on a goroutine
// of its own: the request's Idempotency-Key claim is marked in that
// transaction too, so a crash after the commit never stores the event twice.
func TestIdempotencyCrashDoesNotDuplicateRiskEvent(t *testing.T) {
	t.Parallel()
	for _, e := range dbtest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			a := start(t, e, nil)
			// A tenant's first event stores its rule set in the request's
			// own transaction; the event itself goes to the group commit.
			if r := a.do("POST", "/api/v1/risk/events", a.key, map[string]any{"type": "login", "customer_id": "other"}); r.status != 200 {
				t.Fatalf("first risk event: %d %s", r.status, r.body)
			}
			body := map[string]any{"type": "order", "customer_id": "crash-cust", "amount": "12.50", "currency": "EUR"}
			if r := a.do("POST", "/api/v1/risk/events", a.key, body, "Idempotency-Key", "crash-risk"); r.status != 200 {
				t.Fatalf("risk event: %d %s", r.status, r.body)
			}
			retry, n := retryAfterCrash(t, a, "/api/v1/risk/events", "crash-risk", body, `SELECT count(*) FROM risk_events WHERE customer_id = 'crash-cust'`)
			if n != 1 {
				t.Fatalf("%d risk events after the retry (answered %d %s), want 1", n, retry.status, retry.body)
			}
			expectProblem(t, retry, 409, "idempotency_outcome_unknown")
		})
	}
}

// retryAfterCrash puts key's row back as a process that died after the
// request committed leaves it (a claim with no answer), ages it past the
// claim timeout, sends the request again and counts the rows count finds.
func retryAfterCrash(t *testing.T, a *testApp, path, key string, body map[string]any, count string) (response, int) {
	t.Helper()
	ctx := context.Background()
	if _, err := a.DB.ExecContext(ctx, `UPDATE idempotency_keys SET status = 0, content_type = '', body = $1, created_at = $2
		WHERE key = $3`, []byte{}, db.TimeOf(time.Now().Add(-2*time.Minute)), key); err != nil {
		t.Fatal(err)
	}
	retry := a.do("POST", path, a.key, body, "Idempotency-Key", key)
	var n int
	if err := a.DB.QueryRowContext(ctx, count).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return retry, n
}

// Idempotency-Keys are kept for http.idempotency_retention (24 h), then
// deleted by the outbox role, which purges at start and every minute: a
// key older than that is new again, a younger one still refuses another
// body. The restart stands for the minute passing.
func TestIdempotencyKeysExpire(t *testing.T) {
	t.Parallel()
	for _, e := range dbtest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			a := start(t, e, nil)
			for _, key := range []string{"expire-old", "expire-recent"} {
				if r := a.do("POST", "/api/v1/customers", a.key, map[string]any{"name": key, "currency": "EUR"}, "Idempotency-Key", key); r.status != 201 {
					t.Fatalf("create with %s: %d %s", key, r.status, r.body)
				}
			}
			ctx := context.Background()
			if _, err := a.DB.ExecContext(ctx, `UPDATE idempotency_keys SET created_at = $1 WHERE key = 'expire-old'`,
				db.TimeOf(time.Now().Add(-25*time.Hour))); err != nil {
				t.Fatal(err)
			}
			a = a.restart(t)
			deadline := time.Now().Add(15 * time.Second)
			for {
				var n int
				if err := a.DB.QueryRowContext(ctx, `SELECT count(*) FROM idempotency_keys WHERE key = 'expire-old'`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the key created 25 hours ago is still stored 15 s after the start; want it purged")
				}
				time.Sleep(20 * time.Millisecond)
			}
			other := map[string]any{"name": "Another Ltd", "currency": "EUR"}
			if r := a.do("POST", "/api/v1/customers", a.key, other, "Idempotency-Key", "expire-old"); r.status != 201 {
				t.Fatalf("another request with the purged key: %d %s, want it run as new (201)", r.status, r.body)
			}
			expectProblem(t, a.do("POST", "/api/v1/customers", a.key, other, "Idempotency-Key", "expire-recent"), 422, "idempotency_key_reused")
		})
	}
}
