package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// OpenConfig shapes an open-loop run: request k is due at start + k/Rate
// whatever the server does, and its latency counts from that due time,
// not from when a connection was free to send it. A closed loop (each
// connection sends its next request when the last one is answered) slows
// down with the server and so hides a stall from the figures
// ("coordinated omission"); an open loop keeps the requests a stalled
// server owes and charges it the wait.
type OpenConfig struct {
	URL      string   // http://host:port/path?query
	Method   string   // default GET
	Header   []string // extra request headers, "Name: value"
	Body     []byte
	Rate     float64       // requests due per second
	Duration time.Duration // requests are due over this long
	// Warmup: requests due in the first Warmup are sent but not counted,
	// so connection set-up, caches and the first GC do not count.
	Warmup  time.Duration
	Conns   int           // connections, each carrying one request at a time; default 16
	Timeout time.Duration // one request; default 10 s
	// Drain bounds how long requests still owed at the end of Duration may
	// be sent; those left are reported as Unsent. Default 10 s.
	Drain time.Duration
}

// WithDefaults returns c with zero fields set to their defaults.
func (c OpenConfig) WithDefaults() OpenConfig {
	if c.Method == "" {
		c.Method = "GET"
	}
	if c.Conns <= 0 {
		c.Conns = 16
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Drain <= 0 {
		c.Drain = 10 * time.Second
	}
	return c
}

// Validate reports the first bad field by its flag name.
func (c OpenConfig) Validate() error {
	u, err := url.Parse(c.URL)
	switch {
	case err != nil || u.Scheme != "http" || u.Host == "":
		return fmt.Errorf("url %q: the open-loop generator speaks plain http://host:port/path only", c.URL)
	case c.Rate <= 0 || c.Rate > 1e6:
		return fmt.Errorf("rate %v must be above 0 and at most 1,000,000 requests/s", c.Rate)
	case c.Duration <= 0:
		return errors.New("duration must be above 0")
	case c.Warmup < 0 || c.Warmup >= c.Duration:
		return fmt.Errorf("warmup %s must be at least 0 and shorter than the duration %s", c.Warmup, c.Duration)
	case c.Conns > 4096:
		return fmt.Errorf("conns %d is above 4096", c.Conns)
	case strings.ContainsAny(c.Method, " \r\n"):
		return fmt.Errorf("method %q is not a token", c.Method)
	}
	for _, h := range c.Header {
		k, _, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(k) == "" || strings.ContainsAny(h, "\r\n") {
			return fmt.Errorf("header %q must be one line of the form 'Name: value'", h)
		}
	}
	return nil
}

// OpenResult is what an open-loop run measured, over the requests due
// after the warm-up.
type OpenResult struct {
	Target   float64       // requests/s due
	Counted  int64         // requests due after the warm-up
	OK       int64         // answered 2xx
	Errors   int64         // answered otherwise, or failed
	Unsent   int64         // still owed when the drain time ran out
	Elapsed  time.Duration // end of the warm-up to the last answer
	FirstErr error
	// Latency runs from each request's due time to its answer (2xx only):
	// the figure a caller arriving at that moment would have seen.
	Latency Latency
	// Service runs from the moment the request was written; Lag from its
	// due time to that moment (waiting for a free connection, or the
	// generator's own timer and scheduling delay).
	Service, Lag Latency
}

// Achieved returns answered requests per second over the counted part.
func (r OpenResult) Achieved() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK+r.Errors) / r.Elapsed.Seconds()
}

