package notifications

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
)

// enrich fills ev's data (documented per template in
// docs/notifications.md), its customer, documents and timing.
func (s *Service) enrich(ctx context.Context, ev *event) error {
	src := s.sources()
	ev.data = map[string]any{"event": map[string]any{"id": ev.ID, "type": ev.Type, "at": ev.CreatedAt}}
	if src == nil {
		for k, v := range ev.payload {
			ev.data[k] = v
		}
		return nil
	}
	name, err := src.TenantName(ctx, ev.TenantID)
	if err != nil {
		return fmt.Errorf("tenant name: %w", err)
	}
	ev.data["tenant"] = map[string]any{"name": name}
	if err := s.loadCustomer(ctx, src, ev); err != nil {
		return err
	}
	switch {
	case ev.AggregateType == "invoice" || ev.AggregateType == "credit_note":
		return s.enrichDocument(ctx, src, ev)
	case ev.AggregateType == "payment":
		enrichPayment(ev)
	case ev.Type == "entitlement.threshold_reached":
		enrichThreshold(ev)
	case strings.HasPrefix(ev.Type, "subscription."):
		return enrichSubscription(ctx, src, ev, s.clock.Now())
	default:
		for k, v := range ev.payload {
			if _, taken := ev.data[k]; !taken {
				ev.data[k] = v
			}
		}
	}
	return nil
}

// customerID finds the customer an event is about.
func customerID(p map[string]any) string {
	if id, ok := p["customer_id"].(string); ok {
		return id
	}
	if sub, ok := p["subscription"].(map[string]any); ok {
		id, _ := sub["customer_id"].(string)
		return id
	}
	return ""
}

func (s *Service) loadCustomer(ctx context.Context, src Sources, ev *event) error {
	id := customerID(ev.payload)
	if id == "" {
		return nil
	}
	c, err := src.Customer(ctx, ev.TenantID, id)
	if abacus.ErrorKind(err) == abacus.KindNotFound {
		return nil // gone since: nobody to tell as the customer
	}
	if err != nil {
		return fmt.Errorf("customer %s: %w", id, err)
	}
	ev.contact = c
	ev.data["customer"] = map[string]any{"id": c.ID, "name": c.Name, "email": c.Email}
	if c.Email != "" {
		ev.emails = []string{c.Email}
	}
	return nil
}

// enrichDocument adds the invoice or credit note and, as the customer
// chose, its billing contacts and attached formats.
func (s *Service) enrichDocument(ctx context.Context, src Sources, ev *event) error {
	p := ev.payload
	if ev.AggregateType == "credit_note" {
		p["invoice_number"] = p["invoice_id"]
		ev.data["credit_note"] = p
	} else {
		p["period"] = map[string]any{"start": p["period_start"]}
		ev.data["invoice"] = p
		ev.data["amount"], ev.data["currency"] = p["total"], p["currency"]
	}
	if ev.Type != "invoice.finalized" && ev.Type != "credit_note.created" {
		return nil // paid, voided…: no documents
	}
	pref, err := s.deliveryPreference(ctx, s.db, ev.TenantID, ev.contact.ID)
	if err != nil {
		return err
	}
	if len(pref.Emails) > 0 {
		ev.emails = pref.Emails
	}
	attach, links := slices.Contains(pref.Channels, DocumentEmail), slices.Contains(pref.Channels, DocumentDownloadLink)
	ev.skipMail = !attach && !links
	if ev.skipMail {
		return nil
	}
	ev.tracked = &Tracking{Channel: DocumentEmail, Formats: pref.Formats}
	var dl *Downloads
	if links {
		if dl = s.downloadsOf(); dl == nil {
			return fmt.Errorf("the download_link channel is not enabled in this deployment")
		}
		ev.tracked.Channel = DocumentDownloadLink
	}
	exp := s.clock.Now().Add(ttlOf(dl)).Truncate(time.Second)
	var downloads []DownloadLink
	for _, f := range pref.Formats {
		a, err := src.Document(ctx, ev.TenantID, ev.AggregateType, ev.AggregateID, f)
		if err != nil {
			return fmt.Errorf("rendering %s %s as %s: %w", ev.AggregateType, ev.AggregateID, f, err)
		}
		if attach {
			ev.attach = append(ev.attach, a)
		}
		if links {
			l, err := dl.publish(ctx, ev.TenantID, ev.AggregateType, ev.AggregateID, f, a, exp)
			if err != nil {
				return err
			}
			downloads = append(downloads, l)
		}
	}
	if links {
		ev.data["downloads"], ev.data["downloads_expire"] = downloads, exp.Format("2 January 2006")
	}
	return nil
}

