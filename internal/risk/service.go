package risk

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/natsbus"
	"github.com/abacusbilling/abacus/internal/risk/jsonlogic"
)

// Config configures the risk service. Zero values take the defaults.
type Config struct {
	// HashKey is the secret per-tenant identifier hashes derive from (32
	// bytes; the same on every node).
	HashKey []byte
	// ConfigTTL is how long a tenant's rules, counters and settings are
	// cached before they are read again (changes made through this
	// process apply at once; other nodes see them within this).
	ConfigTTL time.Duration
	// MaxCommitBatch bounds the events one group commit stores.
	MaxCommitBatch int
	// CommitInterval is the least time between the starts of two group
	// commits while requests keep coming (see commitLoop).
	CommitInterval time.Duration
	// JournalDir, when set, is where group commits are written (journal.go)
	// before the applier stores them in the database: for SQLite, whose
	// process is the only one writing. Empty: group commits are
	// transactions of the database (PostgreSQL).
	JournalDir string
	// ApplyInterval is how long a journal batch waits at most before the
	// applier stores it; ApplyBatch the events that make it store at once.
	ApplyInterval time.Duration
	ApplyBatch    int
	// ApplyBacklog bounds the events answered from the journal and not yet
	// stored. Past it a group commit waits up to BacklogWait for the
	// applier, then refuses its requests (503 risk_backlog, nothing
	// written): a database that stalls or fails costs refusals, not
	// memory without end.
	ApplyBacklog int
	BacklogWait  time.Duration
}

func (c Config) withDefaults() Config {
	if c.ConfigTTL <= 0 {
		c.ConfigTTL = time.Second
	}
	if c.MaxCommitBatch <= 0 {
		c.MaxCommitBatch = 1000
	}
	if c.CommitInterval <= 0 {
		c.CommitInterval = time.Millisecond
	}
	if c.ApplyInterval <= 0 {
		c.ApplyInterval = 20 * time.Millisecond
	}
	if c.ApplyBatch <= 0 {
		c.ApplyBatch = 1000
	}
	if c.ApplyBacklog <= 0 {
		c.ApplyBacklog = 50_000 // 5 s at 10,000 events/s
	}
	if c.BacklogWait <= 0 {
		c.BacklogWait = 2 * time.Second
	}
	return c
}

// CustomerLinker links risk events to Abacus customers: the customer
// whose external id is a tenant's own customer id ("" when there is
// none), and the other way, an Abacus customer's external id ("" when it
// has none).
type CustomerLinker interface {
	CustomerByExternalID(ctx context.Context, tenant, externalID string) (string, error)
	ExternalIDOf(ctx context.Context, tenant, customerID string) (string, error)
}

