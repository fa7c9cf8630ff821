package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// Message statuses.
const (
	StatusPending   = "pending"   // waiting for its next attempt
	StatusDelivered = "delivered" // an attempt answered 2xx
	StatusFailed    = "failed"    // no attempt left, or one that may not be retried
)

// Message is one event sent to one endpoint; its id is the webhook-id
// header of every attempt.
type Message struct {
	ID            string     `json:"id" doc:"the webhook-id header, the same on every attempt"`
	EventID       string     `json:"event_id"`
	EventType     string     `json:"event_type"`
	Status        string     `json:"status" enum:"pending,delivered,failed"`
	Attempts      []Attempt  `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty" doc:"when pending: the next attempt"`
	CreatedAt     time.Time  `json:"created_at"`
	DeliveredAt   *time.Time `json:"delivered_at,omitempty"`
}

// Attempt is one POST of a message.
type Attempt struct {
	Attempt       int        `json:"attempt" doc:"1 for the first"`
	At            time.Time  `json:"at"`
	StatusCode    int        `json:"status_code" doc:"the HTTP status; 0 when none came (timeout, network error, refused address)"`
	LatencyMS     float64    `json:"latency_ms"`
	Error         string     `json:"error,omitempty"`
	Response      string     `json:"response,omitempty" doc:"the first bytes (at most 1 KiB) of the answer"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty" doc:"the retry this failure scheduled"`
}

// Replayed counts the messages a replay queued.
type Replayed struct {
	Queued int `json:"queued"`
}

// ReplayInput asks for every event since a time again.
type ReplayInput struct {
	Since time.Time `json:"since" doc:"events recorded at or after this time are sent again"`
}

// ListDeliveries pages through an endpoint's messages by id, each with
// its attempts; status filters.
func (s *Service) ListDeliveries(ctx context.Context, endpoint, status string, limit int, cursor string) (abacus.List[Message], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[Message]{}, err
	}
	if _, err := loadEndpoint(ctx, s.db, tenant, endpoint); err != nil {
		return abacus.List[Message]{}, err
	}
	limit = pageSize(limit)
	items, err := listMessages(ctx, s.db, tenant, endpoint, status, cursor, limit+1)
	return page(items, err, limit, func(m Message) string { return m.ID })
}

// Resend queues one message again at once, with the same webhook-id and a
// fresh retry schedule.
func (s *Service) Resend(ctx context.Context, endpoint, id string) (Message, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Message{}, err
	}
	var m Message
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if _, err := loadEndpoint(ctx, tx, tenant, endpoint); err != nil {
			return err
		}
		if _, err := loadMessage(ctx, tx, tenant, endpoint, id); err != nil {
			return err
		}
		if _, err := requeue(ctx, tx, tenant, endpoint, s.clock.Now(), ` AND id = $4`, id); err != nil {
			return err
		}
		m, err = loadMessage(ctx, tx, tenant, endpoint, id)
		return err
	})
	if err == nil {
		s.wake()
	}
	return m, err
}

// Replay sends the endpoint every stored event recorded since in.Since
// that its filter takes: messages it had are queued again (same
// webhook-id), events it missed (it was disabled, or not subscribed then)
// get new messages.
func (s *Service) Replay(ctx context.Context, endpoint string, in ReplayInput) (Replayed, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Replayed{}, err
	}
	if in.Since.IsZero() {
		return Replayed{}, abacus.Invalid("invalid_replay", "since is required").WithField("since", "is required")
	}
	var out Replayed
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		e, err := loadEndpoint(ctx, tx, tenant, endpoint)
		if err != nil {
			return err
		}
		ids, types, err := eventsSince(ctx, tx, tenant, in.Since)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		var fresh []newMessage
		var args []any
		for i, id := range ids {
			if e.matches(types[i]) {
				fresh = append(fresh, newMessage{id: abacus.NewID("msg"), tenant: tenant, endpoint: endpoint, event: id, typ: types[i]})
				args = append(args, id)
			}
		}
		for start := 0; start < len(args); start += 500 {
			part := args[start:min(start+500, len(args))]
			n, err := requeue(ctx, tx, tenant, endpoint, now, ` AND event_id IN (`+db.Placeholders(4, len(part))+`)`, part...)
			if err != nil {
				return err
			}
			out.Queued += int(n)
		}
		before, err := countMessages(ctx, tx, endpoint)
		if err != nil {
			return err
		}
		if err := insertMessages(ctx, tx, fresh, now); err != nil {
			return err
		}
		after, err := countMessages(ctx, tx, endpoint)
		out.Queued += after - before
		return err
	})
	if err == nil {
		s.wake()
	}
	return out, err
}

func countMessages(ctx context.Context, q db.Querier, endpoint string) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM webhook_messages WHERE endpoint_id = $1`, endpoint).Scan(&n)
	return n, err
}

// TestEventType is the type of the event SendTest sends; it is not a
// domain event and ignores the endpoint's filter.
const TestEventType = "webhook.test"

// SendTest queues a webhook.test event for the endpoint and returns its
// message; its attempts show in the delivery log.
func (s *Service) SendTest(ctx context.Context, endpoint string) (Message, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Message{}, err
	}
	now := s.clock.Now()
	evt := abacus.NewID("evt")
	body, err := envelope(evt, TestEventType, 1, "webhook_endpoint", endpoint, now, json.RawMessage(`{"message":"a test event from Abacus"}`))
	if err != nil {
		return Message{}, err
	}
	msg := newMessage{id: abacus.NewID("msg"), tenant: tenant, endpoint: endpoint, event: evt, typ: TestEventType}
	var m Message
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if _, err := loadEndpoint(ctx, tx, tenant, endpoint); err != nil {
			return err
		}
		if _, err := insertEvent(ctx, tx, evt, tenant, TestEventType, body, now); err != nil {
			return err
		}
		if err := insertMessages(ctx, tx, []newMessage{msg}, now); err != nil {
			return err
		}
		m, err = loadMessage(ctx, tx, tenant, endpoint, msg.id)
		return err
	})
	if err == nil {
		s.wake()
	}
	return m, err
}

// Payload is the body of every webhook: the Standard Webhooks envelope
// (type, timestamp, data) with the domain event's id, version and
// aggregate.
type Payload struct {
	ID            string          `json:"id" doc:"the domain event id (Abacus-Event-Id)"`
	Type          string          `json:"type"`
	Version       int             `json:"version" doc:"the payload's schema version (GET /api/v1/webhook-event-types)"`
	Timestamp     time.Time       `json:"timestamp" doc:"when the event happened"`
	AggregateType string          `json:"aggregate_type"`
	AggregateID   string          `json:"aggregate_id"`
	Data          json.RawMessage `json:"data" doc:"the event's payload"`
}

func envelope(id, typ string, version int, aggType, aggID string, at time.Time, data json.RawMessage) ([]byte, error) {
	b, err := json.Marshal(Payload{ID: id, Type: typ, Version: version, Timestamp: at.UTC(), AggregateType: aggType, AggregateID: aggID, Data: data})
	if err != nil {
		return nil, fmt.Errorf("webhooks: encoding %s: %w", id, err)
	}
	return b, nil
}
