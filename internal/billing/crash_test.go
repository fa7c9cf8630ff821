package billing

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/catalog/catalogtest"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/abacusbilling/abacus/internal/subscription"
)

const crashSubs = 120

var crashNow = t0.AddDate(1, 0, 0).Add(2 * time.Hour) // 13 boundaries per subscription, all past grace

// TestBillingCrash kills the billing worker with SIGKILL in the middle of
// a catch-up run (inside a cycle transaction), restarts it, and checks
// that no invoice is missing or duplicated and numbering has no gap.
func TestBillingCrash(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			url := ""
			if engine == db.Postgres {
				url = dbtest.NewSchema(t)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestBillingCrashChild$", "-test.v")
			cmd.Env = append(os.Environ(), "BILLING_CHILD=1", "BILLING_DIR="+dir, "BILLING_DB_URL="+url)
			out, err := cmd.CombinedOutput()
			ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child did not die by SIGKILL (err %v):\n%s", err, out)
			}
			d, err := db.Open(context.Background(), db.Options{URL: url, SQLitePath: filepath.Join(dir, "abacus.db")})
			must(t, err)
			defer d.Close()
			var tenant string
			must(t, d.QueryRowContext(context.Background(), `SELECT id FROM tenants`).Scan(&tenant))
			var before int
			must(t, d.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM invoices`).Scan(&before))
			if before == 0 || before >= crashSubs*13 {
				t.Fatalf("%d invoices before the restart: the child did not crash mid-run", before)
			}
			log := slog.New(slog.DiscardHandler)
			cat := catalog.NewService(d, abacus.NewFakeClock(crashNow), log, catalogtest.NewMemoryUsage())
			svc := NewService(d, abacus.NewFakeClock(crashNow), log, Config{BatchSize: 25}, NewSubscriptions(cat), nil)
			_, err = svc.RunOnce(context.Background(), crashNow)
			must(t, err)
			var n, distinct int
			must(t, d.QueryRowContext(context.Background(), `SELECT COUNT(*), COUNT(DISTINCT subscription_id || '/' || period_start) FROM invoices
				WHERE status <> 'draft'`).Scan(&n, &distinct))
			if n != crashSubs*13 || distinct != n {
				t.Fatalf("%d finalized invoices (%d distinct cycles), want %d", n, distinct, crashSubs*13)
			}
			assertGapless(t, d, tenant, "INV", n)
			t.Logf("%d invoices before the crash, %d after the restart", before, n)
		})
	}
}

func TestBillingCrashChild(t *testing.T) {
	if os.Getenv("BILLING_CHILD") == "" {
		t.Skip("runs only as the child of TestBillingCrash")
	}
	ctx := context.Background()
	d, err := db.Open(ctx, db.Options{URL: os.Getenv("BILLING_DB_URL"), SQLitePath: filepath.Join(os.Getenv("BILLING_DIR"), "abacus.db")})
	must(t, err)
	_, err = d.Migrate(ctx)
	must(t, err)
	b := newBundle(t, d, t0, Config{BatchSize: 25})
	plan := b.plan("basic", catalog.VersionSpec{Currency: "EUR", Charges: []pricing.Charge{feeCharge("base", "10"), perUnit("api", "api", "0.01")}})
	for i := 0; i < crashSubs; i++ {
		c := b.customer(catalog.CustomerInput{Name: "C", Currency: "EUR", Address: catalog.Address{Country: "DE"}})
		q := dec("1")
		_, err := b.subs.Create(b.ctx, subscription.CreateInput{CustomerID: c.ID, PlanID: plan, Quantity: &q, StartAt: &t0, SkipTrial: true})
		must(t, err)
	}
	n := 0
	b.svc.hookCreated = func() {
		n++
		if n == crashSubs*6+7 { // mid-batch, mid-catch-up
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Minute)
		}
	}
	b.clock.Set(crashNow)
	_, err = b.svc.RunOnce(ctx, crashNow)
	t.Fatalf("child survived: %v", err)
}
