package notifications

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// Statuses of a document delivery's history. A delivery starts queued;
// each attempt after the first adds retried; it ends sent (an e-mail the
// SMTP server accepted), delivered (a webhook endpoint answered 2xx) or
// failed with its reason. A failure that will be retried carries the
// time of the next attempt.
const (
	HistoryQueued    = "queued"
	HistorySent      = "sent"
	HistoryDelivered = "delivered"
	HistoryFailed    = "failed"
	HistoryRetried   = "retried"
)

// Document delivery channels (a customer's preference): the documents
// attached to an e-mail, the invoice events to the tenant's webhook
// endpoints, or an e-mail with signed links to download them.
const (
	DocumentEmail        = "email"
	DocumentWebhook      = "webhook"
	DocumentDownloadLink = "download_link"
)

// Tracking makes a message a delivery of its subject (an invoice or credit
// note) to the customer: its e-mail delivery keeps a status history.
type Tracking struct {
	Channel string   // DocumentEmail or DocumentDownloadLink
	Formats []string // the renditions attached or linked
}

// DocumentDelivery is one delivery of an invoice or credit note with its
// status history, oldest step first.
type DocumentDelivery struct {
	ID            string        `json:"id" example:"dlv_01JD6Z8Q4M7X2V3B9N5K1C0ABC" doc:"the notification delivery (dlv_…) or the webhook message (msg_…)"`
	Channel       string        `json:"channel" enum:"email,webhook,download_link" example:"email"`
	Recipient     string        `json:"recipient" example:"ap@globex.example" doc:"the e-mail address, or the webhook endpoint's URL"`
	Formats       []string      `json:"formats" example:"[\"pdf\",\"ubl\"]" doc:"the renditions attached or linked; empty for webhooks (the event)"`
	Status        string        `json:"status" enum:"queued,sent,delivered,failed,retried" example:"sent" doc:"the last step's status"`
	Attempts      int           `json:"attempts" example:"1"`
	NextAttemptAt *time.Time    `json:"next_attempt_at,omitempty" doc:"when a failed delivery is tried again"`
	History       []HistoryStep `json:"history"`
	CreatedAt     time.Time     `json:"created_at"`
	UpdatedAt     time.Time     `json:"updated_at"`
}

// HistoryStep is one transition of a delivery.
type HistoryStep struct {
	Status        string     `json:"status" enum:"queued,sent,delivered,failed,retried" example:"failed"`
	At            time.Time  `json:"at"`
	Reason        string     `json:"reason,omitempty" example:"smtp: 451 4.3.0 try again later"`
	Attempt       int        `json:"attempt,omitempty" example:"1"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
}

// Step is a transition of a delivery that already has its queued step,
// as another module (webhooks) reports it.
type Step struct {
	DeliveryID    string
	Status        string
	Reason        string
	Attempt       int
	NextAttemptAt *time.Time
	At            time.Time
}

// Queued is the first step of a delivery: what it delivers, to whom.
type Queued struct {
	TenantID, SubjectType, SubjectID string
	DeliveryID, Channel, Recipient   string
	Formats                          []string
	At                               time.Time
}

// RecordQueued records the first step of deliveries, in tx.
func RecordQueued(ctx context.Context, tx *db.Tx, qs []Queued) error {
	rows := make([][]any, len(qs))
	for i, q := range qs {
		formats, _ := json.Marshal(q.Formats)
		if q.Formats == nil {
			formats = []byte("[]")
		}
		rows[i] = []any{abacus.NewID("dlh"), q.TenantID, q.SubjectType, q.SubjectID, q.DeliveryID, q.Channel, q.Recipient,
			string(formats), HistoryQueued, "", 0, nil, db.TimeOf(q.At)}
	}
	err := tx.InsertRows(ctx, `INSERT INTO notification_delivery_history (id, tenant_id, subject_type, subject_id, delivery_id,
		channel, recipient, formats, status, reason, attempt, next_attempt_at, at)`, "", rows)
	if err != nil {
		return fmt.Errorf("notifications: recording queued deliveries: %w", err)
	}
	return nil
}

// RecordSteps records later steps, in tx. A step of a delivery without a
// queued step (a notification or webhook message about something else)
// records nothing: one query finds which deliveries are tracked, and each
// of their steps copies its delivery's queued row.
func RecordSteps(ctx context.Context, tx db.Querier, steps []Step) error {
	tracked, err := trackedOf(ctx, tx, steps)
	if err != nil || len(tracked) == 0 {
		return err
	}
	for _, s := range steps {
		if !tracked[s.DeliveryID] {
			continue
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO notification_delivery_history (id, tenant_id, subject_type, subject_id,
			delivery_id, channel, recipient, formats, status, reason, attempt, next_attempt_at, at)
			SELECT $1, tenant_id, subject_type, subject_id, delivery_id, channel, recipient, formats, $2, $3, $4, $5, $6
			FROM notification_delivery_history WHERE delivery_id = $7 AND status = 'queued'`,
			abacus.NewID("dlh"), s.Status, truncateReason(s.Reason), s.Attempt, db.NullTimeOf(s.NextAttemptAt), db.TimeOf(s.At), s.DeliveryID)
		if err != nil {
			return fmt.Errorf("notifications: recording %s of delivery %s: %w", s.Status, s.DeliveryID, err)
		}
	}
	return nil
}

