package payments

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/db"
)

// attemptKey is the idempotency key of an invoice's collection attempt:
// the same attempt is the same charge at the gateway, whoever retries it.
func attemptKey(tenant, invoice string, attempt int) string {
	return fmt.Sprintf("abacus:%s:%s:%d", tenant, invoice, attempt)
}

// Collect charges invoice id's amount due to its customer's default
// payment method, as collection attempt attempt (1 for the charge when
// the invoice is finalized; dunning's retries count on). It is
// idempotent per (invoice, attempt): the attempt is recorded (pending,
// with its idempotency key) before the gateway is called, so a crash
// between the two leaves a pending attempt that Reconcile finishes with
// the same key, never a second charge; calling Collect again for a
// finished attempt returns it unchanged.
//
// A decline is not an error: the payment comes back failed, with its
// decline code and kind, and payment.failed is recorded. A customer
// without a payment method gets a failed payment with decline code
// no_payment_method (hard). Errors: "invoice_not_found", conflicts
// "invoice_not_payable" (not open, or nothing due) and
// "payment_provider_not_configured"; a gateway that cannot be reached
// leaves the attempt pending and returns an unavailable error.
func (s *Service) Collect(ctx context.Context, invoiceID string, attempt int) (Payment, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Payment{}, err
	}
	if attempt < 1 {
		return Payment{}, abacus.Invalid("invalid_attempt", "attempt must be 1 or more").WithField("attempt", "must be 1 or more")
	}
	gw, provider, err := s.gateway(ctx, tenant)
	if err != nil {
		return Payment{}, err
	}
	now := s.now()
	var p Payment
	var req PaymentRequest
	var call bool
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		var found bool
		var err error
		if p, found, err = lockPaymentByAttempt(ctx, tx, tenant, invoiceID, attempt); err != nil {
			return err
		}
		inv, err := s.billing.InvoiceIn(ctx, tx, invoiceID)
		if err != nil {
			return err
		}
		if found {
			call = p.Status == StatusPending
			req, err = s.request(ctx, tx, tenant, inv, p)
			return err
		}
		if inv.Status != billing.Open || !inv.AmountDue.IsPositive() {
			return abacus.Conflict("invoice_not_payable", "invoice %s is %s with %s %s due: nothing to collect", inv.ID, inv.Status,
				inv.AmountDue, inv.Currency)
		}
		p = Payment{ID: abacus.NewID("pay"), InvoiceID: inv.ID, CustomerID: inv.CustomerID, Provider: provider, Attempt: attempt,
			key: attemptKey(tenant, inv.ID, attempt), Status: StatusPending, Amount: inv.AmountDue, AmountRefunded: decimal.Zero,
			Currency: inv.Currency, CreatedAt: now, UpdatedAt: now}
		if req, err = s.request(ctx, tx, tenant, inv, p); err != nil {
			return err
		}
		if req.PaymentMethodRef == "" {
			p.Status, p.DeclineCode, p.DeclineKind = StatusFailed, "no_payment_method", DeclineHard
			p.FailureMessage = "the customer has no payment method: ask them to add one"
			if err := insertPayment(ctx, tx, tenant, p); err != nil {
				return err
			}
			_, err = PaymentFailed.Record(ctx, tx, tenant, p.ID, now, paymentEvent(p, inv))
			return err
		}
		call = true
		return insertPayment(ctx, tx, tenant, p)
	})
	if err != nil || !call {
		return p, wrap("collecting invoice "+invoiceID, err)
	}
	gp, err := gw.CreatePayment(ctx, req)
	if err != nil {
		s.log.Warn("payment gateway call failed; the attempt stays pending", "tenant", tenant, "invoice", invoiceID, "attempt", attempt, "err", err)
		return p, abacus.Errorf(abacus.KindUnavailable, "gateway_unavailable", "the payment gateway did not answer; the attempt is retried with the same idempotency key")
	}
	return s.recordOutcome(ctx, tenant, p.ID, gp)
}

// request builds the gateway request of payment p of inv.
func (s *Service) request(ctx context.Context, tx *db.Tx, tenant string, inv billing.Invoice, p Payment) (PaymentRequest, error) {
	minor, err := ToMinor(p.Amount, p.Currency)
	if err != nil {
		return PaymentRequest{}, err
	}
	req := PaymentRequest{Key: p.key, TenantID: tenant, InvoiceID: inv.ID, InvoiceNumber: inv.Number, Attempt: p.Attempt,
		Amount: minor, Currency: p.Currency}
	row, ok, err := loadCustomerRow(ctx, tx, tenant, inv.CustomerID)
	if err != nil || !ok {
		return req, err
	}
	req.CustomerRef = row.providerCustomer
	if row.defaultMethod != "" {
		m, ok, err := loadMethod(ctx, tx, tenant, row.defaultMethod)
		if err != nil {
			return req, err
		}
		if ok && m.Status == "active" {
			req.PaymentMethodRef = m.ProviderReference
		}
	}
	return req, nil
}

