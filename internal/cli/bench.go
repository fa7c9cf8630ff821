package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/abacusbilling/abacus/internal/client"
	"github.com/abacusbilling/abacus/internal/loadgen"
)

// benchCommands are `abacus bench`: load generators for a running server
// and the baselines its figures are compared with (see docs/benchmarks.md).
func benchCommands() []command {
	baseline := func(which string) func(ctx context.Context, e Env, args []string) error {
		return func(ctx context.Context, e Env, args []string) error { return benchBaseline(ctx, e, which, args) }
	}
	return []command{
		{name: "ingest", summary: "send usage events and time them until they are queryable", run: benchIngest},
		{name: "query", summary: "time usage queries", run: benchQuery},
		{name: "load-usage", summary: "store many events directly in the database", run: benchLoadUsage},
		{name: "http", summary: "open-loop HTTP load on one URL, beside a bare baseline", run: benchHTTP},
		{name: "realtime", summary: "real WebSocket clients against realtime nodes: idle, direct, group, storm", run: benchRealtime},
		{name: "serve-204", summary: "run a bare net/http server answering 204 (a baseline)", run: benchServe204},
		{name: "serve-realtime", summary: "run the bare realtime baseline (nothing stored, no bus) for bench realtime", run: benchServeRealtime},
		{name: "baseline-http", summary: "the ingest load against a bare HTTP server", run: baseline("baseline-http")},
		{name: "baseline-jetstream", summary: "the ingest load against bare embedded JetStream", run: baseline("baseline-jetstream")},
	}
}

// loadFlags are the flags shaping load, shared by ingest and baselines.
type loadFlags struct {
	cfg      loadgen.Config
	runs     int
	subjects int
	attempts int
	client   string
}

func (l *loadFlags) register(fs *flag.FlagSet) {
	fs.Int64Var(&l.cfg.Events, "events", 1_000_000, "events to send per run (0: until --duration)")
	fs.DurationVar(&l.cfg.Duration, "duration", 0, "stop starting requests after this long (e.g. 60s)")
	fs.IntVar(&l.cfg.Conns, "conns", 64, "concurrent connections")
	fs.IntVar(&l.cfg.BatchSize, "batch-size", 1000, "events per request; 1 = one application/cloudevents+json event per POST")
	fs.Float64Var(&l.cfg.Rate, "rate", 0, "target events/s (0: as fast as the server answers)")
	fs.IntVar(&l.runs, "runs", 1, "runs; figures are the medians")
	fs.IntVar(&l.subjects, "subjects", 100, "distinct subjects")
	fs.IntVar(&l.attempts, "max-attempts", 0, "attempts per request before the run fails (0: until it succeeds or Ctrl-C)")
	fs.StringVar(&l.client, "client", "raw", "HTTP client of the load generator: raw (hand-written HTTP/1.1, least CPU) or std (net/http)")
}

// sender returns the load's SendFunc for a server at url, and a function
// that closes its connections.
func (l *loadFlags) sender(url, key string) (loadgen.SendFunc, func(), error) {
	if l.client == "raw" {
		r, err := loadgen.NewRawHTTP(url, key, l.cfg.Conns, 30*time.Second)
		if err != nil {
			return nil, nil, err
		}
		return r.Sender(), r.Close, nil
	}
	c, err := (&clientFlags{url: url, key: key, timeout: 30 * time.Second}).client(l.cfg.Conns)
	if err != nil {
		return nil, nil, err
	}
	return loadgen.HTTPSender(c), func() {}, nil
}

func (l *loadFlags) validate() error {
	if l.client != "raw" && l.client != "std" {
		return fmt.Errorf("--client %q must be raw or std", l.client)
	}
	if l.runs < 1 || l.runs > 100 {
		return fmt.Errorf("--runs %d must be between 1 and 100", l.runs)
	}
	l.cfg.Backoff = client.Backoff{MaxAttempts: l.attempts, Initial: 20 * time.Millisecond, Max: 2 * time.Second}
	return l.cfg.Validate()
}

