package usage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/metering"
	"github.com/abacusbilling/abacus/internal/natsbus"
)

// Bus names.
const (
	Stream        = "ABACUS_USAGE"
	SubjectPrefix = "abacus.usage."
)

// Subject is the bus subject of partition p.
func Subject(p int) string { return SubjectPrefix + strconv.Itoa(p) }

// ConsumerName is the durable consumer of partition p.
func ConsumerName(p int) string { return "meter-" + strconv.Itoa(p) }

// Partition returns the partition of (tenant, subject) among n: FNV-1a.
func Partition(tenant, subject string, n int) int {
	h := uint64(14695981039346656037)
	for i := 0; i < len(tenant); i++ {
		h = (h ^ uint64(tenant[i])) * 1099511628211
	}
	h = (h ^ 0xff) * 1099511628211
	for i := 0; i < len(subject); i++ {
		h = (h ^ uint64(subject[i])) * 1099511628211
	}
	return int(h % uint64(n))
}

// IngestConfig configures the ingest role. Zero fields take defaults.
type IngestConfig struct {
	Partitions     int           // bus partitions; default 4
	Linger         time.Duration // how long a batcher waits for more events while a publish is in flight; default 1ms
	MaxBatchEvents int           // events per bus message; default 20,000
	MaxBatchBytes  int           // bytes per bus message; default 1 MiB (capped by the server's max payload)
	MaxInflight    int           // unacknowledged publishes per partition; default 32
	MaxLag         int           // unprocessed events per partition (estimated) above which ingestion answers 503; default 100,000
	LagPoll        time.Duration // how often consumer lag is read; default 250ms
	StreamMaxAge   time.Duration // how long the bus keeps messages; default 72h
	Limits         metering.Limits
	// Rules, when set, adds each tenant's late-event window and event-type
	// schemas to the checks (Limits.LateWindow is then the default); Run
	// keeps it current. Use the Service's (Service.Rules) so changes made
	// through this process apply at once.
	Rules *Rules
}

// WithDefaults returns c with zero fields set.
func (c IngestConfig) WithDefaults() IngestConfig {
	if c.Partitions <= 0 {
		c.Partitions = 4
	}
	if c.Linger <= 0 {
		c.Linger = time.Millisecond
	}
	if c.MaxBatchEvents <= 0 {
		c.MaxBatchEvents = 20_000
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 1 << 20
	}
	if c.MaxInflight <= 0 {
		c.MaxInflight = 32
	}
	if c.MaxLag <= 0 {
		c.MaxLag = 100_000
	}
	if c.LagPoll <= 0 {
		c.LagPoll = 250 * time.Millisecond
	}
	if c.StreamMaxAge <= 0 {
		c.StreamMaxAge = 72 * time.Hour
	}
	c.Limits = c.Limits.WithDefaults()
	return c
}

