package risk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// benchService is a service on SQLite with the benchmark's 10 counters
// and 20 active rules (those of scripts/bench-risk.sh).
func benchService(b testing.TB) (*Service, context.Context) {
	d := dbtest.Open(b, db.SQLite)
	svc, err := NewService(d, abacus.SystemClock{}, slog.New(slog.DiscardHandler), Config{HashKey: bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		b.Fatal(err)
	}
	ctx := abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: "ten_bench", Kind: "api_key", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
	for _, c := range benchCounters {
		if _, err := svc.CreateCounter(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	for i, r := range benchRules {
		rule, err := svc.CreateRule(ctx, RuleInput{Name: fmt.Sprint("rule ", i), Action: r[0], Logic: json.RawMessage(r[1])})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := svc.ActivateRule(ctx, rule.ID, 0); err != nil {
			b.Fatal(err)
		}
	}
	if err := svc.Start(ctx, nil); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(svc.Stop)
	return svc, ctx
}

var benchCounters = []CounterInput{
	{Name: "cards_per_device_10m", Key: "device_id", Op: OpDistinct, Of: "card_fingerprint", Window: "10m", EventTypes: []string{"payment"}},
	{Name: "events_per_ip_1h", Key: "ip", Op: OpCount, Window: "1h"},
	{Name: "amount_per_customer_7d", Key: "customer_id", Op: OpSum, Of: "amount", Window: "7d"},
	{Name: "devices_per_customer_1d", Key: "customer_id", Op: OpDistinct, Of: "device_id", Window: "1d"},
	{Name: "ips_per_customer_1d", Key: "customer_id", Op: OpDistinct, Of: "ip", Window: "1d"},
	{Name: "emails_per_device_1d", Key: "device_id", Op: OpDistinct, Of: "email", Window: "1d"},
	{Name: "payments_per_card_1h", Key: "card_fingerprint", Op: OpCount, Window: "1h", EventTypes: []string{"payment"}},
	{Name: "failed_logins_per_ip_10m", Key: "ip", Op: OpCount, Window: "10m", EventTypes: []string{"login"}},
	{Name: "orders_per_domain_1d", Key: "email_domain", Op: OpCount, Window: "1d", EventTypes: []string{"order"}},
	{Name: "amount_per_card_1d", Key: "card_fingerprint", Op: OpSum, Of: "amount", Window: "1d"},
}

var benchRules = [][2]string{
	{"block", `{">":[{"var":"counters.cards_per_device_10m"},1000000]}`},
	{"block", `{">":[{"var":"counters.events_per_ip_1h"},1000000000]}`},
	{"review", `{">":[{"var":"counters.amount_per_customer_7d"},1e15]}`},
	{"review", `{"and":[{">=":[{"var":"counters.devices_per_customer_1d"},5]},{">":[{"var":"event.amount"},500]}]}`},
	{"block", `{">=":[{"var":"counters.ips_per_customer_1d"},20]}`},
	{"review", `{">=":[{"var":"counters.emails_per_device_1d"},10]}`},
	{"block", `{">":[{"var":"counters.payments_per_card_1h"},1e12]}`},
	{"block", `{">":[{"var":"counters.failed_logins_per_ip_10m"},50]}`},
	{"review", `{">":[{"var":"counters.orders_per_domain_1d"},1e12]}`},
	{"review", `{">":[{"var":"counters.amount_per_card_1d"},1e15]}`},
	{"block", `{"in":[{"var":"event.email_domain"},["mailinator.com","guerrillamail.com","10minutemail.com"]]}`},
	{"review", `{"and":[{"==":[{"var":"event.type"},"order"]},{">":[{"var":"event.amount"},10000]}]}`},
	{"block", `{"==":[{"var":"event.card_bin"},"999999"]}`},
	{"review", `{"and":[{"var":"event.shipping_country"},{"!=":[{"var":"event.shipping_country"},{"var":["event.properties.billing_country","DE"]}]}]}`},
	{"block", `{">":[{"var":"graph.linked_labelled_fraud"},0]}`},
	{"review", `{">":[{"var":"graph.component_size"},1000]}`},
	{"review", `{">=":[{"var":"score"},90]}`},
	{"allow", `{"in":[{"var":"event.customer_id"},["vip-1","vip-2"]]}`},
	{"review", `{"and":[{"missing":["event.device_id"]},{">":[{"var":"event.amount"},100]}]}`},
	{"block", `{"<":[{"var":"event.amount"},0]}`},
}

// benchEvent is event n of the benchmark: 1,000 customers, devices and
// cards, 250 IPs.
func benchEvent(n int) []byte {
	return fmt.Appendf(nil, `{"type":"order","customer_id":"crm-%d","device_id":"dev-%d","ip":"203.0.%d.%d","email":"u%d@example.com","card_fingerprint":"fp_%d","card_bin":"424242","card_last4":"4242","shipping_address":{"line1":"1 Main St","city":"Berlin","postal_code":"10115","country":"DE"},"amount":"249.00","currency":"EUR","properties":{"items":3}}`,
		n%1000, n%997, n%250/100, n%100, n%1000, n%991)
}

// BenchmarkDecide is one event through validation, hashing, 10 counters,
// 20 rules and the group commit into SQLite, from parallel callers.
func BenchmarkDecide(b *testing.B) {
	svc, ctx := benchService(b)
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer() // count the decisions, not the service's setup
	var seq int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := int(addInt(&seq))
			if _, _, err := svc.Decide(ctx, benchEvent(n), true); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkDecidePipeline is the same without the database: validation,
// hashing, counters and rules only.
func BenchmarkDecidePipeline(b *testing.B) {
	svc, ctx := benchService(b)
	tc, err := svc.config(ctx, "ten_bench")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		evs, _, err := svc.parse.Parse("ten_bench", benchEvent(i), nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := svc.decide(ctx, tc, evs[0], true); err != nil {
			b.Fatal(err)
		}
	}
}

func addInt(p *int64) int64 { return atomic.AddInt64(p, 1) }

// BenchmarkBacktest replays stored events through one draft rule. The
// events are written straight into the table (as the group commit writes
// them); ABACUS_RISK_BACKTEST_EVENTS sets how many (default 100,000; the
// target is 1,000,000 in at most 30 s). With ABACUS_RISK_BACKTEST_DB (a
// SQLite file), the events are written there once and read from it on
// later runs, so a timed run measures the backtest, not the seeding:
//
//	ABACUS_RISK_BACKTEST_EVENTS=1000000 ABACUS_RISK_BACKTEST_DB=/tmp/bt.db go test -run '^$' -bench Backtest -benchtime 1x ./internal/risk
func BenchmarkBacktest(b *testing.B) {
	n := 100_000
	if v := os.Getenv("ABACUS_RISK_BACKTEST_EVENTS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	d, seeded := backtestDB(b, n)
	svc, err := NewService(d, abacus.SystemClock{}, slog.New(slog.DiscardHandler), Config{HashKey: bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		b.Fatal(err)
	}
	ctx := abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: "ten_bench", Kind: "api_key", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
	if !seeded {
		if _, err := svc.CreateCounter(ctx, benchCounters[0]); err != nil {
			b.Fatal(err)
		}
		seedBacktest(b, d, svc, n)
	}
	r, err := svc.CreateRule(ctx, RuleInput{Name: "draft", Action: Block, Logic: json.RawMessage(`{"and":[{">=":[{"var":"counters.cards_per_device_10m"},6]},{">":[{"var":"event.amount"},100]}]}`)})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		cpu0 := cpuTime()
		bt, err := svc.RunBacktest(ctx, BacktestInput{Days: 30, Rules: []BacktestRef{{Rule: r.ID}}})
		b.ReportMetric((cpuTime() - cpu0).Seconds(), "cpu-s/backtest")
		if err != nil {
			b.Fatal(err)
		}
		if bt.Events != n || bt.Changed < n/7-1 || bt.Changed > n/7+1 {
			b.Fatalf("backtest of %d events: %d replayed, %d changed (want about %d)", n, bt.Events, bt.Changed, n/7)
		}
		b.ReportMetric(bt.TookMS/1000, "s/backtest")
	}
}

// backtestDB opens the backtest's database: a new one, or the file
// ABACUS_RISK_BACKTEST_DB names; seeded reports that it holds n events.
func backtestDB(b *testing.B, n int) (d *db.DB, seeded bool) {
	path := os.Getenv("ABACUS_RISK_BACKTEST_DB")
	if path == "" {
		return dbtest.Open(b, db.SQLite), false
	}
	ctx := context.Background()
	d, err := db.Open(ctx, db.Options{SQLitePath: path})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	if _, err := d.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	var have int
	if err := d.QueryRowContext(ctx, `SELECT COUNT(*) FROM risk_events WHERE tenant_id = 'ten_bench'`).Scan(&have); err != nil {
		b.Fatal(err)
	}
	if have != 0 && have != n {
		b.Fatalf("%s holds %d events, not %d: remove it", path, have, n)
	}
	return d, have == n
}

// seedBacktest writes n events over the 20 days before now, with the
// features a decision would have kept (every seventh event has 6 cards
// on its device: the draft rule changes those).
func seedBacktest(b *testing.B, d *db.DB, svc *Service, n int) {
	ctx := context.Background()
	now := time.Now()
	for start := 0; start < n; start += 5000 {
		var batch []*pending
		for i := start; i < min(start+5000, n); i++ {
			evs, _, err := svc.parse.Parse("ten_bench", benchEvent(i), nil)
			if err != nil {
				b.Fatal(err)
			}
			ev := evs[0]
			ev.Time = now.Add(-time.Duration(float64(n-i) / float64(n) * float64(20*24*time.Hour)))
			dec := &Decision{ID: abacus.NewID("rdec"), EventID: ev.ID, Decision: Allow, CreatedAt: now,
				Features: Features{Counters: map[string]float64{"cards_per_device_10m": float64(i % 7)}, Lists: map[string]bool{}}}
			evJSON, _ := json.Marshal(ev)
			fJSON, _ := json.Marshal(basisOf(dec))
			dJSON, _ := json.Marshal(recordOf(dec, ev, true, ""))
			batch = append(batch, &pending{tenant: "ten_bench", ev: ev, d: dec, evJSON: evJSON, fJSON: fJSON, dJSON: dJSON, received: now})
		}
		if err := d.InTx(ctx, func(tx *db.Tx) error { return insertDecided(ctx, tx, batch) }); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPrune is one prune pass over a counter holding the series of
// 100,000 customers, nothing expired: what the pass costs in all (the
// lock is let go every pruneStride series).
func BenchmarkPrune(b *testing.B) {
	w, _ := ParseWindow("7d")
	st := newCounterState(Counter{ID: "c", Name: "orders_7d", Key: "customer_id", Op: OpCount, window: w})
	now := time.Now()
	for i := range 200_000 {
		st.add(&Event{ID: fmt.Sprint(i), Type: "order", Time: now.Add(-time.Duration(i) * 3 * time.Second), CustomerID: fmt.Sprint("c", i%100_000)}, true)
	}
	b.ResetTimer()
	for range b.N {
		st.prune(now)
	}
}

// BenchmarkCountersMark is what the counters cost the garbage collector:
// the benchmark's 10 counters over 200,000 events of 100,000 customers
// (each with a device, card, IP and e-mail of its own, as the bench's
// varied events), then one forced collection per op; ns/op is the
// collection's wall time, objects the heap's live objects.
func BenchmarkCountersMark(b *testing.B) {
	now := time.Now()
	var states []*counterState
	for _, in := range benchCounters {
		def, err := in.validate()
		if err != nil {
			b.Fatal(err)
		}
		states = append(states, newCounterState(def))
	}
	types := []string{TypeOrder, TypePayment, TypeLogin}
	for i := range 200_000 {
		c := i % 100_000
		ev := &Event{ID: fmt.Sprint("rev_", i), Type: types[i%3], Time: now.Add(-time.Duration(200_000-i) * time.Second / 10),
			CustomerID: fmt.Sprint("g-", c), DeviceID: fmt.Sprint("dev-", c, "-", i%2), CardFingerprint: fmt.Sprint("fp-", c),
			IP: fmt.Sprint("10.0.", c%256, ".", c/256%256), Email: fmt.Sprint("g-", c, "@example.com"), Amount: "12.50"}
		ev.finish()
		for _, st := range states {
			st.add(ev, true)
		}
	}
	runtime.GC()
	b.ResetTimer()
	for range b.N {
		runtime.GC()
	}
	b.StopTimer()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapObjects), "objects")
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MiB")
	runtime.KeepAlive(states)
}
