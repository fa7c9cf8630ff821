package analytics

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/outbox"
	"github.com/abacusbilling/abacus/internal/payments"
)

// benchSubs is the number of subscriptions the benchmarks generate
// (ABACUS_ANALYTICS_BENCH_SUBS, default 100,000).
func benchSubs() int {
	if n, err := strconv.Atoi(os.Getenv("ABACUS_ANALYTICS_BENCH_SUBS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// generateHistory writes a journal of subs subscriptions over 24 months
// straight into analytics_events: each subscription starts on a random
// day of the first 18 months at one of four prices, 30 % change seats
// once, 20 % churn, 5 % come back; every month it is live it is invoiced
// (invoice.finalized) and paid (payment.succeeded). It returns the number
// of facts.
func generateHistory(b *testing.B, d *db.DB, tenant string, subs int, first time.Time) int {
	b.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	prices := []int64{29, 49, 99, 199}
	var rows [][]any
	n := 0
	flush := func() {
		must(b, d.InTx(context.Background(), func(tx *db.Tx) error {
			return tx.InsertRows(context.Background(), `INSERT INTO analytics_events (tenant_id, event_id, type, at, customer_id, ref_id,
				currency, amount, amount2, amount3, status, detail)`, "", rows)
		}))
		rows = rows[:0]
	}
	add := func(typ string, at time.Time, cus, ref, amount, amount2, amount3, status, detail string) {
		n++
		rows = append(rows, []any{tenant, abacus.NewID("evt"), typ, db.TimeOf(at), cus, ref, "EUR", amount, amount2, amount3, status, detail})
		if len(rows) == 5000 {
			flush()
		}
	}
	last := first.AddDate(0, 24, 0)
	for i := range subs {
		cus, sub := fmt.Sprintf("cus_%07d", i), fmt.Sprintf("sub_%07d", i)
		price := decimal.NewFromInt(prices[r.IntN(len(prices))])
		start := first.Add(time.Duration(r.IntN(18*30*24)) * time.Hour)
		mrr := price
		add("subscription.activated", start, cus, sub, mrr.String(), "0", "0", "active", "")
		var change, end, back time.Time
		if r.IntN(10) < 3 {
			change = start.Add(time.Duration(1+r.IntN(180*24)) * time.Hour)
		}
		if r.IntN(10) < 2 {
			end = start.Add(time.Duration(30*24+r.IntN(300*24)) * time.Hour)
			if r.IntN(4) == 0 {
				back = end.Add(time.Duration(30*24+r.IntN(90*24)) * time.Hour)
			}
		}
		for m := start; m.Before(last); m = m.AddDate(0, 1, 0) {
			if !change.IsZero() && !m.Before(change) && mrr.Equal(price) {
				mrr = price.Mul(decimal.NewFromInt(int64(2 + r.IntN(3))))
				add("subscription.quantity_changed", change, cus, sub, mrr.String(), "0", "0", "active", "active")
			}
			if !end.IsZero() && !m.Before(end) && (back.IsZero() || m.Before(back)) {
				if !mrr.IsZero() {
					add("subscription.ended", end, cus, sub, "0", "0", "0", "ended", "active")
					mrr = decimal.Zero
				}
				continue
			}
			if !back.IsZero() && !m.Before(back) && mrr.IsZero() {
				mrr = price
				add("subscription.activated", back, cus, sub+"b", mrr.String(), "0", "0", "active", "")
			}
			inv := fmt.Sprintf("inv_%07d_%s", i, m.Format("200601"))
			total := mrr.Mul(decimal.RequireFromString("1.19")).StringFixed(2)
			add("invoice.finalized", m, cus, inv, total, total, "0", "open", "")
			add("payment.succeeded", m.Add(time.Hour), cus, "pay_"+inv[4:], total, "0", "0", "paid", inv)
		}
	}
	if len(rows) > 0 {
		flush()
	}
	return n
}

// benchTenant is the tenant of the cached fixture.
const benchTenant = "ten_analytics_bench"

// benchFirst is the first day of the fixture's 24 months.
var benchFirst = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// fixtureDB opens the cached fixture of engine e: the journal of
// benchSubs() subscriptions over 24 months (generateHistory) folded once
// by a rebuild, in ABACUS_ANALYTICS_BENCH_DIR (default
// /tmp/abacus-analytics-bench; SQLite) or a PostgreSQL schema that is
// kept (analytics_bench_<subs>). It is built on first use — run
// BenchmarkAnalyticsFixture for that, outside any timing — and reused
// after, so the timed benchmarks start from the same rows.
func fixtureDB(b *testing.B, e db.Engine) *db.DB { return openFixture(b, e, false) }

// openFixture is fixtureDB; setup also rebuilds a fixture whose derived
// rows lack a table added since it was made (analytics_running).
func openFixture(b *testing.B, e db.Engine, setup bool) *db.DB {
	b.Helper()
	ctx := context.Background()
	dir := os.Getenv("ABACUS_ANALYTICS_BENCH_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "abacus-analytics-bench")
	}
	must(b, os.MkdirAll(dir, 0o755))
	n := benchSubs()
	o := db.Options{SQLitePath: filepath.Join(dir, fmt.Sprintf("fixture-%d.db", n))}
	if e == db.Postgres {
		schema := fmt.Sprintf("analytics_bench_%d", n)
		d, err := db.Open(ctx, db.Options{URL: dbtest.PostgresURL()})
		must(b, err)
		_, err = d.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+schema)
		d.Close()
		must(b, err)
		u, err := url.Parse(dbtest.PostgresURL())
		must(b, err)
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		o = db.Options{URL: u.String()}
	}
	d, err := db.Open(ctx, o)
	must(b, err)
	b.Cleanup(func() { d.Close() })
	_, err = d.Migrate(ctx)
	must(b, err)
	done := filepath.Join(dir, fmt.Sprintf("fixture-%d-%s.done", n, e))
	if _, err := os.Stat(done); err == nil {
		var running int
		must(b, d.QueryRowContext(ctx, `SELECT COUNT(*) FROM analytics_running WHERE tenant_id = $1`, benchTenant).Scan(&running))
		if setup && running == 0 {
			t0 := time.Now()
			_, err := NewService(d, nil, abacus.NewFakeClock(benchFirst), slog.New(slog.DiscardHandler), Ports{}).Rebuild(ctx, benchTenant)
			must(b, err)
			b.Logf("%s fixture rebuilt for analytics_running in %s (untimed setup)", e, time.Since(t0).Round(time.Millisecond))
		}
		return d
	}
	for _, t := range append([]string{"analytics_events"}, derivedTables...) {
		_, err := d.ExecContext(ctx, `DELETE FROM `+t)
		must(b, err)
	}
	t0 := time.Now()
	facts := generateHistory(b, d, benchTenant, n, benchFirst)
	gen := time.Since(t0)
	svc := NewService(d, nil, abacus.NewFakeClock(benchFirst), slog.New(slog.DiscardHandler), Ports{})
	t0 = time.Now()
	_, err = svc.Rebuild(ctx, benchTenant)
	must(b, err)
	b.Logf("%s fixture: %d facts of %d subscriptions generated in %s, first rebuild %s (untimed setup)", e, facts, n,
		gen.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	must(b, os.WriteFile(done, []byte(strconv.Itoa(facts)), 0o644))
	return d
}

// BenchmarkAnalyticsFixture builds the cached fixtures (not a
// measurement):
//
//	go test ./internal/analytics -run '^$' -bench AnalyticsFixture -benchtime 1x -timeout 60m
func BenchmarkAnalyticsFixture(b *testing.B) {
	for _, e := range dbtest.Engines {
		b.Run(string(e), func(b *testing.B) { openFixture(b, e, true) })
	}
}

// percentiles reports p50 and p99 of durs as metrics named prefix-p50-ms
// and prefix-p99-ms.
func percentiles(b *testing.B, prefix string, durs []time.Duration) (p50, p99 time.Duration) {
	slices.Sort(durs)
	p := func(q float64) time.Duration { return durs[min(len(durs)-1, int(q*float64(len(durs))))] }
	b.ReportMetric(float64(p(0.5).Microseconds())/1000, prefix+"p50-ms")
	b.ReportMetric(float64(p(0.99).Microseconds())/1000, prefix+"p99-ms")
	return p(0.5), p(0.99)
}

// BenchmarkMRRSeries asks the 24-month MRR series (interval=month) of the
// fixture b.N times, and as the baseline in the same run the bare read of
// the same rows (the tenant's analytics_daily rows of the currency,
// scanned, not folded); p50 and p99 of each.
//
//	go test ./internal/analytics -run '^$' -bench MRRSeries -benchtime 400x -timeout 30m
func BenchmarkMRRSeries(b *testing.B) {
	for _, e := range dbtest.Engines {
		b.Run(string(e), func(b *testing.B) {
			d := fixtureDB(b, e)
			clock := abacus.NewFakeClock(benchFirst.AddDate(0, 24, 0).Add(-time.Hour))
			svc := NewService(d, nil, clock, slog.New(slog.DiscardHandler), Ports{})
			ctx := tenantCtx(context.Background(), benchTenant)
			q := Query{From: "2025-01-01", To: clock.Now().Format(dateLayout), Interval: "month", Currency: "EUR"}
			pts, err := svc.MRR(ctx, q)
			must(b, err)
			if len(pts) != 24 || pts[len(pts)-1].MRR == "0.0000" {
				b.Fatalf("%d points, last %+v", len(pts), pts[len(pts)-1])
			}
			raw := func() int {
				rows, err := d.QueryContext(ctx, `SELECT day, `+dayCols+` FROM analytics_daily WHERE tenant_id = $1 AND currency = $2 AND day <= $3 ORDER BY day`,
					benchTenant, "EUR", dayOf(clock.Now()))
				must(b, err)
				defer rows.Close()
				n := 0
				for rows.Next() {
					var day int
					var s [10]string
					var c [6]int
					must(b, rows.Scan(&day, &s[0], &s[1], &s[2], &s[3], &s[4], &c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &s[5], &s[6], &s[7], &s[8], &s[9]))
					n++
				}
				must(b, rows.Err())
				return n
			}
			days := raw()
			series, baseline := make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				t := time.Now()
				if _, err := svc.MRR(ctx, q); err != nil {
					b.Fatal(err)
				}
				series = append(series, time.Since(t))
				t = time.Now()
				raw()
				baseline = append(baseline, time.Since(t))
			}
			b.StopTimer()
			p50, p99 := percentiles(b, "", series)
			r50, r99 := percentiles(b, "raw-", baseline)
			b.Logf("%s: 24-month series over %d daily rows: p50 %s p99 %s (%d queries); bare read of the rows p50 %s p99 %s; last point %+v",
				e, days, p50, p99, b.N, r50, r99, pts[len(pts)-1])
		})
	}
}

// BenchmarkRebuild rebuilds the fixture's figures from its journal b.N
// times; the baseline, in the same run, is reading the journal alone
// (every fact scanned and parsed, nothing folded or written).
//
//	go test ./internal/analytics -run '^$' -bench Rebuild -benchtime 1x -timeout 30m
func BenchmarkRebuild(b *testing.B) {
	for _, e := range dbtest.Engines {
		b.Run(string(e), func(b *testing.B) {
			d := fixtureDB(b, e)
			ctx := context.Background()
			svc := NewService(d, nil, abacus.NewFakeClock(benchFirst), slog.New(slog.DiscardHandler), Ports{})
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				n, err := eachFact(ctx, d, benchTenant, func(Fact) error { return nil })
				must(b, err)
				read := time.Since(t0)
				t0 = time.Now()
				res, err := svc.Rebuild(ctx, benchTenant)
				must(b, err)
				el := time.Since(t0)
				b.ReportMetric(el.Seconds(), "rebuild-s")
				b.ReportMetric(read.Seconds(), "read-s")
				b.Logf("%s: rebuild of %d facts %s; reading them alone %s (%d)", e, res.Events, el.Round(time.Millisecond), read.Round(time.Millisecond), n)
			}
		})
	}
}

// BenchmarkPeriodCloseProjection: the events a period close of
// ABACUS_ANALYTICS_BENCH_SUBS (100,000) invoices publishes — invoice.created
// (not journaled) and invoice.finalized per invoice, and payment.succeeded
// for the invoices charged automatically (half) — folded through Apply in
// the consumer's batches of 500, as the consumer does after a fetch.
// Reports events/s.
//
//	go test ./internal/analytics -run '^$' -bench PeriodCloseProjection -benchtime 1x -timeout 30m
func BenchmarkPeriodCloseProjection(b *testing.B) {
	for _, e := range dbtest.Engines {
		b.Run(string(e), func(b *testing.B) {
			d := fixtureDB(b, e)
			tenant := benchTenant
			at := benchFirst.AddDate(0, 24, 0) // the month after the fixture's history
			svc := NewService(d, nil, abacus.NewFakeClock(at), slog.New(slog.DiscardHandler), Ports{})
			n := benchSubs()
			b.ResetTimer()
			for range b.N {
				var batch []outbox.Event
				events, t0, cpu0 := 0, time.Now(), cpuTime()
				for i := range n {
					inv := billing.InvoiceEvent{AmountDue: decimal.RequireFromString("58.31"), Currency: "EUR", CustomerID: fmt.Sprintf("cus_%07d", i),
						ID: abacus.NewID("inv"), Number: fmt.Sprintf("INV-%07d", i), PeriodStart: at, Status: billing.Draft,
						SubscriptionID: fmt.Sprintf("sub_%07d", i), Total: decimal.RequireFromString("58.31")}
					batch = append(batch, event(b, tenant, "invoice.created", at, inv))
					inv.Status = billing.Open
					batch = append(batch, event(b, tenant, "invoice.finalized", at, inv))
					if i%2 == 0 {
						batch = append(batch, event(b, tenant, "payment.succeeded", at, payments.PaymentEvent{PaymentID: abacus.NewID("pay"),
							InvoiceID: inv.ID, CustomerID: inv.CustomerID, Provider: "fake", Status: payments.StatusSucceeded, Amount: inv.Total,
							Currency: "EUR", Attempt: 1, InvoiceAmountDue: decimal.Zero, InvoiceStatus: "paid"}))
					}
					if len(batch) >= batchSize || i == n-1 {
						events += len(batch)
						if _, err := svc.Apply(context.Background(), batch); err != nil {
							b.Fatal(err)
						}
						batch = batch[:0]
					}
				}
				el, cpu := time.Since(t0), cpuTime()-cpu0
				b.ReportMetric(float64(events)/el.Seconds(), "events/s")
				b.ReportMetric(float64(cpu.Microseconds())/float64(events), "cpu-µs/event")
				b.Logf("%s: %d events (%d invoices) folded in %s: %.0f events/s, %.0f µs of this process's CPU per event", e, events, n,
					el.Round(time.Millisecond), float64(events)/el.Seconds(), float64(cpu.Microseconds())/float64(events))
			}
		})
	}
}

// event is a domain event as the consumer reads it back from a message.
func event(b *testing.B, tenant, typ string, at time.Time, payload any) outbox.Event {
	body, err := json.Marshal(payload)
	must(b, err)
	return outbox.Event{ID: abacus.NewID("evt"), TenantID: tenant, Type: typ, Version: 1, Payload: body, CreatedAt: at}
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
