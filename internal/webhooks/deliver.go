package webhooks

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
)

// result is the outcome of one attempt.
type result struct {
	c          claimed
	at         time.Time
	status     int
	latency    time.Duration
	errText    string
	excerpt    string
	retryAfter time.Duration
}

// ok reports a 2xx answer.
func (r result) ok() bool { return r.status >= 200 && r.status < 300 }

// retryable reports an outcome the schedule retries: no answer, 429, 5xx.
func (r result) retryable() bool { return r.status == 0 || r.status == 429 || r.status >= 500 }

// lane is one endpoint's queue in the dispatcher.
type lane struct {
	ep        endpointRow
	secrets   []string // current first; the rotated-out one while it signs
	queue     []claimed
	inflight  int
	failing   bool      // the last attempt failed
	window    int       // attempts allowed in flight (slow start)
	more      bool      // the last claim was full: more may be due
	nextStart time.Time // rate limit (wall clock)
}

// cap is the lane's concurrency: a slow start from one, doubled by each
// success up to EndpointConcurrency, back to one on a failure. An endpoint
// that never answers so holds one worker, not EndpointConcurrency, even
// before its first timeout.
func (l *lane) cap(c Config) int {
	return max(1, min(l.window, c.EndpointConcurrency))
}

// prefetch is how many claimed messages the lane may hold: sixteen
// rounds of its current concurrency, one while it fails, so an endpoint
// that has not answered yet does not lease a backlog it may never send.
func (l *lane) prefetch(c Config) int {
	if l.failing {
		return 1
	}
	return l.cap(c) * 16
}

// Dispatcher delivers due messages: per-endpoint lanes with a concurrency
// cap each and one bounded pool of workers, so a slow or dead endpoint
// holds at most its cap of workers (one once it fails) and never the
// others'.
type Dispatcher struct {
	s       *Service
	client  *http.Client
	lanes   map[string]*lane
	sem     chan struct{}
	done    chan result
	results chan result
	wg      sync.WaitGroup
	// releasing counts releases of failed lanes' queues in flight.
	releasing sync.WaitGroup
	// beforeRecord runs after an attempt's HTTP exchange and before it is
	// recorded; tests use it to abandon a delivery mid-way.
	beforeRecord func(result) bool
}

// NewDispatcher returns a dispatcher for s.
func (s *Service) NewDispatcher() *Dispatcher {
	dialer := &net.Dialer{Timeout: min(10*time.Second, s.cfg.Timeout), KeepAlive: 30 * time.Second, Control: s.guard.control}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would dial for us, past the guard
		DialContext:           dialer.DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   max(16, s.cfg.EndpointConcurrency*2),
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: s.cfg.Timeout,
	}
	return &Dispatcher{s: s, lanes: map[string]*lane{},
		client: &http.Client{Transport: transport, Timeout: s.cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		sem:     make(chan struct{}, s.cfg.Workers),
		done:    make(chan result, s.cfg.Workers),
		results: make(chan result, s.cfg.Workers*4),
	}
}

// Run delivers until ctx ends; deliveries in flight then finish (up to
// the attempt timeout) and are recorded.
func (d *Dispatcher) Run(ctx context.Context) error {
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		d.record()
	}()
	defer func() {
		d.wg.Wait()
		d.releasing.Wait()
		close(d.results)
		<-recorded
		var ids []string
		for _, l := range d.lanes {
			for _, c := range l.queue {
				ids = append(ids, c.id)
			}
		}
		_ = release(context.Background(), d.s.db, ids)
	}()
	ticker := time.NewTicker(d.s.cfg.PollInterval)
	defer ticker.Stop()
	// Rounds read the database; finishing attempts refill lanes from
	// their queues without it, and ask for a round only when a lane that
	// may have more due runs low. Rounds are at least roundGap apart.
	refill, last := true, time.Time{}
	var gap <-chan time.Time
	for {
		if refill && gap == nil {
			if wait := roundGap - time.Since(last); wait > 0 {
				gap = time.After(wait)
			} else {
				if err := d.round(ctx); err != nil && ctx.Err() == nil {
					d.s.log.Warn("webhooks dispatch round failed; retrying", "err", err)
				}
				refill, last = false, time.Now()
			}
		}
		select {
		case <-ctx.Done():
			for d.inflight() > 0 {
				d.finished(<-d.done)
			}
			return nil
		case <-gap:
			gap = nil
		case r := <-d.done:
			d.finished(r)
			d.drainDone()
			d.start(ctx)
			refill = refill || d.lowWater()
		case <-d.s.wakeCh:
			refill = true
		case <-ticker.C:
			refill = true
		}
	}
}

