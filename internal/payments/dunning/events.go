package dunning

import (
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/outbox"
)

// RunEvent is the payload of every dunning.* event: the run and its
// invoice, and what the step did.
type RunEvent struct {
	RunID          string          `json:"run_id"`
	InvoiceID      string          `json:"invoice_id"`
	InvoiceNumber  string          `json:"invoice_number"`
	CustomerID     string          `json:"customer_id"`
	SubscriptionID string          `json:"subscription_id"`
	Amount         decimal.Decimal `json:"amount" doc:"what the invoice owed when dunning started"`
	Currency       string          `json:"currency"`
	Status         string          `json:"status" enum:"active,recovered,exhausted,closed"`
	// CollectionMethod and Link: a send_invoice run reminds instead of
	// charging, and its events carry the invoice's hosted pay page.
	CollectionMethod string     `json:"collection_method,omitempty" enum:"charge_automatically,send_invoice" doc:"how the invoice is paid: charge_automatically runs retry the charge, send_invoice runs remind with link"`
	Link             string     `json:"link,omitempty" doc:"send_invoice: the hosted page where the customer pays the invoice (the reminder e-mail's button)"`
	Attempts         int        `json:"attempts" doc:"charge attempts so far, the first included"`
	RetryAt          *time.Time `json:"retry_at,omitempty" doc:"the next retry (reminders, failed retries)"`
	Final            bool       `json:"final,omitempty" doc:"a reminder before the last retry: the final action follows if it fails"`
	FinalAction      string     `json:"final_action" enum:"suspend,cancel,mark_uncollectible" doc:"what happens when the schedule ends unpaid (dunning.exhausted: what was done)"`
	FinalActionAt    *time.Time `json:"final_action_at,omitempty"`
	HardDecline      bool       `json:"hard_decline,omitempty" doc:"the last decline was hard: not retried until the customer sets up another payment method"`
	DeclineCode      string     `json:"decline_code,omitempty"`
	Reason           string     `json:"reason,omitempty" doc:"dunning.recovered: paid; dunning.closed: voided or uncollectible"`
}

// ChargebackLost is the payload of customer.chargeback_lost.
type ChargebackLost struct {
	CustomerID     string          `json:"customer_id"`
	InvoiceID      string          `json:"invoice_id"`
	DisputeID      string          `json:"dispute_id"`
	SubscriptionID string          `json:"subscription_id,omitempty"`
	Amount         decimal.Decimal `json:"amount"`
	Currency       string          `json:"currency"`
	InvoiceAction  string          `json:"invoice_action" enum:"unpaid,uncollectible" doc:"what was done with the invoice (the dispute_lost setting)"`
}

// Dunning's domain events (see outbox.Define). Notifications turn the
// reminders and requests into e-mails; webhooks carry all of them.
var (
	RunStarted            = outbox.Define[RunEvent]("dunning.started", 1, "dunning_run", "A payment of an invoice failed (or a send_invoice invoice passed its due date unpaid) and dunning started: the subscription is past due, retries or reminders are scheduled.")
	RunReminder           = outbox.Define[RunEvent]("dunning.reminder", 1, "dunning_run", "A reminder before a retry of an overdue invoice, or of a send_invoice invoice with its pay link (final: the last one before the final action).")
	RunRetryFailed        = outbox.Define[RunEvent]("dunning.retry_failed", 1, "dunning_run", "A scheduled retry of an overdue invoice failed.")
	PaymentMethodRequired = outbox.Define[RunEvent]("dunning.payment_method_required", 1, "dunning_run", "A payment was declined hard (stolen card, closed account): it is not retried until the customer sets up another payment method.")
	RunRecovered          = outbox.Define[RunEvent]("dunning.recovered", 1, "dunning_run", "An overdue invoice was paid: dunning ended and access is restored.")
	RunExhausted          = outbox.Define[RunEvent]("dunning.exhausted", 1, "dunning_run", "The retries of an overdue invoice ran out: the final action (suspend, cancel, mark uncollectible) was taken.")
	RunClosed             = outbox.Define[RunEvent]("dunning.closed", 1, "dunning_run", "Dunning of an invoice stopped because it was voided or marked uncollectible by other means.")

	CustomerChargebackLost = outbox.Define[ChargebackLost]("customer.chargeback_lost", 1, "customer", "A customer's payment dispute (chargeback) was lost: the money is gone and the invoice is unpaid or uncollectible. Risk labels the customer.")
)