func benchIngest(ctx context.Context, e Env, args []string) error {
	fs := newFlags("bench ingest [flags]")
	var cf clientFlags
	cf.register(fs, e)
	var lf loadFlags
	lf.register(fs)
	var ic loadgen.IngestConfig
	fs.BoolVar(&ic.CreateMeters, "create-meters", true, "create a SUM ($.value) and a COUNT meter for a new event type of each run")
	fs.StringVar(&ic.SumMeter, "sum-meter", "", "with --create-meters=false: an existing SUM meter over $.value of --event-type")
	fs.StringVar(&ic.CountMeter, "count-meter", "", "with --create-meters=false: an existing COUNT meter of --event-type")
	fs.StringVar(&ic.EventType, "event-type", "", "event type (default: a new one per run)")
	fs.DurationVar(&ic.Spread, "spread", 0, "spread event times back over this long (e.g. 720h for a month); at most the late-event window")
	fs.DurationVar(&ic.ProbeEvery, "probe-every", 200*time.Millisecond, "send a marker event this often and time until it is queryable (0: off)")
	fs.DurationVar(&ic.SettleTimeout, "settle-timeout", 120*time.Second, "how long to wait for meter totals after the last ack")
	verify := fs.Bool("verify", false, "exit non-zero unless the meter totals equal exactly what was acknowledged")
	baseline := fs.String("baseline", "auto", "baseline measured after each run: auto (http for --batch-size 1, else jetstream), http, jetstream or none")
	if err := parseNoArguments(fs, e, args); err != nil {
		return err
	}
	if err := lf.validate(); err != nil {
		return err
	}
	if !ic.CreateMeters && ic.EventType == "" {
		return errors.New("--create-meters=false needs --event-type (and --sum-meter/--count-meter to verify)")
	}
	if *baseline == "auto" {
		*baseline = "jetstream"
		if lf.cfg.BatchSize == 1 {
			*baseline = "http"
		}
	}
	if !slices.Contains([]string{"http", "jetstream", "none"}, *baseline) {
		return fmt.Errorf("--baseline %q must be auto, http, jetstream or none", *baseline)
	}
	if !client.IsLoopback(cf.url) {
		return fmt.Errorf("--url %s: bench only drives servers on this machine (127.0.0.1, ::1, localhost)", cf.url)
	}
	c, err := cf.client(lf.cfg.Conns)
	if err != nil {
		return err
	}
	if err := c.Ready(ctx); err != nil {
		return fmt.Errorf("server at %s is not ready: %w", cf.url, err)
	}
	send, closeSend, err := lf.sender(cf.url, cf.key)
	if err != nil {
		return err
	}
	defer closeSend()
	ic.Config, ic.Subjects, ic.Send = lf.cfg, lf.subjects, send
	w := e.Stdout
	fmt.Fprintf(w, "bench ingest: %s, %s, %d conns, batch %d, rate %s, baseline %s\n",
		cf.url, bound(lf.cfg), lf.cfg.Conns, lf.cfg.BatchSize, rateText(lf.cfg.Rate), *baseline)
	var rates, e2e, base, ratios, p99, probe99, queryable []float64
	inexact := 0
	for i := 1; i <= lf.runs; i++ {
		ic.Started = func(r loadgen.IngestResult) {
			if r.SumMeter == "" {
				return
			}
			fmt.Fprintf(w, "run %d/%d meters %s (SUM of $.value) and %s (COUNT) over event type %s\n", i, lf.runs, r.SumMeter, r.CountMeter, r.EventType)
		}
		r, err := loadgen.Ingest(ctx, c, ic)
		if err != nil {
			return fmt.Errorf("run %d: %w", i, err)
		}
		fmt.Fprintf(w, "run %d/%d ingest:   %s\n", i, lf.runs, describeSend(r.Send))
		if r.Send.Failed != nil {
			return fmt.Errorf("run %d: a request was given up, so exact totals cannot be expected: %w", i, r.Send.Failed)
		}
		status := "EXACT"
		switch {
		case r.Exact():
		case r.GotCount.GreaterThan(r.WantCount) || r.GotSum.GreaterThan(r.WantSum):
			status = "OVERCOUNTED"
			inexact++
		default:
			status = "INCOMPLETE (not all counted before --settle-timeout)"
			inexact++
		}
		fmt.Fprintf(w, "run %d/%d meters:   %s SUM %s (want %s), COUNT %s (want %s); queryable %s after the last ack; end to end %s events/s\n",
			i, lf.runs, status, r.GotSum, r.WantSum, r.GotCount, r.WantCount, durText(r.Queryable), num(r.EndToEnd()))
		if r.Probe.N > 0 {
			fmt.Fprintf(w, "run %d/%d probe:    ingest→queryable %s\n", i, lf.runs, r.Probe)
			probe99 = append(probe99, ms(r.Probe.P99))
		}
		rates = append(rates, r.Send.Rate())
		e2e = append(e2e, r.EndToEnd())
		p99 = append(p99, ms(r.Send.Latency.P99))
		queryable = append(queryable, ms(r.Queryable))
		if *baseline != "none" {
			b, err := runBaseline(ctx, *baseline, lf)
			if err != nil {
				return fmt.Errorf("run %d baseline: %w", i, err)
			}
			fmt.Fprintf(w, "run %d/%d baseline: %s %s\n", i, lf.runs, *baseline, describeSend(b))
			base = append(base, b.Rate())
			if b.Rate() > 0 {
				ratios = append(ratios, r.Send.Rate()/b.Rate())
			}
		}
	}
	fmt.Fprintf(w, "median of %d: %s events/s acked, request p99 %.2f ms, queryable after last ack %.0f ms, end to end %s events/s",
		lf.runs, num(median(rates)), median(p99), median(queryable), num(median(e2e)))
	if len(probe99) > 0 {
		fmt.Fprintf(w, ", probe p99 %.0f ms", median(probe99))
	}
	if len(base) > 0 {
		fmt.Fprintf(w, "; %s baseline %s events/s; ratio of medians %.2f, median of per-run ratios %.2f",
			*baseline, num(median(base)), median(rates)/median(base), median(ratios))
	}
	fmt.Fprintln(w)
	if *verify && inexact > 0 {
		return fmt.Errorf("%d of %d runs did not count exactly what was acknowledged", inexact, lf.runs)
	}
	return nil
}

