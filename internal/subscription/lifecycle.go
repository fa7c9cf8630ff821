package subscription

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
)

// CreateInput creates a subscription. Give PlanID (id or key: the latest
// published version is taken) or VersionID (a published version).
type CreateInput struct {
	CustomerID     string           `json:"customer_id"`
	PlanID         string           `json:"plan_id,omitempty"`
	VersionID      string           `json:"version_id,omitempty"`
	StartAt        *time.Time       `json:"start_at,omitempty" doc:"now when omitted; may be in the past"`
	SkipTrial      bool             `json:"skip_trial,omitempty" doc:"start without the version's trial"`
	TrialDays      *int             `json:"trial_days,omitempty" doc:"overrides the version's trial length"`
	Quantity       *decimal.Decimal `json:"quantity,omitempty" doc:"seats: the quantity of every fee charge (1 when omitted)"`
	PriceOverrides []Override       `json:"price_overrides,omitempty"`
}

// resolveVersion finds the version a plan/version reference names and
// checks it is published and in the customer's currency.
func (s *Service) resolveVersion(ctx context.Context, tx *db.Tx, tenant string, cus catalog.Customer, planID, versionID string) (catalog.Version, error) {
	var v catalog.Version
	var err error
	field := "plan_id"
	switch {
	case versionID != "":
		field = "version_id"
		if v, err = s.cat.LoadVersion(ctx, tx, tenant, versionID); err != nil {
			return v, err
		}
		status, err := catalog.CurrentVersionStatus(ctx, tx, tenant, v.ID)
		if err != nil {
			return v, err
		}
		if status != catalog.Published {
			return v, abacus.Conflict("version_not_published", "version %s is %s; subscribe to a published version", v.ID, status).
				WithField("version_id", "is "+string(status))
		}
		if planID != "" {
			p, err := catalog.LoadPlan(ctx, tx, tenant, planID)
			if err != nil {
				return v, err
			}
			if p.ID != v.PlanID {
				return v, abacus.Invalid("version_plan_mismatch", "version %s is not a version of plan %s", v.ID, planID).
					WithField("version_id", "belongs to another plan")
			}
		}
	case planID != "":
		if v, err = s.cat.LatestPublished(ctx, tx, tenant, planID); err != nil {
			return v, err
		}
	default:
		return v, abacus.Invalid("plan_required", "give plan_id or version_id").WithField("plan_id", "is required")
	}
	if v.Currency != cus.Currency {
		return v, abacus.Invalid("currency_mismatch", "the plan version is priced in %s but customer %s pays in %s; pick a version in %s",
			v.Currency, cus.ID, cus.Currency, cus.Currency).WithField(field, "is priced in "+v.Currency+", the customer pays in "+cus.Currency)
	}
	return v, nil
}

func validateOverrides(v *abacus.Validation, ver catalog.Version, overrides []Override) {
	seen := map[string]bool{}
	for i, o := range overrides {
		f := fmt.Sprintf("price_overrides[%d]", i)
		var ch *pricing.Charge
		for j := range ver.Charges {
			if ver.Charges[j].Key == o.Charge {
				ch = &ver.Charges[j]
			}
		}
		switch {
		case ch == nil:
			v.Add(f+".charge", "the plan version has no charge %q", o.Charge)
			continue
		case seen[o.Charge]:
			v.Add(f+".charge", "duplicate override of %q", o.Charge)
		}
		seen[o.Charge] = true
		switch ch.Kind {
		case pricing.ChargeFee:
			if o.Fee == nil || o.Price != nil {
				v.Add(f+".fee", "charge %q is a fee: give fee, not price", o.Charge)
			} else {
				o.Fee.ValidateInto(v, f+".fee")
			}
		case pricing.ChargeUsage:
			if o.Price == nil || o.Fee != nil {
				v.Add(f+".price", "charge %q is a usage charge: give price, not fee", o.Charge)
			} else {
				o.Price.ValidateInto(v, f+".price")
			}
		}
	}
}

