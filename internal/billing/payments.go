package billing

import (
	"context"
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// CreditOverpayment is the credit ledger kind of what a customer paid
// beyond an invoice's amount (the payments module's ledger decides it).
const CreditOverpayment CreditKind = "overpayment"

// Applied is what ApplyPayments did to an invoice.
type Applied struct {
	Invoice    Invoice
	Changed    bool            // status or amount due changed
	Overpaid   decimal.Decimal // what was paid beyond the invoice in all, now in the credit ledger
	NewCredits decimal.Decimal // the part of Overpaid credited by this call
}

// ApplyPayments sets invoice id's amount due from paid, the net of every
// payment the payments ledger holds for it (payments less refunds and
// amounts withdrawn by disputes), inside tx: amount due = total − credits
// applied − paid, never below zero. The status follows:
//
//	open | uncollectible ──(amount due 0)──▶ paid      (invoice.paid)
//	paid ──(amount due above 0 again)──────▶ open      (invoice.reopened)
//
// What paid exceeds the invoice by is added to the customer's credit
// ledger (kind overpayment), once: a later call credits only the growth.
// A draft or void invoice is a conflict "invoice_not_payable". paid is
// in the invoice's currency. The caller owns the ledger; billing owns the
// invoice.
func (s *Service) ApplyPayments(ctx context.Context, tx *db.Tx, id string, paid decimal.Decimal) (Applied, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Applied{}, err
	}
	now := s.now()
	inv, err := lockInvoice(ctx, tx, tenant, id)
	if err != nil {
		return Applied{}, err
	}
	if inv.Status == Draft || inv.Status == Void {
		return Applied{Invoice: inv}, abacus.Conflict("invoice_not_payable", "invoice %s is %s and takes no payments", inv.ID, inv.Status).
			WithField("invoice_id", "is "+string(inv.Status))
	}
	payable := inv.Total.Sub(inv.CreditsApplied)
	due := decimal.Max(payable.Sub(paid), decimal.Zero)
	out := Applied{Overpaid: decimal.Max(paid.Sub(payable), decimal.Zero), NewCredits: decimal.Zero}
	before, status := inv.AmountDue, inv.Status
	inv.AmountDue = due
	var event string
	switch {
	case due.IsZero() && (inv.Status == Open || inv.Status == Uncollectible):
		inv.Status, inv.PaidAt, event = Paid, &now, InvoicePaid.Type().Name
	case due.IsPositive() && inv.Status == Paid:
		inv.Status, inv.PaidAt, event = Open, nil, InvoiceReopened.Type().Name
	}
	if out.Overpaid.IsPositive() {
		credited, err := overpaymentCredited(ctx, tx, tenant, inv.CustomerID, inv.ID)
		if err != nil {
			return out, err
		}
		if add := out.Overpaid.Sub(credited); add.IsPositive() {
			e := CreditEntry{ID: abacus.NewID("cre"), CustomerID: inv.CustomerID, Currency: inv.Currency, Kind: CreditOverpayment,
				Amount: add, InvoiceID: inv.ID, Description: "Overpayment of invoice " + inv.Number, CreatedAt: now}
			e.GrantID = e.ID
			if err := insertEntry(ctx, tx, tenant, e); err != nil {
				return out, err
			}
			out.NewCredits = add
		}
	}
	out.Changed = !before.Equal(inv.AmountDue) || status != inv.Status
	if !out.Changed {
		out.Invoice = inv
		return out, nil
	}
	inv.UpdatedAt = now
	if err := saveInvoice(ctx, tx, tenant, &inv); err != nil {
		return out, err
	}
	if event != "" {
		kind, err := invoiceKind(event)
		if err != nil {
			return out, err
		}
		if _, err := kind.Record(ctx, tx, tenant, inv.ID, now, invoiceEvent(&inv)); err != nil {
			return out, err
		}
	}
	out.Invoice = inv
	return out, nil
}

func overpaymentCredited(ctx context.Context, tx *db.Tx, tenant, customer, invoice string) (decimal.Decimal, error) {
	rows, err := tx.QueryContext(ctx, `SELECT amount FROM credit_entries WHERE tenant_id = $1 AND customer_id = $2 AND invoice_id = $3 AND kind = $4`,
		tenant, customer, invoice, string(CreditOverpayment))
	if err != nil {
		return decimal.Zero, fmt.Errorf("reading overpayment credits: %w", err)
	}
	defer rows.Close()
	sum := decimal.Zero
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return sum, err
		}
		d, err := decimal.NewFromString(a)
		if err != nil {
			return sum, fmt.Errorf("decoding credit amount: %w", err)
		}
		sum = sum.Add(d)
	}
	return sum, rows.Err()
}

// InvoiceIn reads invoice id (with its lines) inside tx, for modules
// that change what follows from it in the same transaction (payments).
// It returns "invoice_not_found".
func (s *Service) InvoiceIn(ctx context.Context, tx *db.Tx, id string) (Invoice, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Invoice{}, err
	}
	return loadInvoice(ctx, tx, tenant, id)
}
