// Package outbox records domain events in the same database transaction as
// the change that causes them, and relays them to NATS JetStream.
//
//	change + Record ──commit──▶ outbox_events ──Relay──▶ stream ABACUS_EVENTS
//	                                 (published_at set after the server acks)
//
// Delivery is at least once: a crash after the publish and before
// published_at is written republishes the event. Its JetStream message id
// is the event id, so the server drops a republish within the stream's
// duplicate window, and consumers dedupe on the id for the rest. Events are
// published one at a time in commit order (seq) by a single active relay,
// so they arrive in order per aggregate.
package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// Stream is the JetStream stream domain events are published to.
const Stream = "ABACUS_EVENTS"

// SubjectPrefix starts every domain event subject; the event type follows,
// e.g. abacus.events.subscription.created.
const SubjectPrefix = "abacus.events."

// Event is a domain event.
type Event struct {
	ID            string          `json:"id"`
	TenantID      string          `json:"tenant_id"`
	AggregateType string          `json:"aggregate_type"`
	AggregateID   string          `json:"aggregate_id"`
	Type          string          `json:"type"`
	Payload       json.RawMessage `json:"payload"`
	CreatedAt     time.Time       `json:"created_at"`
}

// Subject is the NATS subject the event is published on.
func (e Event) Subject() string { return SubjectPrefix + e.Type }

// Record adds an event to the outbox inside tx; it becomes visible to the
// relay only if tx commits. payload is marshalled to JSON. It returns the
// event with its id set. Types are dotted lower-case words such as
// "subscription.created".
func Record(ctx context.Context, tx *db.Tx, e Event, payload any) (Event, error) {
	if e.TenantID == "" || e.Type == "" || e.AggregateType == "" || e.AggregateID == "" {
		return e, fmt.Errorf("outbox: event needs tenant, type and aggregate (got %+v)", e)
	}
	if strings.ContainsAny(e.Type, " *>") {
		return e, fmt.Errorf("outbox: event type %q is not a valid subject token list", e.Type)
	}
	if e.ID == "" {
		e.ID = abacus.NewID("evt")
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = time.Now().UTC()
	}
	if e.Payload == nil {
		b, err := json.Marshal(payload)
		if err != nil {
			return e, fmt.Errorf("outbox: marshalling %s payload: %w", e.Type, err)
		}
		e.Payload = b
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO outbox_events
		(id, tenant_id, aggregate_type, aggregate_id, type, payload, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		e.ID, e.TenantID, e.AggregateType, e.AggregateID, e.Type, string(e.Payload), db.TimeOf(e.CreatedAt))
	if err != nil {
		return e, fmt.Errorf("outbox: recording %s: %w", e.Type, err)
	}
	tx.AfterCommit(wake)
	return e, nil
}

// wakeCh lets Record nudge an in-process relay right after commit, so
// events do not wait for the next poll.
var wakeCh = make(chan struct{}, 1)

func wake() {
	select {
	case wakeCh <- struct{}{}:
	default:
	}
}
