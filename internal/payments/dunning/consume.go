package dunning

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/natsbus"
	"github.com/abacusbilling/abacus/internal/outbox"
)

// ConsumerName is the durable JetStream consumer dunning reads domain
// events with.
const ConsumerName = "dunning"

// Handled lists the event types dunning acts on.
var Handled = []string{"payment.failed", "payment.succeeded", "invoice.finalized", "invoice.paid", "invoice.voided",
	"invoice.marked_uncollectible", "dispute.created", "dispute.closed", "payment_method.attached"}

// the parts of the payments core's and billing's payloads dunning reads
type paymentPayload struct {
	InvoiceID     string `json:"invoice_id"`
	CustomerID    string `json:"customer_id"`
	Attempt       int    `json:"attempt"`
	DeclineCode   string `json:"decline_code"`
	DeclineKind   string `json:"decline_kind"`
	InvoiceStatus string `json:"invoice_status"`
}

type invoicePayload struct {
	ID string `json:"id"`
}

type disputePayload struct {
	DisputeID  string          `json:"dispute_id"`
	InvoiceID  string          `json:"invoice_id"`
	CustomerID string          `json:"customer_id"`
	Kind       string          `json:"kind"`
	Outcome    string          `json:"outcome"`
	Amount     decimal.Decimal `json:"amount"`
	Currency   string          `json:"currency"`
}

// HandleEvent acts on one domain event, once per event id: a redelivered
// event changes nothing (and every action is idempotent besides).
func (s *Service) HandleEvent(ctx context.Context, e outbox.Event) error {
	var seen int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM dunning_events_seen WHERE tenant_id = $1 AND event_id = $2`,
		e.TenantID, e.ID).Scan(&seen); err != nil {
		return fmt.Errorf("dunning: reading seen events: %w", err)
	}
	if seen > 0 {
		return nil
	}
	if err := s.handle(ctx, e); err != nil {
		return fmt.Errorf("dunning: %s %s: %w", e.Type, e.ID, err)
	}
	return s.db.InTx(ctx, func(tx *db.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO dunning_events_seen (tenant_id, event_id, seen_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			e.TenantID, e.ID, db.TimeOf(s.now()))
		return err
	})
}

func (s *Service) handle(ctx context.Context, e outbox.Event) error {
	switch e.Type {
	case "payment.failed":
		var p paymentPayload
		if err := json.Unmarshal(e.Payload, &p); err != nil || p.InvoiceID == "" {
			return nil // not an invoice's payment: nothing to dun
		}
		return s.PaymentFailed(ctx, FailedPayment{TenantID: e.TenantID, InvoiceID: p.InvoiceID, Attempt: p.Attempt,
			DeclineCode: p.DeclineCode, Hard: p.DeclineKind == "hard"})
	case "payment.succeeded":
		var p paymentPayload
		if err := json.Unmarshal(e.Payload, &p); err != nil || p.InvoiceID == "" || p.InvoiceStatus != "paid" {
			return nil
		}
		return s.InvoicePaid(ctx, e.TenantID, p.InvoiceID)
	case "invoice.finalized", "invoice.paid", "invoice.voided", "invoice.marked_uncollectible":
		var p invoicePayload
		if err := json.Unmarshal(e.Payload, &p); err != nil || p.ID == "" {
			return nil
		}
		switch e.Type {
		case "invoice.finalized":
			return s.InvoiceFinalized(ctx, e.TenantID, p.ID)
		case "invoice.paid":
			return s.InvoicePaid(ctx, e.TenantID, p.ID)
		}
		return s.InvoiceClosed(ctx, e.TenantID, p.ID, strings.TrimPrefix(e.Type, "invoice."))
	case "dispute.created", "dispute.closed":
		var p disputePayload
		if err := json.Unmarshal(e.Payload, &p); err != nil || p.InvoiceID == "" || (p.Kind != "" && p.Kind != "dispute") {
			return nil // inquiries and early fraud warnings withdraw nothing
		}
		if e.Type == "dispute.created" {
			return s.DisputeOpened(ctx, e.TenantID, p.DisputeID, p.InvoiceID)
		}
		return s.DisputeClosed(ctx, ClosedDispute{TenantID: e.TenantID, DisputeID: p.DisputeID, InvoiceID: p.InvoiceID,
			CustomerID: p.CustomerID, Won: p.Outcome == "won", Amount: p.Amount, Currency: p.Currency})
	case "payment_method.attached":
		var p paymentPayload
		if err := json.Unmarshal(e.Payload, &p); err != nil || p.CustomerID == "" {
			return nil
		}
		return s.PaymentMethodAttached(ctx, e.TenantID, p.CustomerID)
	}
	return nil
}

// Consume reads the events dunning acts on from stream ABACUS_EVENTS with
// the durable consumer "dunning" and handles each (HandleEvent), acking it
// once handled; a failure is redelivered later. It returns when ctx ends.
func (s *Service) Consume(ctx context.Context, bus *natsbus.Bus) error {
	return outbox.Consume(ctx, bus, outbox.Subscription{Durable: ConsumerName, Types: Handled, Log: s.log}, s.HandleEvent)
}
