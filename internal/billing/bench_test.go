package billing

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/document"
	"github.com/abacusbilling/abacus/internal/pricing"
)

// mapUsage is a BulkUsage with one quantity (and one event per unit) per
// subject.
type mapUsage struct{ catalog.NoUsage }

func (mapUsage) UsageBySubject(_ context.Context, _, _ string, subjects []string, _, _ time.Time) (map[string]pricing.Usage, error) {
	out := make(map[string]pricing.Usage, len(subjects))
	for i, s := range subjects {
		n := int64(1000 + i%5000)
		out[s] = pricing.Usage{Quantity: decimal.NewFromInt(n), Events: n}
	}
	return out, nil
}

// BenchmarkClosePeriod closes one monthly period (in-advance fee + usage
// with graduated tiers, 19 % tax, no grace: created and finalized in one
// pass) for ABACUS_BENCH_SUBS subscriptions (default 100000) per engine:
//
//	ABACUS_BENCH_SUBS=100000 go test ./internal/billing -run '^$' -bench ClosePeriod -benchtime 1x -timeout 30m
func BenchmarkClosePeriod(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("ABACUS_BENCH_SUBS")); err == nil {
		n = v
	}
	for _, engine := range dbtest.Engines {
		b.Run(fmt.Sprintf("%s/%d", engine, n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				d := dbtest.Open(b, engine)
				workers, _ := strconv.Atoi(os.Getenv("ABACUS_BENCH_WORKERS")) // PostgreSQL only; 0: the default
				bd := newBundle(b, d, t0, Config{BatchSize: 1000, Workers: workers})
				bd.svc.usage = mapUsage{}
				_, err := bd.svc.PutSettings(bd.ctx, Settings{InvoicePrefix: "INV", CreditNotePrefix: "CN", GraceSeconds: 0, DueDays: 30,
					Seller: bd.svcSeller()})
				must(b, err)
				plan := bd.plan("bench", catalog.VersionSpec{Currency: "EUR", Charges: []pricing.Charge{feeCharge("seats", "29"),
					{Key: "api", Kind: pricing.ChargeUsage, Meter: "api", Price: &pricing.Price{Model: pricing.Graduated,
						Tiers: []pricing.Tier{{UpTo: decp("1000")}, {UnitAmount: dec("0.002")}}}}}})
				rate, err := bd.svc.CreateTaxRate(bd.ctx, TaxRateInput{Name: "VAT", Percentage: dec("19")})
				must(b, err)
				must(b, bd.svc.AssignTaxRate(bd.ctx, "plan", plan, rate.ID))
				var version string
				must(b, d.QueryRowContext(bd.ctx, `SELECT id FROM plan_versions WHERE plan_id = $1`, plan).Scan(&version))
				seed(b, d, bd.tenant, plan, version, n)
				// Cycle 0 (in-advance fees at the start) is billed first, untimed.
				bd.svc.hookCreated = nil
				_, err = bd.svc.RunOnce(context.Background(), t0)
				must(b, err)
				b.StartTimer()
				start, cpu0 := time.Now(), cpuTime()
				var st RunStats
				// The label lets -cpuprofile be read for the timed close alone:
				// go tool pprof -tagfocus phase=close …
				pprof.Do(context.Background(), pprof.Labels("phase", "close"), func(ctx context.Context) {
					st, err = bd.svc.RunOnce(ctx, month(1))
				})
				must(b, err)
				b.StopTimer()
				if st.Invoices != n || st.Finalized != n {
					b.Fatalf("closed %+v, want %d invoices", st, n)
				}
				b.ReportMetric(float64(n)/time.Since(start).Seconds(), "invoices/s")
				// This process's CPU per invoice: on a shared machine the
				// wall time says as much about the neighbours as about us.
				b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(n), "cpu-µs/invoice")
				d.Close()
			}
		})
	}
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (b *bundle) svcSeller() document.Party {
	st, _ := b.svc.Settings(b.ctx)
	return st.Seller
}

// seed inserts n customers with one subscription each straight into the
// catalog tables (the services would take minutes for 100k).
func seed(b *testing.B, d *db.DB, tenant, plan, version string, n int) {
	ctx := context.Background()
	const chunk = 200
	for i := 0; i < n; i += chunk {
		must(b, d.InTx(ctx, func(tx *db.Tx) error {
			var cus, subj, subs, phases, cycles []string
			var ca, sa, sba, pa, cya []any
			for j := i; j < i+chunk && j < n; j++ {
				cid, sid := abacus.NewID("cus"), abacus.NewID("sub")
				subject := fmt.Sprintf("s%d", j)
				cus = append(cus, valsWith(len(ca), 7, `'', '', 'standard', 'UTC', '{}', 0`))
				ca = append(ca, cid, tenant, "C", "EUR", `{"country":"DE"}`, `["`+subject+`"]`, db.TimeOf(t0))
				subj = append(subj, vals(len(sa), 3))
				sa = append(sa, tenant, subject, cid)
				subs = append(subs, valsWith(len(sba), 7, `'active', '1', '[]', 'UTC', 'month', 1, 0, 0`))
				sba = append(sba, sid, tenant, cid, plan, version, db.TimeOf(t0), db.TimeOf(t0))
				phases = append(phases, valsWith(len(pa), 5, `'1', '[]', 0`))
				pa = append(pa, abacus.NewID("sph"), tenant, sid, version, db.TimeOf(t0))
				// The cycle subscription.Service's save hook would create.
				cycles = append(cycles, valsWith(len(cya), 4, `0, 0`))
				cya = append(cya, tenant, sid, db.TimeOf(t0), db.TimeOf(t0))
			}
			for _, q := range []struct {
				sql  string
				rows []string
				args []any
			}{
				{`INSERT INTO customers (id, tenant_id, name, currency, address, subjects, created_at, email, tax_id, tax_status, timezone, metadata, updated_at)
				  VALUES `, cus, ca},
				{`INSERT INTO customer_subjects (tenant_id, subject, customer_id) VALUES `, subj, sa},
				{`INSERT INTO subscriptions (id, tenant_id, customer_id, plan_id, version_id, anchor, started_at, status, quantity, overrides, timezone,
				  interval_unit, interval_count, created_at, updated_at) VALUES `, subs, sba},
				{`INSERT INTO subscription_phases (id, tenant_id, subscription_id, version_id, starts_at, quantity, overrides, paused)
				  VALUES `, phases, pa},
				{`INSERT INTO billing_cycles (tenant_id, subscription_id, bill_from, next_at, next_index, done) VALUES `, cycles, cya},
			} {
				text := q.sql + strings.Join(q.rows, ", ")
				if _, err := tx.ExecContext(ctx, text, q.args...); err != nil {
					return fmt.Errorf("seeding: %w", err)
				}
			}
			return nil
		}))
	}
}

func vals(offset, n int) string { return "(" + db.Placeholders(offset+1, n) + ")" }

func valsWith(offset, n int, consts string) string {
	return "(" + db.Placeholders(offset+1, n) + ", " + consts + ")"
}