// Service is the risk module: events, rules, counters and decisions.
type Service struct {
	db    *db.DB
	clock abacus.Clock
	log   *slog.Logger
	cfg   Config
	parse parser

	counters *counters
	graph    Graph
	lists    Lists
	scorer   Scorer
	hooks    []DecisionHook
	metrics  commitMetrics
	linker   *customerCache
	peers    peerPublisher
	peerStop func()

	mu      sync.Mutex
	tenants map[string]*tenantConfig
	builds  map[string]*sync.Mutex
	gens    map[string]uint64 // bumped by invalidate
	// decideMu is held shared from reading a tenant's configuration until
	// the decisions made with it are queued for the group commit; a
	// counter's backfill takes it alone once, to know that every decision
	// made without the new counter is queued (and then, committed).
	decideMu sync.RWMutex
	running  atomic.Bool // the commit loop runs
	// savedSets are the rule sets known stored ("tenant/id").
	savedSets sync.Map
	// compiled are the active rule versions compiled ("tenant/id@version").
	compiled sync.Map

	commitCh chan *commitReq
	journal  *journal // nil: group commits are database transactions
	jq       journalQueue
	applier  *applier
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// NewService returns the risk service. Call Start before deciding.
func NewService(d *db.DB, clock abacus.Clock, log *slog.Logger, cfg Config) (*Service, error) {
	cfg = cfg.withDefaults()
	if len(cfg.HashKey) != 32 {
		return nil, fmt.Errorf("risk: the hash key must be 32 bytes, got %d", len(cfg.HashKey))
	}
	return &Service{db: d, clock: clock, log: log, cfg: cfg,
		parse:    parser{hash: newHasher(cfg.HashKey), clock: clock},
		counters: newCounters(), tenants: map[string]*tenantConfig{}, builds: map[string]*sync.Mutex{}, gens: map[string]uint64{},
		commitCh: make(chan *commitReq, 4096), stop: make(chan struct{}), done: make(chan struct{}),
		metrics: newCommitMetrics(),
	}, nil
}

// commitMetrics describe the group commit: how many events each commit
// stores and how long its transaction takes.
type commitMetrics struct {
	events       prometheus.Histogram
	seconds      prometheus.Histogram
	applySeconds prometheus.Histogram
}

func newCommitMetrics() commitMetrics {
	return commitMetrics{
		events: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "abacus_risk_commit_events",
			Help: "Risk events and decisions stored per group commit.", Buckets: prometheus.ExponentialBuckets(1, 2, 11)}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "abacus_risk_commit_seconds",
			Help: "Duration of a risk group commit (its transaction, or its write to the journal).", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 12)}),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "abacus_risk_apply_seconds",
			Help: "Duration of a transaction storing risk journal batches.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14)}),
	}
}

// RegisterMetrics exposes the group commit's metrics on reg.
func (s *Service) RegisterMetrics(reg prometheus.Registerer) {
	reg.MustRegister(s.metrics.events, s.metrics.seconds, s.metrics.applySeconds)
}

// SetGraph plugs in the link graph (before Start).
func (s *Service) SetGraph(g Graph) { s.graph = g }

// SetLists plugs in allow and block lists (before Start).
func (s *Service) SetLists(l Lists) { s.lists = l }

// SetScorer plugs in the score (before Start).
func (s *Service) SetScorer(sc Scorer) { s.scorer = sc }

// OnDecided adds a hook run in the transaction that stores decisions.
func (s *Service) OnDecided(h DecisionHook) { s.hooks = append(s.hooks, h) }

// SetCustomers links events to Abacus customers by external id.
func (s *Service) SetCustomers(l CustomerLinker) { s.linker = newCustomerCache(l, s.clock) }

// Hash returns the keyed hash tenant's events store for an identifier of
// a kind (device, ip, email, phone, card, address) given in clear, so
// lists and tests can name identifiers the way events store them.
func (s *Service) Hash(tenant, kind, value string) string {
	switch kind {
	case "email":
		value, _ = normalizeEmail(value)
	case "phone":
		value = normalizePhone(value)
	case "ip":
		if a, _, ok := normalizeIP(value); ok {
			value = a
		}
	}
	return s.parse.hash.Hash(tenant, kind, value)
}

// tenantConfig is one tenant's active rules, counters, settings and
// schemas, cached for Config.ConfigTTL.
type tenantConfig struct {
	tenant          string
	gen             uint64
	loaded          time.Time
	rules           []*Rule
	ruleSetID       string // the rules' id in risk_rule_sets
	counters        []*counterState
	defaultDecision string
	schemas         map[string]*jsonschema.Schema
	reloading       bool // being read again in the background (Service.mu)
}

// invalidate drops tenant's cached configuration.
func (s *Service) invalidate(tenant string) {
	s.mu.Lock()
	delete(s.tenants, tenant)
	s.gens[tenant]++
	s.mu.Unlock()
}

// fresh reports whether a cached configuration may still be used.
func (s *Service) fresh(tc *tenantConfig) bool {
	return tc != nil && tc.gen == s.gens[tc.tenant] && s.clock.Now().Sub(tc.loaded) < s.cfg.ConfigTTL
}

// maxStale is how long past its ConfigTTL a configuration is still used
// while it is read again in the background.
const maxStale = 30 * time.Second