func validQuantity(v *abacus.Validation, q decimal.Decimal, field string) {
	if q.IsNegative() {
		v.Add(field, "must not be negative")
	}
}

// Create subscribes a customer. Errors: "customer_not_found", conflict
// "customer_archived" (customer_id), "plan_not_found",
// "plan_not_published", "version_not_published", "currency_mismatch"
// (plan_id or version_id), "invalid_subscription" naming bad fields.
// Nothing is written on error.
func (s *Service) Create(ctx context.Context, in CreateInput) (Subscription, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Subscription{}, err
	}
	now := s.now()
	var sub Subscription
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		cus, err := catalog.LoadCustomer(ctx, tx, tenant, in.CustomerID)
		var ae *abacus.Error
		if errors.As(err, &ae) && ae.Kind == abacus.KindNotFound {
			return ae.WithField("customer_id", "no such customer")
		}
		if err != nil {
			return err
		}
		if cus.ArchivedAt != nil {
			return abacus.Conflict("customer_archived", "customer %s is archived and cannot get new subscriptions", cus.ID).
				WithField("customer_id", "is archived")
		}
		ver, err := s.resolveVersion(ctx, tx, tenant, cus, in.PlanID, in.VersionID)
		if err != nil {
			return err
		}
		var v abacus.Validation
		qty := decimal.NewFromInt(1)
		if in.Quantity != nil {
			qty = *in.Quantity
			validQuantity(&v, qty, "quantity")
		}
		validateOverrides(&v, ver, in.PriceOverrides)
		trialDays := ver.TrialDays
		if in.TrialDays != nil {
			trialDays = *in.TrialDays
			if trialDays < 0 || trialDays > catalog.MaxTrialDays {
				v.Add("trial_days", "must be between 0 and %d", catalog.MaxTrialDays)
			}
		}
		if err := v.Err("invalid_subscription"); err != nil {
			return err
		}
		start := now
		if in.StartAt != nil {
			start = in.StartAt.UTC().Truncate(time.Microsecond)
		}
		loc := cus.Location()
		sub = Subscription{ID: abacus.NewID("sub"), tenant: tenant, CustomerID: cus.ID, PlanID: ver.PlanID, VersionID: ver.ID,
			Status: Active, Quantity: qty, Overrides: in.PriceOverrides, Timezone: cus.Timezone, BillingInterval: ver.BillingInterval,
			StartedAt: start, CreatedAt: now, UpdatedAt: now}
		if sub.Overrides == nil {
			sub.Overrides = []Override{}
		}
		billFrom := start
		if trialDays > 0 && !in.SkipTrial {
			te := start.In(loc).AddDate(0, 0, trialDays).UTC()
			sub.TrialEnd, sub.Status, billFrom = &te, Trialing, te
		}
		sub.BillingAnchor = anchorFor(ver.Anchor, ver.BillingInterval, billFrom, loc)
		if err := insertSub(ctx, tx, sub); err != nil {
			return err
		}
		if err := openPhase(ctx, tx, sub, start, false); err != nil {
			return err
		}
		if _, err := record(ctx, tx, sub, "created", "", start, now, map[string]any{"version_id": ver.ID, "quantity": qty}); err != nil {
			return err
		}
		typ := "activated"
		if sub.Status == Trialing {
			typ = "trial_started"
		}
		if _, err := record(ctx, tx, sub, typ, "", start, now, map[string]any{"trial_end": sub.TrialEnd}); err != nil {
			return err
		}
		// A backdated start may already be past its trial or more.
		if err := s.applyDue(ctx, tx, &sub, now); err != nil {
			return err
		}
		return s.save(ctx, tx, sub)
	})
	if err != nil {
		return Subscription{}, err
	}
	s.invalidate(tenant, sub.CustomerID)
	return s.withPeriod(sub, now), nil
}

