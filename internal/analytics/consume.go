package analytics

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/abacusbilling/abacus/internal/natsbus"
	"github.com/abacusbilling/abacus/internal/outbox"
)

// ConsumerName is the durable JetStream consumer on outbox.Stream that
// feeds the projection.
const ConsumerName = "analytics"

// batchSize and batchWait bound one batch: one transaction per batch.
const (
	batchSize = 500
	batchWait = 100 * time.Millisecond
)

// Run is the analytics role until ctx ends: it consumes the domain events
// the projection needs, in stream order, in batches (one transaction
// each). A batch that fails is retried as a whole, so events are folded
// in order and once.
func (s *Service) Run(ctx context.Context, bus *natsbus.Bus) error {
	for ctx.Err() == nil {
		err := s.consume(ctx, bus)
		if ctx.Err() != nil {
			return nil
		}
		s.log.Error("analytics consumer failed; resuming", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

func (s *Service) consume(ctx context.Context, bus *natsbus.Bus) error {
	if err := outbox.Provision(ctx, bus); err != nil {
		return err
	}
	restarted := bus.Restarted()
	cons, err := bus.JetStream().CreateOrUpdateConsumer(ctx, outbox.Stream, jetstream.ConsumerConfig{
		Durable: ConsumerName, FilterSubjects: Subjects, DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: 5 * time.Minute, MaxAckPending: 4 * batchSize, MaxDeliver: -1,
	})
	if err != nil {
		return fmt.Errorf("creating consumer %s: %w", ConsumerName, err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-restarted:
			return errors.New("JetStream restarted; the consumer is made again")
		default:
		}
		batch, err := cons.Fetch(batchSize, jetstream.FetchMaxWait(batchWait))
		if err != nil {
			return fmt.Errorf("fetching from %s: %w", ConsumerName, err)
		}
		var msgs []jetstream.Msg
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && len(msgs) == 0 {
			return fmt.Errorf("fetching from %s: %w", ConsumerName, err)
		}
		if len(msgs) == 0 {
			continue
		}
		if ctx.Err() != nil {
			// Stopped with a batch in hand: hand it back at once rather
			// than after the ack wait (5 minutes), so the next consumer
			// (this node restarted, or another) folds it now.
			nakAll(msgs)
			return nil
		}
		events := make([]outbox.Event, 0, len(msgs))
		for _, m := range msgs {
			if e, ok := eventOf(m); ok {
				events = append(events, e)
			} else {
				s.log.Error("analytics: skipping a message without event headers", "subject", m.Subject())
			}
		}
		for attempt := 0; ; attempt++ {
			if _, err = s.Apply(ctx, events); err == nil {
				break
			}
			if ctx.Err() != nil {
				nakAll(msgs)
				return nil
			}
			s.log.Warn("analytics: folding a batch failed; retrying it", "events", len(events), "attempt", attempt+1, "err", err)
			for _, m := range msgs {
				_ = m.InProgress()
			}
			select {
			case <-ctx.Done():
				nakAll(msgs)
				return nil
			case <-time.After(min(time.Duration(attempt+1)*time.Second, 10*time.Second)):
			}
		}
		for _, m := range msgs {
			_ = m.Ack()
		}
	}
}

// nakAll hands messages back for redelivery now.
func nakAll(msgs []jetstream.Msg) {
	for _, m := range msgs {
		_ = m.Nak()
	}
}

// eventOf reads a domain event back from its message (the relay's
// headers, outbox.Relay).
func eventOf(m jetstream.Msg) (outbox.Event, bool) {
	h := m.Headers()
	e := outbox.Event{ID: h.Get("Abacus-Event-Id"), TenantID: h.Get("Abacus-Tenant-Id"),
		Type: strings.TrimPrefix(m.Subject(), outbox.SubjectPrefix), Payload: m.Data()}
	if e.ID == "" || e.TenantID == "" {
		return e, false
	}
	e.Version, _ = strconv.Atoi(h.Get("Abacus-Event-Version"))
	if agg := h.Get("Abacus-Aggregate"); agg != "" {
		e.AggregateType, e.AggregateID, _ = strings.Cut(agg, ":")
	}
	t, err := time.Parse(time.RFC3339Nano, h.Get("Abacus-Event-Time"))
	if err != nil {
		return e, false
	}
	e.CreatedAt = t.UTC()
	return e, true
}
