package analytics

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/natsbus"
	"github.com/abacusbilling/abacus/internal/outbox"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// publishing opens an embedded JetStream and runs the outbox relay on dd
// into it until the test ends.
func publishing(t *testing.T, dd *db.DB) (context.Context, *natsbus.Bus) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	bus, err := natsbus.Open(ctx, natsbus.Options{StoreDir: filepath.Join(t.TempDir(), "nats")})
	must(t, err)
	t.Cleanup(func() { cancel(); bus.Close() })
	relay := outbox.NewRelay(dd, bus, outbox.RelayConfig{}, slog.New(slog.DiscardHandler), nil)
	go func() { _ = relay.Run(ctx) }()
	return ctx, bus
}

// TestConsumerFoldsPublishedEvents runs the real path: subscription
// changes recorded in the outbox, the relay publishing them to an embedded
// JetStream, and the analytics consumer folding them; a consumer started
// again (a restart) redelivers nothing twice.
func TestConsumerFoldsPublishedEvents(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, dd *db.DB) {
		ctx, bus := publishing(t, dd)
		now := time.Now().UTC()
		b := newBundle(t, dd, now)
		pro := b.plan("pro", "EUR", "49", period.Monthly, 0)
		run := func() context.CancelFunc {
			cctx, stop := context.WithCancel(ctx)
			go func() { _ = b.svc.Run(cctx, bus) }()
			return stop
		}
		stop := run()
		for i := range 3 {
			q := decimal.NewFromInt(int64(i + 1))
			_, err := b.subs.Create(b.ctx, subscription.CreateInput{CustomerID: b.customer("C", "EUR"), PlanID: pro, Quantity: &q})
			must(t, err)
		}
		want := "294.0000" // 49 × (1 + 2 + 3)
		waitMRR := func() {
			t.Helper()
			deadline := time.Now().Add(60 * time.Second)
			for {
				pts, err := b.svc.MRR(b.ctx, Query{Interval: "day", Currency: "EUR"})
				must(t, err)
				if last := pts[len(pts)-1]; last.MRR == want && last.Customers == 3 {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("MRR today is %+v, want %s from 3 customers", pts[len(pts)-1], want)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		waitMRR()
		stop()
		journaled := func(want int) {
			t.Helper()
			deadline := time.Now().Add(60 * time.Second)
			for {
				var n int
				must(t, dd.QueryRowContext(context.Background(), `SELECT count(*) FROM analytics_events WHERE tenant_id = $1`, b.tenant).Scan(&n))
				if n == want {
					return
				}
				if n > want || time.Now().After(deadline) {
					t.Fatalf("%d events journaled, want %d", n, want)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		journaled(6) // created + activated per subscription
		// Restarted: the durable consumer resumes where it was.
		stop = run()
		defer stop()
		q := decimal.NewFromInt(1)
		_, err := b.subs.Create(b.ctx, subscription.CreateInput{CustomerID: b.customer("D", "EUR"), PlanID: pro, Quantity: &q})
		must(t, err)
		want = "343.0000"
		deadline := time.Now().Add(60 * time.Second)
		for {
			pts, err := b.svc.MRR(b.ctx, Query{Interval: "day", Currency: "EUR"})
			must(t, err)
			if last := pts[len(pts)-1]; last.MRR == want && last.Customers == 4 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after the restart MRR today is %+v, want %s", pts[len(pts)-1], want)
			}
			time.Sleep(50 * time.Millisecond)
		}
		journaled(8)
	})
}

// flakyVersions fails every read of one plan version while failing is
// set, as a database that drops a connection would.
type flakyVersions struct {
	Versions
	version string
	failing atomic.Bool
	failed  atomic.Int32
}

func (f *flakyVersions) LoadVersion(ctx context.Context, q db.Querier, tenant, id string) (catalog.Version, error) {
	if id == f.version && f.failing.Load() {
		f.failed.Add(1)
		return catalog.Version{}, errors.New("connection reset (test)")
	}
	return f.Versions.LoadVersion(ctx, q, tenant, id)
}

// TestConsumerRetriesAFailedBatchBeforeLaterEvents: a subscription's
// first events fail to fold; its plan change, published while they fail,
// must not be folded before them, or the older plan's MRR would win.
// (With outbox.Subscription.InOrder off, the failed batch comes back after
// the plan change and MRR ends at 49 instead of 99.)
func TestConsumerRetriesAFailedBatchBeforeLaterEvents(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, dd *db.DB) {
		ctx, bus := publishing(t, dd)
		b := newBundle(t, dd, time.Now().UTC())
		pro, business := b.plan("pro", "EUR", "49", period.Monthly, 0), b.plan("business", "EUR", "99", period.Monthly, 0)
		proVersion, err := b.cat.GetVersion(b.ctx, pro, 1)
		must(t, err)
		flaky := &flakyVersions{Versions: b.cat, version: proVersion.ID}
		svc := NewService(dd, flaky, b.clock, slog.New(slog.DiscardHandler), Ports{})
		go func() { _ = svc.Run(ctx, bus) }()

		flaky.failing.Store(true)
		s, err := b.subs.Create(b.ctx, subscription.CreateInput{CustomerID: b.customer("C", "EUR"), PlanID: pro})
		must(t, err)
		for deadline := time.Now().Add(30 * time.Second); flaky.failed.Load() == 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the subscription's events never reached the projection")
			}
		}
		_, err = b.subs.ChangePlan(b.ctx, s.ID, subscription.ChangePlanInput{PlanID: business, When: subscription.Now})
		must(t, err)
		// Long enough for the plan change to be published and, were the
		// failed batch handed back to the stream, folded first.
		time.Sleep(1500 * time.Millisecond)
		flaky.failing.Store(false)

		deadline := time.Now().Add(60 * time.Second)
		for {
			var n int
			must(t, dd.QueryRowContext(ctx, `SELECT count(*) FROM analytics_events WHERE tenant_id = $1`, b.tenant).Scan(&n))
			pts, err := svc.MRR(b.ctx, Query{Interval: "day", Currency: "EUR"})
			must(t, err)
			last := pts[len(pts)-1]
			if n == 3 { // created, activated, plan_changed
				if last.MRR != "99.0000" {
					t.Fatalf("MRR today is %s after every event was folded, want 99.0000 (the plan change last)", last.MRR)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d events journaled, want 3; MRR today %s", n, last.MRR)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}