// anchorFor returns the billing anchor for periods that start at from.
func anchorFor(policy catalog.AnchorPolicy, iv period.Interval, from time.Time, loc *time.Location) time.Time {
	if policy != catalog.AnchorCalendar {
		return from
	}
	l := from.In(loc)
	y, m, d := l.Date()
	switch iv.Unit {
	case period.Week:
		wd := (int(l.Weekday()) + 6) % 7 // days since Monday
		return time.Date(y, m, d-wd, 0, 0, 0, 0, loc).UTC()
	case period.Quarter:
		return time.Date(y, m-(m-1)%3, 1, 0, 0, 0, 0, loc).UTC()
	case period.Year:
		return time.Date(y, 1, 1, 0, 0, 0, 0, loc).UTC()
	}
	return time.Date(y, m, 1, 0, 0, 0, 0, loc).UTC()
}

func (s *Service) withPeriod(sub Subscription, now time.Time) Subscription {
	if sub.Status != Ended {
		p := sub.PeriodAt(maxTime(now, sub.StartedAt))
		sub.CurrentPeriod = &p
	}
	return sub
}

// applyDue performs every time-driven transition of sub due at or before
// now, in time order: trial end → active, a scheduled plan change, and
// the end of a canceled subscription. It is idempotent.
func (s *Service) applyDue(ctx context.Context, tx *db.Tx, sub *Subscription, now time.Time) error {
	for i := 0; i < 10; i++ {
		next := nextAction(*sub)
		if next == nil || next.After(now) {
			return nil
		}
		at := *next
		from := sub.Status
		switch {
		case sub.Status == Trialing && sub.TrialEnd != nil && !sub.TrialEnd.After(at):
			sub.Status, sub.UpdatedAt = Active, now
			if _, err := record(ctx, tx, *sub, "activated", from, at, now, map[string]any{"reason": "trial_ended"}); err != nil {
				return err
			}
		case sub.Status == Canceled && sub.EndsAt != nil && !sub.EndsAt.After(at):
			if err := s.end(ctx, tx, sub, at, now); err != nil {
				return err
			}
		case sub.PendingVersionID != "" && sub.PendingAt != nil && !sub.PendingAt.After(at):
			ver, err := s.cat.LoadVersion(ctx, tx, sub.tenant, sub.PendingVersionID)
			if err != nil {
				return err
			}
			old := sub.VersionID
			sub.VersionID, sub.Overrides, sub.PendingVersionID, sub.PendingAt, sub.UpdatedAt = ver.ID, []Override{}, "", nil, now
			if ver.BillingInterval != sub.BillingInterval {
				sub.BillingInterval, sub.BillingAnchor = ver.BillingInterval, at
			}
			if err := splitPhase(ctx, tx, *sub, at, sub.Status == Paused); err != nil {
				return err
			}
			if _, err := record(ctx, tx, *sub, "plan_changed", from, at, now, map[string]any{"from_version_id": old, "to_version_id": ver.ID,
				"scheduled": true}); err != nil {
				return err
			}
		default:
			return fmt.Errorf("subscription %s: no transition for due time %s", sub.ID, at)
		}
	}
	return nil
}

// end moves sub to ended at at, closing its open phase.
func (s *Service) end(ctx context.Context, tx *db.Tx, sub *Subscription, at, now time.Time) error {
	from := sub.Status
	if err := checkTransition(from, Ended); err != nil {
		return err
	}
	sub.Status, sub.EndedAt, sub.EndsAt, sub.UpdatedAt = Ended, &at, &at, now
	sub.PendingVersionID, sub.PendingAt = "", nil
	if err := closePhase(ctx, tx, *sub, at); err != nil {
		return err
	}
	for _, h := range s.onEnd {
		if err := h(ctx, tx, sub.tenant, sub.ID, at); err != nil {
			return fmt.Errorf("ending %s: %w", sub.ID, err)
		}
	}
	_, err := record(ctx, tx, *sub, "ended", from, at, now, nil)
	return err
}

