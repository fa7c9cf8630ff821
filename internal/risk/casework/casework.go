// Package casework is the analyst's side of the risk module: the link
// graph as the decision pipeline sees it (graph.* variables, rebuilt from
// stored events at start), customer labels, allow/block lists (lists.*),
// review cases opened by review decisions, and the score (score).
//
// It plugs into the risk service through the interfaces the service
// defines (risk.Graph, risk.Lists, risk.Scorer, risk.DecisionHook); the
// app wires it (internal/app/riskgraph.go).
package casework

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/risk"
	"github.com/abacusbilling/abacus/internal/risk/graph"
)

// Config configures casework. Zero values take the defaults.
type Config struct {
	// Graph shapes every tenant's link graph (edge budget).
	Graph graph.Options
	// GraphRetention drops edges last seen longer ago at the periodic
	// rebuild (0: never).
	GraphRetention time.Duration
	// Refresh is how often labels and lists changed on other nodes are
	// read again (default 2 s).
	Refresh time.Duration
	// TrainEvery is the score model's retraining schedule (default 24 h).
	TrainEvery time.Duration
	// Usage is where the usage anomaly check reads daily usage (nil: no
	// check); UsageEvery is how often it runs (default 1 h).
	Usage      UsageSource
	UsageEvery time.Duration
}

func (c Config) withDefaults() Config {
	if c.Refresh <= 0 {
		c.Refresh = 2 * time.Second
	}
	if c.TrainEvery <= 0 {
		c.TrainEvery = 24 * time.Hour
	}
	if c.UsageEvery <= 0 {
		c.UsageEvery = time.Hour
	}
	return c
}

// Hasher gives the value risk events store for an identifier given in
// clear (risk.Service.Hash).
type Hasher interface {
	Hash(tenant, kind, value string) string
}

// Service is casework.
type Service struct {
	db     *db.DB
	clock  abacus.Clock
	log    *slog.Logger
	cfg    Config
	hash   Hasher
	graphs *graph.Graphs

	lists *listCache
	// flush waits until the risk service's answered decisions are stored
	// (its journal applied): the cases and labels they make are read
	// after it.
	flush func(context.Context) error

	models   sync.Mutex
	modelsBy map[string]*cachedModel

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	started  bool
}

// New returns casework; hash is the risk service's identifier hash.
func New(d *db.DB, clock abacus.Clock, log *slog.Logger, hash Hasher, cfg Config) *Service {
	cfg = cfg.withDefaults()
	return &Service{db: d, clock: clock, log: log, cfg: cfg, hash: hash,
		graphs: graph.NewGraphs(cfg.Graph), lists: newListCache(),
		modelsBy: map[string]*cachedModel{},
		stop:     make(chan struct{}), done: make(chan struct{})}
}

// Attach plugs casework into the risk service: graph, lists, score and
// the review-case hook. Call before the risk service starts (its start
// replays stored events into the graph).
func (s *Service) Attach(r *risk.Service) {
	r.SetGraph(graphPort{s})
	r.SetLists(listPort{s})
	r.SetScorer(scorePort{s})
	r.OnDecided(s.onDecided)
	s.flush = r.Flush
}

// flushed waits for the risk service's journal, when attached.
func (s *Service) flushed(ctx context.Context) error {
	if s.flush == nil {
		return nil
	}
	return s.flush(ctx)
}

// Start loads every tenant's labels into the graph and starts the
// background loop (label refresh, graph budget and retention). Call it
// before the risk service's Start.
func (s *Service) Start(ctx context.Context) error {
	since, err := s.loadLabels(ctx, time.Time{})
	if err != nil {
		return err
	}
	s.started = true
	go s.loop(since)
	return nil
}

// Stop ends the background loop; safe twice or before Start.
func (s *Service) Stop() {
	s.stopOnce.Do(func() {
		close(s.stop)
		if s.started {
			<-s.done
		}
	})
}

// Graphs is the link graph of every tenant (for tests and benchmarks).
func (s *Service) Graphs() *graph.Graphs { return s.graphs }

func (s *Service) loop(since time.Time) {
	defer close(s.done)
	t := time.NewTicker(s.cfg.Refresh)
	defer t.Stop()
	lastRebuild, lastTrain := s.clock.Now(), s.clock.Now()
	var lastUsage time.Time
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx := context.Background()
		if next, err := s.loadLabels(ctx, since); err != nil {
			s.log.Warn("risk casework: reading labels", "err", err)
		} else {
			since = next
		}
		s.lists.expire()
		all := s.cfg.GraphRetention > 0 && s.clock.Now().Sub(lastRebuild) > time.Hour
		var cutoff time.Time
		if s.cfg.GraphRetention > 0 {
			cutoff = s.clock.Now().Add(-s.cfg.GraphRetention)
		}
		if dropped := s.graphs.RebuildDue(cutoff, all); dropped > 0 {
			s.log.Info("risk graph rebuilt within its budget", "edges_dropped", dropped)
		}
		if all {
			lastRebuild = s.clock.Now()
		}
		if s.cfg.Usage != nil && s.clock.Now().Sub(lastUsage) >= s.cfg.UsageEvery {
			if n, err := s.CheckUsage(ctx, s.cfg.Usage); err != nil {
				s.log.Warn("risk usage anomaly check", "err", err)
			} else if n > 0 {
				s.log.Info("risk usage anomalies raised", "count", n)
			}
			lastUsage = s.clock.Now()
		}
		if s.clock.Now().Sub(lastTrain) >= s.cfg.TrainEvery {
			s.trainAll(ctx)
			lastTrain = s.clock.Now()
		}
	}
}