// EnsureStream provisions the usage stream (idempotent).
func EnsureStream(ctx context.Context, bus *natsbus.Bus, partitions int, maxAge time.Duration) error {
	_, err := bus.EnsureStream(ctx, jetstream.StreamConfig{
		Name:        Stream,
		Description: "usage events, one message per coalesced batch; subject abacus.usage.<partition>",
		Subjects:    []string{SubjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      maxAge,
		Duplicates:  2 * time.Minute,
	})
	return err
}

// ingestMetrics are the ingest role's Prometheus metrics.
type ingestMetrics struct {
	accepted, rejected, duplicate prometheus.Counter
	unavailable                   prometheus.Counter
	batchEvents                   prometheus.Histogram
	lag                           *prometheus.GaugeVec
}

func newIngestMetrics(reg prometheus.Registerer) *ingestMetrics {
	m := &ingestMetrics{
		accepted:    prometheus.NewCounter(prometheus.CounterOpts{Name: "abacus_metering_events_accepted_total", Help: "Usage events made durable on the bus."}),
		rejected:    prometheus.NewCounter(prometheus.CounterOpts{Name: "abacus_metering_requests_rejected_total", Help: "Ingestion requests refused as invalid or too large."}),
		duplicate:   prometheus.NewCounter(prometheus.CounterOpts{Name: "abacus_metering_events_duplicate_total", Help: "Usage events dropped as repeats within one request."}),
		unavailable: prometheus.NewCounter(prometheus.CounterOpts{Name: "abacus_metering_requests_unavailable_total", Help: "Ingestion requests answered 503 (back-pressure or bus failure)."}),
		batchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "abacus_metering_bus_batch_events", Help: "Events per bus message (group commit size).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9)}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "abacus_metering_consumer_lag", Help: "Usage events not yet processed by the meter consumer, per partition (messages pending × recent events per message)."}, []string{"partition"}),
	}
	if reg != nil {
		reg.MustRegister(m.accepted, m.rejected, m.duplicate, m.unavailable, m.batchEvents, m.lag)
	}
	return m
}

// Ingester is the ingest role: the POST /api/v1/events handler and the
// per-partition batchers that coalesce concurrent requests into one bus
// message each.
type Ingester struct {
	cfg     IngestConfig
	bus     *natsbus.Bus
	js      jetstream.JetStream
	clock   abacus.Clock
	log     *slog.Logger
	metrics *ingestMetrics
	parts   []*batcher
	lagged  []atomic.Bool
	// perMsg is each partition's moving average of events per published
	// message, in 1/1024ths, for estimating lag in events.
	perMsg []atomic.Uint64
	bufs   sync.Pool
	pubs   sync.Map // *nats.Msg → *message: publishes awaiting their ack callback
}

// NewIngester provisions the stream and returns the role; Run starts its
// batchers. It returns an error when the stream cannot be provisioned.
func NewIngester(ctx context.Context, bus *natsbus.Bus, cfg IngestConfig, clock abacus.Clock, log *slog.Logger, reg prometheus.Registerer) (*Ingester, error) {
	cfg = cfg.WithDefaults()
	if mp := int(bus.Conn().MaxPayload()); mp > 0 && cfg.MaxBatchBytes > mp-4096 {
		cfg.MaxBatchBytes = mp - 4096
	}
	if err := EnsureStream(ctx, bus, cfg.Partitions, cfg.StreamMaxAge); err != nil {
		return nil, err
	}
	in := &Ingester{cfg: cfg, bus: bus, clock: clock, log: log, metrics: newIngestMetrics(reg),
		lagged: make([]atomic.Bool, cfg.Partitions), perMsg: make([]atomic.Uint64, cfg.Partitions)}
	js, err := jetstream.New(bus.Conn(),
		// Twice the batchers' own bound: the client never stalls a publish
		// made from its ack callback (which would deadlock).
		jetstream.WithPublishAsyncMaxPending(2*cfg.MaxInflight*cfg.Partitions),
		jetstream.WithPublishAsyncTimeout(10*time.Second),
		jetstream.WithPublishAsyncAckHandler(in.onAck),
		jetstream.WithPublishAsyncErrHandler(in.onPubErr))
	if err != nil {
		return nil, fmt.Errorf("opening JetStream for ingestion: %w", err)
	}
	in.js = js
	for p := 0; p < cfg.Partitions; p++ {
		in.parts = append(in.parts, newBatcher(in, p))
	}
	return in, nil
}

// Run runs the batchers and the lag monitor until ctx ends; then it
// publishes what is queued and returns.
func (in *Ingester) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		for _, b := range in.parts {
			b.close()
		}
	}()
	wg.Add(1)
	go func() { defer wg.Done(); in.watchLag(ctx) }()
	if in.cfg.Rules != nil {
		wg.Add(1)
		go func() { defer wg.Done(); in.cfg.Rules.Watch(ctx) }()
	}
	wg.Wait()
	return nil
}

