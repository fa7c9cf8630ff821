package httpapi_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// putKey stores an Idempotency-Key row as the middleware leaves it:
// answered (status 201) or a claim without an answer (status 0).
func putKey(t *testing.T, d *db.DB, tenant, key string, status int, at time.Time) {
	t.Helper()
	if _, err := d.ExecContext(context.Background(), `INSERT INTO idempotency_keys
		(tenant_id, key, method, path, request_hash, status, content_type, body, created_at, claim)
		VALUES ($1, $2, 'POST', '/things', 'h', $3, 'application/json', $4, $5, $6)`,
		tenant, key, status, []byte(`{}`), db.TimeOf(at), abacus.NewID("idc")); err != nil {
		t.Fatal(err)
	}
}

// keysLeft lists the keys stored, sorted.
func keysLeft(t *testing.T, d *db.DB) []string {
	t.Helper()
	rows, err := d.QueryContext(context.Background(), `SELECT key FROM idempotency_keys`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// Keys older than the window go, of every tenant, answered or abandoned;
// younger ones stay, and so does the claim of a request still running,
// which then answers and is replayed as usual. A purged key is new again.
func TestKeyRetentionDeletesOnlyOldKeys(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		running := make(chan struct{})
		b := setupIdem(t, d, step{write: "tx", then: "ok", wait: running}, step{write: "tx", then: "ok"})
		now := time.Now()
		putKey(t, d, "ten_1", "old-answered", 201, now.Add(-25*time.Hour))
		putKey(t, d, "ten_2", "old-other-tenant", 201, now.Add(-48*time.Hour))
		putKey(t, d, "ten_1", "old-abandoned", 0, now.Add(-25*time.Hour))
		putKey(t, d, "ten_1", "recent", 201, now.Add(-23*time.Hour))
		first := b.postAsync() // key k-1, its handler waits
		b.awaitCalls(1)

		keys := httpapi.NewKeyRetention(d, httpapi.KeyRetentionConfig{}, abacus.NewFakeClock(now), slog.New(slog.DiscardHandler))
		n, err := keys.Purge(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if left := keysLeft(t, d); n != 3 || !slices.Equal(left, []string{"k-1", "recent"}) {
			t.Fatalf("purged %d, left %v; want the 3 keys older than 24h gone, k-1 (in progress) and recent kept", n, left)
		}
		close(running)
		if got := <-first; got.status != 201 {
			t.Fatalf("the request running during the purge answered %d %s, want 201", got.status, got.body)
		}
		if status, body := b.post(t); status != 201 || b.calls() != 1 {
			t.Fatalf("retry of k-1: %d %s after %d runs; want its stored answer replayed", status, body, b.calls())
		}

		// A day later k-1 is purged too, and the same key runs as new.
		if _, err := d.ExecContext(context.Background(), `UPDATE idempotency_keys SET created_at = $1 WHERE key = 'k-1'`,
			db.TimeOf(now.Add(-25*time.Hour))); err != nil {
			t.Fatal(err)
		}
		if _, err := keys.Purge(context.Background()); err != nil {
			t.Fatal(err)
		}
		if status, body := b.post(t); status != 201 || b.calls() != 2 {
			t.Fatalf("k-1 after its row was purged: %d %s after %d runs; want it run as a new request", status, body, b.calls())
		}
	})
}

// One transaction deletes at most Batch keys, oldest first; Purge goes on
// batch after batch until none is older than the window.
func TestKeyRetentionDeletesInBoundedBatches(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		now := time.Now()
		for i, k := range []string{"a", "b", "c", "d", "e"} {
			putKey(t, d, "ten_1", k, 201, now.Add(-30*time.Hour+time.Duration(i)*time.Minute))
		}
		putKey(t, d, "ten_1", "young", 201, now.Add(-time.Hour))
		keys := httpapi.NewKeyRetention(d, httpapi.KeyRetentionConfig{Batch: 2}, abacus.NewFakeClock(now), slog.New(slog.DiscardHandler))
		n, err := keys.PurgeBatch(context.Background(), now.Add(-24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if left := keysLeft(t, d); n != 2 || !slices.Equal(left, []string{"c", "d", "e", "young"}) {
			t.Fatalf("one batch deleted %d, left %v; want the 2 oldest gone", n, left)
		}
		n, err = keys.Purge(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if left := keysLeft(t, d); n != 3 || !slices.Equal(left, []string{"young"}) {
			t.Fatalf("purge deleted %d, left %v; want the other 3 old keys gone", n, left)
		}
	})
}

// BenchmarkKeyRetentionBatch is one purge transaction: 1,000 keys a day
// old (answers of 300 bytes) deleted from among 20,000 younger ones — how
// long the purge holds the writer per batch.
func BenchmarkKeyRetentionBatch(b *testing.B) {
	for _, e := range dbtest.Engines {
		b.Run(string(e), func(b *testing.B) {
			d := dbtest.Open(b, e)
			ctx := context.Background()
			now := time.Now()
			body := make([]byte, 300)
			put := func(n int, at time.Time) {
				err := d.InTx(ctx, func(tx *db.Tx) error {
					rows := make([][]any, n)
					for i := range rows {
						rows[i] = []any{"ten_1", abacus.NewID("k"), "POST", "/things", "h", 201, "application/json", body, db.TimeOf(at.Add(time.Duration(i) * time.Millisecond))}
					}
					return tx.InsertRows(ctx, `INSERT INTO idempotency_keys (tenant_id, key, method, path, request_hash, status, content_type, body, created_at)`, "", rows)
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			put(20_000, now.Add(-time.Hour))
			keys := httpapi.NewKeyRetention(d, httpapi.KeyRetentionConfig{}, abacus.NewFakeClock(now), slog.New(slog.DiscardHandler))
			cutoff := now.Add(-24 * time.Hour)
			for b.Loop() {
				b.StopTimer()
				put(1000, now.Add(-25*time.Hour))
				b.StartTimer()
				if n, err := keys.PurgeBatch(ctx, cutoff); err != nil || n != 1000 {
					b.Fatalf("purged %d, %v; want 1000", n, err)
				}
			}
		})
	}
}