func benchBaseline(ctx context.Context, e Env, which string, args []string) error {
	fs := newFlags("bench " + which + " [flags]")
	var lf loadFlags
	lf.register(fs)
	if err := parseNoArguments(fs, e, args); err != nil {
		return err
	}
	if err := lf.validate(); err != nil {
		return err
	}
	kind := strings.TrimPrefix(which, "baseline-")
	var rates, p99 []float64
	for i := 1; i <= lf.runs; i++ {
		r, err := runBaseline(ctx, kind, lf)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "run %d/%d %s: %s\n", i, lf.runs, kind, describeSend(r))
		rates = append(rates, r.Rate())
		p99 = append(p99, ms(r.Latency.P99))
	}
	fmt.Fprintf(e.Stdout, "median of %d: %s events/s, request p99 %.2f ms\n", lf.runs, num(median(rates)), median(p99))
	return nil
}

// runBaseline measures the bare HTTP server or bare JetStream with the
// same load shape.
func runBaseline(ctx context.Context, kind string, lf loadFlags) (loadgen.Result, error) {
	cfg := lf.cfg
	// The same id, type and source lengths as an ingest run, so the
	// baseline carries the same payload bytes.
	run := "baseline" + strings.Repeat("0", 18)
	g := loadgen.NewGen(run, "bench_"+run, "abacus-bench", lf.subjects, 0)
	switch kind {
	case "http":
		srv, err := loadgen.StartBareHTTP()
		if err != nil {
			return loadgen.Result{}, err
		}
		defer srv.Close()
		send, closeSend, err := lf.sender(srv.URL, "baseline")
		if err != nil {
			return loadgen.Result{}, err
		}
		defer closeSend()
		return loadgen.Run(ctx, cfg, g, send)
	case "jetstream":
		dir, err := os.MkdirTemp("", "abacus-bench-js-")
		if err != nil {
			return loadgen.Result{}, fmt.Errorf("creating a store dir for the JetStream baseline: %w", err)
		}
		defer os.RemoveAll(dir)
		js, err := loadgen.StartBareJetStream(ctx, dir, false)
		if err != nil {
			return loadgen.Result{}, err
		}
		defer js.Close()
		return loadgen.Run(ctx, cfg, g, js.Sender())
	}
	return loadgen.Result{}, fmt.Errorf("unknown baseline %q: use http or jetstream", kind)
}

