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
//
// Every event is of a type a module defined with Define: a name, a version
// and the JSON Schema of its payload's Go type. The catalog of those types
// (Types, and GET /api/v1/domain-event-types) is the contract consumers
// build on; a breaking change of a payload is a new version.
package outbox

import (
	"context"
	"encoding/json"
	"fmt"
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
	Version       int             `json:"version"`
	Payload       json.RawMessage `json:"payload"`
	CreatedAt     time.Time       `json:"created_at"`

	body any // the typed payload Kind.New carries until Record marshals it
}

// Subject is the NATS subject the event is published on.
func (e Event) Subject() string { return SubjectPrefix + e.Type }

// Record adds an event to the outbox inside tx; it becomes visible to the
// relay only if tx commits. It returns the event with its id set. Modules
// record through their defined Kind (Kind.Record); an event whose type no
// Define registered is refused, so every recorded event is in the catalog
// served at /api/v1/domain-event-types. The payload is e.Payload when set,
// else the Kind's typed payload, else payload marshalled to JSON.
func Record(ctx context.Context, tx *db.Tx, e Event, payload any) (Event, error) {
	e, err := prepare(e, payload)
	if err != nil {
		return e, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO outbox_events
		(id, tenant_id, aggregate_type, aggregate_id, type, version, payload, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		e.ID, e.TenantID, e.AggregateType, e.AggregateID, e.Type, e.Version, string(e.Payload), db.TimeOf(e.CreatedAt))
	if err != nil {
		return e, fmt.Errorf("outbox: recording %s: %w", e.Type, err)
	}
	tx.AfterCommit(wake)
	return e, nil
}

// RecordBatch records events inside tx as Record does, in order, with
// multi-row INSERTs (db.Tx.InsertRows), and returns them with their ids set.
func RecordBatch(ctx context.Context, tx *db.Tx, events []Event) ([]Event, error) {
	out := make([]Event, len(events))
	for i, e := range events {
		var err error
		if out[i], err = prepare(e, nil); err != nil {
			return nil, err
		}
	}
	rows := make([][]any, len(out))
	for i, e := range out {
		rows[i] = []any{e.ID, e.TenantID, e.AggregateType, e.AggregateID, e.Type, e.Version, string(e.Payload), db.TimeOf(e.CreatedAt)}
	}
	if err := tx.InsertRows(ctx, `INSERT INTO outbox_events (id, tenant_id, aggregate_type, aggregate_id, type, version, payload, created_at)`, "", rows); err != nil {
		return nil, fmt.Errorf("outbox: recording %d events: %w", len(out), err)
	}
	if len(out) > 0 {
		tx.AfterCommit(wake)
	}
	return out, nil
}

// prepare checks e against the catalog and fills its id, version, time and
// payload.
func prepare(e Event, payload any) (Event, error) {
	if e.TenantID == "" || e.Type == "" || e.AggregateType == "" || e.AggregateID == "" {
		return e, fmt.Errorf("outbox: event needs tenant, type and aggregate (got %+v)", e)
	}
	t, ok := LookupType(e.Type, e.Version)
	if !ok {
		return e, fmt.Errorf("outbox: event type %s version %d is not defined (outbox.Define)", e.Type, e.Version)
	}
	e.Version = t.Version
	if e.ID == "" {
		e.ID = abacus.NewID("evt")
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = time.Now().UTC()
	}
	if e.Payload == nil {
		if e.body != nil {
			payload = e.body
		}
		b, err := json.Marshal(payload)
		if err != nil {
			return e, fmt.Errorf("outbox: marshalling %s payload: %w", e.Type, err)
		}
		e.Payload = b
	}
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