// watchLag reads each consumer's lag. JetStream counts messages (pending
// + unacknowledged), but group commit packs from one to tens of thousands
// of events into a message, so the bound is kept in events: messages times
// the partition's recent events per message.
func (in *Ingester) watchLag(ctx context.Context) {
	t := time.NewTicker(in.cfg.LagPoll)
	defer t.Stop()
	for {
		for p := range in.parts {
			ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
			var lag uint64
			c, err := in.js.Consumer(ictx, Stream, ConsumerName(p))
			if err == nil {
				info := c.CachedInfo()
				lag = (info.NumPending + uint64(info.NumAckPending)) * in.eventsPerMessage(p)
			}
			cancel()
			in.metrics.lag.WithLabelValues(strconv.Itoa(p)).Set(float64(lag))
			in.lagged[p].Store(lag > uint64(in.cfg.MaxLag))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// waiter completes one request when all its bus messages are acked.
type waiter struct {
	remaining atomic.Int32
	failed    atomic.Bool
	done      chan struct{}
}

func (w *waiter) finish(ok bool) {
	if !ok {
		w.failed.Store(true)
	}
	if w.remaining.Add(-1) == 0 {
		close(w.done)
	}
}

// pending is one request's events for one partition, encoded.
type pending struct {
	batch  []byte
	events int
	part   int
	w      *waiter
}

// ServeHTTP accepts usage events (see package doc). It answers 204 once
// every event is durable on the bus; 400/413 problem+json when the body is
// refused (nothing is stored); 503 with Retry-After under back-pressure or
// when the bus cannot take the events (retrying with the same ids is safe).
func (in *Ingester) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := abacus.PrincipalFrom(ctx)
	if p == nil {
		httpapi.WriteError(w, r, in.log, abacus.Errorf(abacus.KindUnauthorized, "unauthenticated", "send Authorization: Bearer <api key with the ingest scope>"))
		return
	}
	body, err := in.readBody(r)
	if err != nil {
		in.metrics.rejected.Inc()
		httpapi.WriteError(w, r, in.log, err)
		return
	}
	limits, check, err := in.tenantChecks(ctx, p.TenantID)
	if err != nil {
		in.bufs.Put(body)
		in.metrics.unavailable.Inc()
		in.log.ErrorContext(ctx, "loading tenant metering rules", "tenant_id", p.TenantID, "err", err)
		httpapi.WriteError(w, r, in.log, unavailable("the tenant's metering rules could not be read; retry with the same event ids"))
		return
	}
	events, err := metering.DecodeEventsChecked(r.Header.Get("Content-Type"), *body, in.clock.Now(), limits, check)
	in.bufs.Put(body)
	if err != nil {
		in.metrics.rejected.Inc()
		httpapi.WriteError(w, r, in.log, err)
		return
	}
	for i := range events {
		events[i].TenantID = p.TenantID
	}
	events, dups := metering.DedupBatch(events)
	if len(dups) > 0 {
		in.metrics.duplicate.Add(float64(len(dups)))
	}
	if err := in.Submit(ctx, events); err != nil {
		in.metrics.unavailable.Inc()
		httpapi.WriteError(w, r, in.log, err)
		return
	}
	in.metrics.accepted.Add(float64(len(events)))
	w.WriteHeader(http.StatusNoContent)
}

// tenantChecks returns the limits and data check for a tenant's events:
// the configured limits with the tenant's late-event window, and its
// event-type schemas (nil check when it has none).
func (in *Ingester) tenantChecks(ctx context.Context, tenant string) (metering.Limits, metering.DataCheck, error) {
	if in.cfg.Rules == nil {
		return in.cfg.Limits, nil, nil
	}
	tr, err := in.cfg.Rules.For(ctx, tenant)
	if err != nil || tr == nil {
		return in.cfg.Limits, nil, err
	}
	l := in.cfg.Limits
	if tr.LateWindow > 0 {
		l.LateWindow = tr.LateWindow
	}
	if tr.Schemas == nil {
		return l, nil, nil
	}
	return l, tr.Schemas.Check, nil
}

func (in *Ingester) readBody(r *http.Request) (*[]byte, error) {
	bp, _ := in.bufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, 4096)
		bp = &b
	}
	buf := (*bp)[:0]
	if n := r.ContentLength; n > 0 && int64(cap(buf)) < n && n <= int64(in.cfg.Limits.MaxBatchBytes) {
		buf = make([]byte, 0, n+1)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, abacus.Errorf(abacus.KindTooLarge, metering.CodePayloadTooLarge,
				"the request body is over the limit of %d bytes; split the batch", tooLarge.Limit)
		}
		if err != nil {
			return nil, abacus.Invalid("unreadable_body", "the request body could not be read: %v", err)
		}
		if len(buf) > in.cfg.Limits.MaxBatchBytes {
			return nil, abacus.Errorf(abacus.KindTooLarge, metering.CodePayloadTooLarge,
				"the request body is over the limit of %d bytes; split the batch", in.cfg.Limits.MaxBatchBytes)
		}
	}
	*bp = buf
	return bp, nil
}

func overloaded() *abacus.Error {
	e := abacus.Errorf(abacus.KindUnavailable, "ingestion_overloaded",
		"usage processing is behind; retry after the delay in Retry-After with the same event ids")
	e.RetryAfter = 1
	return e
}

func unavailable(msg string) *abacus.Error {
	e := abacus.Errorf(abacus.KindUnavailable, "ingestion_unavailable", "%s", msg)
	e.RetryAfter = 1
	return e
}

