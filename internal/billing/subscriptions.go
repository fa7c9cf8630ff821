package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
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
	// DiscoverSQL is the SELECT of (tenant_id, subscription_id, bill_from)
	// for subscriptions billing has no cycle for yet.
	DiscoverSQL() string
}

// SubInfo is a subscription as billing sees it.
type SubInfo struct {
	ID, TenantID, CustomerID, PlanID string
	Schedule                         period.Schedule
	// BillFrom is when billing starts: the trial end, else the start.
	BillFrom time.Time
	// EndAt is when the subscription ends (ended, or canceled to end), if
	// it does.
	EndAt  *time.Time
	Phases []PhaseInfo
}

// PhaseInfo is a span on one plan version and quantity, with its pricing
// (overrides applied).
type PhaseInfo struct {
	VersionID  string
	Start      time.Time
	End        *time.Time
	Paused     bool
	Pricing    pricing.PlanPricing
	Quantities map[string]decimal.Decimal
}

// Proration is a set of proration lines from one mid-period change.
type Proration struct {
	ID          string
	EffectiveAt time.Time
	Lines       []pricing.Line
}

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
func NewSubscriptions(cat *catalog.Service) Subscriptions { return &subStore{cat: cat} }

// Advancer applies the subscriptions' time-driven transitions due at now
// (subscription.Service.Advance does).
type Advancer interface {
	Advance(ctx context.Context, now time.Time) (int, error)
}

// NewSubscriptionsAdvancing is NewSubscriptions that, when a cycle due for
// billing waits on a subscription transition, applies the due transitions
// through adv first instead of waiting for the subscriptions worker.
func NewSubscriptionsAdvancing(cat *catalog.Service, adv Advancer) Subscriptions {
	return &subStore{cat: cat, adv: adv}
}

type subStore struct {
	cat *catalog.Service
	adv Advancer
}

// transitionGuard is implemented by Subscriptions that know about
// time-driven subscription transitions.
type transitionGuard interface {
	// heldSQL is a condition on a billing_cycles row: true while its
	// subscription has a transition due at or before the boundary.
	heldSQL() string
	// advanceDue applies the transitions due at now that hold cycles due
	// at now, if it can.
	advanceDue(ctx context.Context, q db.Querier, now time.Time) error
}

func (s *subStore) heldSQL() string {
	return `EXISTS (SELECT 1 FROM subscriptions hs WHERE hs.id = billing_cycles.subscription_id AND hs.next_action_at IS NOT NULL
		AND hs.next_action_at <= billing_cycles.next_at)`
}

