// Package webhooks delivers domain events to tenants' HTTP endpoints
// following the Standard Webhooks spec (v1.0.0): each delivery carries
// webhook-id (the message id, the same on every attempt),
// webhook-timestamp and webhook-signature (v1, HMAC-SHA256 over
// id.timestamp.body with the endpoint's whsec_ secret).
//
//	ABACUS_EVENTS ──consumer──▶ webhook_events + one webhook_messages row per
//	 (durable "webhooks",       matching endpoint, in one transaction, then ack
//	  idempotent by event id)
//	                               │ due (next_attempt_at ≤ now, lease free)
//	                               ▼
//	          dispatcher: per-endpoint queues, a concurrency cap each, a
//	          bounded worker pool; claims with a lease, POSTs, records the
//	          attempt and the next one (schedule below) in one transaction
//
// A message is pending until an attempt answers 2xx (delivered), a retry
// is not allowed (failed: a 4xx other than 429, or the schedule is over),
// or its endpoint answers 410 Gone (failed; the endpoint is disabled).
// Retries follow Schedule with up to 10 % jitter, later if the endpoint's
// Retry-After asks for more. An endpoint failing for FailingDisableAfter
// is disabled and webhook_endpoint.disabled is recorded.
//
// Crash safety: every state lives in the database. A message is claimed
// with a lease before its POST; a process killed during the POST leaves
// the lease to expire, and the message is sent again, with the same
// webhook-id. Delivery is at least once.
package webhooks

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/natsbus"
)

// Schedule is the delay before each retry, after the first attempt that
// goes out at once (the Standard Webhooks recommendation). Eight attempts
// in all, about 27.6 hours end to end.
var Schedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
	5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// FailingDisableAfter is how long an endpoint may fail every attempt
// before it is disabled.
const FailingDisableAfter = 5 * 24 * time.Hour

// Retention is how long finished messages, their attempts and the events
// behind them are kept (and so how far back a replay reaches).
const Retention = 30 * 24 * time.Hour

// RotationOverlap is how long a rotated-out secret keeps signing beside
// the new one.
const RotationOverlap = 24 * time.Hour

// Config configures the webhooks module. Zero values take the defaults.
type Config struct {
	// AllowPrivateTargets lets endpoints reach loopback, private and
	// link-local addresses (tests; a private deployment).
	AllowPrivateTargets bool
	// EncryptionKey encrypts endpoint secrets at rest (32 bytes).
	EncryptionKey []byte
	// Workers bounds the deliveries in flight in this process.
	Workers int
	// EndpointConcurrency bounds one endpoint's deliveries in flight; an
	// endpoint whose last attempt failed gets one.
	EndpointConcurrency int
	// Timeout bounds one attempt, connection to last byte.
	Timeout time.Duration
	// Lease is how long a claimed message is kept from other dispatchers;
	// a crash leaves it pending again after this.
	Lease time.Duration
	// PollInterval is how often the dispatcher looks for due messages
	// when nothing woke it.
	PollInterval time.Duration
	// ResponseExcerpt is how many bytes of an answer the log keeps.
	ResponseExcerpt int
	// Jitter is the largest fraction added to a retry delay (0.1 = 10 %).
	Jitter float64
}

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = 128
	}
	if c.EndpointConcurrency <= 0 {
		c.EndpointConcurrency = 8
	}
	if c.Timeout <= 0 {
		c.Timeout = 15 * time.Second
	}
	if c.Lease <= 0 {
		c.Lease = c.Timeout + time.Minute
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 250 * time.Millisecond
	}
	if c.ResponseExcerpt <= 0 {
		c.ResponseExcerpt = 1024
	}
	if c.Jitter == 0 {
		c.Jitter = 0.1
	}
	return c
}

// Service is the webhooks module: endpoints, the message log, the
// consumer that turns events into messages and the dispatcher that
// delivers them.
type Service struct {
	db     *db.DB
	clock  abacus.Clock
	log    *slog.Logger
	cfg    Config
	sealer *sealer
	guard  guard
	wakeCh chan struct{}

	observer atomic.Pointer[Observer] // observe.go

	delivered, failed prometheus.Counter
	latency           prometheus.Histogram
}

// NewService returns the webhooks service; reg may be nil.
func NewService(d *db.DB, clock abacus.Clock, log *slog.Logger, cfg Config, reg prometheus.Registerer) (*Service, error) {
	cfg = cfg.withDefaults()
	s, err := newSealer(cfg.EncryptionKey)
	if err != nil {
		return nil, err
	}
	svc := &Service{db: d, clock: clock, log: log, cfg: cfg, sealer: s,
		guard:     guard{allowPrivate: cfg.AllowPrivateTargets, resolver: net.DefaultResolver},
		wakeCh:    make(chan struct{}, 1),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "abacus_webhook_deliveries_total", Help: "Webhook attempts answered 2xx."}),
		failed:    prometheus.NewCounter(prometheus.CounterOpts{Name: "abacus_webhook_failed_attempts_total", Help: "Webhook attempts that failed (timeout, network, non-2xx)."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "abacus_webhook_attempt_seconds", Help: "Duration of webhook attempts.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9)}),
	}
	if reg != nil {
		reg.MustRegister(svc.delivered, svc.failed, svc.latency)
	}
	return svc, nil
}

// wake nudges the dispatcher after new messages commit.
func (s *Service) wake() {
	select {
	case s.wakeCh <- struct{}{}:
	default:
	}
}

// retryDelay is the wait before attempt n+1 after n attempts failed (n ≥
// 1), with jitter; ok is false when the schedule is over.
func (s *Service) retryDelay(n int, retryAfter time.Duration) (time.Duration, bool) {
	if n < 1 || n > len(Schedule) {
		return 0, false
	}
	d := Schedule[n-1]
	if s.cfg.Jitter > 0 {
		j, _ := rand.Int(rand.Reader, big.NewInt(1_000_000))
		d += time.Duration(float64(d) * s.cfg.Jitter * float64(j.Int64()) / 1_000_000)
	}
	if retryAfter > d {
		d = min(retryAfter, 24*time.Hour)
	}
	return d, true
}

// Run is the webhooks role: the consumer and the dispatcher, until ctx
// ends.
func (s *Service) Run(ctx context.Context, bus *natsbus.Bus) error {
	errs := make(chan error, 2)
	go func() { errs <- s.Consume(ctx, bus) }()
	go func() { errs <- s.NewDispatcher().Run(ctx) }()
	go s.pruneEvery(ctx, time.Hour)
	return errors.Join(<-errs, <-errs)
}

func (s *Service) pruneEvery(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := s.Prune(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("pruning webhook messages", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Prune deletes what is older than Retention and finished: delivered or
// failed messages with their attempts, and events no message needs. It
// returns the events deleted.
func (s *Service) Prune(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		var err error
		n, err = prune(ctx, tx, s.clock.Now().Add(-Retention))
		return err
	})
	return n, err
}
