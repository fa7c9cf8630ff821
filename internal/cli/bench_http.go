package cli

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/abacusbilling/abacus/internal/client"
	"github.com/abacusbilling/abacus/internal/loadgen"
)

// headerFlags collects repeated -H 'Name: value' flags.
type headerFlags []string

func (h *headerFlags) String() string { return strings.Join(*h, ", ") }

func (h *headerFlags) Set(v string) error {
	*h = append(*h, v)
	return nil
}

// benchHTTP is `abacus bench http`: an open-loop (constant arrival rate)
// load of one request against a URL, each run followed by the same load
// against a bare net/http server answering 204, so both figures share the
// machine's state. The baseline server runs in a process of its own, as the
// server under test does: in the generator's process it would share its
// scheduler and garbage collector and come out slower than it is.
func benchHTTP(ctx context.Context, e Env, args []string) error {
	fs := newFlags("bench http [flags]")
	var cfg loadgen.OpenConfig
	var headers headerFlags
	fs.StringVar(&cfg.URL, "url", "", "the URL to request (http://127.0.0.1:PORT/…; required)")
	fs.StringVar(&cfg.Method, "method", "GET", "request method")
	fs.Var(&headers, "H", "request header 'Name: value' (repeatable)")
	bodyFile := fs.String("body-file", "", "send this file's content as the request body (with -H 'Content-Type: …')")
	bodiesFile := fs.String("bodies-file", "", "send this file's lines in turn, one request body per line (JSON lines: requests that differ as real traffic does)")
	fs.Float64Var(&cfg.Rate, "rate", 20000, "requests due per second, whatever the server does (open loop)")
	fs.DurationVar(&cfg.Duration, "duration", 20*time.Second, "requests are due over this long, warm-up included")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "requests due in this first part are sent but not counted")
	fs.IntVar(&cfg.Conns, "conns", 16, "keep-alive connections, one request in flight on each")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "time limit of one request")
	fs.StringVar(&cfg.Engine, "engine", cfg.WithDefaults().Engine, "how the generator sends: epoll (one thread, Linux) or goroutines (one per connection)")
	runs := fs.Int("runs", 1, "runs (each followed by its baseline); figures are the medians")
	baseline := fs.String("baseline", "http", "after each run, the same load against: http (bare net/http answering 204) or none")
	timeline := fs.Bool("timeline", false, "also print each second's latency from the due time (when the tail happened)")
	if err := parseNoArguments(fs, e, args); err != nil {
		return err
	}
	cfg.Header = headers
	if *bodyFile != "" {
		b, err := os.ReadFile(*bodyFile)
		if err != nil {
			return fmt.Errorf("--body-file: %w", err)
		}
		cfg.Body = b
	}
	if *bodiesFile != "" {
		b, err := os.ReadFile(*bodiesFile)
		if err != nil {
			return fmt.Errorf("--bodies-file: %w", err)
		}
		for line := range bytes.Lines(b) {
			if line = bytes.TrimSpace(line); len(line) > 0 {
				cfg.Bodies = append(cfg.Bodies, line)
			}
		}
		if len(cfg.Bodies) == 0 {
			return fmt.Errorf("--bodies-file %s: no line holds a body", *bodiesFile)
		}
	}
	switch {
	case cfg.URL == "":
		return fmt.Errorf("--url is required")
	case !client.IsLoopback(cfg.URL):
		return fmt.Errorf("--url %s: bench only drives servers on this machine (127.0.0.1, ::1, localhost)", cfg.URL)
	case *runs < 1 || *runs > 100:
		return fmt.Errorf("--runs %d must be between 1 and 100", *runs)
	case *baseline != "http" && *baseline != "none":
		return fmt.Errorf("--baseline %q must be http or none", *baseline)
	}
	if err := cfg.WithDefaults().Validate(); err != nil {
		return err
	}
	w := e.Stdout
	fmt.Fprintf(w, "bench http: %s %s, open loop at %s requests/s for %s (warm-up %s), %d conns, %s engine, baseline %s\n",
		cfg.Method, cfg.URL, num(cfg.Rate), cfg.Duration, cfg.Warmup, cfg.WithDefaults().Conns, cfg.Engine, *baseline)
	if len(cfg.Bodies) > 0 {
		fmt.Fprintf(w, "bodies: %s, sent in turn\n", num(float64(len(cfg.Bodies))))
	}
	var p99, bp99, achieved, bachieved []float64
	failed := 0
	for i := 1; i <= *runs; i++ {
		r, err := loadgen.RunOpen(ctx, cfg)
		if err != nil {
			return fmt.Errorf("run %d: %w", i, err)
		}
		fmt.Fprintf(w, "run %d/%d target:   %s\n", i, *runs, describeOpen(r))
		if *timeline {
			printTimeline(w, r)
		}
		if r.Errors > 0 || r.Unsent > 0 {
			failed++
		}
		p99 = append(p99, ms(r.Latency.P99))
		achieved = append(achieved, r.Achieved())
		if *baseline == "none" {
			continue
		}
		base, stop, err := startBaselineProcess(ctx)
		if err != nil {
			return err
		}
		bcfg := cfg
		bcfg.URL = base + "/baseline" // same header lines, so the same request bytes to read
		b, err := loadgen.RunOpen(ctx, bcfg)
		stop()
		if err != nil {
			return fmt.Errorf("run %d baseline: %w", i, err)
		}
		fmt.Fprintf(w, "run %d/%d baseline: %s\n", i, *runs, describeOpen(b))
		if *timeline {
			printTimeline(w, b)
		}
		bp99 = append(bp99, ms(b.Latency.P99))
		bachieved = append(bachieved, b.Achieved())
	}
	fmt.Fprintf(w, "median of %d: %s requests/s achieved of %s due, p99 %.2f ms from the due time",
		*runs, num(median(achieved)), num(cfg.Rate), median(p99))
	if len(bp99) > 0 {
		fmt.Fprintf(w, "; bare net/http baseline %s requests/s, p99 %.2f ms", num(median(bachieved)), median(bp99))
	}
	fmt.Fprintln(w)
	if failed > 0 {
		return fmt.Errorf("%d of %d runs had errors or unsent requests", failed, *runs)
	}
	return nil
}

