// Package dbtest runs store tests against both engines. Every store test
// calls Run (or Open per engine), so the same assertions hold on SQLite and
// PostgreSQL: that is the conformance suite.
//
// PostgreSQL comes from ABACUS_TEST_DATABASE_URL, else
// postgres://postgres@127.0.0.1:5432/postgres. Each test gets its own
// schema, dropped afterwards. If PostgreSQL cannot be reached the test
// fails: the PostgreSQL half is never skipped silently. (scripts/test
// provides a server.)
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/abacusbilling/abacus/internal/db"
)

// Engines lists the engines every store test runs on.
var Engines = []db.Engine{db.SQLite, db.Postgres}

// Run runs fn as a subtest per engine, each with a fresh migrated database.
func Run(t *testing.T, fn func(t *testing.T, d *db.DB)) {
	t.Helper()
	for _, e := range Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			fn(t, Open(t, e))
		})
	}
}

// PostgresURL returns the base URL of the test PostgreSQL server.
func PostgresURL() string {
	if u := os.Getenv("ABACUS_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// Open returns a fresh, migrated database of engine e, closed (and on
// PostgreSQL dropped) when the test ends.
func Open(t testing.TB, e db.Engine) *db.DB {
	t.Helper()
	ctx := context.Background()
	var o db.Options
	switch e {
	case db.SQLite:
		o.SQLitePath = filepath.Join(t.TempDir(), "test.db")
	case db.Postgres:
		o.URL = NewSchema(t)
	}
	d, err := db.Open(ctx, o)
	if err != nil {
		t.Fatalf("opening %s: %v", e, err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatalf("migrating %s: %v", e, err)
	}
	return d
}

// NewSchema creates an empty PostgreSQL schema for this test and returns a
// URL whose connections use it. The schema is dropped when the test ends.
func NewSchema(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	base := PostgresURL()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("PostgreSQL is needed for this test and is not reachable at %s: %v\n"+
			"Run the suite with ./scripts/test (it provides one), or set ABACUS_TEST_DATABASE_URL.", base, err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("creating schema: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parsing %s: %v", base, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	q.Set("pool_max_conns", "4")
	u.RawQuery = q.Encode()
	return u.String()
}