// mutate runs fn on subscription id, locked, and saves it; every change
// and event fn records commits with it.
func (s *Service) mutate(ctx context.Context, id string, fn func(tx *db.Tx, sub *Subscription, now time.Time) error) (Subscription, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Subscription{}, err
	}
	now := s.now()
	var sub Subscription
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		sub, err = load(ctx, tx, tenant, id, true)
		if err != nil {
			return err
		}
		if err := s.applyDue(ctx, tx, &sub, now); err != nil { // catch up before acting on the present
			return err
		}
		if err := fn(tx, &sub, now); err != nil {
			return err
		}
		sub.UpdatedAt = now
		return s.save(ctx, tx, sub)
	})
	if err != nil {
		return Subscription{}, err
	}
	s.invalidate(tenant, sub.CustomerID)
	return s.withPeriod(sub, now), nil
}

// When says when a change takes effect.
type When string

const (
	Now       When = "now"
	PeriodEnd When = "period_end"
)

// ChangePlanInput changes a subscription's plan version.
type ChangePlanInput struct {
	PlanID    string `json:"plan_id,omitempty" doc:"id or key; its latest published version"`
	VersionID string `json:"version_id,omitempty"`
	When      When   `json:"when,omitempty" enum:"now,period_end" doc:"now (default; fixed fees prorated) or period_end"`
}

func changeable(sub Subscription) error {
	switch sub.Status {
	case Trialing, Active, PastDue:
		return nil
	}
	return abacus.Conflict("invalid_transition", "a %s subscription cannot change plan or quantity", sub.Status).
		WithField("status", "is "+string(sub.Status))
}

// ChangePlan moves the subscription to another plan version, now (usage
// up to now stays on the old version's phase; in-advance fees are
// credited and charged pro rata) or at the end of the current period.
// Errors: those of Create's version checks, "invalid_transition" for a
// paused, canceled or ended subscription, "interval_mismatch" for an
// immediate change to another billing interval.
func (s *Service) ChangePlan(ctx context.Context, id string, in ChangePlanInput) (Subscription, error) {
	return s.mutate(ctx, id, func(tx *db.Tx, sub *Subscription, now time.Time) error {
		if err := changeable(*sub); err != nil {
			return err
		}
		cus, err := catalog.LoadCustomer(ctx, tx, sub.tenant, sub.CustomerID)
		if err != nil {
			return err
		}
		next, err := s.resolveVersion(ctx, tx, sub.tenant, cus, in.PlanID, in.VersionID)
		if err != nil {
			return err
		}
		at := maxTime(now, sub.StartedAt)
		p := sub.PeriodAt(at)
		switch in.When {
		case PeriodEnd:
			sub.PendingVersionID, sub.PendingAt = next.ID, &p.End
			_, err := record(ctx, tx, *sub, "plan_change_scheduled", sub.Status, now, now, map[string]any{
				"from_version_id": sub.VersionID, "to_version_id": next.ID, "at": p.End})
			return err
		case "", Now:
		default:
			return abacus.Invalid("invalid_when", "when must be now or period_end, got %q", in.When).WithField("when", "use now or period_end")
		}
		if next.BillingInterval != sub.BillingInterval {
			return abacus.Invalid("interval_mismatch", "the new version bills every %s, the subscription every %s; change at period_end instead",
				next.BillingInterval, sub.BillingInterval).WithField("when", "use period_end to change the billing interval")
		}
		old, err := s.cat.LoadVersion(ctx, tx, sub.tenant, sub.VersionID)
		if err != nil {
			return err
		}
		var lines []pricing.Line
		if at.After(sub.billFrom()) { // in a trial or before billing starts there is nothing to settle
			oldPP, newPP := Pricing(old, sub.Overrides), Pricing(next, nil)
			all, err := pricing.ChangePlan(oldPP, newPP, pricing.PlanChange{Period: p, From: maxTime(p.Start, sub.StartedAt), At: at,
				OldQuantities: Quantities(oldPP, sub.Quantity), NewQuantities: Quantities(newPP, sub.Quantity)})
			if err != nil {
				return fmt.Errorf("prorating plan change: %w", err)
			}
			for _, l := range all {
				if l.Kind == pricing.LineProration { // usage and in-arrears fees are priced from the phases at period end
					lines = append(lines, l)
				}
			}
		}
		sub.VersionID, sub.Overrides, sub.PendingVersionID, sub.PendingAt = next.ID, []Override{}, "", nil
		if err := splitPhase(ctx, tx, *sub, at, false); err != nil {
			return err
		}
		cid, err := record(ctx, tx, *sub, "plan_changed", sub.Status, at, now, map[string]any{
			"from_version_id": old.ID, "to_version_id": next.ID, "proration": lines})
		if err != nil {
			return err
		}
		return storeProration(ctx, tx, *sub, cid, at, now, lines)
	})
}