// printTimeline writes one line per second of the counted part of r.
func printTimeline(w io.Writer, r loadgen.OpenResult) {
	for i, l := range r.PerSecond {
		fmt.Fprintf(w, "  second %3d: %s\n", i+1, l.Detail())
	}
}

func describeOpen(r loadgen.OpenResult) string {
	s := fmt.Sprintf("%s/s achieved of %s/s due (%d ok, %d errors, %d unsent); latency from due time %s; from sending p50 %s p99 %s; send lag p50 %s p99 %s; load %s",
		num(r.Achieved()), num(r.Target), r.OK, r.Errors, r.Unsent, r.Latency.Detail(),
		r.Service.P50.Round(time.Microsecond), r.Service.P99.Round(time.Microsecond),
		r.Lag.P50.Round(time.Microsecond), r.Lag.P99.Round(time.Microsecond), loadAverage())
	if r.FirstErr != nil {
		s += "; first error: " + r.FirstErr.Error()
	}
	return s
}

// loadAverage returns the 1/5/15-minute load averages, so every figure is
// printed with how busy the machine was.
func loadAverage() string {
	f, err := os.Open("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 128))
	fields := strings.Fields(string(b))
	if len(fields) < 3 {
		return "unknown"
	}
	return strings.Join(fields[:3], " ")
}

// startBaselineProcess starts `abacus bench serve-204` (this executable) and
// returns its base URL and a function that stops it.
func startBaselineProcess(ctx context.Context) (string, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, fmt.Errorf("finding this executable to run the baseline: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe, "bench", "serve-204")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("starting the baseline server: %w", err)
	}
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "http://") {
		stop()
		return "", nil, fmt.Errorf("the baseline server did not start: %q %v", line, err)
	}
	return strings.TrimSpace(line), stop, nil
}

// benchServe204 is `abacus bench serve-204`: the bare net/http baseline
// server (loadgen.StartBareHTTP) in a process of its own. It prints its
// base URL on the first line and serves until interrupted.
func benchServe204(ctx context.Context, e Env, args []string) error {
	if err := parseNoArguments(newFlags("bench serve-204"), e, args); err != nil {
		return err
	}
	srv, err := loadgen.StartBareHTTP()
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintln(e.Stdout, srv.URL)
	<-ctx.Done()
	return nil
}
