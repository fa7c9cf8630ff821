package identity_test

import (
	"context"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/identity"
)

// TestRotateKeys: after a rotation (as `abacus keys rotate` does, from
// another Service on the same database), tokens signed with the old key
// still verify until they expire, and new tokens use the new key.
func TestRotateKeys(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.SQLite)
	e := newEnv(t, d)
	pw := "correct horse battery staple 7"
	e.signup("k@k.test", pw, "K")
	old := e.want(e.login("k@k.test", pw), 200).str(t, "access_token")
	jwks1 := string(e.want(e.do("GET", "/.well-known/jwks.json", "", nil), 200).body)

	other := newEnv(t, d) // a second node / the CLI
	kept, err := other.svc.RotateKeys(context.Background())
	if err != nil || len(kept) != 2 || kept[0].RetireAfter == nil || kept[1].RetireAfter != nil {
		t.Fatalf("rotate: %+v %v", kept, err)
	}
	// The first node learns the new key when it sees a token signed with it.
	other.clock.Set(e.clock.Now())
	other.signup("k2@k.test", pw, "K2")
	fresh := other.want(other.login("k2@k.test", pw), 200).str(t, "access_token")
	e.want(e.do("GET", "/api/v1/me", fresh, nil), 200)
	e.want(e.do("GET", "/api/v1/me", old, nil), 200)
	jwks2 := string(other.want(other.do("GET", "/.well-known/jwks.json", "", nil), 200).body)
	if jwks1 == jwks2 {
		t.Fatal("JWKS unchanged after rotation")
	}
	// After the old key retires, it is gone from the JWKS and its tokens fail.
	other.clock.Advance(20 * time.Minute)
	other.problem(other.do("GET", "/api/v1/me", old, nil), 401, "token_invalid") // its key has retired
	if n := countKeys(t, d); n != 1 {
		t.Fatalf("want the retired key pruned from the store, got %d keys", n)
	}
}

func countKeys(t *testing.T, d *db.DB) int {
	var n int
	if err := d.QueryRowContext(context.Background(), `SELECT count(*) FROM signing_keys`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAPIKeyOutlivesADatabaseOutage: when the database cannot be read, a
// key seen recently still authenticates for a bounded time (ingestion
// needs nothing else from the database); a key never seen does not, nor
// one past the bound.
func TestAPIKeyOutlivesADatabaseOutage(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.SQLite)
	e := newEnv(t, d)
	ctx := context.Background()
	_, key, err := e.svc.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := e.svc.Bootstrap(ctx, "")
	if err != nil || other != "" {
		t.Fatalf("a second bootstrap made a key: %q %v", other, err)
	}
	if _, err := e.svc.Authenticate(ctx, key); err != nil {
		t.Fatal(err)
	}
	d.Close() // the database is gone
	e.clock.Advance(time.Minute)
	if p, err := e.svc.Authenticate(ctx, key); err != nil || p == nil {
		t.Fatalf("a key seen a minute ago, database down: %v", err)
	}
	if _, err := e.svc.Authenticate(ctx, identity.KeyPrefix+"unknown"); err == nil {
		t.Fatal("a key never seen authenticated without the database")
	}
	e.clock.Advance(10 * time.Minute)
	if _, err := e.svc.Authenticate(ctx, key); err == nil {
		t.Fatal("a key seen 11 minutes ago authenticated without the database")
	}
}
