package notifications_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/notifications"
	"github.com/abacusbilling/abacus/internal/notifications/smtp"
	"github.com/abacusbilling/abacus/internal/notifications/smtp/smtptest"
	"github.com/abacusbilling/abacus/internal/outbox"
)

// sources is a stand-in for the modules the app wires (tenants, customers,
// plans, documents): their own tests cover them.
type sources struct{}

var smtpError421 = gosmtp.SMTPError{Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 4, 2}, Message: "connection dropped"}

var pdf, ubl = []byte("%PDF-1.7 invoice INV-7"), []byte(`<?xml version="1.0"?><Invoice><cbc:ID>INV-7</cbc:ID></Invoice>`)

func (sources) TenantName(context.Context, string) (string, error) { return "Acme", nil }
func (sources) PlanName(context.Context, string, string) (string, error) {
	return "Pro", nil
}
func (sources) Customer(_ context.Context, _, id string) (notifications.Contact, error) {
	return notifications.Contact{ID: id, Name: "Globex Ltd", Email: "owner@globex.example"}, nil
}
func (sources) Exists(context.Context, string, string, string) error { return nil }
func (sources) Document(_ context.Context, _, kind, id, format string) (notifications.Attachment, error) {
	if format == "ubl" {
		return notifications.Attachment{Filename: "INV-7.xml", ContentType: "application/xml", Content: ubl}, nil
	}
	return notifications.Attachment{Filename: "INV-7.pdf", ContentType: "application/pdf", Content: pdf}, nil
}

type triggerBundle struct {
	d     *db.DB
	clock *abacus.FakeClock
	svc   *notifications.Service
	mail  *smtptest.Server
	ctx   context.Context
}

