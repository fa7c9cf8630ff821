package usage_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/metering/usage"
)

// within fails the test when fn takes longer than d, without waiting for
// a call that never returns.
func within(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	start := time.Now()
	go func() { defer close(done); fn() }()
	select {
	case <-done:
		t.Logf("%s took %s", what, time.Since(start))
	case <-time.After(d):
		t.Fatalf("%s took more than %s", what, d)
	}
}

// A schema stored before depth was bounded (issue 12: 6,000 levels, which
// took minutes to compile on every rules reload) is refused when loaded,
// not applied, and stalls neither start-up, its tenant nor another tenant.
func TestStoredDeepSchemaStallsNoOne(t *testing.T) {
	t.Parallel()
	runBoth(t, func(t *testing.T, d *db.DB) {
		b := setupRules(t, d)
		other := b.newTenant()
		deep := strings.Repeat(`{"items":`, 6000) + `{"type":"integer"}` + strings.Repeat(`}`, 6000)
		ctx := context.Background()
		for typ, doc := range map[string]string{"llm": deep, "checked": tokenSchema} {
			if _, err := d.ExecContext(ctx, `INSERT INTO event_type_schemas (tenant_id, event_type, schema, created_at, updated_at)
				VALUES ($1, $2, $3, 0, 0)`, b.tenant, typ, doc); err != nil {
				t.Fatal(err)
			}
		}
		b.svc.Rules().Invalidate() // as a reload after a change does

		// A process starting on this data warms its cache in the
		// background and answers another tenant at once.
		fresh := usage.NewRules(d, slog.New(slog.DiscardHandler))
		wctx, cancel := context.WithCancel(ctx)
		watched := make(chan struct{})
		go func() { defer close(watched); fresh.Watch(wctx) }()
		t.Cleanup(func() { cancel(); <-watched })
		pctx := abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: b.tenant, Kind: "api_key", ID: "t"})
		within(t, 2*time.Second, "loading the tenant's rules on a fresh process", func() {
			tr, err := fresh.For(pctx, b.tenant)
			if err != nil || tr == nil || tr.Schemas["checked"] == nil || tr.Schemas["llm"] != nil {
				t.Errorf("rules: %+v, %v; want only the usable schema", tr, err)
			}
		})

		within(t, 2*time.Second, "ingesting for another tenant", func() {
			b.ingest(other, ceBatch, batch(ev("o1", "c1", "llm", "2026-03-10T10:00:00Z", `{"tokens":"x"}`)))
		})
		within(t, 2*time.Second, "ingesting the refused schema's type", func() {
			b.ingest(b.key, ceBatch, batch(ev("a1", "c1", "llm", "2026-03-10T10:00:00Z", `{"tokens":"x"}`)))
		})
		within(t, 2*time.Second, "ingesting a type with a usable schema", func() {
			r := b.do("POST", "/api/v1/events", b.key, ceBatch, batch(ev("a2", "c1", "checked", "2026-03-10T10:00:00Z", `{"tokens":-1,"model":"a"}`)))
			if r.status != http.StatusBadRequest {
				t.Errorf("the usable schema is still applied: want 400, got %d %s", r.status, r.body)
			}
		})
	})
}
