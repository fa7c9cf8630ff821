package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/loadgen"
	"github.com/abacusbilling/abacus/internal/metering"
	meterusage "github.com/abacusbilling/abacus/internal/metering/usage"
)

// benchLoadUsage is `abacus bench load-usage`: it stores N events directly
// in the database through the meter role's store code (usage.Load), for
// the query benchmark over a large history. No server may run on the data
// meanwhile (SQLite: the data-dir lock; PostgreSQL: the meter partition
// locks).
func benchLoadUsage(ctx context.Context, e Env, args []string) error {
	var events int64
	var subjects, days, round int
	var tenant, cpuProfile string
	cfg, rest, err := load("bench load-usage [flags]", e, args, func(fs *flag.FlagSet) {
		fs.Int64Var(&events, "events", 1_000_000, "events to store")
		fs.IntVar(&subjects, "subjects", 1000, "distinct subjects (customer-0 …)")
		fs.IntVar(&days, "days", 31, "spread event times evenly over the last N days, oldest first")
		fs.IntVar(&round, "round-events", 20_000, "events per transaction")
		tenantFlag(fs, &tenant)
		fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the load to this file")
	})
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected arguments %q", rest)
	}
	if events < 1 || subjects < 1 || days < 1 {
		return fmt.Errorf("--events, --subjects and --days must be positive")
	}
	d, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	if cfg.Database.URL == "" { // the database is the data dir's SQLite file: hold its lock as serve does
		unlock, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return err
		}
		defer unlock()
	}
	if _, err := d.Migrate(ctx); err != nil {
		return err
	}
	if tenant, err = resolveTenant(ctx, d, tenant); err != nil {
		return err
	}
	log := newLogger(cfg, e.Stderr)
	svc := meterusage.NewService(d, abacus.SystemClock{}, log, metering.Limits{LateWindow: cfg.Metering.LateWindow})
	pctx := abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: tenant, Kind: "cli", ID: "cli", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
	run := "load" + strconv.FormatInt(time.Now().Unix(), 36)
	typ := run
	sumSlug, countSlug := run+"_sum", run+"_count"
	for _, m := range []metering.Meter{
		{Slug: sumSlug, EventType: typ, Aggregation: metering.AggSum, ValueProperty: "$.value", GroupBy: map[string]string{"model": "$.model"}},
		{Slug: countSlug, EventType: typ, Aggregation: metering.AggCount},
	} {
		if _, err := svc.CreateMeter(pctx, m); err != nil {
			return fmt.Errorf("creating meter %s: %w", m.Slug, err)
		}
	}
	// Events as `abacus bench ingest` sends them (loadgen's id, subject,
	// value and model), their times spread evenly and in order.
	end := time.Now().UTC().Truncate(time.Second)
	start := end.AddDate(0, 0, -days)
	step := end.Sub(start) / time.Duration(events)
	fmt.Fprintf(e.Stdout, "bench load-usage: %d events, %d subjects, %s … %s, tenant %s, meters %s and %s (event type %s)\n",
		events, subjects, start.Format(time.RFC3339), end.Format(time.RFC3339), tenant, sumSlug, countSlug, typ)
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	t0 := time.Now()
	last := t0
	stored, err := meterusage.Load(ctx, d, tenant, meterusage.LoadConfig{
		Events: events, RoundEvents: round, Partitions: cfg.Metering.Partitions,
		Event: func(i int64, ev *metering.Event) {
			c := loadgen.Cents(i)
			ev.ID, ev.Source, ev.SpecVersion, ev.Type = run+"-"+strconv.FormatInt(i, 10), "bench", "1.0", typ
			ev.Subject = "customer-" + strconv.FormatInt(i%int64(subjects), 10)
			ev.Time = start.Add(time.Duration(i) * step)
			ev.Data = []byte(`{"value":` + loadgen.Decimal(c).StringFixed(2) + `,"model":"m` + strconv.FormatInt(i%4, 10) + `"}`)
		},
		Progress: func(n int64) {
			if time.Since(last) >= 10*time.Second {
				last = time.Now()
				el := time.Since(t0)
				fmt.Fprintf(e.Stderr, "%d events stored in %s (%.0f/s)\n", n, el.Round(time.Second), float64(n)/el.Seconds())
			}
		},
	}, log)
	if err != nil {
		return err
	}
	el := time.Since(t0)
	fmt.Fprintf(e.Stdout, "stored %d events in %s: %.0f events/s\n", stored, el.Round(time.Millisecond), float64(stored)/el.Seconds())
	// Exactly what was generated must be counted.
	from, to := start.Truncate(24*time.Hour), end.Add(24*time.Hour).Truncate(24*time.Hour)
	total := func(slug string) (decimal.Decimal, error) {
		r, _, err := svc.Query(pctx, slug, meterusage.QueryParams{From: &from, To: &to})
		if err != nil {
			return decimal.Zero, err
		}
		var s decimal.Decimal
		for _, w := range r.Data {
			s = s.Add(w.Value)
		}
		return s, nil
	}
	sum, err := total(sumSlug)
	if err != nil {
		return err
	}
	count, err := total(countSlug)
	if err != nil {
		return err
	}
	wantSum := loadgen.Decimal(loadgen.SumCents(0, events))
	fmt.Fprintf(e.Stdout, "meters: SUM %s (want %s), COUNT %s (want %d)\n", sum, wantSum, count, events)
	if !sum.Equal(wantSum) || !count.Equal(decimal.NewFromInt(events)) {
		return fmt.Errorf("meter totals differ from the events loaded")
	}
	fmt.Fprintf(e.Stdout, "query with: abacus bench query --meter %s --subject customer-0 --days %d --window-size DAY\n", sumSlug, days)
	return nil
}

// lockDataDir takes the data-dir lock `abacus serve` takes, so the load
// never runs beside a server on the same SQLite data.
func lockDataDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "abacus.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data dir %s is not writable (data_dir): %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("data dir %s is in use by another abacus process; stop it first", dir)
	}
	return func() { f.Close() }, nil
}