// ChangeQuantity sets the seat quantity now; in-advance fees are credited
// for the old quantity and charged for the new one over the rest of the
// period (not before billing starts: the first invoice bills the new
// quantity). Errors: "invalid_subscription" (quantity), "invalid_transition".
func (s *Service) ChangeQuantity(ctx context.Context, id string, qty decimal.Decimal) (Subscription, error) {
	var v abacus.Validation
	validQuantity(&v, qty, "quantity")
	if err := v.Err("invalid_subscription"); err != nil {
		return Subscription{}, err
	}
	return s.mutate(ctx, id, func(tx *db.Tx, sub *Subscription, now time.Time) error {
		if err := changeable(*sub); err != nil {
			return err
		}
		if sub.Quantity.Equal(qty) {
			return nil
		}
		at := maxTime(now, sub.StartedAt)
		lines, err := s.feeProration(ctx, tx, *sub, at, sub.Quantity, qty, true)
		if err != nil {
			return fmt.Errorf("prorating quantity change: %w", err)
		}
		old := sub.Quantity
		sub.Quantity = qty
		if err := splitPhase(ctx, tx, *sub, at, false); err != nil {
			return err
		}
		cid, err := record(ctx, tx, *sub, "quantity_changed", sub.Status, at, now, map[string]any{
			"from_quantity": old, "to_quantity": qty, "proration": lines})
		if err != nil {
			return err
		}
		return storeProration(ctx, tx, *sub, cid, at, now, lines)
	})
}

// CancelInput cancels a subscription.
type CancelInput struct {
	When When `json:"when,omitempty" enum:"now,period_end" doc:"period_end (default): access until the period ends; now: ends at once, unused in-advance fees credited"`
}

// Cancel cancels the subscription now (it ends at once) or at the end of
// the current period (it is canceled until then, then ended by Advance).
// Errors: "invalid_transition" for a subscription already canceled or
// ended.
func (s *Service) Cancel(ctx context.Context, id string, in CancelInput) (Subscription, error) {
	return s.mutate(ctx, id, func(tx *db.Tx, sub *Subscription, now time.Time) error {
		from := sub.Status
		at := maxTime(now, sub.StartedAt)
		switch in.When {
		case "", PeriodEnd:
			if err := checkTransition(from, Canceled); err != nil {
				return err
			}
			end := sub.PeriodAt(at).End
			sub.Status, sub.CanceledAt, sub.EndsAt = Canceled, &now, &end
			_, err := record(ctx, tx, *sub, "canceled", from, now, now, map[string]any{"ends_at": end})
			return err
		case Now:
			if err := checkTransition(from, Ended); err != nil {
				return err
			}
			var lines []pricing.Line
			if from == Active || from == PastDue || from == Suspended { // a pause already credited the rest of the period
				var err error
				if lines, err = s.feeProration(ctx, tx, *sub, at, sub.Quantity, decimal.Zero, false); err != nil {
					return fmt.Errorf("prorating cancellation: %w", err)
				}
			}
			sub.CanceledAt = &now
			if from != Canceled {
				sub.Status = Canceled
				cid, err := record(ctx, tx, *sub, "canceled", from, at, now, map[string]any{"ends_at": at, "proration": lines})
				if err != nil {
					return err
				}
				if err := storeProration(ctx, tx, *sub, cid, at, now, lines); err != nil {
					return err
				}
			}
			return s.end(ctx, tx, sub, at, now)
		default:
			return abacus.Invalid("invalid_when", "when must be now or period_end, got %q", in.When).WithField("when", "use now or period_end")
		}
	})
}