// config returns tenant's configuration. One that only outlived its TTL
// answers at once while one goroutine reads it again (a reload made every
// request of the tenant wait each second); one invalidated by a change
// through this node, or missing, is read before answering.
func (s *Service) config(ctx context.Context, tenant string) (*tenantConfig, error) {
	s.mu.Lock()
	tc := s.tenants[tenant]
	ok := s.fresh(tc)
	stale := !ok && tc != nil && tc.gen == s.gens[tenant] && s.clock.Now().Sub(tc.loaded) < s.cfg.ConfigTTL+maxStale
	if stale && !tc.reloading {
		tc.reloading = true
		go func() {
			if _, err := s.load(context.Background(), tenant); err != nil {
				s.log.Error("risk: reading a tenant's rules and counters again", "tenant_id", tenant, "err", err)
				s.mu.Lock()
				tc.reloading = false
				s.mu.Unlock()
			}
		}()
	}
	s.mu.Unlock()
	if ok || stale {
		return tc, nil
	}
	return s.load(ctx, tenant)
}

// load reads tenant's configuration unless another caller just did.
func (s *Service) load(ctx context.Context, tenant string) (*tenantConfig, error) {
	s.mu.Lock()
	b := s.builds[tenant]
	if b == nil {
		b = &sync.Mutex{}
		s.builds[tenant] = b
	}
	s.mu.Unlock()
	b.Lock()
	defer b.Unlock()
	s.mu.Lock()
	tc := s.tenants[tenant]
	ok := s.fresh(tc)
	gen := s.gens[tenant]
	s.mu.Unlock()
	if ok {
		return tc, nil
	}
	tc, err := s.loadConfig(ctx, tenant)
	if err != nil {
		return nil, err
	}
	tc.gen = gen
	s.mu.Lock()
	s.tenants[tenant] = tc // an invalidate meanwhile makes it stale at once
	s.mu.Unlock()
	return tc, nil
}

func (s *Service) loadConfig(ctx context.Context, tenant string) (*tenantConfig, error) {
	tc := &tenantConfig{tenant: tenant, loaded: s.clock.Now(), schemas: map[string]*jsonschema.Schema{}}
	rules, err := activeRules(ctx, s.db, tenant)
	if err != nil {
		return nil, err
	}
	for _, r := range rules {
		c, err := s.compiledRule(tenant, r)
		if err != nil {
			s.log.Error("an active risk rule no longer compiles; skipped", "tenant_id", tenant, "rule", r.ID, "version", r.Version, "err", err)
			continue
		}
		r.compiled = c
		tc.rules = append(tc.rules, r)
	}
	if tc.ruleSetID, err = s.saveRuleSet(ctx, tenant, tc.rules); err != nil {
		return nil, err
	}
	defs, err := tenantCounters(ctx, s.db, tenant)
	if err != nil {
		return nil, err
	}
	for _, def := range defs {
		st := s.counters.get(tenant, def.ID)
		if st == nil {
			// Created on another node: counted from now on, and backfilled
			// from the stored events in the background.
			st = s.counters.putIfAbsent(tenant, newBuildingState(def))
			if st.building {
				go s.backfillUntilDone(tenant, st)
			}
		}
		tc.counters = append(tc.counters, st)
	}
	st, err := loadSettings(ctx, s.db, tenant)
	if err != nil {
		return nil, err
	}
	tc.defaultDecision = st.DefaultDecision
	docs, err := loadSchemas(ctx, s.db, tenant)
	if err != nil {
		return nil, err
	}
	for typ, doc := range docs {
		sc, err := CompileTenantSchema(doc)
		if err != nil {
			s.log.Error("a stored risk event schema no longer compiles; skipped", "tenant_id", tenant, "type", typ, "err", err)
			continue
		}
		tc.schemas[typ] = sc
	}
	return tc, nil
}

