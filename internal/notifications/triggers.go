package notifications

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/outbox"
)

// Recipient rule types of a trigger.
const (
	ToCustomer = "customer" // the customer the event is about (its billing contacts for invoices)
	ToStaff    = "staff"    // the tenant's staff with one of Roles (all when none)
	ToEmail    = "email"    // a fixed address
)

// RecipientRule says who a trigger's notification goes to.
type RecipientRule struct {
	Type  string   `json:"type" enum:"customer,staff,email" example:"customer"`
	Roles []string `json:"roles,omitempty" example:"[\"owner\",\"admin\"]" doc:"staff: only these roles"`
	Email string   `json:"email,omitempty" example:"finance@acme.example" doc:"email: the address"`
}

// Trigger maps a domain event type to the notification it sends.
type Trigger struct {
	EventType  string          `json:"event_type" example:"invoice.finalized"`
	Template   string          `json:"template" example:"invoice.finalized"`
	Recipients []RecipientRule `json:"recipients"`
	Channels   []string        `json:"channels" example:"[\"email\"]" doc:"empty: the template's defaults (invoices: each customer's delivery settings)"`
	Enabled    bool            `json:"enabled"`
	Source     string          `json:"source" enum:"default,tenant" example:"default" doc:"default: Abacus's; tenant: the tenant's own mapping"`
	UpdatedAt  time.Time       `json:"updated_at,omitzero"`
}

// TriggerInput replaces a tenant's mapping of one event type.
type TriggerInput struct {
	Template   string          `json:"template" example:"invoice.finalized"`
	Recipients []RecipientRule `json:"recipients" minItems:"1"`
	Channels   []string        `json:"channels,omitempty" example:"[\"email\"]"`
	Enabled    *bool           `json:"enabled,omitempty" doc:"default true; false sends nothing for this event type"`
}

var customerOnly = []RecipientRule{{Type: ToCustomer}}

// defaultTriggers are what every tenant gets until it maps an event type
// itself. Event types other modules have not defined yet (payments) start
// working when they are. One e-mail per fact: a failed payment is mailed
// from payment.failed (not also from the subscription.past_due dunning
// records after it), money received from payment.succeeded (not also from
// invoice.paid, which follows the payment that pays an invoice).
var defaultTriggers = []Trigger{
	{EventType: "invoice.finalized", Template: "invoice.finalized", Recipients: customerOnly},
	{EventType: "credit_note.created", Template: "credit_note.issued", Recipients: customerOnly},
	{EventType: "entitlement.threshold_reached", Template: "usage.quota_warning", Recipients: customerOnly},
	{EventType: "subscription.trial_started", Template: "subscription.trial_ending", Recipients: customerOnly},
	{EventType: "payment.failed", Template: "payment.failed", Recipients: customerOnly},
	{EventType: "payment.succeeded", Template: "payment.succeeded", Recipients: customerOnly},
	{EventType: "subscription.suspended", Template: "subscription.suspended", Recipients: customerOnly},
	{EventType: "subscription.restored", Template: "subscription.restored", Recipients: customerOnly},
	{EventType: "subscription.reactivated", Template: "subscription.restored", Recipients: customerOnly},
	{EventType: "dunning.reminder", Template: "payment.retry_reminder", Recipients: customerOnly},
	{EventType: "dunning.payment_method_required", Template: "payment.method_required", Recipients: customerOnly},
	{EventType: "payment_method.expiring", Template: "payment.method_expiring", Recipients: customerOnly},
}

func defaultTrigger(eventType string) (Trigger, bool) {
	for _, t := range defaultTriggers {
		if t.EventType == eventType {
			t.Enabled, t.Source, t.Channels = true, "default", []string{}
			return t, true
		}
	}
	return Trigger{}, false
}

// ListTriggers returns the tenant's effective mappings: its own and the
// defaults it has not replaced, by event type (one page).
func (s *Service) ListTriggers(ctx context.Context) ([]Trigger, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	own, err := s.tenantTriggers(ctx, s.db, tenant, "")
	if err != nil {
		return nil, err
	}
	out := own
	for _, d := range defaultTriggers {
		if !slices.ContainsFunc(own, func(t Trigger) bool { return t.EventType == d.EventType }) {
			t, _ := defaultTrigger(d.EventType)
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].EventType < out[j].EventType })
	return out, nil
}

