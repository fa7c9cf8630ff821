package payments

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/db"
)

// GatewayEvent is a verified gateway callback, translated by its adapter
// (payments/stripe) into what the ledger understands. One of the parts is
// set; an event with none is acknowledged and ignored.
type GatewayEvent struct {
	ID   string // the gateway's event id: each is handled once
	Type string // the gateway's event type, for the record

	Payment        *PaymentUpdate
	Refund         *RefundUpdate
	Dispute        *DisputeUpdate
	MethodSetup    *MethodSetup
	MethodDetached string // the gateway's reference of a removed method
}

// PaymentUpdate is a payment's state at the gateway.
type PaymentUpdate struct {
	GatewayPayment
	InvoiceID string // from the payment's metadata (abacus_invoice_id)
	TenantID  string // from the payment's metadata (abacus_tenant_id)
	Attempt   int    // from the payment's metadata (abacus_attempt); 0 when absent
}

// RefundUpdate is the total refunded of a payment.
type RefundUpdate struct {
	PaymentReference string
	AmountRefunded   int64 // total, minor units
	Currency         string
}

// DisputeUpdate is a dispute's state at the gateway.
type DisputeUpdate struct {
	Reference        string
	PaymentReference string
	Kind             DisputeKind
	Status           string // the gateway's status
	Closed           bool
	Outcome          string // won | lost, when closed
	Amount           int64
	Currency         string
	Reason           string
}

func (u DisputeUpdate) rank() int {
	if u.Closed {
		return 2
	}
	return 1
}

// HandleGatewayEvent applies a verified gateway event of tenant in one
// transaction, exactly once per event id: a redelivered event changes
// nothing. States only move forward (see the package doc), so events in
// any order leave the same state: a refund or dispute of a payment not
// known yet is parked and applied when the payment's own event arrives.
// known is false for an event about an object Abacus does not know (a
// payment without Abacus metadata, a refund of an unknown charge): it is
// recorded as seen and otherwise ignored (or parked), never an error, so
// the gateway stops sending it.
//
// Concurrent calls share transactions (group commit): while a batch of up
// to maxBatch events commits, the next gathers. Events are spread over
// gatewayLanes(db) lanes by the payment they change, each lane one batch
// at a time: on PostgreSQL the lanes' commits overlap (a batch does not
// wait for another's WAL flush), and the events of one payment stay in
// one lane, in order, so two lanes never both create or lock the same
// payment. A batch that fails is retried one event per transaction, so
// one bad event fails alone.
func (s *Service) HandleGatewayEvent(ctx context.Context, tenant, provider string, ev GatewayEvent) (known bool, err error) {
	r := &gwRequest{tenant: tenant, provider: provider, ev: ev, done: make(chan struct{})}
	lane := &s.gw[laneOf(ev.lockKey(), gatewayLanes(s.db))]
	lane.Lock()
	lane.queue = append(lane.queue, r)
	if !lane.running {
		lane.running = true
		go s.drainGatewayEvents(lane)
	}
	lane.Unlock()
	select {
	case <-r.done:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	if r.err != nil {
		return false, wrap("handling gateway event "+ev.ID, r.err)
	}
	if !r.known {
		s.log.Info("gateway event about an unknown object; acknowledged", "tenant", tenant, "provider", provider, "event", ev.ID, "type", ev.Type)
	}
	return r.known, nil
}

// lockKey is the reference of the payment ev changes ("" for none).
func (ev GatewayEvent) lockKey() string {
	switch {
	case ev.Payment != nil:
		return ev.Payment.Reference
	case ev.Refund != nil:
		return ev.Refund.PaymentReference
	case ev.Dispute != nil:
		return ev.Dispute.PaymentReference
	}
	return ""
}

// maxBatch bounds the gateway events handled in one transaction.
const maxBatch = 128

type gwRequest struct {
	tenant, provider string
	ev               GatewayEvent
	known            bool
	err              error
	done             chan struct{}
}

// gwQueue holds one lane's gateway events waiting for a transaction.
type gwQueue struct {
	sync.Mutex
	queue   []*gwRequest
	running bool
}

// maxLanes bounds gatewayLanes.
const maxLanes = 4

// laneOf spreads payment references over n lanes.
func laneOf(ref string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(ref))
	return int(h.Sum32() % uint32(n))
}

