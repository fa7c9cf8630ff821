package payments

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/money"
)

// Payment is one entry of an invoice's payments ledger.
type Payment struct {
	ID                string          `json:"id"`
	InvoiceID         string          `json:"invoice_id"`
	CustomerID        string          `json:"customer_id"`
	Provider          string          `json:"provider" enum:"stripe,manual,fake"`
	ProviderReference string          `json:"provider_reference" doc:"the gateway's id (pi_… on Stripe), or the reference given with a manual payment"`
	Status            Status          `json:"status" enum:"pending,processing,succeeded,failed,canceled"`
	Amount            decimal.Decimal `json:"amount" doc:"in the invoice's currency"`
	AmountRefunded    decimal.Decimal `json:"amount_refunded"`
	Currency          string          `json:"currency"`
	Attempt           int             `json:"attempt" doc:"collection attempt (1 = first); 0 when Abacus did not start the payment"`
	DeclineCode       string          `json:"decline_code,omitempty"`
	DeclineKind       DeclineKind     `json:"decline_kind,omitempty" enum:"hard,soft"`
	FailureMessage    string          `json:"failure_message,omitempty"`
	Note              string          `json:"note,omitempty"`
	PaidAt            *time.Time      `json:"paid_at,omitempty"`
	CreatedAt         time.Time       `json:"created_at"`
	UpdatedAt         time.Time       `json:"updated_at"`

	key string // idempotency key of the attempt
}

// DisputeKind tells a chargeback from what only warns of one.
type DisputeKind string

const (
	DisputeChargeback        DisputeKind = "dispute"
	DisputeInquiry           DisputeKind = "inquiry"             // a retrieval request: nothing withdrawn yet
	DisputeEarlyFraudWarning DisputeKind = "early_fraud_warning" // recorded, not lost money
)

// Dispute is a chargeback (or an inquiry or early fraud warning) against
// a payment.
type Dispute struct {
	ID                string          `json:"id"`
	PaymentID         string          `json:"payment_id"`
	InvoiceID         string          `json:"invoice_id"`
	CustomerID        string          `json:"customer_id"`
	Provider          string          `json:"provider"`
	ProviderReference string          `json:"provider_reference"`
	Kind              DisputeKind     `json:"kind" enum:"dispute,inquiry,early_fraud_warning"`
	Outcome           string          `json:"outcome,omitempty" enum:"won,lost"`
	Amount            decimal.Decimal `json:"amount"`
	Currency          string          `json:"currency"`
	Status            string          `json:"status" doc:"the gateway's status: warning_needs_response, warning_under_review, warning_closed, needs_response, under_review, won, lost, prevented; actionable or not_actionable for an early fraud warning"`
	Reason            string          `json:"reason" doc:"the gateway's reason (fraudulent, product_not_received…); empty when it gave none"`
	CreatedAt         time.Time       `json:"created_at"`
	UpdatedAt         time.Time       `json:"updated_at"`
	ClosedAt          *time.Time      `json:"closed_at" doc:"when the gateway closed it (won, lost, warning_closed); null while open"`

	rank int
}

// withdraws reports whether the dispute takes its amount from the
// payment: a chargeback not (yet) won.
func (d Dispute) withdraws() bool { return d.Kind == DisputeChargeback && d.Outcome != "won" }

// netPaid is what the ledger says invoice has received: succeeded
// payments less their refunds, less what open or lost chargebacks
// withdrew.
func netPaid(payments []Payment, disputes []Dispute) decimal.Decimal {
	sum := decimal.Zero
	for _, p := range payments {
		if p.Status == StatusSucceeded {
			sum = sum.Add(p.Amount).Sub(p.AmountRefunded)
		}
	}
	for _, d := range disputes {
		if d.withdraws() {
			sum = sum.Sub(d.Amount)
		}
	}
	return sum
}