// roundGap spaces the dispatcher's database rounds.
const roundGap = 10 * time.Millisecond

// lowWater reports a lane that may have more due and has used half of
// what it holds.
func (d *Dispatcher) lowWater() bool {
	for _, l := range d.lanes {
		if l.more && len(l.queue) <= l.prefetch(d.s.cfg)/2 {
			return true
		}
	}
	return false
}

func (d *Dispatcher) inflight() int {
	n := 0
	for _, l := range d.lanes {
		n += l.inflight
	}
	return n
}

func (d *Dispatcher) drainDone() {
	for {
		select {
		case r := <-d.done:
			d.finished(r)
		default:
			return
		}
	}
}

// finished updates the lane of a finished attempt.
func (d *Dispatcher) finished(r result) {
	l := d.lanes[r.c.endpoint]
	if l == nil {
		return
	}
	l.inflight--
	l.failing = !r.ok()
	if l.failing {
		l.window = 1
	} else {
		l.window = min(max(1, l.window)*2, d.s.cfg.EndpointConcurrency)
	}
	if r.status == http.StatusGone || (l.failing && len(l.queue) > 0) {
		// Gone: the endpoint is being disabled. Failing: the rest waits
		// for a lease-free retry one at a time, not behind timeouts.
		d.releaseQueue(l)
	}
}

// releaseQueue returns a lane's unattempted claims to the queue, off the
// dispatch loop: the messages stay leased (so not taken again) until the
// release commits.
func (d *Dispatcher) releaseQueue(l *lane) {
	ids := make([]string, len(l.queue))
	for i, c := range l.queue {
		ids[i] = c.id
	}
	l.queue = nil
	d.releasing.Add(1)
	go func() {
		defer d.releasing.Done()
		if err := release(context.Background(), d.s.db, ids); err != nil {
			d.s.log.Warn("releasing webhook messages", "err", err)
		}
	}()
}

// round refills the lanes with room from the database and starts what
// their caps, rate limits and the pool allow.
func (d *Dispatcher) round(ctx context.Context) error {
	now := d.s.clock.Now()
	due, err := dueEndpoints(ctx, d.s.db, now)
	if err != nil {
		return err
	}
	want := map[string]int{} // endpoint → messages it may take
	seen := make(map[string]bool, len(due))
	for _, ep := range due {
		seen[ep.ID] = true
		l := d.lanes[ep.ID]
		if l == nil {
			l = &lane{}
			d.lanes[ep.ID] = l
		}
		l.ep = ep
		if l.secrets, err = d.secretsOf(ep, now); err != nil {
			d.s.log.Error("cannot sign webhooks of endpoint", "endpoint", ep.ID, "err", err)
			continue
		}
		if n := l.prefetch(d.s.cfg) - len(l.queue) - l.inflight; n > 0 {
			want[ep.ID] = n
		}
	}
	var held []string // lanes holding claims whose endpoint was not due
	for id, l := range d.lanes {
		switch {
		case !seen[id] && l.inflight == 0 && len(l.queue) == 0:
			delete(d.lanes, id)
		case !seen[id] && len(l.queue) > 0:
			held = append(held, id)
		}
	}
	if err := d.dropDisabled(ctx, held); err != nil {
		return err
	}
	if len(want) > 0 {
		if err := d.claim(ctx, want, now); err != nil {
			return err
		}
	}
	d.start(ctx)
	return nil
}

// dropDisabled releases the claims of lanes whose endpoint was disabled
// or deleted since they were taken, so a disabled endpoint gets nothing
// after the next round.
func (d *Dispatcher) dropDisabled(ctx context.Context, lanes []string) error {
	if len(lanes) == 0 {
		return nil
	}
	enabled, err := enabledAmong(ctx, d.s.db, lanes)
	if err != nil {
		return err
	}
	for _, id := range lanes {
		if !enabled[id] {
			d.releaseQueue(d.lanes[id])
		}
	}
	return nil
}

