package analytics

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/natsbus"
	"github.com/abacusbilling/abacus/internal/outbox"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// TestConsumerFoldsPublishedEvents runs the real path: subscription
// changes recorded in the outbox, the relay publishing them to an embedded
// JetStream, and the analytics consumer folding them; a consumer started
// again (a restart) redelivers nothing twice.
func TestConsumerFoldsPublishedEvents(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, dd *db.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		bus, err := natsbus.Open(ctx, natsbus.Options{StoreDir: filepath.Join(t.TempDir(), "nats")})
		must(t, err)
		defer bus.Close()
		now := time.Now().UTC()
		b := newBundle(t, dd, now)
		pro := b.plan("pro", "EUR", "49", period.Monthly, 0)
		relay := outbox.NewRelay(dd, bus, outbox.RelayConfig{}, slog.New(slog.DiscardHandler), nil)
		go func() { _ = relay.Run(ctx) }()
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
		_, err = b.subs.Create(b.ctx, subscription.CreateInput{CustomerID: b.customer("D", "EUR"), PlanID: pro, Quantity: &q})
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