// trigger returns the tenant's mapping of one event type, if any.
func (s *Service) trigger(ctx context.Context, q db.Querier, tenant, eventType string) (Trigger, bool, error) {
	own, err := s.tenantTriggers(ctx, q, tenant, eventType)
	if err != nil || len(own) > 0 {
		return firstOr(own), len(own) > 0, err
	}
	t, ok := defaultTrigger(eventType)
	return t, ok, nil
}

func firstOr(ts []Trigger) Trigger {
	if len(ts) == 0 {
		return Trigger{}
	}
	return ts[0]
}

func (s *Service) tenantTriggers(ctx context.Context, q db.Querier, tenant, eventType string) ([]Trigger, error) {
	query := `SELECT event_type, template, recipients, channels, enabled, updated_at FROM notification_triggers WHERE tenant_id = $1`
	args := []any{tenant}
	if eventType != "" {
		query += ` AND event_type = $2`
		args = append(args, eventType)
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("notifications: loading triggers: %w", err)
	}
	defer rows.Close()
	out := []Trigger{}
	for rows.Next() {
		t := Trigger{Source: "tenant"}
		var recipients, channels string
		var enabled int
		var at db.Time
		if err := rows.Scan(&t.EventType, &t.Template, &recipients, &channels, &enabled, &at); err != nil {
			return nil, err
		}
		t.Enabled, t.UpdatedAt = enabled == 1, at.Time
		if err := json.Unmarshal([]byte(recipients), &t.Recipients); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(channels), &t.Channels); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// SaveTrigger replaces the tenant's mapping of eventType. The event type
// must be one Abacus publishes (or has a default for), the template one
// that exists, the recipients well-formed.
func (s *Service) SaveTrigger(ctx context.Context, eventType string, in TriggerInput) (Trigger, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Trigger{}, err
	}
	if err := s.checkTrigger(ctx, tenant, eventType, in); err != nil {
		return Trigger{}, err
	}
	t := Trigger{EventType: eventType, Template: in.Template, Recipients: in.Recipients, Channels: in.Channels, Enabled: in.Enabled == nil || *in.Enabled,
		Source: "tenant", UpdatedAt: s.clock.Now()}
	if t.Channels == nil {
		t.Channels = []string{}
	}
	recipients, _ := json.Marshal(t.Recipients)
	channels, _ := json.Marshal(t.Channels)
	_, err = s.db.ExecContext(ctx, `INSERT INTO notification_triggers (tenant_id, event_type, template, recipients, channels, enabled, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (tenant_id, event_type) DO UPDATE SET template = $3, recipients = $4,
		channels = $5, enabled = $6, updated_at = $7`, tenant, eventType, t.Template, string(recipients), string(channels), boolInt(t.Enabled), db.TimeOf(t.UpdatedAt))
	if err != nil {
		return Trigger{}, fmt.Errorf("saving trigger %s: %w", eventType, err)
	}
	return t, nil
}

func (s *Service) checkTrigger(ctx context.Context, tenant, eventType string, in TriggerInput) error {
	if _, known := outbox.LookupType(eventType, 0); !known {
		if _, def := defaultTrigger(eventType); !def {
			return abacus.Invalid("unknown_event_type", "event type %q is not one Abacus publishes; GET /api/v1/domain-event-types lists them", eventType).
				WithField("path.event_type", "must be a domain event type")
		}
	}
	var v abacus.Validation
	if !templateKey.MatchString(in.Template) {
		v.Add("template", "must be a template key such as invoice.finalized")
	} else if _, err := s.findSource(ctx, tenant, in.Template, ""); err != nil {
		v.Add("template", "names no built-in or saved template")
	}
	for i, r := range in.Recipients {
		switch r.Type {
		case ToCustomer, ToStaff:
		case ToEmail:
			if _, err := normalizeEmail("email", r.Email); err != nil {
				v.Add(fmt.Sprintf("recipients[%d].email", i), "must be an e-mail address")
			}
		default:
			v.Add(fmt.Sprintf("recipients[%d].type", i), "must be customer, staff or email")
		}
	}
	for i, ch := range in.Channels {
		if !slices.Contains(KnownChannels, ch) {
			v.Add(fmt.Sprintf("channels[%d]", i), "must be one of %s", strings.Join(KnownChannels, ", "))
		}
	}
	return v.Err("invalid_trigger")
}

// DeleteTrigger removes the tenant's mapping, so the default applies again.
func (s *Service) DeleteTrigger(ctx context.Context, eventType string) error {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM notification_triggers WHERE tenant_id = $1 AND event_type = $2`, tenant, eventType)
	if err != nil {
		return fmt.Errorf("deleting trigger: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return abacus.NotFound("trigger", eventType)
	}
	return nil
}