// claim leases due messages into the lanes of want.
func (d *Dispatcher) claim(ctx context.Context, want map[string]int, now time.Time) error {
	// Read outside the transaction (the SQLite writer is shared with the
	// consumer and the attempt log); the lease takes only what is still
	// free when it runs.
	found, err := dueFor(ctx, d.s.db, want, now)
	if err != nil {
		return err
	}
	ids := make([]string, len(found))
	per := map[string]int{}
	for i, c := range found {
		ids[i] = c.id
		per[c.endpoint]++
	}
	for id, n := range want {
		d.lanes[id].more = per[id] == n
	}
	if len(found) == 0 {
		return nil
	}
	return d.s.db.InTx(ctx, func(tx *db.Tx) error {
		got, err := lease(ctx, tx, ids, now, now.Add(d.s.cfg.Lease))
		if err != nil {
			return err
		}
		// The lanes take the leased messages only once they are theirs.
		tx.AfterCommit(func() {
			for _, c := range found {
				if got[c.id] {
					l := d.lanes[c.endpoint]
					l.queue = append(l.queue, c)
				}
			}
		})
		return nil
	})
}

func (d *Dispatcher) secretsOf(ep endpointRow, now time.Time) ([]string, error) {
	cur, err := d.s.sealer.open(ep.ID, ep.secret)
	if err != nil {
		return nil, err
	}
	out := []string{cur}
	if ep.oldSecret != "" && now.Before(ep.oldSecretUntil) {
		old, err := d.s.sealer.open(ep.ID, ep.oldSecret)
		if err != nil {
			return nil, err
		}
		out = append(out, old)
	}
	return out, nil
}

// start launches attempts from the lanes, round-robin, while the pool has
// room.
func (d *Dispatcher) start(ctx context.Context) {
	wall := time.Now()
	var wakeAt time.Time
	for progress := true; progress; {
		progress = false
		for _, l := range d.lanes {
			if len(l.queue) == 0 || l.inflight >= l.cap(d.s.cfg) {
				continue
			}
			if l.ep.RateLimit > 0 && wall.Before(l.nextStart) {
				if wakeAt.IsZero() || l.nextStart.Before(wakeAt) {
					wakeAt = l.nextStart
				}
				continue
			}
			select {
			case d.sem <- struct{}{}:
			default:
				return // the pool is full; a finishing attempt calls again
			}
			c := l.queue[0]
			l.queue = l.queue[1:]
			l.inflight++
			if l.ep.RateLimit > 0 {
				l.nextStart = wall.Add(time.Second / time.Duration(l.ep.RateLimit))
			}
			d.wg.Add(1)
			go d.attempt(ctx, l.ep.URL, l.secrets, c)
			progress = true
		}
	}
	if !wakeAt.IsZero() {
		time.AfterFunc(time.Until(wakeAt), d.s.wake)
	}
}

// attempt POSTs one message and hands the result to the recorder.
func (d *Dispatcher) attempt(ctx context.Context, url string, secrets []string, c claimed) {
	defer d.wg.Done()
	r := d.post(ctx, url, secrets, c)
	<-d.sem
	if d.beforeRecord == nil || d.beforeRecord(r) {
		d.results <- r
	}
	d.done <- r
}

func (d *Dispatcher) post(ctx context.Context, url string, secrets []string, c claimed) result {
	at := d.s.clock.Now()
	r := result{c: c, at: at}
	sig, err := sign(c.id, at, c.body, secrets...)
	if err != nil {
		r.errText = err.Error()
		return r
	}
	// The attempt is not cut short by shutdown: it finishes (or times out)
	// and is recorded, instead of counting as a failure.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, url, bytes.NewReader(c.body))
	if err != nil {
		r.errText = err.Error()
		return r
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Abacus-Webhooks/1")
	req.Header.Set("webhook-id", c.id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(at.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	began := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		r.latency = time.Since(began)
		r.errText = describe(err)
		d.s.failed.Inc()
		d.s.latency.Observe(r.latency.Seconds())
		return r
	}
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, int64(d.s.cfg.ResponseExcerpt)))
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10) // lets the connection be reused
	_ = resp.Body.Close()
	r.latency = time.Since(began)
	r.status, r.excerpt = resp.StatusCode, truncate(string(excerpt), d.s.cfg.ResponseExcerpt)
	r.retryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	if r.ok() {
		d.s.delivered.Inc()
	} else {
		d.s.failed.Inc()
	}
	d.s.latency.Observe(r.latency.Seconds())
	return r
}

func describe(err error) string {
	var refused *refusedError
	var ne net.Error
	switch {
	case errors.As(err, &refused):
		return refused.Error()
	case errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	}
	return err.Error()
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if n, err := strconv.Atoi(h); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
