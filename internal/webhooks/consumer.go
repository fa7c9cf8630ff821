package webhooks

import (
	"context"
	"slices"
	"time"

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
	observing := s.observing()
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		queued = 0
		var steps []Outcome
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
					m := newMessage{id: abacus.NewID("msg"), tenant: e.Tenant, endpoint: ep.ID, event: e.ID, typ: e.Type}
					msgs = append(msgs, m)
					if observing {
						steps = append(steps, Outcome{Tenant: e.Tenant, MessageID: m.id, EndpointID: ep.ID, Step: StepQueued,
							EventType: e.Type, AggregateType: e.AggregateType, AggregateID: e.AggregateID, URL: ep.URL, At: now})
					}
				}
			}
		}
		queued = len(msgs)
		if err := insertMessages(ctx, tx, msgs, now); err != nil {
			return err
		}
		return s.observe(ctx, tx, steps)
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
	return outbox.ConsumeBatches(ctx, bus, outbox.Subscription{
		Durable: ConsumerName, Batch: consumeBatch, AckWait: time.Minute, Log: s.log,
	}, func(ctx context.Context, events []outbox.Event) error {
		in := make([]Event, len(events))
		for i, e := range events {
			in[i] = Event{ID: e.ID, Tenant: e.TenantID, Type: e.Type, Version: e.Version,
				AggregateType: e.AggregateType, AggregateID: e.AggregateID, At: e.CreatedAt, Data: e.Payload}
		}
		return s.Ingest(ctx, in)
	})
}

const consumeBatch = 500