// settle applies the ledger of invoice to it (billing.ApplyPayments) in
// tx: its amount due and status follow from netPaid.
func (s *Service) settle(ctx context.Context, tx *db.Tx, tenant, invoice string) (billing.Applied, error) {
	ps, err := invoicePayments(ctx, tx, tenant, invoice)
	if err != nil {
		return billing.Applied{}, err
	}
	ds, err := invoiceDisputes(ctx, tx, tenant, invoice)
	if err != nil {
		return billing.Applied{}, err
	}
	return s.billing.ApplyPayments(tenantCtx(ctx, tenant), tx, invoice, netPaid(ps, ds))
}

func paymentEvent(p Payment, inv billing.Invoice) PaymentEvent {
	return PaymentEvent{PaymentID: p.ID, InvoiceID: p.InvoiceID, InvoiceNumber: inv.Number, CustomerID: p.CustomerID, Provider: p.Provider,
		ProviderReference: p.ProviderReference, Status: p.Status, Amount: p.Amount, AmountRefunded: p.AmountRefunded, Currency: p.Currency,
		Attempt: p.Attempt, DeclineCode: p.DeclineCode, DeclineKind: p.DeclineKind, FailureMessage: p.FailureMessage,
		InvoiceAmountDue: inv.AmountDue, InvoiceStatus: string(inv.Status)}
}

// ManualPaymentInput records a payment received outside a gateway (bank
// transfer, cash, cheque).
type ManualPaymentInput struct {
	InvoiceID string          `json:"invoice_id"`
	Amount    decimal.Decimal `json:"amount" doc:"in the invoice's currency; less than due is a partial payment, more is credited to the customer"`
	Reference string          `json:"reference,omitempty" doc:"the bank's reference; a second payment with the same reference is refused"`
	PaidAt    *time.Time      `json:"paid_at,omitempty" doc:"when the money arrived; now when omitted"`
	Note      string          `json:"note,omitempty"`
}

// RecordManual records a payment made outside any gateway (the manual
// adapter): the invoice's amount due drops by it, an invoice paid in full
// becomes paid, and what exceeds it goes to the customer's credit ledger.
// Errors: "invalid_payment" naming fields, "invoice_not_found",
// conflicts "invoice_not_payable" (draft or void) and
// "duplicate_payment_reference".
func (s *Service) RecordManual(ctx context.Context, in ManualPaymentInput) (Payment, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Payment{}, err
	}
	var v abacus.Validation
	if strings.TrimSpace(in.InvoiceID) == "" {
		v.Add("invoice_id", "is required")
	}
	if !in.Amount.IsPositive() {
		v.Add("amount", "must be above 0")
	}
	if len(in.Reference) > 200 {
		v.Add("reference", "must be at most 200 characters")
	}
	if len(in.Note) > 1000 {
		v.Add("note", "must be at most 1000 characters")
	}
	if err := v.Err("invalid_payment"); err != nil {
		return Payment{}, err
	}
	now := s.now()
	var p Payment
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		inv, err := s.billing.InvoiceIn(ctx, tx, in.InvoiceID)
		if e, ok := abacus.AsError(err); ok && e.Kind == abacus.KindNotFound {
			return e.WithField("invoice_id", "no such invoice")
		}
		if err != nil {
			return err
		}
		if inv.Status == billing.Draft || inv.Status == billing.Void {
			return abacus.Conflict("invoice_not_payable", "invoice %s is %s and takes no payments", inv.ID, inv.Status).
				WithField("invoice_id", "is "+string(inv.Status))
		}
		c, _ := money.LookupCurrency(inv.Currency)
		if !in.Amount.Equal(in.Amount.Round(c.Exponent)) {
			return abacus.Invalid("invalid_payment", "%s has more decimals than %s allows", in.Amount, inv.Currency).
				WithField("amount", "at most "+decimal.NewFromInt(int64(c.Exponent)).String()+" decimals in "+inv.Currency)
		}
		if in.Reference != "" {
			if _, dup, err := lockPaymentByReference(ctx, tx, tenant, ProviderManual, in.Reference); err != nil || dup {
				if err == nil {
					err = abacus.Conflict("duplicate_payment_reference", "a manual payment with reference %q is already recorded", in.Reference).
						WithField("reference", "already recorded")
				}
				return err
			}
		}
		paid := now
		if in.PaidAt != nil {
			paid = in.PaidAt.UTC().Truncate(time.Microsecond)
		}
		p = Payment{ID: abacus.NewID("pay"), InvoiceID: inv.ID, CustomerID: inv.CustomerID, Provider: ProviderManual,
			ProviderReference: in.Reference, Status: StatusSucceeded, Amount: in.Amount, AmountRefunded: decimal.Zero, Currency: inv.Currency,
			Note: in.Note, PaidAt: &paid, CreatedAt: now, UpdatedAt: now}
		if err := insertPayment(ctx, tx, tenant, p); err != nil {
			return err
		}
		applied, err := s.settle(ctx, tx, tenant, inv.ID)
		if err != nil {
			return err
		}
		_, err = PaymentSucceeded.Record(ctx, tx, tenant, p.ID, now, paymentEvent(p, applied.Invoice))
		return err
	})
	if err != nil {
		return Payment{}, wrap("recording a manual payment", err)
	}
	return p, nil
}

