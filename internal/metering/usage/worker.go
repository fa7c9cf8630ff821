package usage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/metering"
	"github.com/abacusbilling/abacus/internal/natsbus"
)

// WorkerConfig configures the meter role. Zero fields take defaults.
type WorkerConfig struct {
	Partitions     int           // must equal the ingest role's; default 4
	RoundEvents    int           // events folded per transaction, at most; default 20,000
	RoundMessages  int           // bus messages per transaction, at most; default 64
	AckWait        time.Duration // default 5m: a round never takes that long
	CacheRows      int           // rollup rows cached per partition; default 200,000
	StreamMaxAge   time.Duration // as IngestConfig; default 72h
	RetryInterval  time.Duration // wait after a failed round before resuming; default 500ms
	AfterCommit    func(partition int) error
	LockPollPeriod time.Duration // how often a standby process tries to take the partitions (PostgreSQL); default 2s
}

// WithDefaults returns c with zero fields set.
func (c WorkerConfig) WithDefaults() WorkerConfig {
	if c.Partitions <= 0 {
		c.Partitions = 4
	}
	if c.RoundEvents <= 0 {
		c.RoundEvents = 20_000
	}
	if c.RoundMessages <= 0 {
		c.RoundMessages = 64
	}
	if c.AckWait <= 0 {
		c.AckWait = 5 * time.Minute
	}
	if c.CacheRows <= 0 {
		c.CacheRows = 200_000
	}
	if c.StreamMaxAge <= 0 {
		c.StreamMaxAge = 72 * time.Hour
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = 500 * time.Millisecond
	}
	if c.LockPollPeriod <= 0 {
		c.LockPollPeriod = 2 * time.Second
	}
	return c
}

type workerMetrics struct {
	stored, dupStored prometheus.Counter
	folded            prometheus.Counter
	latency           prometheus.Histogram
	roundEvents       prometheus.Histogram
}

func newWorkerMetrics(reg prometheus.Registerer) *workerMetrics {
	m := &workerMetrics{
		stored:    prometheus.NewCounter(prometheus.CounterOpts{Name: "abacus_metering_events_stored_total", Help: "New usage events stored and folded into rollups."}),
		dupStored: prometheus.NewCounter(prometheus.CounterOpts{Name: "abacus_metering_events_duplicate_stored_total", Help: "Usage events dropped because they were stored before (retries, redeliveries)."}),
		folded:    prometheus.NewCounter(prometheus.CounterOpts{Name: "abacus_metering_values_folded_total", Help: "(event, meter) values folded into rollups."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "abacus_metering_ingest_to_queryable_seconds", Help: "From an event's receipt to the commit of its rollups.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}),
		roundEvents: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "abacus_metering_round_events", Help: "Events per meter worker transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9)}),
	}
	if reg != nil {
		reg.MustRegister(m.stored, m.dupStored, m.folded, m.latency, m.roundEvents)
	}
	return m
}

// Workers is the meter role: one worker per partition, each consuming its
// durable consumer meter-<p> and applying rounds exactly once.
type Workers struct {
	cfg     WorkerConfig
	db      *db.DB
	bus     *natsbus.Bus
	clock   abacus.Clock
	log     *slog.Logger
	metrics *workerMetrics
}

// NewWorkers returns the meter role; Run runs it.
func NewWorkers(d *db.DB, bus *natsbus.Bus, cfg WorkerConfig, clock abacus.Clock, log *slog.Logger, reg prometheus.Registerer) *Workers {
	return &Workers{cfg: cfg.WithDefaults(), db: d, bus: bus, clock: clock, log: log, metrics: newWorkerMetrics(reg)}
}

// Run processes every partition until ctx ends. On PostgreSQL it first
// takes a session advisory lock per partition, so a second meter process
// stands by until the first is gone. Failed rounds are retried from the
// stored offset; Run returns only when ctx ends or the stream cannot be
// provisioned.
func (ws *Workers) Run(ctx context.Context) error {
	if err := EnsureStream(ctx, ws.bus, ws.cfg.Partitions, ws.cfg.StreamMaxAge); err != nil {
		return err
	}
	if ws.db.Engine() == db.Postgres {
		release, err := ws.lockPartitions(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		defer release()
	}
	var wg sync.WaitGroup
	for p := 0; p < ws.cfg.Partitions; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{ws: ws, p: p, agg: metering.NewAggregator(), cache: map[rkey]metering.State{}, deltas: map[rkey]*metering.State{}}
			w.loop(ctx)
		}()
	}
	wg.Wait()
	return nil
}

// lockPartitions holds one connection with an advisory lock per partition.
func (ws *Workers) lockPartitions(ctx context.Context) (func(), error) {
	conn, err := ws.db.Pool().Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquiring a connection for partition locks: %w", err)
	}
	release := func() {
		for p := 0; p < ws.cfg.Partitions; p++ {
			_, _ = conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(72720000+p))
		}
		conn.Release()
	}
	for p := 0; p < ws.cfg.Partitions; {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, int64(72720000+p)).Scan(&ok); err != nil {
			release()
			return nil, fmt.Errorf("locking partition %d: %w", p, err)
		}
		if ok {
			p++
			continue
		}
		ws.log.Info("another meter process owns the usage partitions; standing by", "partition", p)
		select {
		case <-ctx.Done():
			release()
			return nil, ctx.Err()
		case <-time.After(ws.cfg.LockPollPeriod):
		}
	}
	return release, nil
}

