package outbox

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/natsbus"
)

// RelayConfig configures a Relay.
type RelayConfig struct {
	PollInterval time.Duration
	BatchSize    int
	// Retention is how long published events stay in the table.
	Retention time.Duration
}

// Relay publishes recorded events to JetStream. Run it as the outbox role.
type Relay struct {
	db  *db.DB
	bus *natsbus.Bus
	cfg RelayConfig
	log *slog.Logger

	published prometheus.Counter
	pending   prometheus.Gauge
	lag       prometheus.Gauge

	// afterPublish runs after each event's publish is acked and before it
	// is marked published; tests use it to crash in that window.
	afterPublish func(Event)
}

// NewRelay returns a relay; reg may be nil.
func NewRelay(d *db.DB, bus *natsbus.Bus, cfg RelayConfig, log *slog.Logger, reg prometheus.Registerer) *Relay {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 200 * time.Millisecond
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 7 * 24 * time.Hour
	}
	r := &Relay{db: d, bus: bus, cfg: cfg, log: log,
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "abacus_outbox_published_total", Help: "Domain events published to NATS."}),
		pending:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "abacus_outbox_pending", Help: "Domain events committed but not yet published."}),
		lag:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "abacus_outbox_lag_seconds", Help: "Age of the oldest unpublished domain event."}),
	}
	if reg != nil {
		reg.MustRegister(r.published, r.pending, r.lag)
	}
	return r
}

// StreamConfig is the JetStream stream for domain events.
func StreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:       Stream,
		Subjects:   []string{SubjectPrefix + ">"},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		MaxAge:     7 * 24 * time.Hour,
		Duplicates: 10 * time.Minute,
		Replicas:   max(replicas, 1),
	}
}

// Provision creates the events stream if needed.
func Provision(ctx context.Context, bus *natsbus.Bus) error {
	_, err := bus.EnsureStream(ctx, StreamConfig(1))
	return err
}

// Run publishes until ctx ends. On return every event it saw acked is
// marked published; anything else is left for the next run.
func (r *Relay) Run(ctx context.Context) error {
	if err := Provision(ctx, r.bus); err != nil {
		return err
	}
	ticker := time.NewTicker(r.cfg.PollInterval)
	defer ticker.Stop()
	lastPrune := time.Time{}
	for {
		n, err := r.Flush(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("outbox relay round failed; retrying", "err", err)
		}
		if time.Since(lastPrune) > time.Hour {
			r.prune(ctx)
			lastPrune = time.Now()
		}
		if n == r.cfg.BatchSize {
			continue // more waiting
		}
		select {
		case <-ctx.Done():
			// Publish what committed before shutdown, so a clean stop
			// leaves nothing behind (a crash leaves it for the next start).
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for {
				n, err := r.Flush(fctx)
				if err != nil || n < r.cfg.BatchSize {
					return err
				}
			}
		case <-ticker.C:
		case <-wakeCh:
		}
	}
}

// Flush publishes one batch of pending events in order and returns how
// many it published.
func (r *Relay) Flush(ctx context.Context) (int, error) {
	published, err := r.publishExclusively(ctx)
	if err == nil {
		r.published.Add(float64(published))
		r.observeLag(ctx)
	}
	return published, err
}

// publishBatch publishes pending events in order, stopping at the first
// failure, and marks the published prefix (in tx, or in a new transaction
// when tx is nil).
func (r *Relay) publishBatch(ctx context.Context, q db.Querier, tx *db.Tx) (int, error) {
	events, err := pending(ctx, q, r.cfg.BatchSize)
	if err != nil {
		return 0, err
	}
	var done []string
	var pubErr error
	for _, e := range events {
		if pubErr = r.publish(ctx, e); pubErr != nil {
			break
		}
		if r.afterPublish != nil {
			r.afterPublish(e)
		}
		done = append(done, e.ID)
	}
	if len(done) > 0 {
		mark := func(tx *db.Tx) error { return markPublished(ctx, tx, done) }
		if tx != nil {
			err = mark(tx)
		} else {
			err = r.db.InTx(ctx, mark)
		}
		if err != nil {
			return 0, err
		}
	}
	return len(done), pubErr
}

func (r *Relay) publish(ctx context.Context, e Event) error {
	msg := &nats.Msg{Subject: e.Subject(), Data: e.Payload, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, e.ID)
	msg.Header.Set("Abacus-Event-Id", e.ID)
	msg.Header.Set("Abacus-Tenant-Id", e.TenantID)
	msg.Header.Set("Abacus-Aggregate", e.AggregateType+":"+e.AggregateID)
	msg.Header.Set("Abacus-Event-Version", strconv.Itoa(e.Version))
	msg.Header.Set("Abacus-Event-Time", e.CreatedAt.UTC().Format(time.RFC3339Nano))
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := r.bus.JetStream().PublishMsg(pctx, msg); err != nil {
		return fmt.Errorf("publishing %s %s: %w", e.Type, e.ID, err)
	}
	return nil
}

func (r *Relay) observeLag(ctx context.Context) {
	var n int64
	var oldest db.NullTime
	err := r.db.QueryRowContext(ctx, `SELECT count(*), min(created_at) FROM outbox_events WHERE published_at IS NULL`).Scan(&n, &oldest)
	if err != nil {
		return
	}
	r.pending.Set(float64(n))
	if oldest.Valid {
		r.lag.Set(time.Since(oldest.Time).Seconds())
	} else {
		r.lag.Set(0)
	}
}
