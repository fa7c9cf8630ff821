package notifications

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// Notification is a recorded notification with the state of each of its
// deliveries.
type Notification struct {
	ID          string           `json:"id" example:"ntf_01JD6Z8Q4M7X2V3B9N5K1C0ABC"`
	Template    string           `json:"template" example:"invoice.finalized"`
	Locale      string           `json:"locale,omitempty" example:"de-AT"`
	To          Recipient        `json:"to"`
	Category    string           `json:"category" example:"billing"`
	Critical    bool             `json:"critical"`
	Source      string           `json:"source" example:"event:invoice.finalized" doc:"api, event:<type> or the module that sent it"`
	SubjectType string           `json:"subject_type,omitempty" example:"invoice"`
	SubjectID   string           `json:"subject_id,omitempty" example:"inv_01JD6Z8Q4M7X2V3B9N5K1C0ABC"`
	Data        map[string]any   `json:"data"`
	CreatedAt   time.Time        `json:"created_at"`
	Deliveries  []DeliveryStatus `json:"deliveries"`
}

// DeliveryStatus is where one channel's delivery stands.
type DeliveryStatus struct {
	ID        string     `json:"id" example:"dlv_01JD6Z8Q4M7X2V3B9N5K1C0ABC"`
	Channel   string     `json:"channel" example:"email"`
	State     string     `json:"state" enum:"pending,deferred,sending,sent,failed,dropped,suppressed,digested" example:"sent"`
	Attempts  int        `json:"attempts" example:"1"`
	Subject   string     `json:"subject,omitempty" example:"Invoice INV-2026-0007"`
	Text      string     `json:"text,omitempty" doc:"kept only in development mode (no smtp.url)"`
	HTML      string     `json:"html,omitempty" doc:"kept only in development mode (no smtp.url)"`
	LastError string     `json:"last_error,omitempty" example:"smtp: 451 try later"`
	NextAt    *time.Time `json:"next_attempt_at,omitempty" doc:"when a pending or deferred delivery is tried next"`
	SentAt    *time.Time `json:"sent_at,omitempty"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// Filter narrows ListNotifications.
type Filter struct {
	Template    string
	SubjectType string
	SubjectID   string
	Email       string // the recipient's address
	Channel     string // only notifications with a delivery on this channel
	Limit       int
	Cursor      string // the last id of the previous page
}

func clampLimit(n int) int {
	switch {
	case n <= 0:
		return 50
	case n > 200:
		return 200
	}
	return n
}

// ListNotifications returns the tenant's notifications (tenant from ctx),
// newest first, with their deliveries, and the cursor of the next page.
func ListNotifications(ctx context.Context, q db.Querier, f Filter) ([]Notification, string, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, "", err
	}
	limit := clampLimit(f.Limit)
	where, args := []string{"tenant_id = $1"}, []any{tenant}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	for cond, v := range map[string]string{"template = $%d": f.Template, "subject_type = $%d": f.SubjectType,
		"subject_id = $%d": f.SubjectID, "recipient_email = $%d": f.Email, "id < $%d": f.Cursor} {
		if v != "" {
			add(cond, v)
		}
	}
	if f.Channel != "" {
		add("id IN (SELECT notification_id FROM notification_deliveries WHERE tenant_id = $1 AND channel = $%d)", f.Channel)
	}
	list, err := queryNotifications(ctx, q, `SELECT id, template, locale, recipient_kind, recipient_id, recipient_email,
		recipient_name, recipient_tz, data, category, critical, source, subject_type, subject_id, created_at FROM notifications
		WHERE `+strings.Join(where, " AND ")+fmt.Sprintf(" ORDER BY id DESC LIMIT %d", limit+1), args...)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(list) > limit {
		list, next = list[:limit], list[limit-1].ID
	}
	return list, next, attachDeliveries(ctx, q, tenant, list)
}

// GetNotification returns one of the tenant's notifications.
func GetNotification(ctx context.Context, q db.Querier, id string) (Notification, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Notification{}, err
	}
	list, err := queryNotifications(ctx, q, `SELECT id, template, locale, recipient_kind, recipient_id, recipient_email,
		recipient_name, recipient_tz, data, category, critical, source, subject_type, subject_id, created_at FROM notifications
		WHERE tenant_id = $1 AND id = $2`, tenant, id)
	if err != nil {
		return Notification{}, err
	}
	if len(list) == 0 {
		return Notification{}, abacus.NotFound("notification", id)
	}
	return list[0], attachDeliveries(ctx, q, tenant, list)
}

func queryNotifications(ctx context.Context, q db.Querier, query string, args ...any) ([]Notification, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("notifications: listing: %w", err)
	}
	defer rows.Close()
	out := []Notification{}
	for rows.Next() {
		var n Notification
		var data string
		var critical int
		var at db.Time
		if err := rows.Scan(&n.ID, &n.Template, &n.Locale, &n.To.Kind, &n.To.ID, &n.To.Email, &n.To.Name, &n.To.TimeZone,
			&data, &n.Category, &critical, &n.Source, &n.SubjectType, &n.SubjectID, &at); err != nil {
			return nil, err
		}
		n.Critical, n.CreatedAt, n.Deliveries = critical == 1, at.Time, []DeliveryStatus{}
		if err := json.Unmarshal([]byte(data), &n.Data); err != nil {
			return nil, fmt.Errorf("notifications: decoding data of %s: %w", n.ID, err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// attachDeliveries loads the deliveries of list in one query.
func attachDeliveries(ctx context.Context, q db.Querier, tenant string, list []Notification) error {
	if len(list) == 0 {
		return nil
	}
	byID := map[string]*Notification{}
	args := []any{tenant}
	var marks []string
	for i := range list {
		byID[list[i].ID] = &list[i]
		args = append(args, list[i].ID)
		marks = append(marks, fmt.Sprintf("$%d", len(args)))
	}
	rows, err := q.QueryContext(ctx, `SELECT notification_id, id, channel, state, attempts, subject, text_body, html_body,
		last_error, due_at, sent_at, updated_at FROM notification_deliveries
		WHERE tenant_id = $1 AND notification_id IN (`+strings.Join(marks, ", ")+`) ORDER BY channel`, args...)
	if err != nil {
		return fmt.Errorf("notifications: listing deliveries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var nid string
		var d DeliveryStatus
		var due, updated db.Time
		var sent db.NullTime
		if err := rows.Scan(&nid, &d.ID, &d.Channel, &d.State, &d.Attempts, &d.Subject, &d.Text, &d.HTML,
			&d.LastError, &due, &sent, &updated); err != nil {
			return err
		}
		d.SentAt, d.UpdatedAt = sent.Ptr(), updated.Time
		if d.State == StatePending || d.State == StateDeferred {
			d.NextAt = &due.Time
		}
		byID[nid].Deliveries = append(byID[nid].Deliveries, d)
	}
	return rows.Err()
}
