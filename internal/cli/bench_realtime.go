package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/abacusbilling/abacus/internal/client"
	"github.com/abacusbilling/abacus/internal/loadgen"
)

// benchRealtime is `abacus bench realtime SCENARIO`: real WebSocket
// clients against running realtime nodes (docs/realtime.md, "Load
// generator"; figures in docs/benchmarks.md).
func benchRealtime(ctx context.Context, e Env, args []string) error {
	fs := newFlags("bench realtime [flags] idle|direct|group|storm")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: abacus bench realtime [flags] SCENARIO

Scenarios (users and tokens are minted through the API for each run):
  idle    open --conns connections, hold them --hold, report the server's resident memory per connection
  direct  1:1 messages at --rate over --conns connections (--conns/2 private conversations), open loop;
          with --url A --url2 B each pair straddles the two nodes (cross-node delivery)
  group   --messages messages from one member to a group of --group-size members, all online
  storm   open --conns authenticated connections as fast as the server takes them (--connect-concurrency wide)

Flags:
`)
		fs.PrintDefaults()
	}
	var cf clientFlags
	cf.register(fs, e)
	var cfg loadgen.RealtimeConfig
	url2 := fs.String("url2", "", "a second realtime node: connections alternate between --url and --url2")
	fs.IntVar(&cfg.Conns, "conns", 1000, "connections (idle, direct, storm)")
	fs.Float64Var(&cfg.Rate, "rate", 1000, "direct: messages due per second across all pairs (open loop)")
	fs.DurationVar(&cfg.Duration, "duration", 20*time.Second, "direct: messages are due over this long, warm-up included")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "direct and group: messages due in this first part are sent but not counted")
	fs.DurationVar(&cfg.Drain, "drain", 10*time.Second, "how long to wait for deliveries after the last message was due")
	fs.IntVar(&cfg.TextBytes, "text-bytes", 32, "length of each message's text")
	fs.IntVar(&cfg.GroupSize, "group-size", 1000, "group: members, all online")
	fs.IntVar(&cfg.Messages, "messages", 50, "group: messages sent")
	fs.DurationVar(&cfg.Interval, "interval", 100*time.Millisecond, "group: one message per interval")
	fs.DurationVar(&cfg.Hold, "hold", 10*time.Second, "idle: how long the connections stay open before the server's memory is read")
	fs.IntVar(&cfg.ConnectConcurrency, "connect-concurrency", 64, "WebSocket handshakes in flight")
	fs.IntVar(&cfg.SetupConcurrency, "setup-concurrency", 32, "API calls in flight while minting tokens and creating conversations")
	fs.IntVar(&cfg.Sources, "sources", 0, "loopback source addresses 127.0.0.1… to spread connections over (0: one per 25,000)")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "process whose memory and CPU are read (0: the one listening on --url's port)")
	fs.DurationVar(&cfg.TokenTTL, "token-ttl", time.Hour, "lifetime of the minted connection tokens")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	if err := parse(fs, e, args, fs.Parse); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("give one scenario: idle, direct, group or storm")
	}
	cfg.Scenario = fs.Arg(0)
	cfg.URLs = []string{cf.url}
	if *url2 != "" {
		cfg.URLs = append(cfg.URLs, *url2)
	}
	for _, u := range cfg.URLs {
		if !client.IsLoopback(u) {
			return fmt.Errorf("--url %s: bench only drives servers on this machine (127.0.0.1, ::1, localhost)", u)
		}
	}
	if cf.key == "" {
		return errors.New("no API key: pass --api-key or set ABACUS_API_KEY (a key with the write scope mints tokens and creates conversations)")
	}
	cfg.APIKey = cf.key
	if !*quiet {
		cfg.Log = e.Stderr
	}
	if err := cfg.WithDefaults().Validate(); err != nil {
		return err
	}
	r, err := loadgen.RunRealtime(ctx, cfg)
	if err != nil {
		return err
	}
	describeRealtime(e.Stdout, cfg.WithDefaults(), r)
	switch {
	case r.ConnectErrs > 0:
		return fmt.Errorf("%d connections failed: %v", r.ConnectErrs, r.FirstConnErr)
	case r.Delivered < r.Want || r.Duplicates > 0 || r.SendErrs > 0:
		return fmt.Errorf("%d of %d deliveries missing, %d duplicates, %d sends failed", r.Want-r.Delivered, r.Want, r.Duplicates, r.SendErrs)
	}
	return nil
}

// describeRealtime prints a run's figures, one fact a line.
func describeRealtime(w io.Writer, cfg loadgen.RealtimeConfig, r loadgen.RealtimeResult) {
	fmt.Fprintf(w, "bench realtime %s: %s\n", r.Scenario, strings.Join(cfg.URLs, " + "))
	fmt.Fprintf(w, "connections: %d open; opened in %s = %s/s; handshake %s; %d failed\n",
		r.Conns, r.Connect.Round(time.Millisecond), num(r.ConnectRate), r.Handshake.Detail(), r.ConnectErrs)
	if r.Scenario == loadgen.ScenarioStorm && r.ReadyIn > 0 {
		fmt.Fprintf(w, "authenticated (ready frame received): %d in %s = %s/s\n",
			r.Ready, r.ReadyIn.Round(time.Millisecond), num(float64(r.Ready)/r.ReadyIn.Seconds()))
	}
	if r.FirstConnErr != nil {
		fmt.Fprintf(w, "first connection error: %v\n", r.FirstConnErr)
	}
	if r.Sent > 0 || r.Scenario == loadgen.ScenarioDirect || r.Scenario == loadgen.ScenarioGroup {
		fmt.Fprintf(w, "messages: %d sent (%d failed), %d acked, %d of %d deliveries, %d duplicates, %s deliveries/s\n",
			r.Sent, r.SendErrs, r.Acked, r.Delivered, r.Want, r.Duplicates, num(r.DeliveredPerSec))
		fmt.Fprintf(w, "send → delivered: %s\n", r.Latency.Detail())
		fmt.Fprintf(w, "send → ack:       %s\n", r.Ack.Detail())
		fmt.Fprintf(w, "generator lag (due → written): %s\n", r.Lag.Detail())
		if r.FanoutLast.N > 0 {
			fmt.Fprintf(w, "per message, send → last member reached: %s\n", r.FanoutLast.Detail())
		}
	}
	if r.Errors > 0 {
		fmt.Fprintf(w, "error frames: %d, first: %s\n", r.Errors, r.FirstError)
	}
	if r.Closed > 0 {
		codes := slices.Sorted(maps.Keys(r.CloseCodes))
		var parts []string
		for _, c := range codes {
			parts = append(parts, fmt.Sprintf("%d×%d", r.CloseCodes[c], c))
		}
		fmt.Fprintf(w, "closed by the server during the run: %d (close code ×count, -1 = dropped: %s)\n", r.Closed, strings.Join(parts, ", "))
	}
	if r.ServerPID != 0 {
		fmt.Fprintf(w, "server pid %d: RSS %.1f → %.1f MiB", r.ServerPID, mib(r.ServerRSSBefore), mib(r.ServerRSSAfter))
		if r.Scenario == loadgen.ScenarioIdle {
			fmt.Fprintf(w, " = %.1f KiB per connection", r.ServerBytesPerConn()/1024)
		}
		fmt.Fprintf(w, "; CPU %s over %s (%.0f%% of one core)\n", r.ServerCPU.Round(10*time.Millisecond), r.Wall.Round(time.Millisecond), pct(r.ServerCPU, r.Wall))
	}
	fmt.Fprintf(w, "generator: RSS %.1f → %.1f MiB (%.1f KiB per connection); CPU %s (%.0f%% of one core)\n",
		mib(r.SelfRSSBefore), mib(r.SelfRSSAfter), r.SelfBytesPerConn()/1024, r.SelfCPU.Round(10*time.Millisecond), pct(r.SelfCPU, r.Wall))
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func pct(cpu, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return 100 * cpu.Seconds() / wall.Seconds()
}

// benchServeRealtime serves the bare realtime baseline until interrupted:
// the realtime contract the generator speaks, with nothing stored and no
// bus, to run the same scenario against (docs/realtime.md, Load generator).
func benchServeRealtime(ctx context.Context, e Env, args []string) error {
	fs := newFlags("bench serve-realtime [--addr 127.0.0.1:0] [--api-key KEY]")
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	key := fs.String("api-key", "key", "the bearer token the API routes accept")
	if err := parse(fs, e, args, fs.Parse); err != nil {
		return err
	}
	srv, err := loadgen.StartBareRealtime(*addr, *key)
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintln(e.Stdout, srv.URL)
	<-ctx.Done()
	return nil
}