func benchQuery(ctx context.Context, e Env, args []string) error {
	fs := newFlags("bench query [flags]")
	var cf clientFlags
	cf.register(fs, e)
	meter := fs.String("meter", "", "meter id or slug to query (required)")
	subject := fs.String("subject", "customer-0", "subject to query (empty: all)")
	days := fs.Int("days", 30, "query the last N days")
	window := fs.String("window-size", "DAY", "MINUTE, HOUR, DAY, MONTH or empty for one total")
	n := fs.Int("n", 200, "queries to time")
	if err := parseNoArguments(fs, e, args); err != nil {
		return err
	}
	if *meter == "" {
		return errors.New("--meter is required")
	}
	if !client.IsLoopback(cf.url) {
		return fmt.Errorf("--url %s: bench only drives servers on this machine", cf.url)
	}
	c, err := cf.client(1)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	q := client.Query{
		From:       now.AddDate(0, 0, -*days).Truncate(24 * time.Hour),
		To:         now.Add(24 * time.Hour).Truncate(24 * time.Hour),
		WindowSize: *window,
	}
	if *subject != "" {
		q.Subjects = []string{*subject}
	}
	lat := make([]time.Duration, 0, *n)
	var rows int
	for i := 0; i < *n+5; i++ {
		t0 := time.Now()
		r, err := c.QueryMeter(ctx, *meter, q)
		if err != nil {
			return err
		}
		if i >= 5 { // the first few warm caches and connections
			lat = append(lat, time.Since(t0))
		}
		rows = len(r.Data)
	}
	fmt.Fprintf(e.Stdout, "query %s subject=%q %d days window %s: %d rows; latency %s\n",
		*meter, *subject, *days, *window, rows, loadgen.Summarise(lat))
	return nil
}

func describeSend(r loadgen.Result) string {
	return fmt.Sprintf("%d events in %d requests (%d retries) in %s = %s events/s, %.0f B/request; request latency %s",
		r.Events, r.Requests, r.Attempts-r.Requests, r.Elapsed.Round(time.Millisecond), num(r.Rate()),
		float64(r.BodyBytes)/float64(max(r.Requests, 1)), r.Latency)
}

func bound(c loadgen.Config) string {
	switch {
	case c.Events > 0 && c.Duration > 0:
		return fmt.Sprintf("%d events or %s", c.Events, c.Duration)
	case c.Events > 0:
		return fmt.Sprintf("%d events", c.Events)
	}
	return "for " + c.Duration.String()
}

func rateText(r float64) string {
	if r <= 0 {
		return "unlimited"
	}
	return num(r) + "/s"
}

func durText(d time.Duration) string {
	if d <= 0 {
		return "NEVER (timed out)"
	}
	return d.Round(time.Millisecond).String()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// num formats a rate with thousands separators.
func num(f float64) string {
	s := fmt.Sprintf("%.0f", f)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
