package notifications

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

// ConsumerName is the durable JetStream consumer triggers read domain
// events with; its position survives restarts.
const ConsumerName = "notifications"

// RunTriggers consumes the domain events (stream ABACUS_EVENTS) and turns
// each into notifications (HandleEvent), acknowledging it once that has
// committed. A redelivered event is recognised by its id. It returns when
// ctx ends.
func (s *Service) RunTriggers(ctx context.Context, bus *natsbus.Bus) error {
	for {
		err := s.consume(ctx, bus)
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("notification triggers: consumer stopped; starting again", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

func (s *Service) consume(ctx context.Context, bus *natsbus.Bus) error {
	if err := outbox.Provision(ctx, bus); err != nil {
		return err
	}
	restarted := bus.Restarted()
	// On first creation, the events published since this process built
	// the service: a new deployment does not mail about the week of history
	// in the stream, and an event committed while the consumer was being
	// created (DeliverNew would skip it) is not lost. Afterwards the
	// durable consumer keeps its place.
	start := s.built
	cfg := jetstream.ConsumerConfig{
		Durable: ConsumerName, FilterSubject: outbox.SubjectPrefix + ">", AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: 2 * time.Minute, MaxAckPending: 64, MaxDeliver: 20,
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start,
	}
	if old, err := bus.JetStream().Consumer(ctx, outbox.Stream, ConsumerName); err == nil {
		// Where a consumer starts cannot be updated: keep its own.
		cfg.DeliverPolicy, cfg.OptStartTime = old.CachedInfo().Config.DeliverPolicy, old.CachedInfo().Config.OptStartTime
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("reading consumer %s: %w", ConsumerName, err)
	}
	cons, err := bus.JetStream().CreateOrUpdateConsumer(ctx, outbox.Stream, cfg)
	if err != nil {
		return fmt.Errorf("creating consumer %s: %w", ConsumerName, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(64))
	if err != nil {
		return fmt.Errorf("consuming %s: %w", ConsumerName, err)
	}
	defer it.Stop()
	go func() {
		select {
		case <-ctx.Done():
		case <-restarted:
		}
		it.Stop()
	}()
	for {
		m, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) && ctx.Err() == nil {
				return errors.New("JetStream restarted; the consumer is made again")
			}
			return err
		}
		s.handleMsg(ctx, m)
	}
}

// handleMsg acks a handled event and asks for a later redelivery of one
// that failed.
func (s *Service) handleMsg(ctx context.Context, m jetstream.Msg) {
	e := eventOf(m)
	hctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := s.HandleEvent(hctx, e); err != nil {
		meta, _ := m.Metadata()
		s.log.Warn("notification trigger failed; the event is redelivered", "event_id", e.ID, "type", e.Type, "tenant_id", e.TenantID, "err", err)
		delay := 5 * time.Second
		if meta != nil {
			delay = min(time.Duration(meta.NumDelivered)*10*time.Second, 10*time.Minute)
		}
		_ = m.NakWithDelay(delay)
		return
	}
	_ = m.Ack()
}

// eventOf reads a published domain event back (see outbox.Relay).
func eventOf(m jetstream.Msg) outbox.Event {
	h := m.Headers()
	e := outbox.Event{ID: h.Get("Abacus-Event-Id"), TenantID: h.Get("Abacus-Tenant-Id"),
		Type: strings.TrimPrefix(m.Subject(), outbox.SubjectPrefix), Payload: m.Data()}
	e.AggregateType, e.AggregateID, _ = strings.Cut(h.Get("Abacus-Aggregate"), ":")
	e.Version, _ = strconv.Atoi(h.Get("Abacus-Event-Version"))
	e.CreatedAt, _ = time.Parse(time.RFC3339Nano, h.Get("Abacus-Event-Time"))
	return e
}