func setupTriggers(t testing.TB, d *db.DB) triggerBundle {
	clock := abacus.NewFakeClock(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
	svc := notifications.New(d, clock, slog.New(slog.NewTextHandler(io.Discard, nil)), notifications.Config{})
	mail := smtptest.Start(t, smtptest.Options{})
	sender, err := smtp.New("smtp://"+mail.Addr, smtp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc.RegisterChannel(notifications.NewEmail(svc, sender, "Abacus <no-reply@abacus.test>"))
	svc.SetSources(sources{})
	ctx := abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: "ten_a", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
	return triggerBundle{d: d, clock: clock, svc: svc, mail: mail, ctx: ctx}
}

func event(id, typ, aggregate, aggregateID string, payload any) outbox.Event {
	b, _ := json.Marshal(payload)
	return outbox.Event{ID: id, TenantID: "ten_a", Type: typ, AggregateType: aggregate, AggregateID: aggregateID, Version: 1,
		Payload: b, CreatedAt: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
}

func (b triggerBundle) deliver(t *testing.T) {
	t.Helper()
	if _, err := b.svc.DeliverDue(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestInvoiceFinalizedIsMailedToBillingContactsWithTheChosenDocuments(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setupTriggers(t, d)
		_, err := b.svc.SetDeliveryPreference(b.ctx, "cus_1", notifications.DeliveryPreferenceInput{Channels: []string{"email"},
			Formats: []string{"ubl", "pdf"}, Emails: []string{"AP@globex.example", "cfo@globex.example"}})
		if err != nil {
			t.Fatal(err)
		}
		e := event("evt_1", "invoice.finalized", "invoice", "inv_1", map[string]any{"id": "inv_1", "number": "INV-7", "customer_id": "cus_1",
			"total": "58.31", "amount_due": "58.31", "currency": "EUR", "status": "open", "period_start": "2026-10-01T00:00:00Z"})
		for range 2 { // a redelivered event sends nothing more
			if err := b.svc.HandleEvent(context.Background(), e); err != nil {
				t.Fatal(err)
			}
		}
		b.deliver(t)
		msgs := b.mail.Wait(t, 2, 30*time.Second)
		got := map[string]bool{}
		for _, m := range msgs {
			got[m.To] = true
			p := smtptest.Parse(t, m.Raw)
			if p.Subject != "Invoice INV-7 from Acme" || !strings.Contains(p.Text, "Hello Globex Ltd") || !strings.Contains(p.Text, "58.31 EUR") ||
				!strings.Contains(p.HTML, "<strong>58.31 EUR</strong>") {
				t.Fatalf("mail %q\n%s\n%s", p.Subject, p.Text, p.HTML)
			}
			if !bytes.Equal(p.Attachments["INV-7.pdf"], pdf) || !bytes.Equal(p.Attachments["INV-7.xml"], ubl) {
				t.Fatalf("attachments %v", p.Attachments)
			}
		}
		if len(msgs) != 2 || !got["ap@globex.example"] || !got["cfo@globex.example"] {
			t.Fatalf("mailed %v", got)
		}
		list, _, err := notifications.ListNotifications(b.ctx, d, notifications.Filter{SubjectType: "invoice", SubjectID: "inv_1"})
		if err != nil || len(list) != 2 || list[0].Deliveries[0].State != notifications.StateSent {
			t.Fatalf("status per invoice: %+v %v", list, err)
		}
	})
}

func TestACustomerWhoWantsNoMailGetsNone(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setupTriggers(t, d)
		if _, err := b.svc.SetDeliveryPreference(b.ctx, "cus_1", notifications.DeliveryPreferenceInput{Channels: []string{"webhook"}}); err != nil {
			t.Fatal(err)
		}
		e := event("evt_2", "credit_note.created", "credit_note", "cn_1", map[string]any{"id": "cn_1", "number": "CN-1", "customer_id": "cus_1",
			"invoice_id": "inv_1", "total": "10.00", "currency": "EUR"})
		if err := b.svc.HandleEvent(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		if list, _, _ := notifications.ListNotifications(b.ctx, d, notifications.Filter{}); len(list) != 0 {
			t.Fatalf("notified %+v", list)
		}
	})
}

func TestQuotaEventsPickTheirTemplateAndTenantsRemapThem(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setupTriggers(t, d)
		for i, pct := range []int{80, 100} {
			e := event("evt_q"+string(rune('0'+i)), "entitlement.threshold_reached", "subscription", "sub_1", map[string]any{
				"customer_id": "cus_1", "subscription_id": "sub_1", "feature": "api_calls", "threshold": pct, "limit": "1000", "used": "1000"})
			if err := b.svc.HandleEvent(context.Background(), e); err != nil {
				t.Fatal(err)
			}
		}
		list, _, _ := notifications.ListNotifications(b.ctx, d, notifications.Filter{})
		if len(list) != 2 || list[0].Template != "usage.quota_reached" || list[1].Template != "usage.quota_warning" {
			t.Fatalf("%+v", list)
		}
		// The tenant sends its own template to a fixed address instead.
		if _, err := b.svc.SaveTemplate(b.ctx, "ops.quota", "en", notifications.NotificationTemplateInput{Subject: "Quota {{.percent}}",
			Text: "{{.customer.name}}", HTML: "<p>{{.customer.name}}</p>"}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.svc.SaveTrigger(b.ctx, "entitlement.threshold_reached", notifications.TriggerInput{Template: "ops.quota",
			Recipients: []notifications.RecipientRule{{Type: notifications.ToEmail, Email: "ops@acme.example"}}}); err != nil {
			t.Fatal(err)
		}
		e := event("evt_q9", "entitlement.threshold_reached", "subscription", "sub_1", map[string]any{"customer_id": "cus_1", "threshold": 80})
		if err := b.svc.HandleEvent(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		b.deliver(t)
		var ops []smtptest.Message
		for _, m := range b.mail.Wait(t, 3, 30*time.Second) {
			if m.To == "ops@acme.example" {
				ops = append(ops, m)
			}
		}
		if len(ops) != 1 || smtptest.Parse(t, ops[0].Raw).Subject != "Quota 80" {
			t.Fatalf("ops mails %+v", ops)
		}
		_, err := b.svc.SaveTrigger(b.ctx, "no.such_event", notifications.TriggerInput{Template: "ops.quota",
			Recipients: []notifications.RecipientRule{{Type: notifications.ToCustomer}}})
		if e, ok := abacus.AsError(err); !ok || e.Code != "unknown_event_type" {
			t.Fatalf("unknown event type: %v", err)
		}
	})
}

func TestATrialReminderWaitsUntilThreeDaysBeforeTheEndAndACancelDropsIt(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setupTriggers(t, d)
		end := b.clock.Now().Add(14 * 24 * time.Hour)
		trial := func(id, sub string) outbox.Event {
			return event(id, "subscription.trial_started", "subscription", sub, map[string]any{"subscription": map[string]any{
				"id": sub, "customer_id": "cus_1", "plan_id": "plan_1", "trial_end": end.Format(time.RFC3339)}})
		}
		for _, e := range []outbox.Event{trial("evt_t1", "sub_1"), trial("evt_t2", "sub_2"),
			event("evt_c2", "subscription.canceled", "subscription", "sub_2", map[string]any{"subscription": map[string]any{"id": "sub_2", "customer_id": "cus_1"}})} {
			if err := b.svc.HandleEvent(context.Background(), e); err != nil {
				t.Fatal(err)
			}
		}
		b.deliver(t)
		b.clock.Set(end.Add(-72*time.Hour - time.Minute))
		b.deliver(t)
		if n := len(b.mail.Messages()); n != 0 {
			t.Fatalf("%d reminders before their time", n)
		}
		b.clock.Set(end.Add(-72 * time.Hour))
		b.deliver(t)
		msgs := b.mail.Wait(t, 1, 30*time.Second)
		if p := smtptest.Parse(t, msgs[0].Raw); len(msgs) != 1 || p.Subject != "Your Pro trial ends in 3 days" {
			t.Fatalf("%d reminders: %q", len(msgs), p.Subject)
		}
	})
}