func (s *Service) drainGatewayEvents(lane *gwQueue) {
	for {
		lane.Lock()
		if len(lane.queue) == 0 {
			lane.running = false
			lane.Unlock()
			return
		}
		batch := lane.queue[:min(len(lane.queue), maxBatch)]
		lane.queue = lane.queue[len(batch):]
		lane.Unlock()
		ctx := context.Background()
		err := s.db.InTx(ctx, func(tx *db.Tx) error {
			// One statement claims the batch's event ids; only the fresh
			// ones are applied.
			fresh, err := claimGatewayEvents(ctx, tx, batch, s.now())
			if err != nil {
				return err
			}
			for i, r := range batch {
				if !fresh[i] {
					r.known = true // handled before: nothing changes
					continue
				}
				if r.known, err = s.apply(tenantCtx(ctx, r.tenant), tx, r.tenant, r.provider, r.ev); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil && len(batch) > 1 {
			for _, r := range batch { // one by one: the bad one fails alone
				r.err = s.db.InTx(ctx, func(tx *db.Tx) error {
					var err error
					r.known, err = s.handleIn(tenantCtx(ctx, r.tenant), tx, r.tenant, r.provider, r.ev)
					return err
				})
			}
		} else {
			for _, r := range batch {
				r.err = err
			}
		}
		for _, r := range batch {
			close(r.done)
		}
	}
}

// handleIn claims and applies one gateway event in tx (see
// HandleGatewayEvent).
func (s *Service) handleIn(ctx context.Context, tx *db.Tx, tenant, provider string, ev GatewayEvent) (known bool, err error) {
	fresh, err := claimGatewayEvent(ctx, tx, tenant, provider, ev.ID, ev.Type, s.now())
	if err != nil || !fresh {
		return !fresh, err
	}
	return s.apply(ctx, tx, tenant, provider, ev)
}

// apply applies one claimed gateway event in tx.
func (s *Service) apply(ctx context.Context, tx *db.Tx, tenant, provider string, ev GatewayEvent) (known bool, err error) {
	now := s.now()
	{
		switch {
		case ev.Payment != nil:
			known, err = s.paymentUpdate(ctx, tx, tenant, provider, *ev.Payment)
		case ev.Refund != nil:
			known, err = s.refundUpdate(ctx, tx, tenant, provider, *ev.Refund, ev)
		case ev.Dispute != nil:
			known, err = s.disputeUpdate(ctx, tx, tenant, provider, *ev.Dispute, ev)
		case ev.MethodSetup != nil:
			err = s.attachMethod(ctx, tx, tenant, provider, *ev.MethodSetup, now)
			if e, ok := abacus.AsError(err); ok && e.Kind == abacus.KindNotFound {
				return false, nil // a customer of another system, or deleted
			}
			known = err == nil
		case ev.MethodDetached != "":
			known, err = s.detachMethod(ctx, tx, tenant, provider, ev.MethodDetached, now)
		}
		return known, err
	}
}

func (s *Service) paymentUpdate(ctx context.Context, tx *db.Tx, tenant, provider string, u PaymentUpdate) (bool, error) {
	now := s.now()
	p, found, err := lockPaymentByReference(ctx, tx, tenant, provider, u.Reference)
	if err != nil {
		return false, err
	}
	if !found && u.InvoiceID != "" && u.TenantID == tenant && u.Attempt > 0 {
		// An attempt Abacus started whose answer it never recorded.
		if p, found, err = lockPaymentByAttempt(ctx, tx, tenant, u.InvoiceID, u.Attempt); err != nil {
			return false, err
		}
	}
	if !found {
		if u.InvoiceID == "" || u.TenantID != tenant {
			return false, nil
		}
		inv, err := s.billing.InvoiceIn(ctx, tx, u.InvoiceID)
		if e, ok := abacus.AsError(err); ok && e.Kind == abacus.KindNotFound {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		amt, err := FromMinor(u.Amount, u.Currency)
		if err != nil || !strings.EqualFold(u.Currency, inv.Currency) {
			s.log.Warn("gateway payment in another currency than its invoice; ignored", "tenant", tenant, "invoice", inv.ID,
				"reference", u.Reference, "currency", u.Currency)
			return false, nil
		}
		// A payment made outside Collect (a Checkout Session, a payment
		// link) that names the invoice: it joins the ledger.
		p = Payment{ID: abacus.NewID("pay"), InvoiceID: inv.ID, CustomerID: inv.CustomerID, Provider: provider,
			Status: StatusPending, Amount: amt, AmountRefunded: decimal.Zero, Currency: inv.Currency, CreatedAt: now, UpdatedAt: now}
		// Inserted without its reference, which advance sets (and so
		// applies what was parked for it).
		if err := insertPayment(ctx, tx, tenant, p); err != nil {
			return false, err
		}
	}
	_, err = s.advance(ctx, tx, tenant, p, u.GatewayPayment, now)
	return true, err
}

// park keeps ev, about payment ref Abacus does not know yet, until the
// payment's own event arrives (unpark).
func (s *Service) park(ctx context.Context, tx *db.Tx, tenant, provider, ref string, ev GatewayEvent) error {
	if ref == "" {
		return nil
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return parkEvent(ctx, tx, tenant, provider, ev.ID, ref, string(b), s.now())
}

// unpark applies the events parked for payment p, now that it is known.
func (s *Service) unpark(ctx context.Context, tx *db.Tx, tenant string, p Payment) error {
	if p.ProviderReference == "" {
		return nil
	}
	bodies, err := takeParked(ctx, tx, tenant, p.Provider, p.ProviderReference)
	if err != nil {
		return err
	}
	for _, b := range bodies {
		var ev GatewayEvent
		if err := json.Unmarshal([]byte(b), &ev); err != nil {
			return fmt.Errorf("reading a parked gateway event: %w", err)
		}
		switch {
		case ev.Refund != nil:
			_, err = s.refundUpdate(ctx, tx, tenant, p.Provider, *ev.Refund, ev)
		case ev.Dispute != nil:
			_, err = s.disputeUpdate(ctx, tx, tenant, p.Provider, *ev.Dispute, ev)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) refundUpdate(ctx context.Context, tx *db.Tx, tenant, provider string, u RefundUpdate, ev GatewayEvent) (bool, error) {
	p, found, err := lockPaymentByReference(ctx, tx, tenant, provider, u.PaymentReference)
	if err != nil {
		return false, err
	}
	if !found {
		return false, s.park(ctx, tx, tenant, provider, u.PaymentReference, ev)
	}
	total, err := FromMinor(u.AmountRefunded, u.Currency)
	if err != nil {
		return true, err
	}
	if !total.GreaterThan(p.AmountRefunded) {
		return true, nil // a refund already counted, or an older total
	}
	_, err = s.refunded(ctx, tx, tenant, p, total)
	return true, err
}

// refunded sets p's refunded total, settles its invoice and records
// payment.refunded.
func (s *Service) refunded(ctx context.Context, tx *db.Tx, tenant string, p Payment, total decimal.Decimal) (billing.Applied, error) {
	now := s.now()
	p.AmountRefunded, p.UpdatedAt = decimal.Min(total, p.Amount), now
	if err := updatePayment(ctx, tx, tenant, p); err != nil {
		return billing.Applied{}, err
	}
	applied, err := s.settle(ctx, tx, tenant, p.InvoiceID)
	if err != nil {
		return applied, err
	}
	_, err = PaymentRefunded.Record(ctx, tx, tenant, p.ID, now, paymentEvent(p, applied.Invoice))
	return applied, err
}

func (s *Service) disputeUpdate(ctx context.Context, tx *db.Tx, tenant, provider string, u DisputeUpdate, ev GatewayEvent) (bool, error) {
	now := s.now()
	p, found, err := lockPaymentByReference(ctx, tx, tenant, provider, u.PaymentReference)
	if err != nil {
		return false, err
	}
	if !found {
		return false, s.park(ctx, tx, tenant, provider, u.PaymentReference, ev)
	}
	d, seen, err := lockDispute(ctx, tx, tenant, provider, u.Reference)
	if err != nil {
		return true, err
	}
	if seen && (u.rank() < d.rank || (u.rank() == d.rank && (u.Closed || u.Status == d.Status))) {
		return true, nil // an older state, or this one again
	}
	amt, err := FromMinor(u.Amount, u.Currency)
	if err != nil {
		return true, err
	}
	if !seen {
		d = Dispute{ID: abacus.NewID("dp"), PaymentID: p.ID, InvoiceID: p.InvoiceID, CustomerID: p.CustomerID, Provider: provider,
			ProviderReference: u.Reference, Kind: u.Kind, Currency: p.Currency, CreatedAt: now}
	}
	d.Status, d.rank, d.Amount, d.Reason, d.UpdatedAt = u.Status, u.rank(), amt, u.Reason, now
	if u.Closed {
		d.Outcome = u.Outcome
		if d.ClosedAt == nil {
			d.ClosedAt = &now
		}
	}
	if err := saveDispute(ctx, tx, tenant, d, !seen); err != nil {
		return true, err
	}
	applied, err := s.settle(ctx, tx, tenant, p.InvoiceID)
	if err != nil {
		return true, err
	}
	de := DisputeEvent{DisputeID: d.ID, PaymentID: p.ID, InvoiceID: p.InvoiceID, CustomerID: p.CustomerID, Provider: provider,
		ProviderReference: d.ProviderReference, Kind: d.Kind, Status: d.Status, Outcome: d.Outcome, Amount: d.Amount, Currency: d.Currency,
		Reason: d.Reason, InvoiceAmountDue: applied.Invoice.AmountDue, InvoiceStatus: string(applied.Invoice.Status)}
	if !seen {
		if _, err := DisputeCreated.Record(ctx, tx, tenant, d.ID, now, de); err != nil {
			return true, err
		}
	}
	switch {
	case u.Closed:
		_, err = DisputeClosed.Record(ctx, tx, tenant, d.ID, now, de)
	case seen:
		_, err = DisputeUpdated.Record(ctx, tx, tenant, d.ID, now, de)
	}
	return true, err
}
