package usage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
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
	RoundLinger    time.Duration // how long a small round waits for more messages; default 20ms
	AckWait        time.Duration // default 30s; a message not acked by then comes again, which restarts the session (errOutOfOrder)
	CacheRows      int           // rollup rows cached per partition; default 200,000
	StreamMaxAge   time.Duration // as IngestConfig; default 72h
	RetryInterval  time.Duration // wait after a failed round before resuming; default 500ms
	AfterCommit    func(partition int) error
	LockPollPeriod time.Duration // how often a process looks at the other meter processes and takes or hands over partitions (PostgreSQL); default 1s
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
	if c.RoundLinger <= 0 {
		c.RoundLinger = 20 * time.Millisecond
	}
	if c.AckWait <= 0 {
		// A message the worker never received (lost on its way) comes back
		// after this; rounds take well under a second, so a long wait only
		// delays the recovery of a partition's last messages.
		c.AckWait = 30 * time.Second
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
		c.LockPollPeriod = time.Second
	}
	return c
}

type workerMetrics struct {
	stored, dupStored prometheus.Counter
	folded            prometheus.Counter
	latency           prometheus.Histogram
	roundEvents       prometheus.Histogram
	owned, lag        *prometheus.GaugeVec // by partition
	members           prometheus.Gauge
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
	m.owned = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "abacus_metering_partition_owned",
		Help: "1 for each usage partition this process works now (its meter worker runs), 0 for one it does not."}, []string{"partition"})
	m.lag = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "abacus_metering_partition_lag_messages",
		Help: "Usage bus messages of the partition not yet delivered to its worker, as of its last round."}, []string{"partition"})
	m.members = prometheus.NewGauge(prometheus.GaugeOpts{Name: "abacus_metering_meter_processes",
		Help: "Meter processes sharing the partitions, as this one sees them (PostgreSQL)."})
	if reg != nil {
		reg.MustRegister(m.stored, m.dupStored, m.folded, m.latency, m.roundEvents, m.owned, m.lag, m.members)
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

// Run processes partitions until ctx ends. On SQLite the process owns
// every partition (the data-dir lock makes it the only one). On
// PostgreSQL meter processes share the partitions: each takes its share
// under session advisory locks, and a partition moves to a survivor when
// its owner dies, and back when a process joins (coordinate). Failed
// rounds are retried from the stored offset; Run returns only when ctx
// ends or the stream cannot be provisioned.
func (ws *Workers) Run(ctx context.Context) error {
	if err := EnsureStream(ctx, ws.bus, ws.cfg.Partitions, ws.cfg.StreamMaxAge); err != nil {
		return err
	}
	if err := ws.tuneSQLite(ctx); err != nil {
		return err
	}
	return ws.runPartitions(ctx)
}

// runAll runs a worker for every partition, without owner token.
func (ws *Workers) runAll(ctx context.Context) {
	var wg sync.WaitGroup
	for p := 0; p < ws.cfg.Partitions; p++ {
		wg.Go(func() { ws.newWorker(p, "").loop(ctx) })
	}
	wg.Wait()
}

func (ws *Workers) newWorker(p int, token string) *worker {
	return &worker{ws: ws, p: p, token: token, agg: metering.NewAggregator(), timer: stoppedTimer(), cache: map[rkey]metering.State{},
		deltas: map[rkey]*metering.State{}, aggs: map[string]metering.Aggregation{}}
}

// lockPartitions holds one connection with an advisory lock per partition.
// Lock keys include the schema: advisory locks are database-wide, and two
// deployments (or tests) in separate schemas must not wait on each other.
func (ws *Workers) lockPartitions(ctx context.Context) (func(), error) {
	conn, err := ws.db.Pool().Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquiring a connection for partition locks: %w", err)
	}
	release := func() {
		for p := 0; p < ws.cfg.Partitions; p++ {
			_, _ = conn.Exec(context.Background(), `SELECT pg_advisory_unlock(hashtextextended(current_schema() || $1, 0))`, ":meter:"+strconv.Itoa(p))
		}
		conn.Release()
	}
	for p := 0; p < ws.cfg.Partitions; {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended(current_schema() || $1, 0))`, ":meter:"+strconv.Itoa(p)).Scan(&ok); err != nil {
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

// errOutOfOrder ends a session whose consumer delivered a message out of
// turn: a consumer sequence that skips (a delivery lost on its way, when the
// nats-server it passed through died, or a consumer leader that moved) or a
// redelivery. A round commits its last message's sequence as the
// partition's offset, and a message at or below the offset counts as
// applied; so a round must never follow a gap. The missed message would
// otherwise come back only after the ack wait, below the offset, and be
// dropped as applied: acknowledged events lost (issue 21's full-scale chaos
// run).
var errOutOfOrder = errors.New("usage message delivered out of order")

// worker processes one partition.
type worker struct {
	ws  *Workers
	p   int
	agg *metering.Aggregator
	// token is this owner's mark in metering_offsets.owner; every round
	// checks it under the row's lock (empty: the only process, no check).
	token string

	metersVer, epoch int64
	loaded           bool
	setsGen          int // bumped when sets are reloaded
	sets             map[string]*metering.MeterSet
	cache            map[rkey]metering.State
	// front bounds the rollup rows that can exist: no row of (tenant,
	// meter, res, subject) starts after it (see storeRollups).
	front map[frontKey]int64

	// lastTime is the JetStream timestamp (unix nanoseconds) of the
	// round's last message, stored beside its sequence (see position).
	lastTime int64
	// delivered is the consumer sequence of the session's last message
	// (0 at the start of a session: its consumer is new).
	delivered uint64

	// per-round buffers
	events  []metering.Event
	frames  []frame
	msgs    []jetstream.Msg
	idx     []int32
	idx2    []int32
	fresh   []int32
	all     []int32
	keys    []timeHash // per event
	aggAll  bool       // agg holds every event of the round
	aggs    map[string]metering.Aggregation
	vals    []uvalue
	scratch []metering.Event
	deltas  map[rkey]*metering.State
	order   []rkey // the deltas' keys in order
	args    []any
	ew      eventWriter
	timer   *time.Timer
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
		if errors.Is(err, errPartitionLost) {
			w.ws.log.Warn("meter partition taken over by another process; stopping its worker", "partition", w.p)
			return
		}
		if errors.Is(err, errOutOfOrder) {
			// Nothing was applied and the cache holds only committed
			// rows: resume almost at once, cache kept (the short pause
			// keeps a puller that still takes this consumer's messages —
			// a previous owner about to learn it lost the partition —
			// from turning this into a busy loop).
			w.ws.log.Warn("usage message delivered out of order; re-reading the partition from the stored offset", "partition", w.p, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		w.ws.log.Error("meter worker failed; resuming from the stored offset", "partition", w.p, "err", err)
		w.dropCache()
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
	js := w.ws.bus.JetStream()
	restarted := w.ws.bus.Restarted() // before the consumer, so no restart is missed
	cc := jetstream.ConsumerConfig{
		Durable: ConsumerName(w.p), FilterSubject: Subject(w.p), AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: w.ws.cfg.AckWait, MaxAckPending: w.ws.cfg.RoundMessages * 8, MaxDeliver: -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if err := w.startAt(ctx, js, &cc); err != nil {
		return err
	}
	if err := js.DeleteConsumer(ctx, Stream, cc.Durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("resetting consumer %s: %w", cc.Durable, err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, Stream, cc)
	if err != nil {
		return fmt.Errorf("creating consumer %s: %w", cc.Durable, err)
	}
	w.delivered = 0
	ch := make(chan jetstream.Msg, w.ws.cfg.RoundMessages)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cctx, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case ch <- m:
		case <-sctx.Done():
		}
	}, jetstream.PullMaxMessages(w.ws.cfg.RoundMessages),
		// A pull request dies with the consumer leader's server; the client
		// notices when two heartbeats (half the expiry each) are missed and
		// pulls again: with the default 30-s expiry, 30 s without a message.
		jetstream.PullExpiry(5*time.Second),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			w.ws.log.Warn("usage consumer", "partition", w.p, "err", err)
		}))
	if err != nil {
		return fmt.Errorf("consuming %s: %w", cc.Durable, err)
	}
	defer cctx.Stop()
	for {
		w.msgs = w.msgs[:0]
		select {
		case m := <-ch:
			w.msgs = append(w.msgs, m)
		case <-restarted:
			return errors.New("JetStream restarted; its consumers are made again")
		case <-ctx.Done():
			return nil
		}
		// A round costs a transaction however small it is, so a small
		// round waits up to RoundLinger for more messages (many small
		// requests arrive as many small messages).
		n := len(w.msgs[0].Data()) / 64 // a rough event estimate; exact counts come after decoding
		var linger <-chan time.Time
		if n < w.ws.cfg.RoundEvents/4 {
			w.timer.Reset(w.ws.cfg.RoundLinger)
			linger = w.timer.C
		}
	more:
		for len(w.msgs) < w.ws.cfg.RoundMessages && n < w.ws.cfg.RoundEvents {
			select {
			case m := <-ch:
				w.msgs = append(w.msgs, m)
				n += len(m.Data()) / 64
				continue
			default:
			}
			if linger == nil || n >= w.ws.cfg.RoundEvents/4 {
				break
			}
			select {
			case m := <-ch:
				w.msgs = append(w.msgs, m)
				n += len(m.Data()) / 64
			case <-linger:
				linger = nil
				break more
			case <-ctx.Done():
				return nil
			}
		}
		w.timer.Stop() // Go ≥ 1.23 timers: no stale tick is delivered after Stop
		if err := w.round(ctx); err != nil {
			return err
		}
	}
}

// startAt points the consumer after the stored offset when the stream
// still holds, at that sequence, the message the offset was taken from.
//
// A stream can go back: JetStream restarted after a write failure may
// have lost messages it held only in memory (which this worker may
// already have applied), and an operator may have deleted and recreated
// the stream. Its sequence numbers are then given again to new messages,
// and resuming after the stored offset would skip them as redeliveries:
// acknowledged events lost without a trace. So the offset is stored with
// the message's JetStream timestamp; when the message at that sequence
// is gone past the stream's end or has another timestamp, the worker
// re-reads from a minute before that timestamp (the stream's clock may
// step back that much when its leader moves), and the events' dedup keys
// keep whatever it had applied from counting twice.
func (w *worker) startAt(ctx context.Context, js jetstream.JetStream, cc *jetstream.ConsumerConfig) error {
	var offset, at int64
	err := w.ws.db.QueryRowContext(ctx, `SELECT stream_seq, stream_time FROM metering_offsets WHERE partition = $1`, w.p).Scan(&offset, &at)
	if errors.Is(err, errNoRows) || (err == nil && offset == 0) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading offset: %w", err)
	}
	if at != 0 {
		diverged, err := streamDiverged(ctx, js, uint64(offset), at)
		if err != nil {
			return err
		}
		if diverged {
			from := time.Unix(0, at).Add(-time.Minute)
			w.ws.log.Error("the usage stream no longer holds the message at the stored offset (JetStream lost messages or the stream was recreated); re-reading from before it, dedup keys keep events from counting twice",
				"partition", w.p, "offset", offset, "from", from)
			if _, err := w.ws.db.ExecContext(ctx, `UPDATE metering_offsets SET stream_seq = 0, stream_time = 0 WHERE partition = $1`, w.p); err != nil {
				return fmt.Errorf("resetting offset: %w", err)
			}
			cc.DeliverPolicy, cc.OptStartTime = jetstream.DeliverByStartTimePolicy, &from
			return nil
		}
	}
	cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, uint64(offset)+1
	return nil
}

// streamDiverged tells whether the stream's message at seq is not the one
// stamped at (unix nanoseconds): gone beyond the stream's last sequence,
// or another message. A message removed by the stream's age limit is not
// a divergence.
func streamDiverged(ctx context.Context, js jetstream.JetStream, seq uint64, at int64) (bool, error) {
	st, err := js.Stream(ctx, Stream)
	if err != nil {
		return false, fmt.Errorf("reading stream %s: %w", Stream, err)
	}
	state := st.CachedInfo().State
	if seq > state.LastSeq {
		return true, nil
	}
	if seq < state.FirstSeq {
		return false, nil
	}
	m, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil // deleted inside the stream's range: not a new history
	}
	if err != nil {
		return false, fmt.Errorf("reading message %d of %s: %w", seq, Stream, err)
	}
	return m.Time.UnixNano() != at, nil
}

// round applies w.msgs in one transaction, then acks them.
func (w *worker) round(ctx context.Context) error {
	w.events, w.frames = w.events[:0], w.frames[:0]
	for _, m := range w.msgs {
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("reading message metadata: %w", err)
		}
		if md.Sequence.Consumer != w.delivered+1 || md.NumDelivered > 1 {
			// Nothing of the round is applied yet: a new session re-reads
			// from the stored offset, this message and any missed included.
			return fmt.Errorf("%w: message %d came as delivery %d (%d deliveries) after delivery %d",
				errOutOfOrder, md.Sequence.Stream, md.Sequence.Consumer, md.NumDelivered, w.delivered)
		}
		w.delivered = md.Sequence.Consumer
		err = splitFrames(m.Data(), func(b []byte) error {
			// The events point into the message, which is kept until acked.
			lo := len(w.events)
			var err error
			if w.events, err = metering.AppendDecoded(w.events, b); err != nil {
				return err
			}
			for i := lo; i < len(w.events); i++ {
				// Stored times have microsecond precision; fold the same.
				w.events[i].Time = w.events[i].Time.Truncate(time.Microsecond)
			}
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
		lastSeq, w.lastTime = md.Sequence.Stream, md.Timestamp.UnixNano()
		w.ws.metrics.lag.WithLabelValues(strconv.Itoa(w.p)).Set(float64(md.NumPending))
	}
	if err := w.apply(ctx, lastSeq, true); err != nil {
		return err
	}
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
	clear(w.events) // they point into the messages
	return nil
}

// apply stores w.events (split in w.frames) in one transaction: new
// events' keys and blocks, their rollups and, with storeOffset, lastSeq as
// the partition's offset. Frames at or below the stored offset are skipped.
func (w *worker) apply(ctx context.Context, lastSeq uint64, storeOffset bool) error {
	// Outside the transaction (SQLite has one writer connection; holding it
	// for Go work stalls the other partitions), prepare everything for the
	// common case — every event new, meter definitions unchanged: keys,
	// encoded blocks and rollup deltas. The transaction redoes what the
	// common case got wrong.
	w.keys = w.keys[:0]
	for i := range w.events {
		e := &w.events[i]
		w.keys = append(w.keys, timeHash{e.Time.UnixMicro(), eventHash(e)})
	}
	w.all = w.all[:0]
	for i := range w.events {
		w.all = append(w.all, int32(i))
	}
	w.ew.encodeBlocks(w.events, w.all)
	gen := w.setsGen
	if w.loaded {
		w.aggregate(nil, true)
	}

	var commit []upsert
	var newCount, dupCount int
	careful := false
	apply := func(tx *db.Tx) error {
		if err := w.refresh(ctx, tx); err != nil {
			return err
		}
		// The offset row's lock orders this round after any other
		// process's round on the partition, and its owner says whether
		// the partition is still this worker's (see coordinate).
		var offset int64
		var owner string
		err := scanOne(tx.QueryPrepared(ctx, `SELECT stream_seq, owner FROM metering_offsets WHERE partition = $1`+tx.LockClause(` FOR UPDATE`), w.p))(&offset, &owner)
		if err != nil && !errors.Is(err, errNoRows) {
			return fmt.Errorf("reading offset: %w", err)
		}
		if w.token != "" && owner != w.token {
			return errPartitionLost
		}
		// Events with a client time claim their (time, hash) key; events
		// whose time the server assigned claim (tenant, source, id).
		w.idx, w.idx2 = w.idx[:0], w.idx2[:0]
		skipped := 0
		for _, f := range w.frames {
			if int64(f.seq) <= offset {
				skipped += f.hi - f.lo
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
		if skipped > 0 && storeOffset {
			w.ws.log.Warn("usage events at or below the stored offset skipped as applied before", "partition", w.p,
				"offset", offset, "first_seq", w.frames[0].seq, "events", skipped)
		}
		total := len(w.idx) + len(w.idx2)
		fresh, err := w.ew.claimKeys(ctx, tx, w.keys, w.idx, careful, w.fresh[:0])
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
		allNew := len(fresh) == len(w.events)
		if !allNew {
			w.ew.encodeBlocks(w.events, fresh)
		}
		if err := w.ew.writeBlocks(ctx, tx, w.p, lastSeq); err != nil {
			return err
		}
		if !allNew || !w.aggAll || gen != w.setsGen {
			w.aggregate(fresh, false)
		}
		if commit, err = w.storeRollups(ctx, tx); err != nil {
			return err
		}
		if storeOffset && int64(lastSeq) > offset {
			if _, err := tx.ExecPrepared(ctx, `INSERT INTO metering_offsets (partition, stream_seq, stream_time) VALUES ($1, $2, $3)
				ON CONFLICT (partition) DO UPDATE SET stream_seq = excluded.stream_seq, stream_time = excluded.stream_time`,
				w.p, int64(lastSeq), w.lastTime); err != nil {
				return fmt.Errorf("storing offset: %w", err)
			}
		}
		return nil
	}
	err := w.ws.db.InTx(ctx, apply)
	if errors.Is(err, errRetryCareful) {
		careful = true
		err = w.ws.db.InTx(ctx, apply)
	}
	if err != nil {
		return err
	}
	w.remember(commit)
	if len(w.cache) > w.ws.cfg.CacheRows {
		w.dropCache()
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
	return nil
}

// refresh reloads meter definitions and drops cached rollups when the
// versions row says so. On PostgreSQL the row is share-locked for the
// round, so a rebuild (which locks it exclusively) never interleaves.
func (w *worker) refresh(ctx context.Context, tx *db.Tx) error {
	q := `SELECT meters, epoch FROM metering_versions WHERE name = 'global'` + tx.LockClause(` FOR SHARE`)
	var meters, epoch int64
	if err := scanOne(tx.QueryPrepared(ctx, q))(&meters, &epoch); err != nil {
		return fmt.Errorf("reading metering versions: %w", err)
	}
	if epoch != w.epoch {
		w.dropCache()
		w.epoch = epoch
	}
	if !w.loaded || meters != w.metersVer {
		sets, err := loadMeterSets(ctx, tx)
		if err != nil {
			return err
		}
		w.sets, w.metersVer, w.loaded = sets, meters, true
		w.setsGen++
	}
	return nil
}

// aggregate folds events into w.agg and prepares the rollup deltas: every
// event with all, else the events of fresh (indexes in order; nil when no
// event is new, which must fold nothing).
func (w *worker) aggregate(fresh []int32, all bool) {
	w.agg.Reset()
	w.aggAll = all
	if all {
		for _, f := range w.frames {
			if f.hi > f.lo {
				if set := w.sets[w.events[f.lo].TenantID]; set != nil {
					w.agg.Add(set, w.events[f.lo:f.hi])
				}
			}
		}
	} else {
		// A frame holds one tenant's events; fold its new ones together.
		fi := 0
		for lo := 0; lo < len(fresh); {
			for w.frames[fi].hi <= int(fresh[lo]) {
				fi++
			}
			f := w.frames[fi]
			w.scratch = w.scratch[:0]
			for lo < len(fresh) && int(fresh[lo]) < f.hi {
				w.scratch = append(w.scratch, w.events[fresh[lo]])
				lo++
			}
			if set := w.sets[w.scratch[0].TenantID]; set != nil {
				w.agg.Add(set, w.scratch)
			}
		}
		clear(w.scratch)
	}
	w.prepareDeltas()
}

// prepareDeltas turns the aggregator's minute deltas into deltas of every
// resolution (w.deltas) and the UNIQUE_COUNT values to add (w.vals).
func (w *worker) prepareDeltas() {
	clear(w.deltas)
	clear(w.aggs)
	w.vals = w.vals[:0]
	for _, r := range w.agg.Rollups() {
		w.aggs[r.Key.MeterID] = r.State.Agg
		minute := r.Key.Minute.Unix()
		for _, res := range resolutions {
			k := rkey{tenant: r.Key.TenantID, meter: r.Key.MeterID, res: res, subject: r.Key.Subject,
				start: minute - mod(minute, res), group: r.Key.GroupKey}
			for v := range r.State.Distinct {
				w.vals = append(w.vals, uvalue{k: k, v: v})
			}
			st := r.State
			st.Distinct = nil
			if d := w.deltas[k]; d != nil {
				// Same aggregation by construction: Merge cannot fail.
				_ = d.Merge(&st)
				d.Distinct = nil
			} else {
				w.deltas[k] = &st
			}
		}
	}
}

// writeRollups folds events[fresh] into rollups in tx (rebuilds use it).
func (w *worker) writeRollups(ctx context.Context, tx *db.Tx) ([]upsert, error) {
	w.prepareDeltas()
	return w.storeRollups(ctx, tx)
}

// storeRollups merges the prepared deltas into stored rows. It returns the
// new states to cache after commit.
func (w *worker) storeRollups(ctx context.Context, tx *db.Tx) ([]upsert, error) {
	if len(w.deltas) == 0 {
		return nil, nil
	}
	// A row not cached may be stored; read it back, unless it starts after
	// the front of its (tenant, meter, res, subject): then it cannot exist
	// (events spread over time, or live traffic entering a new minute,
	// create mostly such rows).
	var missing []rkey
	var unknown []frontKey
	for k := range w.deltas {
		if _, ok := w.cache[k]; !ok {
			missing = append(missing, k)
			if fk := frontOf(k); !w.hasFront(fk) {
				unknown = append(unknown, fk)
				w.front[fk] = noFront // placeholder until read: no repeats in unknown
			}
		}
	}
	var err error
	if len(unknown) > 0 {
		if w.args, err = readFronts(ctx, tx, unknown, w.args, w.front); err != nil {
			for _, fk := range unknown {
				delete(w.front, fk) // the placeholders are no bounds
			}
			return nil, err
		}
	}
	missing = slices.DeleteFunc(missing, func(k rkey) bool { return k.start > w.front[frontOf(k)] })
	base := map[rkey]metering.State{}
	if w.args, err = readRollups(ctx, tx, missing, func(m string) metering.Aggregation { return w.aggs[m] }, w.args, base); err != nil {
		return nil, err
	}
	// Stored rows are upserted; new ones inserted plainly (no conflict
	// handling: on SQLite a multi-row upsert journals every page it
	// touches). Both in key order, so the inserts walk the tree in order.
	w.order = w.order[:0]
	for k := range w.deltas {
		w.order = append(w.order, k)
	}
	slices.SortFunc(w.order, compareKeys)
	ups := make([]upsert, 0, len(w.deltas))
	news := make([]upsert, 0, len(w.deltas))
	for _, k := range w.order {
		d := w.deltas[k]
		s, ok := w.cache[k]
		if !ok {
			s, ok = base[k]
		}
		if !ok {
			s = metering.State{Agg: d.Agg}
		}
		if err := s.Merge(d); err != nil {
			return nil, err
		}
		s.Distinct = nil
		if ok {
			ups = append(ups, upsert{k: k, s: s})
		} else {
			news = append(news, upsert{k: k, s: s})
		}
	}
	if w.args, err = writeRollups(ctx, tx, ups, w.args); err != nil {
		return nil, err
	}
	if w.args, err = insertRollups(ctx, tx, news, w.args); err != nil {
		return nil, err
	}
	ups = append(ups, news...)
	if len(w.vals) > 0 {
		if w.args, err = writeValues(ctx, tx, w.vals, w.args); err != nil {
			return nil, err
		}
	}
	return ups, nil
}

// hasFront reports whether the front of fk is known.
func (w *worker) hasFront(fk frontKey) bool {
	if w.front == nil {
		w.front = map[frontKey]int64{}
	}
	_, ok := w.front[fk]
	return ok
}

// remember caches the states committed and moves the fronts past them.
// Only this partition writes rows of its subjects (and a rebuild, which
// bumps the epoch and so drops both), so the fronts stay bounds.
func (w *worker) remember(commit []upsert) {
	for i := range commit {
		k := commit[i].k
		w.cache[k] = commit[i].s
		if fk := frontOf(k); w.hasFront(fk) && k.start > w.front[fk] {
			w.front[fk] = k.start
		}
	}
}

func (w *worker) dropCache() {
	clear(w.cache)
	clear(w.front)
}

// scanOne scans the first row of a query's result into dest, like
// QueryRowContext (which has no prepared counterpart): errNoRows when
// there is none.
func scanOne(rows *sql.Rows, err error) func(dest ...any) error {
	return func(dest ...any) error { return db.ScanFirst(rows, err, dest...) }
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}