// Pause suspends access and billing from now until Resume: the
// in-advance fees already billed are credited from now to the period end,
// in-arrears fees and usage are not billed for the paused time. Errors:
// "invalid_transition".
func (s *Service) Pause(ctx context.Context, id string) (Subscription, error) {
	return s.mutate(ctx, id, func(tx *db.Tx, sub *Subscription, now time.Time) error {
		from := sub.Status
		if err := checkTransition(from, Paused); err != nil {
			return err
		}
		at := maxTime(now, sub.StartedAt)
		lines, err := s.feeProration(ctx, tx, *sub, at, sub.Quantity, decimal.Zero, false)
		if err != nil {
			return fmt.Errorf("prorating pause: %w", err)
		}
		sub.Status, sub.PausedAt = Paused, &at
		if err := splitPhase(ctx, tx, *sub, at, true); err != nil {
			return err
		}
		cid, err := record(ctx, tx, *sub, "paused", from, at, now, map[string]any{"proration": lines})
		if err != nil {
			return err
		}
		return storeProration(ctx, tx, *sub, cid, at, now, lines)
	})
}

// Resume reactivates a paused subscription: the in-advance fees are
// charged from now to the end of the current period (the next ones are
// billed as usual). Errors: "invalid_transition".
func (s *Service) Resume(ctx context.Context, id string) (Subscription, error) {
	return s.mutate(ctx, id, func(tx *db.Tx, sub *Subscription, now time.Time) error {
		if sub.Status != Paused {
			return abacus.Conflict("invalid_transition", "only a paused subscription can resume; this one is %s", sub.Status).
				WithField("status", "is "+string(sub.Status))
		}
		at := maxTime(now, sub.StartedAt)
		lines, err := s.feeProration(ctx, tx, *sub, at, decimal.Zero, sub.Quantity, false)
		if err != nil {
			return fmt.Errorf("prorating resume: %w", err)
		}
		sub.Status, sub.PausedAt = Active, nil
		if err := splitPhase(ctx, tx, *sub, at, false); err != nil {
			return err
		}
		cid, err := record(ctx, tx, *sub, "resumed", Paused, at, now, map[string]any{"proration": lines})
		if err != nil {
			return err
		}
		return storeProration(ctx, tx, *sub, cid, at, now, lines)
	})
}

// feeProration returns the proration lines that settle sub's in-advance
// fees at at, for the rest of the period, when their quantity goes from
// from to to (0 for a pause or a cancellation, from 0 for a resume).
// There are none before billing starts: the first invoice bills what
// applies then. Lines of quantity 0 are left out unless keepZero.
func (s *Service) feeProration(ctx context.Context, tx *db.Tx, sub Subscription, at time.Time, from, to decimal.Decimal, keepZero bool) ([]pricing.Line, error) {
	if !at.After(sub.billFrom()) {
		return nil, nil
	}
	ver, err := s.cat.LoadVersion(ctx, tx, sub.tenant, sub.VersionID)
	if err != nil {
		return nil, err
	}
	pp, p := Pricing(ver, sub.Overrides), sub.PeriodAt(at)
	var lines []pricing.Line
	for _, ch := range pp.Charges {
		if ch.Kind != pricing.ChargeFee {
			continue
		}
		ls, err := pricing.ChangeQuantity(pp, p, at, ch.Key, from, to)
		if err != nil {
			return nil, err
		}
		for _, l := range ls {
			if keepZero || !l.Quantity.IsZero() {
				lines = append(lines, l)
			}
		}
	}
	return lines, nil
}

// MarkPastDue records that a payment failed (active → past_due); payments
// calls it. A subscription already past_due or suspended is left as it is
// (dunning may call it again after a retry fails). Errors:
// "invalid_transition" (paused, canceled, ended, trialing).
func (s *Service) MarkPastDue(ctx context.Context, id string) (Subscription, error) {
	return s.mutate(ctx, id, func(tx *db.Tx, sub *Subscription, now time.Time) error {
		if sub.Status == PastDue || sub.Status == Suspended {
			return nil
		}
		from := sub.Status
		if err := checkTransition(from, PastDue); err != nil {
			return err
		}
		sub.Status = PastDue
		_, err := record(ctx, tx, *sub, "past_due", from, now, now, nil)
		return err
	})
}

