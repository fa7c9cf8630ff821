package risk

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// A counter created while events flow counts every stored event once:
// those stored before it (backfilled from the database), those decided
// while it was being created (decided without it, or with it, committed
// before or after the backfill read them) and those after.
func TestCounterCreatedMidStreamCountsEveryEventOnce(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		svc, err := NewService(d, abacus.SystemClock{}, slog.New(slog.DiscardHandler), Config{HashKey: bytes.Repeat([]byte{7}, 32)})
		if err != nil {
			t.Fatal(err)
		}
		ctx := abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: "ten_m", Kind: "api_key", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
		if err := svc.Start(ctx, nil); err != nil {
			t.Fatal(err)
		}
		defer svc.Stop()
		var sent atomic.Int64
		var sum atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					amount := 1 + (g*1000+i)%7
					body := fmt.Sprintf(`{"type":"payment","customer_id":"c","device_id":"d%d","amount":"%d.00","currency":"EUR"}`, g, amount)
					if _, _, err := svc.Decide(ctx, []byte(body), true); err != nil {
						t.Error(err)
						return
					}
					sent.Add(1)
					sum.Add(int64(amount))
				}
			})
		}
		for sent.Load() < 200 {
			if t.Failed() {
				t.FailNow()
			}
			runtime.Gosched()
		}
		for _, in := range []CounterInput{
			{Name: "payments_1h", Key: "customer_id", Op: OpCount, Window: "1h"},
			{Name: "amount_1h", Key: "customer_id", Op: OpSum, Of: "amount", Window: "1h"},
			{Name: "devices_1h", Key: "customer_id", Op: OpDistinct, Of: "device_id", Window: "1h"},
		} {
			if _, err := svc.CreateCounter(ctx, in); err != nil {
				t.Fatal(err)
			}
			at := sent.Load()
			for sent.Load() < at+100 {
				if t.Failed() {
					t.FailNow()
				}
				runtime.Gosched()
			}
		}
		close(stop)
		wg.Wait()
		ds, _, err := svc.Decide(ctx, []byte(`{"type":"payment","customer_id":"c","amount":"0","currency":"EUR"}`), false)
		if err != nil {
			t.Fatal(err)
		}
		var stored, storedSum int64
		if err := d.QueryRowContext(ctx, `SELECT COUNT(*) FROM risk_events WHERE tenant_id = 'ten_m'`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		storedSum = sum.Load()
		c := ds[0].Features.Counters
		t.Logf("%d events sent, %d stored; counters %v", sent.Load(), stored, c)
		if stored != sent.Load() {
			t.Fatalf("%d events stored, %d acknowledged", stored, sent.Load())
		}
		if int64(c["payments_1h"])-1 != stored || int64(c["amount_1h"]) != storedSum || c["devices_1h"] != 4 {
			t.Errorf("counters %v; want payments_1h %d (the question included), amount_1h %d, devices_1h 4", c, stored+1, storedSum)
		}
	})
}

// After a gap in the stream of other nodes' events, every counter is
// rebuilt from the database while events flow (resyncCounters), and
// still counts every stored event once.
func TestResyncCountersWhileEventsFlow(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		svc, err := NewService(d, abacus.SystemClock{}, slog.New(slog.DiscardHandler), Config{HashKey: bytes.Repeat([]byte{8}, 32)})
		if err != nil {
			t.Fatal(err)
		}
		ctx := abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: "ten_r", Kind: "api_key", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
		if err := svc.Start(ctx, nil); err != nil {
			t.Fatal(err)
		}
		defer svc.Stop()
		if _, err := svc.CreateCounter(ctx, CounterInput{Name: "payments_1h", Key: "customer_id", Op: OpCount, Window: "1h"}); err != nil {
			t.Fatal(err)
		}
		var sent atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, _, err := svc.Decide(ctx, fmt.Appendf(nil, `{"type":"payment","customer_id":"c","device_id":"d%d","amount":"1.00","currency":"EUR"}`, g), true); err != nil {
						t.Error(err)
						return
					}
					sent.Add(1)
				}
			})
		}
		for range 3 {
			for at := sent.Load(); sent.Load() < at+150 && !t.Failed(); {
				runtime.Gosched()
			}
			svc.resyncCounters()
		}
		for building := true; building; {
			building = false
			for _, st := range svc.counters.all() {
				st.mu.Lock()
				building = building || st.building
				st.mu.Unlock()
			}
			runtime.Gosched()
		}
		close(stop)
		wg.Wait()
		ds, _, err := svc.Decide(ctx, []byte(`{"type":"payment","customer_id":"c","amount":"0","currency":"EUR"}`), false)
		if err != nil {
			t.Fatal(err)
		}
		if got := int64(ds[0].Features.Counters["payments_1h"]) - 1; got != sent.Load() {
			t.Errorf("after three resyncs under load: counted %d, %d stored", got, sent.Load())
		}
	})
}
