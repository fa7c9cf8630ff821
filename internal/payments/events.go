package payments

import (
	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/outbox"
)

// PaymentEvent is the payload of every payment.* event: the payment as
// the ledger holds it after the change, and what its invoice owes now.
type PaymentEvent struct {
	PaymentID         string          `json:"payment_id"`
	InvoiceID         string          `json:"invoice_id"`
	InvoiceNumber     string          `json:"invoice_number,omitempty"`
	CustomerID        string          `json:"customer_id"`
	Provider          string          `json:"provider" enum:"stripe,manual,fake"`
	ProviderReference string          `json:"provider_reference" doc:"the gateway's id (pi_… on Stripe); empty for manual payments without one"`
	Status            Status          `json:"status" enum:"pending,processing,succeeded,failed,canceled"`
	Amount            decimal.Decimal `json:"amount" doc:"in the invoice's currency"`
	AmountRefunded    decimal.Decimal `json:"amount_refunded"`
	Currency          string          `json:"currency"`
	Attempt           int             `json:"attempt" doc:"the collection attempt (1 = first); 0 for a payment Abacus did not start"`
	DeclineCode       string          `json:"decline_code,omitempty" doc:"the gateway's decline code (payment.failed)"`
	DeclineKind       DeclineKind     `json:"decline_kind,omitempty" enum:"hard,soft" doc:"hard: do not retry, ask for another payment method; soft: a retry may succeed"`
	FailureMessage    string          `json:"failure_message,omitempty"`
	InvoiceAmountDue  decimal.Decimal `json:"invoice_amount_due" doc:"what the invoice still owes after this change"`
	InvoiceStatus     string          `json:"invoice_status" enum:"open,paid,void,uncollectible"`
}

// DisputeEvent is the payload of every dispute.* event.
type DisputeEvent struct {
	DisputeID         string          `json:"dispute_id"`
	PaymentID         string          `json:"payment_id"`
	InvoiceID         string          `json:"invoice_id"`
	CustomerID        string          `json:"customer_id"`
	Provider          string          `json:"provider"`
	ProviderReference string          `json:"provider_reference" doc:"the gateway's id (dp_…, issfr_…)"`
	Kind              DisputeKind     `json:"kind" enum:"dispute,inquiry,early_fraud_warning" doc:"an inquiry or early fraud warning withdraws nothing"`
	Status            string          `json:"status" doc:"the gateway's status (needs_response, under_review, won, lost…)"`
	Outcome           string          `json:"outcome,omitempty" enum:"won,lost" doc:"set when closed"`
	Amount            decimal.Decimal `json:"amount"`
	Currency          string          `json:"currency"`
	Reason            string          `json:"reason,omitempty"`
	InvoiceAmountDue  decimal.Decimal `json:"invoice_amount_due"`
	InvoiceStatus     string          `json:"invoice_status" enum:"open,paid,void,uncollectible"`
}

// PaymentMethodEvent is the payload of every payment_method.* event.
type PaymentMethodEvent struct {
	PaymentMethodID   string `json:"payment_method_id"`
	CustomerID        string `json:"customer_id"`
	Provider          string `json:"provider"`
	ProviderReference string `json:"provider_reference"`
	Brand             string `json:"brand"`
	Last4             string `json:"last4"`
	ExpMonth          int    `json:"exp_month"`
	ExpYear           int    `json:"exp_year"`
	Default           bool   `json:"default" doc:"the customer's default method"`
}

// The payments module's domain events (see outbox.Define). Dunning, risk,
// notifications and webhooks consume them; they are part of the API.
var (
	PaymentSucceeded = outbox.Define[PaymentEvent]("payment.succeeded", 1, "payment", "A payment succeeded; the invoice's amount due and status follow.")
	PaymentFailed    = outbox.Define[PaymentEvent]("payment.failed", 1, "payment", "A payment attempt failed, with the gateway's decline code and whether it is hard (ask for a new method) or soft (retry).")
	PaymentCanceled  = outbox.Define[PaymentEvent]("payment.canceled", 1, "payment", "A pending payment was canceled before it completed.")
	PaymentRefunded  = outbox.Define[PaymentEvent]("payment.refunded", 1, "payment", "A payment was refunded, in part or in full; amount_refunded is the total.")

	DisputeCreated = outbox.Define[DisputeEvent]("dispute.created", 1, "dispute", "A payment was disputed (chargeback): the amount is withdrawn and the invoice is due again. Inquiries and early fraud warnings withdraw nothing.")
	DisputeUpdated = outbox.Define[DisputeEvent]("dispute.updated", 1, "dispute", "A dispute changed status (evidence submitted, under review).")
	DisputeClosed  = outbox.Define[DisputeEvent]("dispute.closed", 1, "dispute", "A dispute was closed: won gives the payment back, lost leaves the invoice unpaid.")

	PaymentMethodAttached = outbox.Define[PaymentMethodEvent]("payment_method.attached", 1, "payment_method", "A payment method was set up for a customer (it becomes the default).")
	PaymentMethodDetached = outbox.Define[PaymentMethodEvent]("payment_method.detached", 1, "payment_method", "A payment method was removed at the gateway.")
	PaymentMethodExpiring = outbox.Define[PaymentMethodEvent]("payment_method.expiring", 1, "payment_method", "A customer's default card expires at the end of next month: ask for a new one before a payment fails.")
)