// compiledRule compiles a rule version once: a version's logic never
// changes, and the configuration is read again every ConfigTTL.
func (s *Service) compiledRule(tenant string, r *Rule) (*jsonlogic.Rule, error) {
	key := tenant + "/" + r.ID + "@" + strconv.Itoa(r.Version)
	if c, ok := s.compiled.Load(key); ok {
		return c.(*jsonlogic.Rule), nil
	}
	// Variables were checked when the rule was saved.
	c, err := jsonlogic.Compile(r.Logic, jsonlogic.Options{})
	if err != nil {
		return nil, err
	}
	s.compiled.Store(key, c)
	return c, nil
}

// saveRuleSet stores the rule versions of rules once in risk_rule_sets
// (decisions name them by id) and returns their id.
func (s *Service) saveRuleSet(ctx context.Context, tenant string, rules []*Rule) (string, error) {
	refs := make([]RuleRef, len(rules))
	for i, r := range rules {
		refs[i] = RuleRef{Rule: r.ID, Version: r.Version, Mode: r.Mode}
	}
	doc, err := json.Marshal(ruleSetOf(refs))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(doc)
	id := "rset_" + base64.RawURLEncoding.EncodeToString(sum[:15])
	if _, ok := s.savedSets.Load(tenant + "/" + id); ok {
		return id, nil
	}
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO risk_rule_sets (tenant_id, id, rules, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (tenant_id, id) DO NOTHING`, tenant, id, string(doc), db.TimeOf(s.clock.Now()))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("storing rule set: %w", err)
	}
	s.savedSets.Store(tenant+"/"+id, true)
	return id, nil
}

// backfill completes a building counter state (newBuildingState, already
// registered, its tenant's configuration invalidated) from the stored
// events within its window (and LateWindow). It first waits until every
// decision made without the counter is committed (decideMu, then an empty
// group commit), so the stored events and the events the state counted
// live (pending) together hold every event once.
func (s *Service) backfill(ctx context.Context, tenant string, st *counterState) error {
	s.decideMu.Lock()
	//lint:ignore SA2001 an empty critical section is the barrier: every decision made without the counter has left it
	s.decideMu.Unlock()
	if err := s.barrier(ctx); err != nil {
		return err
	}
	built := newCounterState(st.def)
	since := s.clock.Now().Add(-st.def.window - LateWindow)
	err := scanEvents(ctx, s.db, tenant, since, func(se storedEvent) error {
		if !st.isPending(se.ev.ID) {
			built.add(se.ev, true)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("backfilling counter %s: %w", st.def.Name, err)
	}
	st.finishBuild(built)
	return nil
}

// barrier returns once every request queued before it is stored in the
// database (an empty group commit; with the journal, its batch applied).
func (s *Service) barrier(ctx context.Context) error {
	if !s.running.Load() {
		return nil
	}
	req := &commitReq{done: make(chan error, 1)}
	if s.journal != nil {
		return s.journalBarrier(ctx, req)
	}
	select {
	case s.commitCh <- req:
	case <-s.stop:
		return errStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-s.done:
		return errStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Flush returns once every event and decision answered before it is in
// the database, for a read of the risk tables that must see them; with
// no journal, they are there when answered.
func (s *Service) Flush(ctx context.Context) error {
	if s.journal == nil {
		return nil
	}
	// Every answered batch was written before its answer (a request with
	// commit hooks is answered once stored), so when the applier has
	// stored the last one written there is nothing to wait for: a read
	// costs no write transaction.
	if s.journal.applied.Load() >= s.journal.written.Load() {
		return nil
	}
	return s.barrier(ctx)
}

// backfillUntilDone backfills st, retrying after a failure, until it is
// built or the service stops.
func (s *Service) backfillUntilDone(tenant string, st *counterState) {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 10*time.Second) {
		err := s.backfill(context.Background(), tenant, st)
		if err == nil || errors.Is(err, errStopped) {
			return
		}
		s.log.Error("risk: backfilling a counter failed; retrying", "tenant_id", tenant, "counter", st.def.Name, "err", err)
		select {
		case <-s.stop:
			return
		case <-time.After(wait):
		}
	}
}

// Start rebuilds the counters (and the graph) from the stored events and
// starts the group commit. With a bus other processes can reach, it first
// subscribes to the other nodes' stored events (peers.go) and applies
// those that arrived while it rebuilt. It returns once the state is whole.
func (s *Service) Start(ctx context.Context, bus *natsbus.Bus) error {
	if s.cfg.JournalDir != "" {
		j, err := openJournal(s.cfg.JournalDir)
		if err != nil {
			return err
		}
		s.journal = j
		if err := s.replayJournal(ctx); err != nil {
			j.close()
			return err
		}
		s.applier = newApplier(s)
	}
	var p *peers
	since := s.clock.Now()
	if bus != nil && !onlyNode(bus) {
		p = &peers{s: s, js: bus.JetStream(), node: newNodeID()}
		if err := p.subscribe(ctx, bus); err != nil {
			return err
		}
	}
	skip, err := s.rebuild(ctx, since, p != nil)
	if err != nil {
		if p != nil {
			p.stop()
		}
		return err
	}
	if p != nil {
		p.mu.Lock()
		p.skipIDs = skip
		p.mu.Unlock()
		p.goLive()
		s.peers = p
		s.peerStop = p.stop
	}
	s.running.Store(true)
	if s.applier != nil {
		go s.applier.run()
	}
	go s.commitLoop()
	go s.pruneLoop()
	return nil
}

// Stop ends the group commit after the requests queued; safe twice or
// before Start.
func (s *Service) Stop() {
	s.stopOnce.Do(func() {
		close(s.stop)
		if s.peerStop != nil {
			s.peerStop()
		}
	})
}

// rebuild reads every tenant's stored events once, in time order: the
// counters take those inside their windows, the graph all of them. With
// remember, it returns the ids of events decided since catchUp before
// since (the peers' stream may carry them too).
func (s *Service) rebuild(ctx context.Context, since0 time.Time, remember bool) (map[string]bool, error) {
	start := time.Now()
	skip := map[string]bool{}
	tenants, err := eventTenants(ctx, s.db)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, tenant := range tenants {
		defs, err := tenantCounters(ctx, s.db, tenant)
		if err != nil {
			return nil, err
		}
		states := make([]*counterState, len(defs))
		since := time.Time{}
		if s.graph == nil {
			since = s.clock.Now().Add(-MaxWindow - LateWindow)
		}
		cuts := make([]int64, len(defs))
		for i, def := range defs {
			states[i] = newCounterState(def)
			cuts[i] = s.clock.Now().Add(-def.window - LateWindow).UnixMicro()
		}
		err = scanEvents(ctx, s.db, tenant, since, func(se storedEvent) error {
			n++
			if remember && recent(se.ev.ID, since0) {
				skip[se.ev.ID] = true
			}
			at := se.ev.Time.UnixMicro()
			for i, st := range states {
				if at >= cuts[i] {
					st.add(se.ev, true)
				}
			}
			if s.graph != nil {
				s.graph.Observe(tenant, se.ev)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		for _, st := range states {
			s.counters.put(tenant, st)
		}
	}
	s.log.Info("risk state rebuilt from stored events", "events", n, "tenants", len(tenants), "took", time.Since(start).Round(time.Millisecond))
	return skip, nil
}

func (s *Service) pruneLoop() {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			now := s.clock.Now()
			for _, st := range s.counters.all() {
				st.prune(now)
			}
		}
	}
}

// commitReq is one request's events and decisions.
type commitReq struct {
	items []*pending
	done  chan error
	// hooks is the request's context for its commit hooks (an
	// Idempotency-Key claim marked in the same transaction); nil for none.
	hooks context.Context
}

// commitLoop stores what requests queued, many requests per transaction
// (group commit). While requests keep coming (the last commit took more
// than one), a commit starts no sooner than CommitInterval after the one
// before: a transaction's cost is mostly per commit, not per row (SQLite
// writes each B-tree's last page again in every commit: ~10 WAL pages
// for 4 events, ~21 for 16), so a few hundred microseconds of waiting
// buys fewer, larger commits and leaves the CPU to the requests. A lone
// request (the last commit took one) is committed at once. With the
// journal, requests do not come here (they lead the journal's group
// commit: apply.go); the loop only stops the applier and the journal.
func (s *Service) commitLoop() {
	defer close(s.done)
	var reqs []*commitReq
	lastBatch := 0
	var lastStart time.Time
	for {
		reqs = reqs[:0]
		select {
		case r := <-s.commitCh:
			reqs = append(reqs, r)
		case <-s.stop:
			s.refuseQueued()
			if s.applier != nil {
				s.applier.close()
				s.journal.close()
			}
			return
		}
		var due time.Time
		if lastBatch > 1 {
			due = lastStart.Add(s.cfg.CommitInterval)
		}
		reqs = s.gather(reqs, due)
		lastBatch, lastStart = len(reqs), time.Now()
		s.commitAnswering(reqs)
		s.metrics.seconds.Observe(time.Since(lastStart).Seconds())
	}
}

// gather adds queued requests to reqs until MaxCommitBatch events, taking
// what is queued now and, until due (when set), what arrives.
func (s *Service) gather(reqs []*commitReq, due time.Time) []*commitReq {
	n := 0
	for _, r := range reqs {
		n += len(r.items)
	}
	var wait *time.Timer
	for n < s.cfg.MaxCommitBatch {
		select {
		case r := <-s.commitCh:
			reqs, n = append(reqs, r), n+len(r.items)
			continue
		default:
		}
		d := time.Until(due)
		if due.IsZero() || d <= 0 {
			break
		}
		if wait == nil {
			wait = time.NewTimer(d)
			defer wait.Stop()
		}
		select {
		case r := <-s.commitCh:
			reqs, n = append(reqs, r), n+len(r.items)
		case <-wait.C:
			return reqs
		}
	}
	return reqs
}

// refuseQueued answers every queued request errStopped.
func (s *Service) refuseQueued() {
	for {
		select {
		case r := <-s.commitCh:
			r.done <- errStopped
		default:
			return
		}
	}
}

// commitAnswering stores reqs in one transaction and answers each. A
// request whose commit hooks fail (its Idempotency-Key claim was taken over
// by a retry) is answered that error, and the others are stored without it.
func (s *Service) commitAnswering(reqs []*commitReq) {
	for len(reqs) > 0 {
		refused, err := s.commit(reqs)
		if refused == nil {
			for _, r := range reqs {
				r.done <- err
			}
			return
		}
		refused.done <- err
		rest := make([]*commitReq, 0, len(reqs)-1)
		for _, r := range reqs {
			if r != refused {
				rest = append(rest, r)
			}
		}
		reqs = rest
	}
}

// commit stores reqs in one transaction; refused is the request whose
// commit hooks failed (and rolled it back), if one did.
func (s *Service) commit(reqs []*commitReq) (refused *commitReq, err error) {
	var all []*pending
	now := s.clock.Now()
	for _, r := range reqs {
		for _, p := range r.items {
			p.received = now
		}
		all = append(all, r.items...)
	}
	s.metrics.events.Observe(float64(len(all)))
	if refused, err = s.store(nil, reqs, 0); err != nil {
		return refused, err
	}
	s.observeStored(all)
	return nil, nil
}

// store writes items and reqs' items in one transaction, with reqs' commit
// hooks, the DecisionHooks and, when seq is set, the journal's position;
// refused is the request whose commit hooks failed (and rolled it back),
// if one did.
func (s *Service) store(items []*pending, reqs []*commitReq, seq uint64) (refused *commitReq, err error) {
	ctx := context.Background()
	all := items
	for _, r := range reqs {
		all = append(all, r.items...)
	}
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if err := insertDecided(ctx, tx, all); err != nil {
			return err
		}
		for _, r := range reqs {
			if r.hooks == nil {
				continue
			}
			if err := db.RunCommitHooks(r.hooks, tx); err != nil {
				refused = r
				return err
			}
		}
		if err := s.runHooks(ctx, tx, all); err != nil {
			return err
		}
		if seq > 0 {
			return setJournalApplied(ctx, tx, seq)
		}
		return nil
	})
	return refused, err
}

// runHooks gives the DecisionHooks the stored events' decisions, tenant
// by tenant.
func (s *Service) runHooks(ctx context.Context, tx *db.Tx, all []*pending) error {
	if len(s.hooks) == 0 {
		return nil
	}
	byTenant := map[string][]*Decision{}
	var order []string
	for _, p := range all {
		if p.ev == nil {
			continue
		}
		if byTenant[p.tenant] == nil {
			order = append(order, p.tenant)
		}
		byTenant[p.tenant] = append(byTenant[p.tenant], p.d)
	}
	for _, t := range order {
		for _, h := range s.hooks {
			if err := h(ctx, tx, t, byTenant[t]); err != nil {
				return err
			}
		}
	}
	return nil
}

// observeStored gives the graph and the other nodes the events of items, once
// they are stored (or in the journal).
func (s *Service) observeStored(items []*pending) {
	var stored []*pending
	// Consecutive events of one tenant are linked at once.
	var run []*Event
	runTenant := ""
	flush := func() {
		if len(run) > 0 && s.graph != nil {
			s.graph.Observe(runTenant, run...)
		}
		run = run[:0]
	}
	for _, p := range items {
		if p.ev == nil {
			continue
		}
		stored = append(stored, p)
		if p.tenant != runTenant {
			flush()
			runTenant = p.tenant
		}
		run = append(run, p.ev)
	}
	flush()
	if s.peers != nil && len(stored) > 0 {
		s.peers.publish(stored)
	}
}

// errStopped answers requests after Stop.
var errStopped = abacus.Errorf(abacus.KindUnavailable, "unavailable", "the risk service is stopping; retry")

// Decide validates body (one event or a batch), decides each event and,
// when store is true (POST /risk/events), stores the events and decisions
// before answering; a pure question (store false) stores only its
// decision. Counters count each stored event from its decision on; an
// event whose commit fails is taken back out.
func (s *Service) Decide(ctx context.Context, body []byte, store bool) ([]*Decision, bool, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, false, err
	}
	s.decideMu.RLock()
	held := true
	unlock := func() {
		if held {
			held = false
			s.decideMu.RUnlock()
		}
	}
	defer unlock()
	tc, err := s.config(ctx, tenant)
	if err != nil {
		return nil, false, err
	}
	evs, batch, err := s.parse.Parse(tenant, body, tc.schemas)
	if err != nil {
		return nil, batch, err
	}
	if s.linker != nil {
		for _, ev := range evs {
			if ev.CustomerID != "" {
				if ev.AbacusCustomerID, err = s.linker.lookup(ctx, tenant, ev.CustomerID); err != nil {
					return nil, batch, err
				}
			}
		}
	}
	return s.decideEvents(ctx, tc, evs, store, batch, unlock)
}

// decideEvents decides evs with tc, queues them for the group commit and
// waits for it; queued is called once they are queued (or refused), to
// release decideMu, which the caller holds since it read tc.
func (s *Service) decideEvents(ctx context.Context, tc *tenantConfig, evs []*Event, store, batch bool, queued func()) ([]*Decision, bool, error) {
	items := make([]*pending, 0, len(evs))
	out := make([]*Decision, 0, len(evs))
	applied := 0
	rollback := func() {
		for _, ev := range evs[:applied] {
			for _, st := range tc.counters {
				st.remove(ev)
			}
		}
	}
	for _, ev := range evs {
		d, err := s.decide(ctx, tc, ev, store)
		if err != nil {
			if store {
				rollback()
			}
			return nil, batch, err
		}
		if store {
			applied++
		}
		p := &pending{tenant: tc.tenant, d: d, customer: ev.CustomerID}
		if store {
			d.EventID, d.stored = ev.ID, ev
			p.ev = ev
			if p.evJSON, err = gojson.Marshal(ev); err != nil {
				rollback()
				return nil, batch, err
			}
			if p.fJSON, err = gojson.Marshal(basisOf(d)); err != nil {
				rollback()
				return nil, batch, err
			}
		}
		if p.dJSON, err = gojson.Marshal(recordOf(d, ev, store, tc.ruleSetID)); err != nil {
			if store {
				rollback()
			}
			return nil, batch, err
		}
		d.Rules = nil // on GET
		items = append(items, p)
		out = append(out, d)
	}
	// The request's commit hooks run in the group commit's transaction;
	// the request may end while it waits, its hooks' writes may not.
	req := &commitReq{items: items, done: make(chan error, 1), hooks: context.WithoutCancel(ctx)}
	if s.journal != nil {
		select {
		case <-s.stop:
			rollback()
			return nil, batch, errStopped
		default:
		}
		lead := s.jq.add(req)
		queued()
		if lead {
			s.leadJournal()
		}
		if err := s.awaitJournal(req); err != nil {
			if store {
				rollback()
			}
			return nil, batch, err
		}
		return out, batch, nil
	}
	select {
	case s.commitCh <- req:
		queued()
	case <-s.stop:
		rollback()
		return nil, batch, errStopped
	case <-ctx.Done():
		rollback()
		return nil, batch, ctx.Err()
	}
	var err error
	select {
	case err = <-req.done:
	case <-s.done:
		select {
		case err = <-req.done:
		default:
			err = errStopped
		}
	}
	if err != nil {
		if store {
			rollback()
		}
		return nil, batch, err
	}
	return out, batch, nil
}

// GetDecision returns a stored decision with the event it judged.
func (s *Service) GetDecision(ctx context.Context, id string) (*Decision, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.Flush(ctx); err != nil {
		return nil, err
	}
	return loadDecision(ctx, s.db, tenant, id)
}

// ListDecisions pages through decisions by id, optionally of one kind or
// one customer.
func (s *Service) ListDecisions(ctx context.Context, f DecisionFilter, cursor string, limit int) (abacus.List[*Decision], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[*Decision]{}, err
	}
	limit = pageSize(limit)
	if err := s.Flush(ctx); err != nil {
		return abacus.List[*Decision]{}, err
	}
	ds, err := listDecisions(ctx, s.db, tenant, f, cursor, limit+1)
	if err != nil {
		return abacus.List[*Decision]{}, err
	}
	next := ""
	if len(ds) > limit {
		ds = ds[:limit]
		next = ds[limit-1].ID
	}
	return abacus.ListOf(ds, next), nil
}

func pageSize(limit int) int {
	if limit <= 0 {
		return 20
	}
	return min(limit, 100)
}

// customerCache caches external id → Abacus customer id lookups.
type customerCache struct {
	l     CustomerLinker
	clock abacus.Clock
	mu    sync.Mutex
	m     map[[2]string]cachedCustomer
}

type cachedCustomer struct {
	id    string
	until time.Time
}

func newCustomerCache(l CustomerLinker, clock abacus.Clock) *customerCache {
	return &customerCache{l: l, clock: clock, m: map[[2]string]cachedCustomer{}}
}

// lookup answers from the cache (five minutes for a found customer, a
// minute for none: a lookup is a catalog query, which cost ~18 % of a
// decision's CPU with a ten-second negative cache over 1,000 customers).
func (c *customerCache) lookup(ctx context.Context, tenant, ext string) (string, error) {
	k := [2]string{tenant, ext}
	now := c.clock.Now()
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.id, nil
	}
	id, err := c.l.CustomerByExternalID(ctx, tenant, ext)
	if err != nil {
		return "", err
	}
	ttl := 5 * time.Minute
	if id == "" {
		ttl = time.Minute
	}
	c.mu.Lock()
	if len(c.m) > 100_000 {
		clear(c.m)
	}
	c.m[k] = cachedCustomer{id: id, until: now.Add(ttl)}
	c.mu.Unlock()
	return id, nil
}

// peerPublisher shares stored events with the other nodes (peers.go).
type peerPublisher interface {
	publish(stored []*pending)
}