// Submit makes validated events (TenantID set) durable on the bus and
// returns when the bus has acknowledged all of them. Errors: a
// KindUnavailable *abacus.Error (ingestion_overloaded when consumers lag,
// ingestion_unavailable when the bus fails); the caller may retry with the
// same events.
func (in *Ingester) Submit(ctx context.Context, events []metering.Event) error {
	if len(events) == 0 {
		return nil
	}
	if in.bus.WriteErr() != nil {
		// The store answers no publish until it recovers: say so now
		// rather than after the publish timeout.
		return unavailable("the event store cannot write (its disk is full or failing); retry with the same event ids")
	}
	P := in.cfg.Partitions
	first := Partition(events[0].TenantID, events[0].Subject, P)
	same := true
	for i := 1; i < len(events) && same; i++ {
		same = Partition(events[i].TenantID, events[i].Subject, P) == first
	}
	if same {
		if in.lagged[first].Load() {
			return overloaded()
		}
		if len(events) <= in.cfg.MaxBatchEvents && (len(events) == 1 || metering.EncodedSize(events) <= in.cfg.MaxBatchBytes-16) {
			// The common case, and every single-event request: one
			// pending, allocated with its waiter.
			one := &struct {
				w  waiter
				pe pending
			}{}
			one.w.done = make(chan struct{})
			one.w.remaining.Store(1)
			one.pe = pending{batch: metering.EncodeBatch(events), events: len(events), part: first, w: &one.w}
			if !in.parts[first].add(&one.pe) {
				return unavailable("ingestion is shutting down; retry with the same event ids")
			}
			return in.wait(ctx, &one.w)
		}
	}
	// Group the events by partition as index lists (a stable counting
	// sort), not copies: an Event is ~200 bytes of pointers, and copying a
	// 1000-event batch into per-partition slices cost 8% of the server's
	// CPU under batched load.
	order := make([]int32, len(events))
	start := make([]int, P+1)
	for i := range events {
		p := first
		if !same {
			p = Partition(events[i].TenantID, events[i].Subject, P)
		}
		order[i] = int32(p)
		start[p+1]++
	}
	for p := 1; p <= P; p++ {
		start[p] += start[p-1]
	}
	for p := 0; p < P; p++ {
		if start[p+1] > start[p] && in.lagged[p].Load() {
			return overloaded()
		}
	}
	next := slices.Clone(start[:P])
	idx := make([]int32, len(events))
	for i, p := range order {
		idx[next[p]] = int32(i)
		next[p]++
	}
	var pend []*pending
	w := &waiter{done: make(chan struct{})}
	for p := 0; p < P; p++ {
		if g := idx[start[p]:start[p+1]]; len(g) > 0 {
			pend = in.encode(pend, events, g, p, w)
		}
	}
	w.remaining.Store(int32(len(pend)))
	for _, pe := range pend {
		if !in.parts[pe.part].add(pe) {
			return unavailable("ingestion is shutting down; retry with the same event ids")
		}
	}
	return in.wait(ctx, w)
}

