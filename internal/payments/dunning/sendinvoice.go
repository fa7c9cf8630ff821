package dunning

import (
	"context"
	"fmt"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// Collection methods (the payments core's, per customer).
const (
	ChargeAutomatically = "charge_automatically" // a failed charge starts dunning; retries charge again
	SendInvoice         = "send_invoice"         // the customer pays by the hosted page; dunning starts at the due date
)

// MethodFunc returns how customer of tenant pays: ChargeAutomatically or
// SendInvoice.
type MethodFunc func(ctx context.Context, tenant, customer string) (string, error)

// PayLinkFunc returns the hosted "pay this invoice" page of invoice.
type PayLinkFunc func(ctx context.Context, tenant, invoice string) (string, error)

// UseCollectionMethods tells dunning how each customer pays, so a
// send_invoice invoice is dunned from its due date. Without it only failed
// charges start dunning.
func (s *Service) UseCollectionMethods(f MethodFunc) { s.method = f }

// UsePayLinks gives send_invoice reminders their pay link (RunEvent.Link).
func (s *Service) UsePayLinks(f PayLinkFunc) { s.payLink = f }

// InvoiceFinalized schedules the dunning of a finalized invoice its
// customer pays by the hosted page (send_invoice): a run in status
// scheduled whose first step is the due date. Paid, voided or written off
// before then, the run is dropped without a trace; still open after it,
// the run starts (Pass: past_due, dunning.started with the pay link) and
// follows the tenant's schedule with reminders instead of charges, then
// the same final action. Charged invoices (charge_automatically) are left
// to their failed payments. Calling it twice changes nothing.
func (s *Service) InvoiceFinalized(ctx context.Context, tenant, invoice string) error {
	if s.method == nil {
		return nil
	}
	tctx := tenantCtx(ctx, tenant)
	inv, err := s.billing.Invoice(tctx, tenant, invoice)
	if abacus.ErrorKind(err) == abacus.KindNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	if inv.Status != "open" || !inv.AmountDue.IsPositive() || inv.DueAt == nil {
		return nil
	}
	method, err := s.method(tctx, tenant, inv.CustomerID)
	if err != nil || method != SendInvoice {
		return err
	}
	plan := ""
	if inv.SubscriptionID != "" {
		if sub, err := s.subs.Get(tctx, inv.SubscriptionID); err == nil {
			plan = sub.PlanID
		}
	}
	_, pol, err := s.policyFor(ctx, tenant, plan)
	if err != nil {
		return err
	}
	now, due := s.now(), inv.DueAt.UTC().Truncate(time.Microsecond)
	r := Run{ID: abacus.NewID("dun"), tenant: tenant, InvoiceID: inv.ID, InvoiceNumber: inv.Number, CustomerID: inv.CustomerID,
		SubscriptionID: inv.SubscriptionID, Amount: inv.AmountDue, Currency: inv.Currency, Status: StatusScheduled, Policy: pol,
		CollectionMethod: SendInvoice, FirstFailedAt: due, NextStep: StepOverdue, NextAt: &due, CreatedAt: now, UpdatedAt: now}
	return s.db.InTx(ctx, func(tx *db.Tx) error {
		_, err := insertRun(ctx, tx, r)
		return err
	})
}

// overdue starts scheduled run r whose invoice's due date has passed:
// drop is true when the invoice no longer owes anything (the run never
// started). Otherwise its subscription becomes past_due and r follows its
// plan from the due date.
func (s *Service) overdue(ctx context.Context, r *Run) (drop bool, err error) {
	tctx := tenantCtx(ctx, r.tenant)
	inv, err := s.billing.Invoice(tctx, r.tenant, r.InvoiceID)
	if abacus.ErrorKind(err) == abacus.KindNotFound {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if inv.Status != "open" || !inv.AmountDue.IsPositive() {
		return true, nil // paid, voided or written off; its event settles the rest
	}
	if _, err := s.markPastDue(tctx, r.SubscriptionID); err != nil {
		return false, err
	}
	r.Status, r.Amount, r.InvoiceNumber = StatusActive, inv.AmountDue, inv.Number
	r.schedule(0)
	return false, nil
}

// linkOf is the pay link a send_invoice run's events carry ("" for other
// runs, or when no link can be made: the reminder goes without it).
func (s *Service) linkOf(ctx context.Context, r Run) string {
	if r.CollectionMethod != SendInvoice || s.payLink == nil {
		return ""
	}
	link, err := s.payLink(tenantCtx(ctx, r.tenant), r.tenant, r.InvoiceID)
	if err != nil {
		s.log.Warn("no pay link for a dunning reminder", "tenant_id", r.tenant, "invoice_id", r.InvoiceID, "err", err)
		return ""
	}
	return link
}

// dropScheduled removes the runs of dropped (leased to owner, never
// started) in tx.
func dropScheduled(ctx context.Context, tx *db.Tx, owner string, dropped []Run) error {
	for _, r := range dropped {
		if _, err := tx.ExecContext(ctx, `DELETE FROM dunning_runs WHERE tenant_id = $1 AND id = $2 AND status = 'scheduled' AND lease_owner = $3`,
			r.tenant, r.ID, owner); err != nil {
			return fmt.Errorf("dropping dunning run %s: %w", r.ID, err)
		}
	}
	return nil
}

// saveStarted writes what a run learned of its invoice when it started
// (leased to owner): what it owes then and its number.
func saveStarted(ctx context.Context, tx *db.Tx, owner string, started []Run) error {
	for _, r := range started {
		if _, err := tx.ExecContext(ctx, `UPDATE dunning_runs SET amount = $3, invoice_number = $4 WHERE tenant_id = $1 AND id = $2 AND lease_owner = $5`,
			r.tenant, r.ID, r.Amount.String(), r.InvoiceNumber, owner); err != nil {
			return fmt.Errorf("starting dunning run %s: %w", r.ID, err)
		}
	}
	return nil
}
