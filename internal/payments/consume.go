package payments

import (
	"context"
	"fmt"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/natsbus"
	"github.com/abacusbilling/abacus/internal/outbox"
)

// ConsumerName is the durable JetStream consumer on outbox.Stream that
// starts collection when an invoice is finalized.
const ConsumerName = "payments"

// Run is the payments role until ctx ends: the consumer of
// invoice.finalized (charge_automatically customers are charged, attempt
// 1), Reconcile at start and every minute (attempts a crash left
// pending), and the expiring-card notices every hour.
func (s *Service) Run(ctx context.Context, bus *natsbus.Bus) error {
	built := s.clock.Now()
	go s.every(ctx, time.Minute, "reconciling pending payments", func(ctx context.Context) error {
		_, err := s.Reconcile(ctx)
		return err
	})
	go s.every(ctx, time.Hour, "notifying expiring cards", func(ctx context.Context) error {
		_, err := s.NotifyExpiring(ctx)
		return err
	})
	// A new consumer starts at the events published since this process
	// built the service: invoices finalized before payments ran are not
	// charged behind the tenant's back. Afterwards it keeps its place.
	return outbox.Consume(ctx, bus, outbox.Subscription{
		Durable: ConsumerName, Types: []string{billing.InvoiceFinalized.Type().Name}, Since: built, Log: s.log,
	}, s.finalized)
}

func (s *Service) every(ctx context.Context, d time.Duration, what string, f func(context.Context) error) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		if err := f(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn(what, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// finalized charges the invoice of an invoice.finalized message when its
// customer is charged automatically. It is safe to run twice for one
// event (a redelivery, or the same event id seen again): the charge is
// attempt 1 of the invoice, which Collect makes once. An error asks for
// the event again later.
func (s *Service) finalized(ctx context.Context, e outbox.Event) error {
	tenant := e.TenantID
	ev, err := billing.InvoiceFinalized.Decode(e.Payload)
	if err != nil {
		s.log.Error("skipping an unreadable invoice.finalized", "event", e.ID, "err", err)
		return nil
	}
	if !ev.AmountDue.IsPositive() {
		return nil
	}
	tctx := tenantCtx(ctx, tenant)
	cb, err := s.GetCustomerBilling(tctx, ev.CustomerID)
	if err != nil {
		if abacus.ErrorKind(err) == abacus.KindNotFound {
			return nil
		}
		return fmt.Errorf("reading customer %s's collection method: %w", ev.CustomerID, err)
	}
	if cb.CollectionMethod != ChargeAutomatically {
		return nil
	}
	p, err := s.Collect(tctx, ev.ID, 1)
	if err == nil {
		s.log.Info("invoice charged", "tenant", tenant, "invoice", ev.ID, "payment", p.ID, "status", p.Status)
		return nil
	}
	switch abacus.ErrorKind(err) {
	case abacus.KindConflict, abacus.KindNotFound, abacus.KindInvalid:
		// Not configured, or nothing to collect any more: nothing to retry.
		s.log.Info("invoice not charged", "tenant", tenant, "invoice", ev.ID, "err", err)
		return nil
	case abacus.KindUnavailable:
		return nil // the attempt is pending; Reconcile finishes it with the same key
	}
	return fmt.Errorf("charging invoice %s: %w", ev.ID, err)
}
