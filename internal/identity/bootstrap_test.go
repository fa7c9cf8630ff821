package identity_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/identity"
)

// TestBootstrapConcurrentNodes starts several nodes at once on empty data
// (on PostgreSQL each with its own connection pool, as separate processes
// have): exactly one creates the default tenant and the admin key, the
// others find it and fail nothing.
func TestBootstrapConcurrentNodes(t *testing.T) {
	t.Parallel()
	const nodes = 4
	for _, e := range dbtest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			handles := make([]*db.DB, nodes)
			if e == db.Postgres {
				u := dbtest.NewSchema(t)
				for i := range handles {
					d, err := db.Open(context.Background(), db.Options{URL: u})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { d.Close() })
					handles[i] = d
				}
				if _, err := handles[0].Migrate(context.Background()); err != nil {
					t.Fatal(err)
				}
			} else {
				d := dbtest.Open(t, e) // one process owns a SQLite file
				for i := range handles {
					handles[i] = d
				}
			}
			clock := abacus.NewFakeClock(time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC))
			var wg sync.WaitGroup
			start := make(chan struct{})
			keys := make([]string, nodes)
			errs := make([]error, nodes)
			for i, d := range handles {
				svc := identity.NewService(d, clock, slog.New(slog.DiscardHandler))
				wg.Go(func() {
					<-start
					_, keys[i], errs[i] = svc.Bootstrap(context.Background(), "abk_bootstrap_concurrent_0123456789")
				})
			}
			close(start)
			wg.Wait()
			created := 0
			for i := range nodes {
				if errs[i] != nil {
					t.Errorf("node %d: %v", i, errs[i])
				}
				if keys[i] != "" {
					created++
				}
			}
			var tenants, apiKeys int
			if err := handles[0].QueryRowContext(context.Background(), `SELECT count(*) FROM tenants`).Scan(&tenants); err != nil {
				t.Fatal(err)
			}
			if err := handles[0].QueryRowContext(context.Background(), `SELECT count(*) FROM api_keys`).Scan(&apiKeys); err != nil {
				t.Fatal(err)
			}
			if created != 1 || tenants != 1 || apiKeys != 1 {
				t.Fatalf("%d nodes said they bootstrapped, %d tenants, %d API keys; want 1 each", created, tenants, apiKeys)
			}
		})
	}
}