// recordOutcome applies what the gateway answered for payment id.
func (s *Service) recordOutcome(ctx context.Context, tenant, id string, gp GatewayPayment) (Payment, error) {
	var p Payment
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		var ok bool
		var err error
		p, ok, err = findPayment(ctx, tx, tx.LockClause(" FOR UPDATE"), tenant, `id = $2`, id)
		if err != nil || !ok {
			return err
		}
		p, err = s.advance(ctx, tx, tenant, p, gp, s.now())
		return err
	})
	return p, wrap("recording payment "+id, err)
}

// advance moves p to what the gateway reports, if that is further on (see
// Status.rank), settles its invoice and records the payment event, in tx.
func (s *Service) advance(ctx context.Context, tx *db.Tx, tenant string, p Payment, gp GatewayPayment, now time.Time) (Payment, error) {
	learned := p.ProviderReference == "" && gp.Reference != "" // the payment is known by its reference from now on
	if learned {
		p.ProviderReference = gp.Reference
	}
	if gp.Status.rank() <= p.Status.rank() {
		if !learned {
			return p, nil // an older state, or this one again: nothing changes
		}
		p.UpdatedAt = now
		if err := updatePayment(ctx, tx, tenant, p); err != nil {
			return p, err
		}
		return p, s.unpark(ctx, tx, tenant, p)
	}
	if gp.Amount > 0 && gp.Currency != "" {
		amt, err := FromMinor(gp.Amount, gp.Currency)
		if err == nil {
			p.Amount = amt
		}
	}
	p.Status, p.UpdatedAt = gp.Status, now
	switch gp.Status {
	case StatusFailed:
		p.DeclineCode, p.FailureMessage = gp.DeclineCode, gp.Message
		p.DeclineKind = DeclineKindOf(gp.DeclineCode)
	case StatusSucceeded:
		p.PaidAt = &now
		p.DeclineCode, p.DeclineKind, p.FailureMessage = "", "", ""
	}
	if err := updatePayment(ctx, tx, tenant, p); err != nil {
		return p, err
	}
	applied, err := s.settle(ctx, tx, tenant, p.InvoiceID)
	if err != nil {
		return p, err
	}
	ev := paymentEvent(p, applied.Invoice)
	switch gp.Status {
	case StatusSucceeded:
		_, err = PaymentSucceeded.Record(ctx, tx, tenant, p.ID, now, ev)
	case StatusFailed:
		_, err = PaymentFailed.Record(ctx, tx, tenant, p.ID, now, ev)
	case StatusCanceled:
		_, err = PaymentCanceled.Record(ctx, tx, tenant, p.ID, now, ev)
	}
	if err != nil || !learned {
		return p, err
	}
	return p, s.unpark(ctx, tx, tenant, p)
}

// reconcileAfter is how old a pending attempt must be before Reconcile
// takes it: younger ones may still be waiting on their gateway call.
const reconcileAfter = time.Minute

// keyLifetime is how long Stripe keeps an idempotency key (24 hours),
// less a margin: within it a pending attempt is finished by replaying
// its create call; after it, by looking the payment up.
const keyLifetime = 23 * time.Hour

// Reconcile finishes attempts left pending by a crash between recording
// an attempt and recording the gateway's answer: within the key's
// lifetime the create call is replayed with the same idempotency key (the
// gateway answers the payment it made, or makes the one it never made);
// after it the payment is looked up by its key, and an attempt the
// gateway never saw is marked failed. It returns how many it finished.
func (s *Service) Reconcile(ctx context.Context) (int, error) {
	now := s.now()
	rows, err := pendingPayments(ctx, s.db, now.Add(-reconcileAfter), 500)
	if err != nil {
		return 0, err
	}
	done := 0
	for _, r := range rows {
		tctx := tenantCtx(ctx, r.tenant)
		gw, _, err := s.gateway(tctx, r.tenant)
		if err != nil {
			s.log.Warn("reconciling a pending payment: no gateway", "tenant", r.tenant, "payment", r.p.ID, "err", err)
			continue
		}
		var req PaymentRequest
		err = s.db.InTx(tctx, func(tx *db.Tx) error {
			inv, err := s.billing.InvoiceIn(tctx, tx, r.p.InvoiceID)
			if err != nil {
				return err
			}
			req, err = s.request(tctx, tx, r.tenant, inv, r.p)
			return err
		})
		if err != nil {
			return done, err
		}
		var gp GatewayPayment
		if now.Sub(r.p.CreatedAt) < keyLifetime {
			gp, err = gw.CreatePayment(tctx, req)
		} else {
			var ok bool
			gp, ok, err = gw.FindPayment(tctx, req)
			if err == nil && !ok {
				gp = GatewayPayment{Status: StatusFailed, DeclineCode: "attempt_lost", Message: "the gateway has no payment for this attempt"}
			}
		}
		if err != nil {
			s.log.Warn("reconciling a pending payment", "tenant", r.tenant, "payment", r.p.ID, "err", err)
			continue
		}
		if _, err := s.recordOutcome(tctx, r.tenant, r.p.ID, gp); err != nil {
			return done, err
		}
		done++
	}
	return done, nil
}