// worker processes one partition.
type worker struct {
	ws  *Workers
	p   int
	agg *metering.Aggregator

	metersVer, epoch int64
	loaded           bool
	sets             map[string]*metering.MeterSet
	cache            map[rkey]metering.State

	// per-round buffers
	events  []metering.Event
	frames  []frame
	msgs    []jetstream.Msg
	idx     []int32
	idx2    []int32
	fresh   []int32
	isNew   []bool
	scratch []metering.Event
	deltas  map[rkey]*metering.State
	args    []any
	ew      eventWriter
}

type frame struct {
	lo, hi int
	seq    uint64
}

func (w *worker) loop(ctx context.Context) {
	for ctx.Err() == nil {
		err := w.session(ctx)
		if ctx.Err() != nil {
			return
		}
		w.ws.log.Error("meter worker failed; resuming from the stored offset", "partition", w.p, "err", err)
		clear(w.cache)
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.ws.cfg.RetryInterval):
		}
	}
}

// session (re)creates the consumer at the stored offset and runs rounds
// until an error or ctx ends.
func (w *worker) session(ctx context.Context) error {
	var offset int64
	err := w.ws.db.QueryRowContext(ctx, `SELECT stream_seq FROM metering_offsets WHERE partition = $1`, w.p).Scan(&offset)
	if err != nil && !errors.Is(err, errNoRows) {
		return fmt.Errorf("reading offset: %w", err)
	}
	js := w.ws.bus.JetStream()
	name := ConsumerName(w.p)
	if err := js.DeleteConsumer(ctx, Stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("resetting consumer %s: %w", name, err)
	}
	cc := jetstream.ConsumerConfig{
		Durable: name, FilterSubject: Subject(w.p), AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: w.ws.cfg.AckWait, MaxAckPending: w.ws.cfg.RoundMessages * 8, MaxDeliver: -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if offset > 0 {
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, uint64(offset)+1
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, Stream, cc)
	if err != nil {
		return fmt.Errorf("creating consumer %s: %w", name, err)
	}
	ch := make(chan jetstream.Msg, w.ws.cfg.RoundMessages)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cctx, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case ch <- m:
		case <-sctx.Done():
		}
	}, jetstream.PullMaxMessages(w.ws.cfg.RoundMessages))
	if err != nil {
		return fmt.Errorf("consuming %s: %w", name, err)
	}
	defer cctx.Stop()
	for {
		w.msgs = w.msgs[:0]
		select {
		case m := <-ch:
			w.msgs = append(w.msgs, m)
		case <-ctx.Done():
			return nil
		}
		n := 0
	more:
		for len(w.msgs) < w.ws.cfg.RoundMessages && n < w.ws.cfg.RoundEvents {
			select {
			case m := <-ch:
				w.msgs = append(w.msgs, m)
				n += len(m.Data()) / 64 // a rough event estimate; exact counts come after decoding
			default:
				break more
			}
		}
		if err := w.round(ctx); err != nil {
			return err
		}
	}
}

