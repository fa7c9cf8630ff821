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
			ctx := context.Background()
			body := map[string]any{"name": "Crash Ltd", "currency": "EUR"}
			if r := a.do("POST", "/api/v1/customers", a.key, body, "Idempotency-Key", "crash-1"); r.status != 201 {
				t.Fatalf("create: %d %s", r.status, r.body)
			}
			if _, err := a.DB.ExecContext(ctx, `UPDATE idempotency_keys SET status = 0, content_type = '', body = $1, created_at = $2
				WHERE key = 'crash-1'`, []byte{}, db.TimeOf(time.Now().Add(-2*time.Minute))); err != nil {
				t.Fatal(err)
			}
			retry := a.do("POST", "/api/v1/customers", a.key, body, "Idempotency-Key", "crash-1")
			var n int
			if err := a.DB.QueryRowContext(ctx, `SELECT count(*) FROM customers WHERE name = 'Crash Ltd'`).Scan(&n); err != nil {
				t.Fatal(err)
			}
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