// GetPayment returns payment id. Errors: "payment_not_found".
func (s *Service) GetPayment(ctx context.Context, id string) (Payment, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Payment{}, err
	}
	return loadPayment(ctx, s.db, tenant, id)
}

// ListPayments returns a page of the tenant's payments by id. Errors:
// "invalid_status" for an unknown status.
func (s *Service) ListPayments(ctx context.Context, f PaymentFilter) (abacus.List[Payment], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[Payment]{}, err
	}
	switch f.Status {
	case "", StatusPending, StatusProcessing, StatusSucceeded, StatusFailed, StatusCanceled:
	default:
		return abacus.List[Payment]{}, abacus.Invalid("invalid_status", "status %q is not a payment status", f.Status).
			WithField("query.status", "must be pending, processing, succeeded, failed or canceled")
	}
	if f.Limit <= 0 || f.Limit > 100 {
		f.Limit = 20
	}
	ps, err := listPayments(ctx, s.db, tenant, f)
	if err != nil {
		return abacus.List[Payment]{}, err
	}
	next := ""
	if len(ps) > f.Limit {
		ps = ps[:f.Limit]
		next = ps[len(ps)-1].ID
	}
	return abacus.ListOf(ps, next), nil
}

// InvoiceDisputes returns the disputes against invoice's payments.
func (s *Service) InvoiceDisputes(ctx context.Context, invoice string) ([]Dispute, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	return invoiceDisputes(ctx, s.db, tenant, invoice)
}

// DisputeStatuses are the statuses a dispute can have: Stripe's dispute
// statuses, and actionable / not_actionable for early fraud warnings.
var DisputeStatuses = []string{"warning_needs_response", "warning_under_review", "warning_closed", "needs_response", "under_review",
	"won", "lost", "prevented", "actionable", "not_actionable"}

// ListDisputes returns a page of the tenant's disputes (chargebacks,
// inquiries and early fraud warnings) by id. Errors: "invalid_status"
// (query.status).
func (s *Service) ListDisputes(ctx context.Context, f DisputeFilter) (abacus.List[Dispute], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[Dispute]{}, err
	}
	if f.Status != "" && !slices.Contains(DisputeStatuses, f.Status) {
		return abacus.List[Dispute]{}, abacus.Invalid("invalid_status", "status %q is not a dispute status", f.Status).
			WithField("query.status", "must be one of "+strings.Join(DisputeStatuses, ", "))
	}
	if f.Limit <= 0 || f.Limit > 100 {
		f.Limit = 20
	}
	ds, err := listDisputes(ctx, s.db, tenant, f)
	if err != nil {
		return abacus.List[Dispute]{}, err
	}
	next := ""
	if len(ds) > f.Limit {
		ds = ds[:f.Limit]
		next = ds[len(ds)-1].ID
	}
	return abacus.ListOf(ds, next), nil
}

// GetDispute returns one of the tenant's disputes. Errors:
// "dispute_not_found".
func (s *Service) GetDispute(ctx context.Context, id string) (Dispute, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Dispute{}, err
	}
	return loadDispute(ctx, s.db, tenant, id)
}
