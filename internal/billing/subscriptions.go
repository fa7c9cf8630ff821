package billing

import (
	"context"
	"fmt"
	"time"

	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// Subscriptions is what billing needs to know about subscriptions. It is
// the one seam to the subscription module: NewSubscriptions implements it
// over that module's tables and types, so a change there touches this file.
type Subscriptions interface {
	// Load returns the subscriptions with ids of tenant, with their phases,
	// read through q (billing's transaction). Unknown ids are left out.
	Load(ctx context.Context, q db.Querier, tenant string, ids []string) (map[string]*SubInfo, error)
	// PendingProrations returns the prorations of subscription id not yet
	// invoiced and effective at or before upTo.
	PendingProrations(ctx context.Context, q db.Querier, tenant, id string, upTo time.Time) ([]Proration, error)
	// MarkProrationsInvoiced records inside tx that prorations are billed.
	MarkProrationsInvoiced(ctx context.Context, tx *db.Tx, tenant string, ids []string, at time.Time) error
}

// SubInfo is a subscription as billing sees it, read through the
// subscription module's read API.
type SubInfo = subscription.BillingSub

// PhaseInfo is a span on one plan version and quantity, with its pricing
// (overrides applied).
type PhaseInfo = subscription.BillingPhase

// Proration is a set of proration lines from one mid-period change.
type Proration = subscription.Proration

// BulkProrations is an optional extension of Subscriptions the cycle
// worker uses to read a whole batch's pending prorations in one query.
type BulkProrations interface {
	// PendingProrationsOf returns the not yet invoiced prorations of the
	// subscriptions with ids, by subscription, oldest first.
	PendingProrationsOf(ctx context.Context, q db.Querier, tenant string, ids []string) (map[string][]Proration, error)
}

// NewSubscriptions returns the Subscriptions seam over the subscription
// module's tables; cat resolves (and caches) plan versions. A cycle whose
// subscription has a transition due at or before its boundary (a plan
// change scheduled for period end, a trial end, a cancellation) waits
// until the subscriptions worker has applied it, so it is never billed on
// the old state.
func NewSubscriptions(cat *catalog.Service) Subscriptions {
	return &subStore{BillingView: subscription.NewBillingView(cat)}
}

// Advancer applies the subscriptions' time-driven transitions due at now
// (subscription.Service.Advance does).
type Advancer interface {
	Advance(ctx context.Context, now time.Time) (int, error)
}

// NewSubscriptionsAdvancing is NewSubscriptions that, when a cycle due for
// billing waits on a subscription transition, applies the due transitions
// through adv first instead of waiting for the subscriptions worker.
func NewSubscriptionsAdvancing(cat *catalog.Service, adv Advancer) Subscriptions {
	return &subStore{BillingView: subscription.NewBillingView(cat), adv: adv}
}

// subStore reads through the subscription module's BillingView.
type subStore struct {
	*subscription.BillingView
	adv Advancer
}

// transitionGuard is implemented by Subscriptions that know about
// time-driven subscription transitions.
type transitionGuard interface {
	// heldSQL is a condition on a billing_cycles row: true while its
	// subscription has a transition due at or before the boundary (its
	// hold_at, kept by CycleSaves).
	heldSQL() string
	// advanceDue applies the transitions due at now that hold cycles due
	// at now, if it can.
	advanceDue(ctx context.Context, q db.Querier, now time.Time) error
}

func (s *subStore) heldSQL() string {
	return `(billing_cycles.hold_at IS NOT NULL AND billing_cycles.hold_at <= billing_cycles.next_at)`
}

func (s *subStore) advanceDue(ctx context.Context, q db.Querier, now time.Time) error {
	if s.adv == nil {
		return nil
	}
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM billing_cycles
		WHERE hold_at IS NOT NULL AND hold_at <= $1 AND done = 0 AND next_at <= $1 AND hold_at <= next_at
		LIMIT 1) x`, db.TimeOf(now)).Scan(&n); err != nil {
		return fmt.Errorf("finding subscriptions to advance: %w", err)
	}
	if n == 0 {
		return nil
	}
	if _, err := s.adv.Advance(ctx, now); err != nil {
		return fmt.Errorf("advancing subscriptions: %w", err)
	}
	return nil
}

// CycleSaves is the subscription module's save hook (register it with
// subscription.Service.OnSave): inside the transaction that writes a
// subscription it creates the subscription's billing cycle, billed from
// the end of its trial or else its start, and keeps the cycle's hold_at at
// the subscription's next time-driven transition, so billing never reads
// the subscription tables to find new subscriptions or held cycles.
func CycleSaves(ctx context.Context, tx *db.Tx, s subscription.Saved) error {
	from := s.StartedAt
	if s.TrialEnd != nil && s.TrialEnd.After(s.StartedAt) {
		from = *s.TrialEnd
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO billing_cycles (tenant_id, subscription_id, bill_from, next_index, next_at, done, hold_at)
		VALUES ($1, $2, $3, 0, $3, 0, $4) ON CONFLICT (subscription_id) DO UPDATE SET hold_at = excluded.hold_at`,
		s.Tenant, s.ID, db.TimeOf(from), db.NullTimeOf(s.NextActionAt)); err != nil {
		return fmt.Errorf("keeping the billing cycle of %s: %w", s.ID, err)
	}
	return nil
}