// wait returns when every message holding the request's events is
// acknowledged, or ctx ends.
func (in *Ingester) wait(ctx context.Context, w *waiter) error {
	select {
	case <-w.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if w.failed.Load() {
		return unavailable("the events could not be made durable; retry with the same event ids")
	}
	return nil
}

// encode appends pendings for events[idx[0]], events[idx[1]]… of
// partition p, splitting so each fits in one bus message.
func (in *Ingester) encode(out []*pending, events []metering.Event, idx []int32, p int, w *waiter) []*pending {
	size := 16
	for _, i := range idx {
		size += metering.EncodedSize(events[i:i+1]) - 16
	}
	if len(idx) > in.cfg.MaxBatchEvents || (len(idx) > 1 && size > in.cfg.MaxBatchBytes-16) {
		half := len(idx) / 2
		out = in.encode(out, events, idx[:half], p, w)
		return in.encode(out, events, idx[half:], p, w)
	}
	return append(out, &pending{batch: metering.AppendBatchAt(make([]byte, 0, size), events, idx), events: len(idx), part: p, w: w})
}

// batcher coalesces one partition's pendings into bus messages. It has
// no goroutine of its own: a request that finds the partition idle
// publishes its events itself, and the JetStream ack callback completes
// the requests of an acknowledged message and publishes what queued
// meanwhile. On a busy 2-core machine every goroutine hand-off on the
// request path costs a scheduling delay, and single-event requests wait
// for the whole chain (issue 4: bus channel and a goroutine per publish
// cost about half the request latency).
type batcher struct {
	in      *Ingester
	p       int
	subject string

	mu       sync.Mutex
	cur      *message   // being filled; published when the partition is idle, on an ack, or after Linger
	ready    []*message // full, waiting for a free in-flight slot
	inflight int        // published, not yet acknowledged
	armed    bool       // linger timer pending
	due      bool       // cur has waited Linger: the next free slot takes it
	closed   bool       // Run has ended: no new events
	timer    *time.Timer
	idle     *sync.Cond // signalled when nothing is queued or in flight
	bufPool  sync.Pool
}

func newBatcher(in *Ingester, p int) *batcher {
	b := &batcher{in: in, p: p, subject: Subject(p)}
	b.idle = sync.NewCond(&b.mu)
	b.timer = time.AfterFunc(time.Hour, b.linger)
	b.timer.Stop()
	b.cur = b.newMessage()
	return b
}

type message struct {
	b       *batcher
	nm      nats.Msg // what is published; the ack callbacks identify the message by &nm
	buf     []byte
	waiters []*waiter
	events  int
	resent  bool // published again after the connection dropped (resend)
}

func (b *batcher) newMessage() *message {
	m, _ := b.bufPool.Get().(*message)
	if m == nil {
		m = &message{b: b, buf: make([]byte, 0, 64<<10)}
	}
	m.buf = append(m.buf[:0], frameVersion)
	m.waiters = m.waiters[:0]
	m.events = 0
	m.resent = false
	return m
}

// add queues a request's events for the next message. Group commit: an
// idle partition publishes at once; while a publish is in flight, events
// wait for its ack or for Linger, whichever is first, then go out together.
func (b *batcher) add(pe *pending) bool {
	cfg := &b.in.cfg
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false
	}
	m := b.cur
	if m.events > 0 && (m.events+pe.events > cfg.MaxBatchEvents || len(m.buf)+len(pe.batch)+10 > cfg.MaxBatchBytes) {
		b.ready = append(b.ready, m)
		m = b.newMessage()
		b.cur = m
	}
	m.buf = binary.AppendUvarint(m.buf, uint64(len(pe.batch)))
	m.buf = append(m.buf, pe.batch...)
	m.waiters = append(m.waiters, pe.w)
	m.events += pe.events
	if m.events >= cfg.MaxBatchEvents {
		b.ready = append(b.ready, m)
		b.cur = b.newMessage()
	}
	out := b.takeLocked()
	if b.cur.events > 0 && !b.armed {
		b.armed = true
		b.timer.Reset(cfg.Linger)
	}
	b.mu.Unlock()
	b.publish(out)
	return true
}

// takeLocked returns the messages to publish now: full ones while
// in-flight slots are free, then the one being filled when nothing is in
// flight, when it has waited Linger, or when the batcher is closing.
func (b *batcher) takeLocked() []*message {
	var out []*message
	for len(b.ready) > 0 && b.inflight < b.in.cfg.MaxInflight {
		out = append(out, b.ready[0])
		b.ready[0] = nil
		b.ready = b.ready[1:]
		b.inflight++
	}
	if b.cur.events > 0 && len(b.ready) == 0 && b.inflight < b.in.cfg.MaxInflight && (b.inflight == 0 || b.due || b.closed) {
		out = append(out, b.cur)
		b.cur = b.newMessage()
		b.inflight++
		b.due = false
	}
	if b.cur.events == 0 && b.armed {
		b.armed = false
		b.timer.Stop()
	}
	return out
}

// linger runs when a message has waited Linger behind in-flight publishes.
func (b *batcher) linger() {
	b.mu.Lock()
	b.armed = false
	b.due = b.cur.events > 0 // if every in-flight slot is taken, the next ack publishes it
	out := b.takeLocked()
	b.mu.Unlock()
	b.publish(out)
}

func (b *batcher) publish(ms []*message) {
	for _, m := range ms {
		b.in.metrics.batchEvents.Observe(float64(m.events))
		b.in.observeMessage(b.p, m.events)
		b.send(m)
	}
}

