package payments

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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
	for ctx.Err() == nil {
		err := s.consume(ctx, bus, built)
		if ctx.Err() != nil {
			return nil
		}
		s.log.Error("payments consumer failed; resuming", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
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

func (s *Service) consume(ctx context.Context, bus *natsbus.Bus, built time.Time) error {
	if err := outbox.Provision(ctx, bus); err != nil {
		return err
	}
	restarted := bus.Restarted()
	// A new consumer starts at the events published since this process
	// built the service: invoices finalized before payments ran are not
	// charged behind the tenant's back. Afterwards it keeps its place.
	cfg := jetstream.ConsumerConfig{
		Durable: ConsumerName, FilterSubject: outbox.SubjectPrefix + billing.InvoiceFinalized.Type().Name,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: 2 * time.Minute, MaxAckPending: 64, MaxDeliver: -1,
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &built,
	}
	if old, err := bus.JetStream().Consumer(ctx, outbox.Stream, ConsumerName); err == nil {
		cfg.DeliverPolicy, cfg.OptStartTime = old.CachedInfo().Config.DeliverPolicy, old.CachedInfo().Config.OptStartTime
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("reading consumer %s: %w", ConsumerName, err)
	}
	cons, err := bus.JetStream().CreateOrUpdateConsumer(ctx, outbox.Stream, cfg)
	if err != nil {
		return fmt.Errorf("creating consumer %s: %w", ConsumerName, err)
	}
	msgs := make(chan jetstream.Msg, 64)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-ctx.Done():
		}
	})
	if err != nil {
		return fmt.Errorf("consuming %s: %w", ConsumerName, err)
	}
	defer cc.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-restarted:
			return errors.New("JetStream restarted; the consumer is made again")
		case m := <-msgs:
			if retry := s.finalized(ctx, m); retry > 0 {
				_ = m.NakWithDelay(retry)
			} else {
				_ = m.Ack()
			}
		}
	}
}

// finalized charges the invoice of an invoice.finalized message when its
// customer is charged automatically. It is safe to run twice for one
// event (a redelivery, or the same event id seen again): the charge is
// attempt 1 of the invoice, which Collect makes once. It returns how long
// to wait before the message is delivered again (0: done).
func (s *Service) finalized(ctx context.Context, m jetstream.Msg) time.Duration {
	h := m.Headers()
	tenant := h.Get("Abacus-Tenant-Id")
	ev, err := billing.InvoiceFinalized.Decode(m.Data())
	if err != nil || tenant == "" {
		s.log.Error("skipping an unreadable invoice.finalized", "event", h.Get("Abacus-Event-Id"), "err", err)
		return 0
	}
	if !ev.AmountDue.IsPositive() {
		return 0
	}
	tctx := tenantCtx(ctx, tenant)
	cb, err := s.GetCustomerBilling(tctx, ev.CustomerID)
	if err != nil {
		if abacus.ErrorKind(err) == abacus.KindNotFound {
			return 0
		}
		s.log.Warn("reading a customer's collection method", "tenant", tenant, "customer", ev.CustomerID, "err", err)
		return 10 * time.Second
	}
	if cb.CollectionMethod != ChargeAutomatically {
		return 0
	}
	p, err := s.Collect(tctx, ev.ID, 1)
	if err == nil {
		s.log.Info("invoice charged", "tenant", tenant, "invoice", ev.ID, "payment", p.ID, "status", p.Status)
		return 0
	}
	switch abacus.ErrorKind(err) {
	case abacus.KindConflict, abacus.KindNotFound, abacus.KindInvalid:
		// Not configured, or nothing to collect any more: nothing to retry.
		s.log.Info("invoice not charged", "tenant", tenant, "invoice", ev.ID, "err", err)
		return 0
	case abacus.KindUnavailable:
		return 0 // the attempt is pending; Reconcile finishes it with the same key
	}
	s.log.Warn("charging an invoice failed; retrying", "tenant", tenant, "invoice", ev.ID, "err", err)
	return 10 * time.Second
}