// trackedOf returns which of the steps' deliveries have a history.
func trackedOf(ctx context.Context, q db.Querier, steps []Step) (map[string]bool, error) {
	var ids []any
	seen := map[string]bool{}
	for _, s := range steps {
		if !seen[s.DeliveryID] {
			seen[s.DeliveryID] = true
			ids = append(ids, s.DeliveryID)
		}
	}
	out := map[string]bool{}
	for start := 0; start < len(ids); start += 500 {
		part := ids[start:min(start+500, len(ids))]
		rows, err := q.QueryContext(ctx, `SELECT delivery_id FROM notification_delivery_history WHERE status = 'queued'
			AND delivery_id IN (`+db.Placeholders(1, len(part))+`)`, part...)
		if err != nil {
			return nil, fmt.Errorf("notifications: finding tracked deliveries: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			out[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func truncateReason(s string) string {
	if len(s) > 500 {
		return s[:500]
	}
	return s
}

// ListDocumentDeliveries returns the deliveries of the tenant's invoice or
// credit note (subjectType) id, ordered by id, each with its history, and
// the cursor of the next page.
func ListDocumentDeliveries(ctx context.Context, q db.Querier, subjectType, id string, limit int, cursor string) ([]DocumentDelivery, string, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, "", err
	}
	limit = clampLimit(limit)
	rows, err := q.QueryContext(ctx, `SELECT delivery_id, channel, recipient, formats, status, reason, attempt, next_attempt_at, at
		FROM notification_delivery_history WHERE tenant_id = $1 AND subject_type = $2 AND subject_id = $3 AND delivery_id > $4
		ORDER BY delivery_id, at, id`, tenant, subjectType, id, cursor)
	if err != nil {
		return nil, "", fmt.Errorf("notifications: listing deliveries of %s: %w", id, err)
	}
	list, err := foldHistory(rows)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(list) > limit {
		list, next = list[:limit], list[limit-1].ID
	}
	return list, next, nil
}

// foldHistory groups history rows (ordered by delivery, then time) into
// deliveries.
func foldHistory(rows *sql.Rows) ([]DocumentDelivery, error) {
	defer rows.Close()
	out := []DocumentDelivery{}
	for rows.Next() {
		var d DocumentDelivery
		var formats string
		var st HistoryStep
		var next db.NullTime
		var at db.Time
		if err := rows.Scan(&d.ID, &d.Channel, &d.Recipient, &formats, &st.Status, &st.Reason, &st.Attempt, &next, &at); err != nil {
			return nil, err
		}
		st.At, st.NextAttemptAt = at.Time, next.Ptr()
		if len(out) == 0 || out[len(out)-1].ID != d.ID {
			if err := json.Unmarshal([]byte(formats), &d.Formats); err != nil {
				return nil, fmt.Errorf("notifications: decoding formats of %s: %w", d.ID, err)
			}
			d.CreatedAt = st.At
			out = append(out, d)
		}
		cur := &out[len(out)-1]
		cur.History = append(cur.History, st)
		cur.Status, cur.UpdatedAt, cur.NextAttemptAt = st.Status, st.At, st.NextAttemptAt
		cur.Attempts = max(cur.Attempts, st.Attempt)
	}
	return out, rows.Err()
}

// recordDocumentSteps records how an attempt at a delivery of an invoice
// or credit note went: retried (claimed at claimedAt) when it was not the
// first, then sent or failed. A deferred or digested delivery has not
// been tried and records nothing.
func recordDocumentSteps(ctx context.Context, tx *db.Tx, d Delivery, o outcome, claimedAt, now time.Time) error {
	if d.SubjectType != "invoice" && d.SubjectType != "credit_note" {
		return nil
	}
	var steps []Step
	if d.Attempt > 1 {
		steps = append(steps, Step{DeliveryID: d.ID, Status: HistoryRetried, Attempt: d.Attempt, At: claimedAt})
	}
	switch {
	case o.state == StateSent:
		steps = append(steps, Step{DeliveryID: d.ID, Status: HistorySent, Attempt: d.Attempt, At: now})
	case o.state == StatePending:
		next := o.due
		steps = append(steps, Step{DeliveryID: d.ID, Status: HistoryFailed, Reason: o.err, Attempt: d.Attempt, NextAttemptAt: &next, At: now})
	case o.state == StateFailed, o.state == StateSuppressed, o.state == StateDropped:
		steps = append(steps, Step{DeliveryID: d.ID, Status: HistoryFailed, Reason: o.state + ": " + o.err, Attempt: d.Attempt, At: now})
	}
	return RecordSteps(ctx, tx, steps)
}
