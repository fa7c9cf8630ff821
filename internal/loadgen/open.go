package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
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
	URL    string   // http://host:port/path?query
	Method string   // default GET
	Header []string // extra request headers, "Name: value"
	Body   []byte
	// Bodies, when set, are sent in turn (request k sends Bodies[k mod
	// len]) instead of Body: requests that differ as real traffic does.
	Bodies   [][]byte
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
	// Engine is EngineEpoll (the default on Linux) or EngineGoroutines
	// (the default elsewhere, and the only engine there).
	Engine string
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
	if c.Engine == "" {
		c.Engine = defaultEngine
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
	case len(c.Body) > 0 && len(c.Bodies) > 0:
		return errors.New("body and bodies: give one")
	case strings.ContainsAny(c.Method, " \r\n"):
		return fmt.Errorf("method %q is not a token", c.Method)
	case c.Engine != EngineGoroutines && (c.Engine != EngineEpoll || defaultEngine != EngineEpoll):
		return fmt.Errorf("engine %q: this platform has %s", c.Engine, strings.Join(engines(), " and "))
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
	// PerSecond[i] is Latency over the requests due in second i after the
	// warm-up: when in the run the tail happened (a stall, a GC, a
	// background job of the server) rather than only how long it was.
	PerSecond []Latency
}

// Achieved returns answered requests per second over the counted part.
func (r OpenResult) Achieved() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK+r.Errors) / r.Elapsed.Seconds()
}

// Engines of the open-loop generator (OpenConfig.Engine).
const (
	// EngineEpoll is one OS thread with an epoll loop over non-blocking
	// sockets (Linux only; the default there): no goroutine is parked and
	// woken per request, and the next due time is waited for to the
	// nanosecond (epoll_pwait2), so the generator takes less of the cores it
	// shares with the server and sends closer to each due time.
	EngineEpoll = "epoll"
	// EngineGoroutines is one goroutine per connection, each waiting for
	// its next due time on a Go timer (every platform).
	EngineGoroutines = "goroutines"
)

// RunOpen drives cfg.URL at cfg.Rate for cfg.Duration over cfg.Conns
// keep-alive connections (a raw HTTP/1.1 client: the generator shares
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
	pl := &openPlan{cfg: cfg, addr: addr, wires: openRequests(cfg, u),
		total: int64(cfg.Duration.Seconds() * cfg.Rate), warm: int64(cfg.Warmup.Seconds() * cfg.Rate),
		interval: float64(time.Second) / cfg.Rate}
	var tallies []*tally
	var err error
	if cfg.Engine == EngineEpoll {
		tallies, err = runEpoll(ctx, pl)
	} else {
		tallies, err = runGoroutines(ctx, pl)
	}
	if err != nil {
		return OpenResult{}, err
	}
	return pl.result(tallies), ctx.Err()
}

// openPlan is the schedule of one run, shared by the engines: request k
// is due at start + k·interval; requests below warm are not counted.
type openPlan struct {
	cfg         OpenConfig
	addr        string
	wires       [][]byte // the requests' bytes, sent in turn
	total, warm int64
	interval    float64 // nanoseconds
	start       time.Time
	giveUp      time.Time
}

// request is the bytes of request k.
func (pl *openPlan) request(k int64) []byte {
	return pl.wires[k%int64(len(pl.wires))]
}

// begin fixes the start of the schedule, once the connections are open.
func (pl *openPlan) begin() {
	pl.start = time.Now().Add(time.Millisecond)
	pl.giveUp = pl.start.Add(pl.cfg.Duration + pl.cfg.Drain)
}

func (pl *openPlan) due(k int64) time.Time {
	return pl.start.Add(time.Duration(float64(k) * pl.interval))
}

// tally is what one engine worker saw; the result merges them.
type tally struct {
	ok, errs, unsent  int64
	lastDone          time.Time
	firstErr          error
	lat, service, lag []time.Duration
	sec               []int32 // second after the warm-up each lat was due in
}

func (pl *openPlan) newTally(share int) *tally {
	per := int(pl.total/int64(share)) + 16
	return &tally{lat: make([]time.Duration, 0, per), service: make([]time.Duration, 0, per),
		lag: make([]time.Duration, 0, per), sec: make([]int32, 0, per)}
}

// answered records request k, due at due, sent at sent, finished at done.
func (t *tally) answered(pl *openPlan, k int64, due, sent, done time.Time, err error) {
	if k < pl.warm {
		return
	}
	t.lastDone = done
	if err != nil {
		t.errs++
		if t.firstErr == nil {
			t.firstErr = err
		}
		return
	}
	t.ok++
	t.lat = append(t.lat, done.Sub(due))
	t.service = append(t.service, done.Sub(sent))
	t.lag = append(t.lag, sent.Sub(due))
	t.sec = append(t.sec, int32(float64(k-pl.warm)/pl.cfg.Rate))
}