func (b *batcher) send(m *message) {
	m.nm = nats.Msg{Subject: b.subject, Data: m.buf}
	b.in.pubs.Store(&m.nm, m)
	if _, err := b.in.js.PublishMsgAsync(&m.nm); err != nil {
		if _, ok := b.in.pubs.LoadAndDelete(&m.nm); ok {
			if b.resend(m, err) {
				return
			}
			b.in.log.Warn("publishing usage batch", "partition", b.p, "err", err)
			b.complete(m, false)
		}
	}
}

// resend publishes m once more, in the background, when err says only
// that the connection to the server dropped (a nats-server restarting, a
// rolling upgrade): once the client is connected again, to another server
// of the cluster, the same bytes go out again. A copy the first attempt
// did store is harmless: the meter drops events it already holds by their
// dedup keys. It reports whether it took m over.
func (b *batcher) resend(m *message, err error) bool {
	if m.resent || !(errors.Is(err, nats.ErrDisconnected) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrReconnectBufExceeded)) {
		return false
	}
	m.resent = true
	b.in.log.Info("usage batch sent again: the connection to NATS dropped before its ack", "partition", b.p, "err", err)
	go func() {
		nc := b.in.js.Conn()
		for i := 0; i < 100 && !nc.IsConnected() && !nc.IsClosed(); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		b.send(m)
	}()
	return true
}

// onAck and onPubErr are the JetStream async-publish callbacks. onAck runs
// on the client's ack goroutine; onPubErr may run with the client's
// publisher lock held (ack timeout), so it must not publish there.
func (in *Ingester) onAck(_ jetstream.JetStream, nm *nats.Msg, _ *jetstream.PubAck) {
	if v, ok := in.pubs.LoadAndDelete(nm); ok {
		m := v.(*message)
		m.b.complete(m, true)
	}
}

func (in *Ingester) onPubErr(_ jetstream.JetStream, nm *nats.Msg, err error) {
	if v, ok := in.pubs.LoadAndDelete(nm); ok {
		m := v.(*message)
		if m.b.resend(m, err) {
			return
		}
		in.log.Warn("usage batch not acknowledged", "partition", m.b.p, "err", err)
		go m.b.complete(m, false)
	}
}

// complete finishes a published message's requests and publishes what
// waits for the freed slot.
func (b *batcher) complete(m *message, ok bool) {
	for _, w := range m.waiters {
		w.finish(ok)
	}
	clear(m.waiters)
	b.mu.Lock()
	b.inflight--
	out := b.takeLocked()
	if b.inflight == 0 && len(out) == 0 {
		b.idle.Broadcast()
	}
	b.mu.Unlock()
	// Only an acknowledged message's buffer is reused: after a failed
	// publish the client library may still hold the bytes, and a buffer
	// refilled with other events must never go out under the old publish.
	if ok && cap(m.buf) <= 4<<20 {
		b.bufPool.Put(m)
	}
	b.publish(out)
}

// close refuses new events, publishes what is queued and waits until
// every publish has completed.
func (b *batcher) close() {
	b.mu.Lock()
	b.closed = true
	out := b.takeLocked()
	b.mu.Unlock()
	b.publish(out)
	b.mu.Lock()
	for b.inflight > 0 || len(b.ready) > 0 || b.cur.events > 0 {
		b.idle.Wait()
	}
	b.mu.Unlock()
}

// frameVersion starts every bus message: a sequence of frames, each a
// uvarint length and a metering.EncodeBatch batch of one request.
const frameVersion byte = 1

// splitFrames calls fn with each batch of a bus message.
func splitFrames(msg []byte, fn func(batch []byte) error) error {
	if len(msg) == 0 || msg[0] != frameVersion {
		return fmt.Errorf("%w: unknown message version", metering.ErrBadBatch)
	}
	b := msg[1:]
	for len(b) > 0 {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return fmt.Errorf("%w: bad frame length", metering.ErrBadBatch)
		}
		if err := fn(b[n : n+int(l)]); err != nil {
			return err
		}
		b = b[n+int(l):]
	}
	return nil
}

// observeMessage folds a published message's event count into the
// partition's moving average (weight 1/8 per message).
func (in *Ingester) observeMessage(p, events int) {
	x := uint64(events) << 10
	for {
		old := in.perMsg[p].Load()
		next := x
		if old != 0 {
			next = old - old/8 + x/8
		}
		if in.perMsg[p].CompareAndSwap(old, next) {
			return
		}
	}
}

// eventsPerMessage is the partition's recent events per message (at least 1).
func (in *Ingester) eventsPerMessage(p int) uint64 {
	return max(in.perMsg[p].Load()>>10, 1)
}
