package webhooks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/natsbus"
	"github.com/abacusbilling/abacus/internal/outbox"
)

// ConsumerName is the durable JetStream consumer on outbox.Stream.
const ConsumerName = "webhooks"

// Event is a domain event as the consumer takes it in.
type Event struct {
	ID, Tenant, Type string
	Version          int
	AggregateType    string
	AggregateID      string
	At               time.Time
	Data             []byte
}

// eventOf reads a bus message published by the outbox relay.
func eventOf(m jetstream.Msg) (Event, error) {
	h := m.Headers()
	e := Event{ID: h.Get("Abacus-Event-Id"), Tenant: h.Get("Abacus-Tenant-Id"),
		Type: strings.TrimPrefix(m.Subject(), outbox.SubjectPrefix), Data: m.Data()}
	e.AggregateType, e.AggregateID, _ = strings.Cut(h.Get("Abacus-Aggregate"), ":")
	e.Version, _ = strconv.Atoi(h.Get("Abacus-Event-Version"))
	e.At, _ = time.Parse(time.RFC3339Nano, h.Get("Abacus-Event-Time"))
	if e.ID == "" || e.Tenant == "" || e.Type == "" {
		return e, fmt.Errorf("event message %q lacks its id, tenant or type headers", m.Subject())
	}
	return e, nil
}

// Ingest turns events into messages in one transaction: each event is
// stored once (a redelivered one is skipped) and gets a message for every
// enabled endpoint of its tenant, created before the event, whose filter
// takes its type. Events of tenants without endpoints are dropped.
func (s *Service) Ingest(ctx context.Context, events []Event) error {
	var tenants []string
	for _, e := range events {
		if !slices.Contains(tenants, e.Tenant) {
			tenants = append(tenants, e.Tenant)
		}
	}
	now := s.clock.Now()
	var queued int
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		queued = 0
		eps, err := endpointsOf(ctx, tx, tenants)
		if err != nil {
			return err
		}
		var msgs []newMessage
		for _, e := range events {
			if len(eps[e.Tenant]) == 0 {
				continue
			}
			body, err := envelope(e.ID, e.Type, e.Version, e.AggregateType, e.AggregateID, e.At, e.Data)
			if err != nil {
				return err
			}
			fresh, err := insertEvent(ctx, tx, e.ID, e.Tenant, e.Type, body, e.At)
			if err != nil || !fresh {
				return err
			}
			for _, ep := range eps[e.Tenant] {
				if ep.Enabled && ep.matches(e.Type) && !ep.CreatedAt.After(e.At) {
					msgs = append(msgs, newMessage{id: abacus.NewID("msg"), tenant: e.Tenant, endpoint: ep.ID, event: e.ID, typ: e.Type})
				}
			}
		}
		queued = len(msgs)
		return insertMessages(ctx, tx, msgs, now)
	})
	if err == nil && queued > 0 {
		s.wake()
	}
	return err
}

// Consume runs the durable consumer until ctx ends: batches of events go
// through Ingest and are acked after it commits, so a crash in between
// redelivers them and Ingest skips what it stored.
func (s *Service) Consume(ctx context.Context, bus *natsbus.Bus) error {
	for ctx.Err() == nil {
		err := s.consume(ctx, bus)
		if ctx.Err() != nil {
			return nil
		}
		s.log.Error("webhooks consumer failed; resuming", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

const consumeBatch = 500

func (s *Service) consume(ctx context.Context, bus *natsbus.Bus) error {
	if err := outbox.Provision(ctx, bus); err != nil {
		return err
	}
	restarted := bus.Restarted()
	cons, err := bus.JetStream().CreateOrUpdateConsumer(ctx, outbox.Stream, jetstream.ConsumerConfig{
		Durable: ConsumerName, AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute,
		MaxAckPending: consumeBatch * 4, MaxDeliver: -1, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("creating consumer %s: %w", ConsumerName, err)
	}
	ch := make(chan jetstream.Msg, consumeBatch)
	cctx, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case ch <- m:
		case <-ctx.Done():
		}
	}, jetstream.PullMaxMessages(consumeBatch))
	if err != nil {
		return fmt.Errorf("consuming %s: %w", ConsumerName, err)
	}
	defer cctx.Stop()
	var batch []jetstream.Msg
	for {
		batch = batch[:0]
		select {
		case m := <-ch:
			batch = append(batch, m)
		case <-restarted:
			return errors.New("JetStream restarted; the consumer is made again")
		case <-ctx.Done():
			return nil
		}
	more:
		for len(batch) < consumeBatch {
			select {
			case m := <-ch:
				batch = append(batch, m)
			default:
				break more
			}
		}
		if err := s.ingestBatch(ctx, batch); err != nil {
			return err
		}
	}
}

func (s *Service) ingestBatch(ctx context.Context, batch []jetstream.Msg) error {
	events := make([]Event, 0, len(batch))
	for _, m := range batch {
		e, err := eventOf(m)
		if err != nil {
			// Not an outbox event: nothing to deliver, never retried.
			s.log.Error("skipping unreadable domain event", "err", err)
			continue
		}
		events = append(events, e)
	}
	if err := s.Ingest(ctx, events); err != nil {
		return err
	}
	for _, m := range batch {
		if err := m.Ack(); err != nil {
			return fmt.Errorf("acking: %w", err)
		}
	}
	return nil
}
