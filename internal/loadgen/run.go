package loadgen

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abacusbilling/abacus/internal/client"
)

// SendFunc delivers one request body (one event when single, else a JSON
// array) and returns nil once the target acknowledged it. It must be safe
// for concurrent use; an error for which client.Retryable is true makes the
// runner send the same body again.
type SendFunc func(ctx context.Context, single bool, body []byte) error

// Config bounds and shapes a run.
type Config struct {
	Events    int64         // events to send; 0 = until Duration
	Duration  time.Duration // stop starting new requests after this; 0 = until Events
	Conns     int           // concurrent requests; default 64
	BatchSize int           // events per request; 1 = single-event requests; default 1000
	Rate      float64       // target events/s; 0 = as fast as the target answers
	Backoff   client.Backoff
	// Progress, when set, has the number of acknowledged events added to
	// it as they are acknowledged (for tests that act mid-run).
	Progress *atomic.Int64
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Conns <= 0 {
		c.Conns = 64
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	return c
}

// Validate reports the first bad field by its flag name.
func (c Config) Validate() error {
	switch {
	case c.Events < 0:
		return fmt.Errorf("events %d must not be negative", c.Events)
	case c.Events == 0 && c.Duration <= 0:
		return errors.New("bound the run: give events > 0 or a duration")
	case c.BatchSize > 10000:
		return fmt.Errorf("batch-size %d is above the server's limit of 10000 events per request", c.BatchSize)
	case c.Conns > 4096:
		return fmt.Errorf("conns %d is above 4096", c.Conns)
	case c.Rate < 0:
		return fmt.Errorf("rate %v must not be negative", c.Rate)
	}
	return nil
}

// Result is what a run sent and how the target answered.
type Result struct {
	Events    int64         // events acknowledged
	SumCents  int64         // exact sum of their values, in hundredths
	Requests  int64         // requests acknowledged
	Attempts  int64         // requests made, retries included
	BodyBytes int64         // bytes of acknowledged bodies
	Elapsed   time.Duration // first request to last acknowledgement
	LastAck   time.Time
	Latency   Latency // of acknowledged attempts
	// Failed is set when a request was given up (attempts ran out or ctx
	// ended): its events may or may not have been stored.
	Failed error
}

// Rate returns acknowledged events per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Events) / r.Elapsed.Seconds()
}

// Latency summarises request latencies.
type Latency struct {
	N                        int
	P50, P90, P99, P999, Max time.Duration
}

// Summarise returns the percentiles of ds (which it sorts).
func Summarise(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	pct := func(p float64) time.Duration {
		i := int(p*float64(len(ds)) + 0.5)
		return ds[min(max(i-1, 0), len(ds)-1)]
	}
	return Latency{N: len(ds), P50: pct(0.50), P90: pct(0.90), P99: pct(0.99), P999: pct(0.999), Max: ds[len(ds)-1]}
}

func (l Latency) String() string {
	return fmt.Sprintf("p50 %s p99 %s max %s (n=%d)", round(l.P50), round(l.P99), round(l.Max), l.N)
}

// Detail is String with p90 and p99.9.
func (l Latency) Detail() string {
	return fmt.Sprintf("p50 %s p90 %s p99 %s p99.9 %s max %s (n=%d)", round(l.P50), round(l.P90), round(l.P99), round(l.P999), round(l.Max), l.N)
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// Run sends generated events through send with cfg.Conns concurrent
// workers. Each batch is retried unchanged until acknowledged, so a
// target that crashes and comes back sees the same ids again. Run returns
// when every started batch has been acknowledged or given up.
func Run(ctx context.Context, cfg Config, g *Gen, send SendFunc) (Result, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	var (
		next     atomic.Int64 // next batch number
		events   atomic.Int64
		sum      atomic.Int64
		requests atomic.Int64
		attempts atomic.Int64
		bytes    atomic.Int64
		lastAck  atomic.Int64 // unix nanos
		failMu   sync.Mutex
		failed   error
		lats     = make([][]time.Duration, cfg.Conns)
		wg       sync.WaitGroup
	)
	start := time.Now()
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = start.Add(cfg.Duration)
	}
	b := int64(cfg.BatchSize)
	single := cfg.BatchSize == 1
	stop := make(chan struct{})
	var stopOnce sync.Once
	for w := 0; w < cfg.Conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for {
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				k := next.Add(1) - 1
				from, to := k*b, (k+1)*b
				if cfg.Events > 0 {
					if from >= cfg.Events {
						return
					}
					to = min(to, cfg.Events)
				}
				if cfg.Rate > 0 { // pace: batch k is due at start + from/rate
					due := start.Add(time.Duration(float64(from) / cfg.Rate * float64(time.Second)))
					if d := time.Until(due); d > 0 {
						t := time.NewTimer(d)
						select {
						case <-t.C:
						case <-ctx.Done():
							t.Stop()
							return
						}
					}
				}
				if !deadline.IsZero() && time.Now().After(deadline) {
					return
				}
				buf = g.AppendBody(buf[:0], from, to, time.Now(), single)
				var ok time.Duration
				n, err := client.Retry(ctx, cfg.Backoff, func(ctx context.Context) error {
					t0 := time.Now()
					err := send(ctx, single, buf)
					if err == nil {
						ok = time.Since(t0)
					}
					return err
				})
				attempts.Add(int64(n))
				if err != nil {
					failMu.Lock()
					if failed == nil {
						failed = fmt.Errorf("events %d–%d: %w", from, to-1, err)
					}
					failMu.Unlock()
					stopOnce.Do(func() { close(stop) })
					return
				}
				lastAck.Store(time.Now().UnixNano())
				lats[w] = append(lats[w], ok)
				events.Add(to - from)
				if cfg.Progress != nil {
					cfg.Progress.Add(to - from)
				}
				sum.Add(SumCents(from, to))
				requests.Add(1)
				bytes.Add(int64(len(buf)))
			}
		}()
	}
	wg.Wait()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	r := Result{
		Events: events.Load(), SumCents: sum.Load(), Requests: requests.Load(),
		Attempts: attempts.Load(), BodyBytes: bytes.Load(), Latency: Summarise(all), Failed: failed,
	}
	if la := lastAck.Load(); la > 0 {
		r.LastAck = time.Unix(0, la)
		r.Elapsed = r.LastAck.Sub(start)
	}
	return r, nil
}
