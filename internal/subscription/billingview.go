package subscription

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
)

// BillingSub is a subscription as billing reads it.
type BillingSub struct {
	ID, TenantID, CustomerID, PlanID string
	Schedule                         period.Schedule
	// BillFrom is when billing starts: the trial end, else the start.
	BillFrom time.Time
	// EndAt is when the subscription ends (ended, or canceled to end), if
	// it does.
	EndAt  *time.Time
	Phases []BillingPhase
}

// BillingPhase is a span on one plan version and quantity, with its
// pricing (overrides applied).
type BillingPhase struct {
	VersionID  string
	Start      time.Time
	End        *time.Time
	Paused     bool
	Pricing    pricing.PlanPricing
	Quantities map[string]decimal.Decimal
}

// BillingView is the read API billing uses: subscriptions with their
// phases and pending prorations, read in billing's own transaction, so
// no other package's SQL names the subscription tables.
type BillingView struct {
	cat *catalog.Service
}

// NewBillingView returns the view; cat resolves (and caches) plan
// versions.
func NewBillingView(cat *catalog.Service) *BillingView { return &BillingView{cat: cat} }

// Load returns the subscriptions with ids of tenant, with their phases,
// read through q. Unknown ids are left out.
func (v *BillingView) Load(ctx context.Context, q db.Querier, tenant string, ids []string) (map[string]*BillingSub, error) {
	out := map[string]*BillingSub{}
	if len(ids) == 0 {
		return out, nil
	}
	args := idArgs(tenant, ids)
	rows, err := q.QueryContext(ctx, `SELECT id, customer_id, plan_id, status, timezone, interval_unit, interval_count, anchor, started_at,
		trial_end, ends_at, ended_at FROM subscriptions WHERE tenant_id = $1 AND id IN (`+db.Placeholders(2, len(ids))+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("reading subscriptions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		bs, err := scanBillingSub(rows, tenant)
		if err != nil {
			return nil, err
		}
		out[bs.ID] = bs
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	return out, v.loadPhases(ctx, q, tenant, args, out)
}

func scanBillingSub(rows interface{ Scan(...any) error }, tenant string) (*BillingSub, error) {
	bs := &BillingSub{TenantID: tenant}
	var status, tz, unit string
	var count int
	var anchor, started db.Time
	var trialEnd, endsAt, endedAt db.NullTime
	if err := rows.Scan(&bs.ID, &bs.CustomerID, &bs.PlanID, &status, &tz, &unit, &count, &anchor, &started, &trialEnd, &endsAt, &endedAt); err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		loc = time.UTC
	}
	bs.Schedule = period.NewSchedule(anchor.Time, period.Interval{Unit: period.Unit(unit), Count: count}, loc)
	bs.BillFrom = started.Time
	if trialEnd.Valid && trialEnd.Time.After(bs.BillFrom) {
		bs.BillFrom = trialEnd.Time
	}
	switch {
	case endedAt.Valid:
		bs.EndAt = endedAt.Ptr()
	case Status(status) == Canceled && endsAt.Valid:
		bs.EndAt = endsAt.Ptr()
	}
	return bs, nil
}

// loadPhases adds the phases of the subscriptions in subs (args: tenant,
// then their ids), with their pricing.
func (v *BillingView) loadPhases(ctx context.Context, q db.Querier, tenant string, args []any, subs map[string]*BillingSub) error {
	rows, err := q.QueryContext(ctx, `SELECT subscription_id, version_id, quantity, overrides, paused, starts_at, ends_at FROM subscription_phases
		WHERE tenant_id = $1 AND subscription_id IN (`+db.Placeholders(2, len(args)-1)+`) ORDER BY subscription_id, starts_at, id`, args...)
	if err != nil {
		return fmt.Errorf("reading phases: %w", err)
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
			return err
		}
		raws = append(raws, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	// Versions are resolved after the rows are closed: on SQLite, q may be
	// the one writer connection.
	for _, r := range raws {
		bs := subs[r.sub]
		if bs == nil {
			continue
		}
		ver, err := v.cat.LoadVersion(ctx, q, tenant, r.version)
		if err != nil {
			return fmt.Errorf("loading version %s of %s: %w", r.version, r.sub, err)
		}
		var ov []Override
		if err := json.Unmarshal([]byte(r.overrides), &ov); err != nil {
			return fmt.Errorf("decoding overrides of %s: %w", r.sub, err)
		}
		qty, err := decimal.NewFromString(r.qty)
		if err != nil {
			return fmt.Errorf("decoding quantity of %s: %w", r.sub, err)
		}
		pp := Pricing(ver, ov)
		bs.Phases = append(bs.Phases, BillingPhase{VersionID: r.version, Start: r.start.Time, End: r.end.Ptr(), Paused: r.paused == 1,
			Pricing: pp, Quantities: Quantities(pp, qty)})
	}
	return nil
}

// PendingProrations returns the prorations of subscription id not yet
// invoiced and effective at or before upTo, oldest first.
func (v *BillingView) PendingProrations(ctx context.Context, q db.Querier, tenant, id string, upTo time.Time) ([]Proration, error) {
	by, err := readProrations(ctx, q, `WHERE tenant_id = $1 AND subscription_id = $2 AND invoiced_at IS NULL AND effective_at <= $3`,
		tenant, id, db.TimeOf(upTo))
	return by[id], err
}

// PendingProrationsOf returns the not yet invoiced prorations of the
// subscriptions with ids, by subscription, oldest first.
func (v *BillingView) PendingProrationsOf(ctx context.Context, q db.Querier, tenant string, ids []string) (map[string][]Proration, error) {
	if len(ids) == 0 {
		return map[string][]Proration{}, nil
	}
	return readProrations(ctx, q, `WHERE tenant_id = $1 AND invoiced_at IS NULL AND subscription_id IN (`+db.Placeholders(2, len(ids))+`)`,
		idArgs(tenant, ids)...)
}

// MarkProrationsInvoiced records, inside billing's transaction tx, that
// the prorations with the given ids are on an invoice.
func (v *BillingView) MarkProrationsInvoiced(ctx context.Context, tx *db.Tx, tenant string, ids []string, at time.Time) error {
	return MarkProrationsInvoiced(ctx, tx, tenant, ids, at)
}

// readProrations reads the prorations matching where, by subscription,
// oldest first.
func readProrations(ctx context.Context, q db.Querier, where string, args ...any) (map[string][]Proration, error) {
	rows, err := q.QueryContext(ctx, `SELECT subscription_id, id, change_id, effective_at, lines, invoiced_at FROM subscription_prorations `+
		where+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("reading prorations: %w", err)
	}
	defer rows.Close()
	out := map[string][]Proration{}
	for rows.Next() {
		var p Proration
		var sub, lines string
		var eff db.Time
		var invoiced db.NullTime
		if err := rows.Scan(&sub, &p.ID, &p.ChangeID, &eff, &lines, &invoiced); err != nil {
			return nil, err
		}
		p.EffectiveAt, p.InvoicedAt = eff.Time, invoiced.Ptr()
		if err := json.Unmarshal([]byte(lines), &p.Lines); err != nil {
			return nil, fmt.Errorf("decoding proration %s: %w", p.ID, err)
		}
		out[sub] = append(out[sub], p)
	}
	return out, rows.Err()
}

// idArgs is tenant followed by ids, the arguments of "tenant_id = $1 AND
// … IN ($2, …)".
func idArgs(tenant string, ids []string) []any {
	args := make([]any, 0, len(ids)+1)
	args = append(args, tenant)
	for _, id := range ids {
		args = append(args, id)
	}
	return args
}
