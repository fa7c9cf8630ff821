package payments

import (
	"context"
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/money"
)

// RefundInput refunds part or all of a payment to the method it came
// from.
type RefundInput struct {
	Amount       *decimal.Decimal `json:"amount,omitempty" doc:"in the payment's currency; what is left of the payment when omitted (and no credit note is given)"`
	CreditNoteID string           `json:"credit_note_id,omitempty" doc:"refund a credit note of the payment's invoice to the original payment method: its total, unless amount is given"`
}

// Refund refunds amount of payment id: through its gateway (Stripe: a
// refund of its PaymentIntent, with an idempotency key of the payment and
// its refunded total) or, for a manual payment, as a record of money sent
// back. The invoice's amount due grows by it (a paid invoice opens again)
// and payment.refunded is recorded. Errors: "payment_not_found",
// "invalid_refund" naming fields, conflict "payment_not_refundable" (not
// succeeded, or nothing left), "credit_note_not_found".
func (s *Service) Refund(ctx context.Context, id string, in RefundInput) (Payment, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Payment{}, err
	}
	p, err := loadPayment(ctx, s.db, tenant, id)
	if err != nil {
		return Payment{}, err
	}
	left := p.Amount.Sub(p.AmountRefunded)
	if p.Status != StatusSucceeded || !left.IsPositive() {
		return Payment{}, abacus.Conflict("payment_not_refundable", "payment %s is %s with %s %s left to refund", p.ID, p.Status, left, p.Currency)
	}
	amount := left
	if in.CreditNoteID != "" {
		cn, err := s.billing.GetCreditNote(ctx, in.CreditNoteID)
		if err != nil {
			if e, ok := abacus.AsError(err); ok && e.Kind == abacus.KindNotFound {
				return Payment{}, e.WithField("credit_note_id", "no such credit note")
			}
			return Payment{}, err
		}
		if cn.InvoiceID != p.InvoiceID {
			return Payment{}, abacus.Invalid("invalid_refund", "credit note %s is not of invoice %s", cn.Number, p.InvoiceID).
				WithField("credit_note_id", "is of another invoice")
		}
		amount = cn.Total
	}
	if in.Amount != nil {
		amount = *in.Amount
	}
	c, _ := money.LookupCurrency(p.Currency)
	switch {
	case !amount.IsPositive():
		return Payment{}, abacus.Invalid("invalid_refund", "the amount must be above 0").WithField("amount", "must be above 0")
	case !amount.Equal(amount.Round(c.Exponent)):
		return Payment{}, abacus.Invalid("invalid_refund", "%s has more decimals than %s allows", amount, p.Currency).
			WithField("amount", fmt.Sprintf("at most %d decimals", c.Exponent))
	case amount.GreaterThan(left):
		return Payment{}, abacus.Invalid("invalid_refund", "only %s %s of payment %s is left to refund", left, p.Currency, p.ID).
			WithField("amount", "at most "+left.String())
	}
	total := p.AmountRefunded.Add(amount)
	if p.Provider != ProviderManual {
		gw, ok, err := s.GatewayFor(ctx, tenant, p.Provider)
		if err != nil {
			return Payment{}, err
		}
		if !ok {
			return Payment{}, abacus.Conflict("payment_provider_not_configured", "the payment's gateway %s is not configured", p.Provider)
		}
		minor, err := ToMinor(amount, p.Currency)
		if err != nil {
			return Payment{}, err
		}
		if _, err := gw.Refund(ctx, RefundRequest{Key: fmt.Sprintf("abacus:%s:%s:refund:%s", tenant, p.ID, total), Reference: p.ProviderReference,
			Amount: minor, Currency: p.Currency}); err != nil {
			return Payment{}, abacus.Errorf(abacus.KindUnavailable, "gateway_unavailable", "the payment gateway refused or did not answer the refund: %v", err)
		}
	}
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		cur, ok, err := findPayment(ctx, tx, tx.LockClause(" FOR UPDATE"), tenant, `id = $2`, id)
		if err != nil || !ok {
			return err
		}
		if !total.GreaterThan(cur.AmountRefunded) {
			p = cur // the gateway's charge.refunded got here first
			return nil
		}
		_, err = s.refunded(ctx, tx, tenant, cur, total)
		p = cur
		p.AmountRefunded = decimal.Min(total, cur.Amount)
		return err
	})
	return p, wrap("refunding payment "+id, err)
}
