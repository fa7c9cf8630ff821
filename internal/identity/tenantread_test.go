package identity_test

import (
	"context"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/identity"
)

// The tenant read API other modules use instead of naming identity's tables.
func TestTenantReadAPI(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		clock := abacus.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		svc := identity.NewService(d, clock, nil)
		if ids, err := identity.TenantIDs(ctx, d, 2); err != nil || len(ids) != 0 {
			t.Fatalf("empty database: %v %v", ids, err)
		}
		first, err := svc.CreateTenant(ctx, "First")
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		if _, err := svc.CreateTenant(ctx, "Second"); err != nil {
			t.Fatal(err)
		}
		if ids, err := identity.TenantIDs(ctx, d, 1); err != nil || len(ids) != 1 || ids[0] != first.ID {
			t.Fatalf("first tenant: %v %v, want %s", ids, err, first.ID)
		}
		if ok, err := identity.TenantExists(ctx, d, first.ID); err != nil || !ok {
			t.Fatalf("exists: %v %v", ok, err)
		}
		if ok, err := identity.TenantExists(ctx, d, "ten_nope"); err != nil || ok {
			t.Fatalf("a missing tenant exists: %v %v", ok, err)
		}
		if name, err := identity.TenantName(ctx, d, first.ID); err != nil || name != "First" {
			t.Fatalf("name: %q %v", name, err)
		}
		if _, err := identity.TenantName(ctx, d, "ten_nope"); abacus.ErrorKind(err) != abacus.KindNotFound {
			t.Fatalf("missing tenant's name: %v", err)
		}
	})
}
