package casework

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/risk"
)

type prefixHash struct{}

func (prefixHash) Hash(tenant, kind, value string) string { return "h:" + kind + ":" + value }

// TestListEntryExpires: an entry matches (a block reason) until its
// expiry, then not; another tenant's event never matches.
func TestListEntryExpires(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		clock := abacus.NewFakeClock(time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC))
		s := New(d, clock, slog.New(slog.DiscardHandler), prefixHash{}, Config{})
		ctx := abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: "ten_a", Kind: "api_key", ID: "k"})
		l, err := s.CreateList(ctx, ListInput{Name: "blocked_devices", Action: "block"})
		if err != nil {
			t.Fatal(err)
		}
		exp := clock.Now().Add(time.Hour)
		e, err := s.AddListEntry(ctx, l.ID, ListEntryInput{Kind: "device_id", Value: "dev-1", ExpiresAt: &exp})
		if err != nil || e.Value != "h:device:dev-1" {
			t.Fatalf("entry %+v, %v", e, err)
		}
		ev := &risk.Event{Type: "login", CustomerID: "c1", DeviceID: "h:device:dev-1"}
		m, reasons, err := listPort{s}.Match(ctx, "ten_a", ev)
		if err != nil || !m["blocked_devices"] || len(reasons) != 1 || reasons[0].Action != "block" || reasons[0].Rule != "list:blocked_devices" {
			t.Fatalf("before expiry: %v %+v %v", m, reasons, err)
		}
		if m, _, _ := (listPort{s}).Match(ctx, "ten_b", ev); m["blocked_devices"] {
			t.Fatal("another tenant matched")
		}
		clock.Advance(2 * time.Hour)
		m, reasons, err = listPort{s}.Match(ctx, "ten_a", ev)
		if err != nil || m["blocked_devices"] || len(reasons) != 0 {
			t.Fatalf("after expiry: %v %+v %v", m, reasons, err)
		}
		past := clock.Now().Add(-time.Minute)
		if _, err := s.AddListEntry(ctx, l.ID, ListEntryInput{Kind: "device_id", Value: "dev-2", ExpiresAt: &past}); abacus.ErrorKind(err) != abacus.KindInvalid {
			t.Fatalf("an entry expired already: %v", err)
		}
	})
}
