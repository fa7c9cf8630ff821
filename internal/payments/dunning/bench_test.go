package dunning_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/payments/dunning"
)

// BenchmarkPass measures one dunning pass over N overdue invoices whose
// retry is due (N = ABACUS_DUNNING_BENCH_RUNS, 100,000 by default): each
// is charged through the collector (an in-process one that declines
// softly), rescheduled, and gets its dunning.retry_failed event, on each
// engine. Run:
//
//	go test ./internal/payments/dunning -run '^$' -bench Pass -benchtime 1x
func BenchmarkPass(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("ABACUS_DUNNING_BENCH_RUNS")); err == nil && v > 0 {
		n = v
	}
	for _, e := range []db.Engine{db.SQLite, db.Postgres} {
		b.Run(string(e), func(b *testing.B) {
			d := dbtest.Open(b, e)
			clock := abacus.NewFakeClock(start)
			ctx := context.Background()
			svc := dunning.New(d, clock, nil, &memBilling{}, nil)
			svc.UseCollector(func(context.Context, string, string, int) (dunning.Attempt, error) {
				return dunning.Attempt{Outcome: dunning.Failed, DeclineCode: "insufficient_funds"}, nil
			})
			pol, _ := json.Marshal(dunning.RetryPolicy{RetryDays: []int{3, 5, 7}, MaxAttempts: 4, GraceDays: 3, FinalAction: dunning.Suspend})
			for b.Loop() {
				b.StopTimer()
				if _, err := d.ExecContext(ctx, `DELETE FROM dunning_runs`); err != nil {
					b.Fatal(err)
				}
				due := db.TimeOf(start.Add(3 * 24 * time.Hour))
				rows := make([][]any, 0, n)
				for i := range n {
					id := fmt.Sprintf("dun_%08d", i)
					rows = append(rows, []any{id, tenant, "inv" + id, "INV-" + id, "cus_1", "", "10.00", "EUR", "active", string(pol),
						db.TimeOf(start), 1, 0, "retry", due, 0, "", "", db.TimeOf(start), db.TimeOf(start)})
				}
				if err := d.InTx(ctx, func(tx *db.Tx) error {
					return tx.InsertRows(ctx, `INSERT INTO dunning_runs (id, tenant_id, invoice_id, invoice_number, customer_id, subscription_id,
						amount, currency, status, policy, first_failed_at, attempts, step_index, next_step, next_at, hard_declined, decline_code,
						final_action, created_at, updated_at)`, "", rows)
				}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				cpu0 := cpuTime()
				t0 := time.Now()
				got, err := svc.Pass(ctx, start.Add(3*24*time.Hour))
				if err != nil {
					b.Fatal(err)
				}
				if got != n {
					b.Fatalf("pass took %d steps, want %d", got, n)
				}
				b.ReportMetric(time.Since(t0).Seconds(), "s/pass")
				b.ReportMetric((cpuTime() - cpu0).Seconds(), "cpu-s/pass")
				b.ReportMetric(float64(n)/time.Since(t0).Seconds(), "invoices/s")
			}
		})
	}
}

// cpuTime is the CPU time (user + system) this process has used: on a
// machine shared with other work it says what a pass costs better than
// the wall time (PostgreSQL's own CPU is not in it).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
