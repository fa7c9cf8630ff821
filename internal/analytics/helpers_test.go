package analytics

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/catalog/catalogtest"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/outbox"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/abacusbilling/abacus/internal/subscription"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// bundle is what an analytics test works with: the real catalog and
// subscription services on a fake clock, and the analytics service fed
// from the outbox.
type bundle struct {
	t      testing.TB
	d      *db.DB
	clock  *abacus.FakeClock
	ctx    context.Context
	tenant string
	cat    *catalog.Service
	subs   *subscription.Service
	svc    *Service
	fedSeq int64
}

func newBundle(t testing.TB, d *db.DB, start time.Time) *bundle {
	t.Helper()
	b := &bundle{t: t, d: d, clock: abacus.NewFakeClock(start), tenant: abacus.NewID("ten")}
	if _, err := d.ExecContext(context.Background(), `INSERT INTO tenants (id, name, created_at) VALUES ($1, 'Analytics test', 0)`, b.tenant); err != nil {
		t.Fatal(err)
	}
	b.ctx = tenantCtx(context.Background(), b.tenant)
	log := slog.New(slog.DiscardHandler)
	b.cat = catalog.NewService(d, b.clock, log, catalogtest.NewMemoryUsage())
	b.subs = subscription.NewService(b.cat, b.clock, log)
	b.svc = NewService(d, b.cat, b.clock, log, Ports{})
	return b
}

// plan creates and publishes a plan with one fixed fee per interval (and
// trialDays of trial), in currency.
func (b *bundle) plan(key, currency, fee string, iv period.Interval, trialDays int) string {
	b.t.Helper()
	p, err := b.cat.CreatePlan(b.ctx, catalog.PlanInput{Key: key, Name: key})
	must(b.t, err)
	spec := catalog.VersionSpec{BillingInterval: iv, TrialDays: trialDays, Currency: currency,
		Charges: []pricing.Charge{{Key: "base", Kind: pricing.ChargeFee, Fee: &pricing.Fee{Amount: d(fee)}}}}
	_, err = b.cat.CreateVersion(b.ctx, p.ID, spec)
	must(b.t, err)
	_, err = b.cat.PublishVersion(b.ctx, p.ID, 1)
	must(b.t, err)
	return p.ID
}

func (b *bundle) customer(name, currency string) string {
	b.t.Helper()
	c, err := b.cat.CreateCustomer(b.ctx, catalog.CustomerInput{Name: name, Currency: currency})
	must(b.t, err)
	return c.ID
}

// at moves the clock to t and runs the time-driven subscription
// transitions due by then.
func (b *bundle) at(t time.Time) {
	b.t.Helper()
	b.clock.Set(t)
	_, err := b.subs.Advance(context.Background(), t)
	must(b.t, err)
}

// feed applies every outbox event recorded since the last feed, in order,
// in batches of n, each batch twice (a redelivery changes nothing).
func (b *bundle) feed(n int) {
	b.t.Helper()
	rows, err := b.d.QueryContext(context.Background(), `SELECT seq, id, tenant_id, aggregate_type, aggregate_id, type, version, payload, created_at
		FROM outbox_events WHERE seq > $1 ORDER BY seq`, b.fedSeq)
	must(b.t, err)
	var events []outbox.Event
	for rows.Next() {
		var e outbox.Event
		var seq int64
		var payload string
		var at db.Time
		must(b.t, rows.Scan(&seq, &e.ID, &e.TenantID, &e.AggregateType, &e.AggregateID, &e.Type, &e.Version, &payload, &at))
		e.Payload, e.CreatedAt, b.fedSeq = []byte(payload), at.UTC(), seq
		events = append(events, e)
	}
	must(b.t, rows.Err())
	rows.Close()
	for i := 0; i < len(events); i += n {
		batch := events[i:min(i+n, len(events))]
		_, err := b.svc.Apply(context.Background(), batch)
		must(b.t, err)
		again, err := b.svc.Apply(context.Background(), batch)
		must(b.t, err)
		if again != 0 {
			b.t.Fatalf("a redelivered batch journaled %d events again", again)
		}
	}
}

// dump returns every derived row of the tenant, sorted, as text.
func (b *bundle) dump() string {
	b.t.Helper()
	var out []string
	for _, q := range []string{
		`SELECT subscription_id, customer_id, currency, status, mrr, base_mrr, fee FROM analytics_subscriptions WHERE tenant_id = $1`,
		`SELECT ` + redCols + ` FROM analytics_redemptions WHERE tenant_id = $1`,
		`SELECT customer_id, currency, mrr, day, day_start_mrr, ever_paid, collected, refunded FROM analytics_customers WHERE tenant_id = $1`,
		`SELECT currency, customer_id, day, mrr FROM analytics_customer_days WHERE tenant_id = $1`,
		`SELECT currency, day, ` + dayCols + ` FROM analytics_daily WHERE tenant_id = $1`,
		`SELECT currency, day, ` + dayCols + `, 'running' FROM analytics_running WHERE tenant_id = $1`,
		`SELECT id, currency, amount FROM analytics_documents WHERE tenant_id = $1`,
	} {
		rows, err := b.d.QueryContext(context.Background(), q, b.tenant)
		must(b.t, err)
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			must(b.t, rows.Scan(ptrs...))
			var parts []string
			for _, v := range vals {
				switch x := v.(type) {
				case []byte:
					parts = append(parts, string(x))
				default:
					parts = append(parts, fmt.Sprint(x))
				}
			}
			out = append(out, q[7:20]+"|"+strings.Join(parts, "|"))
		}
		must(b.t, rows.Err())
		rows.Close()
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}