// MarkPaid records that the overdue payment arrived (past_due → active).
// Errors: "invalid_transition".
func (s *Service) MarkPaid(ctx context.Context, id string) (Subscription, error) {
	return s.mutate(ctx, id, func(tx *db.Tx, sub *Subscription, now time.Time) error {
		if sub.Status != PastDue {
			return abacus.Conflict("invalid_transition", "only a past_due subscription can be marked paid; this one is %s", sub.Status)
		}
		sub.Status = Active
		_, err := record(ctx, tx, *sub, "activated", PastDue, now, now, map[string]any{"reason": "paid"})
		return err
	})
}

// SuspendInput says why a subscription is suspended and how long a
// prepaid period keeps its access.
type SuspendInput struct {
	// Reason is ReasonPaymentOverdue (default) or ReasonPaymentDisputed;
	// entitlement checks of suspendable features answer it.
	Reason string
	// AccessUntil, when after now, keeps suspendable features open until
	// then: the end of a prepaid period that was paid.
	AccessUntil *time.Time
	// Invoice is the invoice whose payment is overdue or disputed
	// (recorded in the history and the event).
	Invoice string
}

// Suspend closes the suspendable features of an active or past_due
// subscription (→ suspended) and records subscription.suspended. It stays
// billed. A subscription already suspended is left as it is. Errors:
// "invalid_transition" (trialing, paused, canceled, ended).
func (s *Service) Suspend(ctx context.Context, id string, in SuspendInput) (Subscription, error) {
	if in.Reason == "" {
		in.Reason = ReasonPaymentOverdue
	}
	if in.Reason != ReasonPaymentOverdue && in.Reason != ReasonPaymentDisputed {
		return Subscription{}, fmt.Errorf("subscription: unknown suspension reason %q", in.Reason)
	}
	return s.mutate(ctx, id, func(tx *db.Tx, sub *Subscription, now time.Time) error {
		if sub.Status == Suspended {
			return nil
		}
		from := sub.Status
		if err := checkTransition(from, Suspended); err != nil {
			return err
		}
		sub.Status, sub.SuspendedAt, sub.SuspendReason, sub.AccessUntil = Suspended, &now, in.Reason, nil
		if in.AccessUntil != nil && in.AccessUntil.After(now) {
			until := in.AccessUntil.UTC().Truncate(time.Microsecond)
			sub.AccessUntil = &until
		}
		_, err := record(ctx, tx, *sub, "suspended", from, now, now, map[string]any{"reason": in.Reason,
			"access_until": sub.AccessUntil, "invoice_id": nullStr(in.Invoice)})
		return err
	})
}

// Reactivate restores a subscription whose overdue (or disputed) payment
// was settled: suspended → active (subscription.reactivated), past_due →
// active (subscription.activated, reason paid), and a subscription
// canceled while suspended gets its access back until it ends
// (subscription.reactivated, still canceled). Any other subscription is
// left as it is and returned: paying twice restores once. reason is
// recorded (paid, dispute_won, manual…).
func (s *Service) Reactivate(ctx context.Context, id, reason string) (Subscription, error) {
	return s.mutate(ctx, id, func(tx *db.Tx, sub *Subscription, now time.Time) error {
		from := sub.Status
		switch {
		case from == PastDue:
			sub.Status = Active
			_, err := record(ctx, tx, *sub, "activated", from, now, now, map[string]any{"reason": reason})
			return err
		case from == Suspended || (from == Canceled && sub.SuspendedAt != nil):
			if from == Suspended {
				sub.Status = Active
			}
			sub.SuspendedAt, sub.SuspendReason, sub.AccessUntil = nil, "", nil
			_, err := record(ctx, tx, *sub, "reactivated", from, now, now, map[string]any{"reason": reason})
			return err
		}
		return nil
	})
}