// A restarted process neither loses a queued mail nor sends a confirmed
// one again; a send the server did not confirm is retried.
func TestARestartSendsEachConfirmedMailOnce(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setupTriggers(t, d)
		m := notifications.Message{TenantID: "ten_a", Template: "payment.succeeded", To: notifications.Recipient{Kind: "email", Email: "ada@example.com"},
			Data: notifications.Samples()["payment.succeeded"]}
		for _, to := range []string{"ada@example.com", "bob@example.com"} {
			m.To.Email = to
			if err := d.InTx(context.Background(), func(tx *db.Tx) error {
				_, err := b.svc.Enqueue(context.Background(), tx, m)
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		// The server does not confirm the first attempt (the connection is
		// cut after the data: 421), then accepts everything.
		b.mail.Answer(&smtpError421)
		b.deliver(t)
		if n := len(b.mail.Messages()); n != 1 {
			l, _, _ := notifications.ListNotifications(b.ctx, d, notifications.Filter{})
			t.Fatalf("%d confirmed, want 1: %+v", n, l)
		}
		// Restart: a new service over the same database, later.
		b.clock.Advance(time.Hour)
		again := setupTriggers(t, d)
		again.clock.Set(b.clock.Now())
		sender, _ := smtp.New("smtp://"+b.mail.Addr, smtp.Options{})
		again.svc.RegisterChannel(notifications.NewEmail(again.svc, sender, "Abacus <no-reply@abacus.test>"))
		again.deliver(t)
		again.deliver(t)
		msgs := b.mail.Messages()
		if len(msgs) != 2 || msgs[0].To == msgs[1].To {
			t.Fatalf("after restart: %d mails (%v)", len(msgs), msgs)
		}
	})
}