// notSent records request k as given up unsent.
func (t *tally) notSent(pl *openPlan, k int64) {
	if k >= pl.warm {
		t.unsent++
	}
}

func (pl *openPlan) result(tallies []*tally) OpenResult {
	r := OpenResult{Target: pl.cfg.Rate, Counted: pl.total - pl.warm}
	var lat, service, lag []time.Duration
	perSec := make([][]time.Duration, int(math.Ceil(float64(pl.total-pl.warm)/pl.cfg.Rate)))
	var lastDone time.Time
	for _, t := range tallies {
		r.OK += t.ok
		r.Errors += t.errs
		r.Unsent += t.unsent
		if r.FirstErr == nil {
			r.FirstErr = t.firstErr
		}
		if t.lastDone.After(lastDone) {
			lastDone = t.lastDone
		}
		lat = append(lat, t.lat...)
		service = append(service, t.service...)
		lag = append(lag, t.lag...)
		for i, sec := range t.sec {
			sec = min(sec, int32(len(perSec)-1))
			perSec[sec] = append(perSec[sec], t.lat[i])
		}
	}
	r.Latency, r.Service, r.Lag = Summarise(lat), Summarise(service), Summarise(lag)
	for _, ds := range perSec {
		r.PerSecond = append(r.PerSecond, Summarise(ds))
	}
	if !lastDone.IsZero() {
		r.Elapsed = lastDone.Sub(pl.due(pl.warm))
	}
	return r
}

// runGoroutines is EngineGoroutines: each connection's goroutine takes the
// next due request when it is free, waits for its due time if that is
// still ahead, sends it and reads the answer.
func runGoroutines(ctx context.Context, pl *openPlan) ([]*tally, error) {
	cfg := pl.cfg
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
		nc, err := d.DialContext(ctx, "tcp", pl.addr)
		if err != nil {
			return nil, fmt.Errorf("connecting to %s: %w", pl.addr, err)
		}
		return &rawConn{c: nc, br: bufio.NewReaderSize(nc, 16<<10)}, nil
	}
	for i := range conns {
		c, err := dial()
		if err != nil {
			return nil, err
		}
		conns[i] = c
	}
	var (
		next    atomic.Int64
		tallies = make([]*tally, cfg.Conns)
		wg      sync.WaitGroup
	)
	pl.begin()
	for w := range conns {
		tallies[w] = pl.newTally(cfg.Conns)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, t := conns[w], tallies[w]
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for {
				k := next.Add(1) - 1
				if k >= pl.total {
					return
				}
				due := pl.due(k)
				if d := time.Until(due); d > 0 {
					timer.Reset(d)
					select {
					case <-timer.C:
					case <-ctx.Done(): // counted as unsent below
					}
				}
				if ctx.Err() != nil || time.Now().After(pl.giveUp) {
					t.notSent(pl, k)
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
					if _, err = c.c.Write(pl.request(k)); err != nil {
						err = fmt.Errorf("sending to %s: %w", pl.addr, err)
					} else {
						keep, err = c.readResponse(pl.addr, false)
					}
					if !keep {
						c.c.Close()
						c, conns[w] = nil, nil
					}
				}
				t.answered(pl, k, due, sent, time.Now(), err)
			}
		}()
	}
	wg.Wait()
	return tallies, nil
}

// openRequests returns the requests' bytes, written once and sent as
// they are: one request, or one per body of cfg.Bodies.
func openRequests(cfg OpenConfig, u *url.URL) [][]byte {
	if len(cfg.Bodies) == 0 {
		return [][]byte{openRequest(cfg, u, cfg.Body)}
	}
	out := make([][]byte, len(cfg.Bodies))
	for i, body := range cfg.Bodies {
		out[i] = openRequest(cfg, u, body)
	}
	return out
}

func openRequest(cfg OpenConfig, u *url.URL, body []byte) []byte {
	b := []byte(cfg.Method + " " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\n")
	for _, h := range cfg.Header {
		k, v, _ := strings.Cut(h, ":")
		b = append(b, strings.TrimSpace(k)+": "+strings.TrimSpace(v)+"\r\n"...)
	}
	if len(body) > 0 || cfg.Method == "POST" || cfg.Method == "PUT" || cfg.Method == "PATCH" {
		b = append(b, "Content-Length: "+strconv.Itoa(len(body))+"\r\n"...)
	}
	b = append(b, "\r\n"...)
	return append(b, body...)
}