// RunOpen drives cfg.URL at cfg.Rate for cfg.Duration over cfg.Conns
// keep-alive connections (the raw HTTP/1.1 client: the generator shares
// the cores with the server). The connections are opened before the first
// request is due, so dialing is not in the figures. It returns after every
// due request was answered, failed or given up.
func RunOpen(ctx context.Context, cfg OpenConfig) (OpenResult, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return OpenResult{}, err
	}
	u, _ := url.Parse(cfg.URL)
	addr := u.Host
	if u.Port() == "" {
		addr += ":80"
	}
	wire := openRequest(cfg, u)
	total := int64(cfg.Duration.Seconds() * cfg.Rate)
	warm := int64(cfg.Warmup.Seconds() * cfg.Rate)
	interval := float64(time.Second) / cfg.Rate

	conns := make([]*rawConn, cfg.Conns)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.c.Close()
			}
		}
	}()
	dial := func() (*rawConn, error) {
		d := net.Dialer{Timeout: 5 * time.Second}
		nc, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("connecting to %s: %w", addr, err)
		}
		return &rawConn{c: nc, br: bufio.NewReaderSize(nc, 16<<10)}, nil
	}
	for i := range conns {
		c, err := dial()
		if err != nil {
			return OpenResult{}, err
		}
		conns[i] = c
	}

	type sample struct{ lat, service, lag []time.Duration }
	var (
		next     atomic.Int64
		ok, errs atomic.Int64
		unsent   atomic.Int64
		lastDone atomic.Int64 // unix nanos of the last counted answer
		errMu    sync.Mutex
		firstErr error
		samples  = make([]sample, cfg.Conns)
		wg       sync.WaitGroup
	)
	start := time.Now().Add(time.Millisecond)
	measured := start.Add(time.Duration(float64(warm) * interval))
	giveUp := start.Add(cfg.Duration + cfg.Drain)
	for w := range conns {
		per := int(total/int64(cfg.Conns)) + 16
		samples[w] = sample{make([]time.Duration, 0, per), make([]time.Duration, 0, per), make([]time.Duration, 0, per)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := conns[w]
			s := &samples[w]
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for {
				k := next.Add(1) - 1
				if k >= total {
					return
				}
				due := start.Add(time.Duration(float64(k) * interval))
				if d := time.Until(due); d > 0 {
					timer.Reset(d)
					select {
					case <-timer.C:
					case <-ctx.Done(): // counted as unsent below
					}
				}
				if ctx.Err() != nil || time.Now().After(giveUp) {
					if k >= warm {
						unsent.Add(1)
					}
					continue
				}
				var err error
				if c == nil {
					if c, err = dial(); err == nil {
						conns[w] = c
					}
				}
				sent := time.Now()
				if err == nil {
					_ = c.c.SetDeadline(sent.Add(cfg.Timeout))
					var keep bool
					if _, err = c.c.Write(wire); err != nil {
						err = fmt.Errorf("sending to %s: %w", addr, err)
					} else {
						keep, err = c.readResponse(addr, false)
					}
					if !keep {
						c.c.Close()
						c, conns[w] = nil, nil
					}
				}
				done := time.Now()
				if k < warm {
					continue
				}
				lastDone.Store(done.UnixNano())
				if err != nil {
					errs.Add(1)
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
					continue
				}
				ok.Add(1)
				s.lat = append(s.lat, done.Sub(due))
				s.service = append(s.service, done.Sub(sent))
				s.lag = append(s.lag, sent.Sub(due))
			}
		}()
	}
	wg.Wait()
	var lat, service, lag []time.Duration
	for _, s := range samples {
		lat = append(lat, s.lat...)
		service = append(service, s.service...)
		lag = append(lag, s.lag...)
	}
	r := OpenResult{
		Target: cfg.Rate, Counted: total - warm, OK: ok.Load(), Errors: errs.Load(), Unsent: unsent.Load(), FirstErr: firstErr,
		Latency: Summarise(lat), Service: Summarise(service), Lag: Summarise(lag),
	}
	if ld := lastDone.Load(); ld > 0 {
		r.Elapsed = time.Unix(0, ld).Sub(measured)
	}
	return r, ctx.Err()
}

// openRequest returns the request's bytes, written once and sent as they
// are for every request.
func openRequest(cfg OpenConfig, u *url.URL) []byte {
	b := []byte(cfg.Method + " " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\n")
	for _, h := range cfg.Header {
		k, v, _ := strings.Cut(h, ":")
		b = append(b, strings.TrimSpace(k)+": "+strings.TrimSpace(v)+"\r\n"...)
	}
	if len(cfg.Body) > 0 || cfg.Method == "POST" || cfg.Method == "PUT" || cfg.Method == "PATCH" {
		b = append(b, "Content-Length: "+strconv.Itoa(len(cfg.Body))+"\r\n"...)
	}
	b = append(b, "\r\n"...)
	return append(b, cfg.Body...)
}
