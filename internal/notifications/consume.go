package notifications

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/outbox"
)

// Contact is what a trigger needs to know of a customer.
type Contact struct {
	ID       string
	Name     string
	Email    string
	TimeZone string
	Locale   string
}

// Sources answers what triggers need from the modules that own the data
// (tenants, customers, plans, invoice documents); the app wires it, so
// this module imports none of them.
type Sources interface {
	TenantName(ctx context.Context, tenantID string) (string, error)
	Customer(ctx context.Context, tenantID, customerID string) (Contact, error)
	PlanName(ctx context.Context, tenantID, planID string) (string, error)
	// Document renders an invoice or credit_note (kind) in format pdf or
	// ubl as an attachment.
	Document(ctx context.Context, tenantID, kind, id, format string) (Attachment, error)
	// Exists returns a not-found *abacus.Error when the tenant has no
	// invoice or credit_note (kind) id.
	Exists(ctx context.Context, tenantID, kind, id string) error
}

// SetSources sets where triggers read tenants, customers and documents.
func (s *Service) SetSources(src Sources) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.src = src
}

func (s *Service) sources() Sources {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.src
}

// reminderLead is how long before a trial ends its reminder goes out.
const reminderLead = 72 * time.Hour

// cancels lists the events after which a pending reminder is moot.
var cancels = map[string]struct{ subject, template string }{
	"subscription.activated": {"subscription", "subscription.trial_ending"},
	"subscription.canceled":  {"subscription", "subscription.trial_ending"},
	"subscription.ended":     {"subscription", "subscription.trial_ending"},
}

// HandleEvent turns one domain event into the notifications its trigger
// asks for, exactly once per event id: a redelivered event changes
// nothing. Events without an enabled trigger are only marked seen.
func (s *Service) HandleEvent(ctx context.Context, e outbox.Event) error {
	t, ok, err := s.trigger(ctx, s.db, e.TenantID, e.Type)
	if err != nil {
		return err
	}
	var msgs []Message
	if ok && t.Enabled {
		if msgs, err = s.messagesFor(ctx, e, t); err != nil {
			return fmt.Errorf("notifications: %s %s: %w", e.Type, e.ID, err)
		}
	}
	now := s.clock.Now()
	return s.db.InTx(ctx, func(tx *db.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO notification_events_seen (event_id, tenant_id, seen_at) VALUES ($1, $2, $3)
			ON CONFLICT DO NOTHING`, e.ID, e.TenantID, db.TimeOf(now))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // seen before
		}
		if c, ok := cancels[e.Type]; ok {
			if err := cancelPending(ctx, tx, e.TenantID, c.subject, e.AggregateID, c.template, "moot after "+e.Type, now); err != nil {
				return err
			}
		}
		for _, m := range msgs {
			if _, err := enqueue(ctx, tx, m, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// event is what messagesFor works out of one event.
type event struct {
	outbox.Event
	payload  map[string]any
	data     map[string]any
	contact  Contact
	template string
	sendAt   time.Time
	attach   []Attachment
	emails   []string // the customer's addresses (billing contacts for invoices)
	channels []string
	skipMail bool      // the customer wants no e-mail for documents
	tracked  *Tracking // the documents' delivery to the customer (history.go)
}

// messagesFor builds the messages t sends for e, one per recipient.
func (s *Service) messagesFor(ctx context.Context, e outbox.Event, t Trigger) ([]Message, error) {
	ev := &event{Event: e, template: t.Template, channels: t.Channels}
	if err := json.Unmarshal(e.Payload, &ev.payload); err != nil {
		return nil, fmt.Errorf("decoding payload: %w", err)
	}
	if err := s.enrich(ctx, ev); err != nil {
		return nil, err
	}
	var out []Message
	for _, r := range t.Recipients {
		rs, err := s.recipients(ctx, ev, r)
		if err != nil {
			return nil, err
		}
		for _, to := range rs {
			m := ev.message(to, len(out))
			out = append(out, m)
		}
	}
	return out, nil
}

func (ev *event) message(to Recipient, i int) Message {
	m := Message{TenantID: ev.TenantID, Template: ev.template, Locale: ev.contact.Locale, To: to, Data: ev.data,
		Channels: ev.channels, Source: "event:" + ev.Type, SubjectType: ev.AggregateType, SubjectID: ev.AggregateID,
		DedupeKey: fmt.Sprintf("%s:%d", ev.ID, i), SendAt: ev.sendAt}
	if to.Kind == RecipientEmail && slices.Contains(ev.emails, to.Email) {
		m.Attachments, m.Tracked = ev.attach, ev.tracked
	}
	if (len(m.Attachments) > 0 || m.Tracked != nil) && len(m.Channels) == 0 {
		m.Channels = []string{ChannelEmail} // documents travel by mail
	}
	return m
}

// recipients resolves one rule.
func (s *Service) recipients(ctx context.Context, ev *event, r RecipientRule) ([]Recipient, error) {
	switch r.Type {
	case ToCustomer:
		if ev.skipMail {
			return nil, nil
		}
		var out []Recipient
		for _, addr := range ev.emails {
			out = append(out, Recipient{Kind: RecipientEmail, Email: addr, Name: ev.contact.Name, TimeZone: ev.contact.TimeZone})
		}
		return out, nil
	case ToStaff:
		_, _, dir := s.parts("")
		if dir == nil {
			return nil, nil
		}
		return dir.StaffEmails(ctx, ev.TenantID, r.Roles...)
	case ToEmail:
		return []Recipient{{Kind: RecipientEmail, Email: r.Email}}, nil
	}
	return nil, nil
}