func (s *subStore) advanceDue(ctx context.Context, q db.Querier, now time.Time) error {
	if s.adv == nil {
		return nil
	}
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM subscriptions s JOIN billing_cycles c ON c.subscription_id = s.id
		WHERE s.next_action_at IS NOT NULL AND s.next_action_at <= $1 AND c.done = 0 AND c.next_at <= $1 AND s.next_action_at <= c.next_at
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

func (s *subStore) DiscoverSQL() string {
	return `SELECT s.tenant_id AS tenant_id, s.id AS subscription_id,
		CASE WHEN s.trial_end IS NOT NULL AND s.trial_end > s.started_at THEN s.trial_end ELSE s.started_at END AS bill_from FROM subscriptions s WHERE NOT EXISTS (SELECT 1 FROM billing_cycles c WHERE c.subscription_id = s.id)`
}

func (s *subStore) Load(ctx context.Context, q db.Querier, tenant string, ids []string) (map[string]*SubInfo, error) {
	out := map[string]*SubInfo{}
	if len(ids) == 0 {
		return out, nil
	}
	args := []any{tenant}
	for _, id := range ids {
		args = append(args, id)
	}
	in := db.Placeholders(2, len(ids))
	rows, err := q.QueryContext(ctx, `SELECT id, customer_id, plan_id, status, timezone, interval_unit, interval_count, anchor, started_at,
		trial_end, ends_at, ended_at FROM subscriptions WHERE tenant_id = $1 AND id IN (`+in+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("reading subscriptions: %w", err)
	}
	for rows.Next() {
		si := &SubInfo{TenantID: tenant}
		var status, tz, unit string
		var count int
		var anchor, started db.Time
		var trialEnd, endsAt, endedAt db.NullTime
		if err := rows.Scan(&si.ID, &si.CustomerID, &si.PlanID, &status, &tz, &unit, &count, &anchor, &started, &trialEnd, &endsAt, &endedAt); err != nil {
			rows.Close()
			return nil, err
		}
		loc, err := time.LoadLocation(tz)
		if err != nil {
			loc = time.UTC
		}
		si.Schedule = period.NewSchedule(anchor.Time, period.Interval{Unit: period.Unit(unit), Count: count}, loc)
		si.BillFrom = started.Time
		if trialEnd.Valid && trialEnd.Time.After(si.BillFrom) {
			si.BillFrom = trialEnd.Time
		}
		switch {
		case endedAt.Valid:
			si.EndAt = endedAt.Ptr()
		case subscription.Status(status) == subscription.Canceled && endsAt.Valid:
			si.EndAt = endsAt.Ptr()
		}
		out[si.ID] = si
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = q.QueryContext(ctx, `SELECT subscription_id, version_id, quantity, overrides, paused, starts_at, ends_at FROM subscription_phases
		WHERE tenant_id = $1 AND subscription_id IN (`+in+`) ORDER BY subscription_id, starts_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("reading phases: %w", err)
	}
	type raw struct {
		sub, version, qty, overrides string
		paused                       int
		start                        db.Time
		end                          db.NullTime
	}
	var raws []raw
	for rows.Next() {
		var r raw
		if err := rows.Scan(&r.sub, &r.version, &r.qty, &r.overrides, &r.paused, &r.start, &r.end); err != nil {
			rows.Close()
			return nil, err
		}
		raws = append(raws, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, r := range raws {
		si := out[r.sub]
		if si == nil {
			continue
		}
		v, err := s.cat.LoadVersion(ctx, q, tenant, r.version)
		if err != nil {
			return nil, fmt.Errorf("loading version %s of %s: %w", r.version, r.sub, err)
		}
		var ov []subscription.Override
		if err := json.Unmarshal([]byte(r.overrides), &ov); err != nil {
			return nil, fmt.Errorf("decoding overrides of %s: %w", r.sub, err)
		}
		qty, err := decimal.NewFromString(r.qty)
		if err != nil {
			return nil, fmt.Errorf("decoding quantity of %s: %w", r.sub, err)
		}
		pp := subscription.Pricing(v, ov)
		si.Phases = append(si.Phases, PhaseInfo{VersionID: r.version, Start: r.start.Time, End: r.end.Ptr(), Paused: r.paused == 1, Pricing: pp,
			Quantities: subscription.Quantities(pp, qty)})
	}
	return out, nil
}

func (s *subStore) PendingProrations(ctx context.Context, q db.Querier, tenant, id string, upTo time.Time) ([]Proration, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, effective_at, lines FROM subscription_prorations
		WHERE tenant_id = $1 AND subscription_id = $2 AND invoiced_at IS NULL AND effective_at <= $3 ORDER BY id`, tenant, id, db.TimeOf(upTo))
	if err != nil {
		return nil, fmt.Errorf("reading prorations: %w", err)
	}
	defer rows.Close()
	var out []Proration
	for rows.Next() {
		var p Proration
		var lines string
		var eff db.Time
		if err := rows.Scan(&p.ID, &eff, &lines); err != nil {
			return nil, err
		}
		p.EffectiveAt = eff.Time
		if err := json.Unmarshal([]byte(lines), &p.Lines); err != nil {
			return nil, fmt.Errorf("decoding proration %s: %w", p.ID, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (s *subStore) PendingProrationsOf(ctx context.Context, q db.Querier, tenant string, ids []string) (map[string][]Proration, error) {
	out := map[string][]Proration{}
	if len(ids) == 0 {
		return out, nil
	}
	args := []any{tenant}
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := q.QueryContext(ctx, `SELECT subscription_id, id, effective_at, lines FROM subscription_prorations
		WHERE tenant_id = $1 AND invoiced_at IS NULL AND subscription_id IN (`+db.Placeholders(2, len(ids))+`) ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("reading prorations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p Proration
		var sub, lines string
		var eff db.Time
		if err := rows.Scan(&sub, &p.ID, &eff, &lines); err != nil {
			return nil, err
		}
		p.EffectiveAt = eff.Time
		if err := json.Unmarshal([]byte(lines), &p.Lines); err != nil {
			return nil, fmt.Errorf("decoding proration %s: %w", p.ID, err)
		}
		out[sub] = append(out[sub], p)
	}
	return out, rows.Err()
}

// loadCustomers reads the customers with ids of tenant in one query (the
// columns catalog.LoadCustomer reads that billing uses).
func loadCustomers(ctx context.Context, q db.Querier, tenant string, ids []string) (map[string]catalog.Customer, error) {
	out := map[string]catalog.Customer{}
	if len(ids) == 0 {
		return out, nil
	}
	args := []any{tenant}
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := q.QueryContext(ctx, `SELECT id, COALESCE(external_id, ''), name, email, currency, address, tax_id, tax_status, timezone,
		metadata, subjects, created_at, updated_at FROM customers WHERE tenant_id = $1 AND id IN (`+db.Placeholders(2, len(ids))+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("reading customers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c catalog.Customer
		var addr, meta, subs, tax string
		var created, updated db.Time
		if err := rows.Scan(&c.ID, &c.ExternalID, &c.Name, &c.Email, &c.Currency, &addr, &c.TaxID, &tax, &c.Timezone, &meta, &subs,
			&created, &updated); err != nil {
			return nil, err
		}
		c.TaxStatus, c.CreatedAt, c.UpdatedAt = catalog.TaxStatus(tax), created.Time, updated.Time
		if err := errors.Join(json.Unmarshal([]byte(addr), &c.Address), json.Unmarshal([]byte(meta), &c.Metadata),
			json.Unmarshal([]byte(subs), &c.Subjects)); err != nil {
			return nil, fmt.Errorf("decoding customer %s: %w", c.ID, err)
		}
		out[c.ID] = c
	}
	return out, rows.Err()
}

func (s *subStore) MarkProrationsInvoiced(ctx context.Context, tx *db.Tx, tenant string, ids []string, at time.Time) error {
	return subscription.MarkProrationsInvoiced(ctx, tx, tenant, ids, at)
}