func ttlOf(d *Downloads) time.Duration {
	if d == nil {
		return 0
	}
	return d.TTL
}

// enrichPayment adds the invoice a payment event is about and, for a
// failure, its reason. A hard decline is not mailed as payment.failed:
// dunning asks for another payment method (dunning.payment_method_required)
// in the one e-mail the customer gets.
func enrichPayment(ev *event) {
	p := ev.payload
	for k, v := range p {
		if _, taken := ev.data[k]; !taken {
			ev.data[k] = v
		}
	}
	number := p["invoice_number"]
	if s, _ := number.(string); s == "" {
		number = p["invoice_id"]
	}
	ev.data["invoice"] = map[string]any{"id": p["invoice_id"], "number": number, "currency": p["currency"]}
	if ev.Type != "payment.failed" {
		return
	}
	reason, _ := p["failure_message"].(string)
	if code, _ := p["decline_code"].(string); reason == "" && code != "" {
		reason = strings.ReplaceAll(code, "_", " ")
	}
	ev.data["reason"] = reason
	if kind, _ := p["decline_kind"].(string); kind == "hard" && ev.template == "payment.failed" {
		ev.skipMail = true
	}
}

// enrichThreshold describes a quota crossing; at 100 % or more the
// default warning becomes the "reached" template.
func enrichThreshold(ev *event) {
	p := ev.payload
	pct, _ := p["threshold"].(float64)
	feature, _ := p["feature"].(string)
	ev.data["feature"] = map[string]any{"key": feature, "name": strings.ReplaceAll(feature, "_", " ")}
	ev.data["usage"], ev.data["limit"], ev.data["percent"] = p["used"], p["limit"], int(pct)
	ev.data["subscription"] = map[string]any{"id": p["subscription_id"]}
	if pct >= 100 && ev.template == "usage.quota_warning" {
		ev.template = "usage.quota_reached"
	}
}

// enrichSubscription adds the subscription with its plan's name; a trial
// start schedules the reminder three days before the trial ends.
func enrichSubscription(ctx context.Context, src Sources, ev *event, now time.Time) error {
	sub, _ := ev.payload["subscription"].(map[string]any)
	if sub == nil {
		sub = map[string]any{}
	}
	planID, _ := sub["plan_id"].(string)
	name := planID
	if planID != "" {
		n, err := src.PlanName(ctx, ev.TenantID, planID)
		if err != nil {
			return fmt.Errorf("plan %s: %w", planID, err)
		}
		name = n
	}
	sub["plan"] = map[string]any{"id": planID, "name": name}
	ev.data["subscription"] = sub
	if ev.Type != "subscription.trial_started" {
		return nil
	}
	end, err := time.Parse(time.RFC3339Nano, fmt.Sprint(sub["trial_end"]))
	if err != nil {
		return nil // no trial end: nothing to remind of
	}
	ev.sendAt = end.Add(-reminderLead)
	if ev.sendAt.Before(now) {
		ev.sendAt = now // a short trial: remind at once
	}
	ev.data["trial_ends_at"] = end
	ev.data["days_left"] = max(1, int(math.Round(end.Sub(ev.sendAt).Hours()/24)))
	return nil
}