// round applies w.msgs in one transaction, then acks them.
func (w *worker) round(ctx context.Context) error {
	w.events, w.frames = w.events[:0], w.frames[:0]
	for _, m := range w.msgs {
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("reading message metadata: %w", err)
		}
		err = splitFrames(m.Data(), func(b []byte) error {
			evs, err := metering.DecodeBatch(b)
			if err != nil {
				return err
			}
			lo := len(w.events)
			for i := range evs {
				// Stored times have microsecond precision; fold the same.
				evs[i].Time = evs[i].Time.Truncate(time.Microsecond)
			}
			w.events = append(w.events, evs...)
			w.frames = append(w.frames, frame{lo: lo, hi: len(w.events), seq: md.Sequence.Stream})
			return nil
		})
		if err != nil {
			// A message this version cannot read is logged and skipped
			// (acked below), never retried forever.
			w.ws.log.Error("skipping unreadable usage message", "partition", w.p, "seq", md.Sequence.Stream, "err", err)
		}
	}
	lastSeq := uint64(0)
	if md, err := w.msgs[len(w.msgs)-1].Metadata(); err == nil {
		lastSeq = md.Sequence.Stream
	}
	var commit []upsert
	var newCount, dupCount int
	err := w.ws.db.InTx(ctx, func(tx *db.Tx) error {
		if err := w.refresh(ctx, tx); err != nil {
			return err
		}
		var offset int64
		err := tx.QueryRowContext(ctx, `SELECT stream_seq FROM metering_offsets WHERE partition = $1`, w.p).Scan(&offset)
		if err != nil && !errors.Is(err, errNoRows) {
			return fmt.Errorf("reading offset: %w", err)
		}
		// Events with a client time claim their (time, hash) key; events
		// whose time the server assigned claim (tenant, source, id).
		w.idx, w.idx2 = w.idx[:0], w.idx2[:0]
		for _, f := range w.frames {
			if int64(f.seq) <= offset {
				continue // applied before: a redelivery
			}
			for i := f.lo; i < f.hi; i++ {
				if w.events[i].TimeAssigned {
					w.idx2 = append(w.idx2, int32(i))
				} else {
					w.idx = append(w.idx, int32(i))
				}
			}
		}
		total := len(w.idx) + len(w.idx2)
		fresh, err := w.ew.claimKeys(ctx, tx, w.events, w.idx, w.fresh[:0])
		if err != nil {
			return err
		}
		if len(w.idx2) > 0 {
			if fresh, err = w.ew.claimIDs(ctx, tx, w.events, w.idx2, fresh); err != nil {
				return err
			}
			slices.Sort(fresh)
		}
		w.fresh = fresh
		newCount = len(fresh)
		dupCount = total - newCount
		if err := w.ew.writeBlocks(ctx, tx, w.p, lastSeq, w.events, fresh); err != nil {
			return err
		}
		w.isNew = append(w.isNew[:0], make([]bool, len(w.events))...)
		for _, i := range fresh {
			w.isNew[i] = true
		}
		w.agg.Reset()
		for _, f := range w.frames {
			w.scratch = w.scratch[:0]
			for i := f.lo; i < f.hi; i++ {
				if w.isNew[i] {
					w.scratch = append(w.scratch, w.events[i])
				}
			}
			if len(w.scratch) == 0 {
				continue
			}
			if set := w.sets[w.scratch[0].TenantID]; set != nil {
				w.agg.Add(set, w.scratch)
			}
		}
		if commit, err = w.writeRollups(ctx, tx); err != nil {
			return err
		}
		if int64(lastSeq) > offset {
			if _, err := tx.ExecContext(ctx, `INSERT INTO metering_offsets (partition, stream_seq) VALUES ($1, $2)
				ON CONFLICT (partition) DO UPDATE SET stream_seq = excluded.stream_seq`, w.p, int64(lastSeq)); err != nil {
				return fmt.Errorf("storing offset: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := range commit {
		w.cache[commit[i].k] = commit[i].s
	}
	if len(w.cache) > w.ws.cfg.CacheRows {
		clear(w.cache)
	}
	now := w.ws.clock.Now()
	for _, f := range w.frames {
		if f.hi > f.lo {
			w.ws.metrics.latency.Observe(now.Sub(w.events[f.lo].ReceivedAt).Seconds())
		}
	}
	w.ws.metrics.stored.Add(float64(newCount))
	w.ws.metrics.dupStored.Add(float64(dupCount))
	w.ws.metrics.roundEvents.Observe(float64(len(w.events)))
	if hook := w.ws.cfg.AfterCommit; hook != nil {
		if err := hook(w.p); err != nil {
			return err // as if the process died before acking
		}
	}
	for _, m := range w.msgs {
		if err := m.Ack(); err != nil {
			return fmt.Errorf("acking: %w", err)
		}
	}
	clear(w.msgs)
	return nil
}

// refresh reloads meter definitions and drops cached rollups when the
// versions row says so. On PostgreSQL the row is share-locked for the
// round, so a rebuild (which locks it exclusively) never interleaves.
func (w *worker) refresh(ctx context.Context, tx *db.Tx) error {
	q := `SELECT meters, epoch FROM metering_versions WHERE name = 'global'`
	if tx.Engine() == db.Postgres {
		q += ` FOR SHARE`
	}
	var meters, epoch int64
	if err := tx.QueryRowContext(ctx, q).Scan(&meters, &epoch); err != nil {
		return fmt.Errorf("reading metering versions: %w", err)
	}
	if epoch != w.epoch {
		clear(w.cache)
		w.epoch = epoch
	}
	if !w.loaded || meters != w.metersVer {
		sets, err := loadMeterSets(ctx, tx)
		if err != nil {
			return err
		}
		w.sets, w.metersVer, w.loaded = sets, meters, true
	}
	return nil
}

// writeRollups merges the aggregator's minute deltas (and the hour and
// day deltas derived from them) into stored rows. It returns the new
// states to cache after commit.
func (w *worker) writeRollups(ctx context.Context, tx *db.Tx) ([]upsert, error) {
	if w.agg.Len() == 0 {
		return nil, nil
	}
	clear(w.deltas)
	aggs := map[string]metering.Aggregation{}
	var vals []uvalue
	for _, r := range w.agg.Rollups() {
		aggs[r.Key.MeterID] = r.State.Agg
		minute := r.Key.Minute.Unix()
		for _, res := range resolutions {
			k := rkey{tenant: r.Key.TenantID, meter: r.Key.MeterID, res: res, subject: r.Key.Subject,
				start: minute - mod(minute, res), group: r.Key.GroupKey}
			for v := range r.State.Distinct {
				vals = append(vals, uvalue{k: k, v: v})
			}
			st := r.State
			st.Distinct = nil
			if d := w.deltas[k]; d != nil {
				if err := d.Merge(&st); err != nil {
					return nil, err
				}
				d.Distinct = nil
			} else {
				w.deltas[k] = &st
			}
		}
	}
	var missing []rkey
	for k := range w.deltas {
		if _, ok := w.cache[k]; !ok {
			missing = append(missing, k)
		}
	}
	base := map[rkey]metering.State{}
	var err error
	if w.args, err = readRollups(ctx, tx, tx.Engine(), missing, func(m string) metering.Aggregation { return aggs[m] }, w.args, base); err != nil {
		return nil, err
	}
	ups := make([]upsert, 0, len(w.deltas))
	for k, d := range w.deltas {
		s, ok := w.cache[k]
		if !ok {
			if s, ok = base[k]; !ok {
				s = metering.State{Agg: d.Agg}
			}
		}
		if err := s.Merge(d); err != nil {
			return nil, err
		}
		s.Distinct = nil
		ups = append(ups, upsert{k: k, s: s})
	}
	if w.args, err = writeRollups(ctx, tx, ups, w.args); err != nil {
		return nil, err
	}
	if len(vals) > 0 {
		if w.args, err = writeValues(ctx, tx, vals, w.args); err != nil {
			return nil, err
		}
	}
	return ups, nil
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}
