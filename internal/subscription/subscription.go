// Package subscription runs customers' subscriptions to plan versions:
// their lifecycle, history, phases and proration, and the real-time
// entitlement checks a tenant's app makes on every request.
//
// States and transitions (anything else is refused with 409
// invalid_transition naming both states):
//
//	            trial ends
//	trialing ─────────────▶ active ◀────── paid ─────── past_due
//	   │                  │ ▲  ▲ └──── payment fails ───▶ │  │
//	   │       pause/resume│ │  │                          │  │ dunning's final action
//	   │                  ▼ │  │ paid, dispute won        │  ▼
//	   │               paused  └──────────────────────── suspended ◀── dispute (from active)
//	   │   cancel at period end (from any live state)     │
//	   └──────────────────▶ canceled ◀────────────────────┘
//	                           │ period end (Advance)
//	 cancel now (any live) ──▶ ended ◀┘
//
// canceled means "ends at EndsAt": access continues until then, unless it
// was paused or suspended. paused grants no access and is not billed.
// suspended (payments moves a subscription there when an invoice stays
// unpaid past dunning, or a payment is disputed) is still billed; the
// features the tenant marks suspendable answer has_access false with
// reason payment_overdue (payment_disputed), the others stay open, and a
// prepaid period that was paid keeps its access until AccessUntil. Paying
// (or winning the dispute) reactivates it. Time-driven transitions (trial end,
// scheduled plan change, end of a canceled subscription) happen in
// Advance, which a worker calls periodically.
//
// Phases record which plan version and quantity applied over which span,
// and whether it was paused. Billing prices in-arrears fees per phase by
// its quantity, and usage once per period over consecutive phases on one
// version, so tiers, minimum, maximum and commitment apply once; a plan
// version change splits the usage (up to it on the old version). In-advance
// fees, billed at the period start, are settled at a change by proration
// lines the next invoice carries, for the rest of the period:
//
//   - seats: the old quantity credited, the new one charged;
//   - plan version now: the old version's fees credited, the new one's charged;
//   - pause: the fees credited; no fee or usage is billed while paused, and
//     the usage minimum and commitment shrink to the time served. Usage
//     recorded while paused is kept but not billed; it still counts toward
//     the period's entitlement limits after a resume;
//   - resume: the fees charged; later periods bill as usual;
//   - cancel now: the fees credited (not again when paused).
//
// A change at or before the instant billing starts (the start, or the
// trial end) is not prorated: the first invoice bills what applies then.
package subscription

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
)

// Status is the state of a subscription.
type Status string

const (
	Trialing Status = "trialing"
	Active   Status = "active"
	PastDue  Status = "past_due"
	Paused   Status = "paused"
	// Suspended: a payment is overdue past dunning (or disputed); the
	// features the tenant marks suspendable answer has_access false.
	Suspended Status = "suspended"
	Canceled  Status = "canceled"
	Ended     Status = "ended"
)

// transitions is the state machine of the package doc.
var transitions = map[Status][]Status{
	Trialing:  {Active, Canceled, Ended},
	Active:    {PastDue, Suspended, Paused, Canceled, Ended},
	PastDue:   {Active, Suspended, Paused, Canceled, Ended},
	Suspended: {Active, Canceled, Ended},
	Paused:    {Active, Canceled, Ended},
	Canceled:  {Ended},
	Ended:     nil,
}

// CanTransition reports whether a subscription may move from one state
// to another.
func CanTransition(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

func checkTransition(from, to Status) error {
	if CanTransition(from, to) {
		return nil
	}
	return abacus.Conflict("invalid_transition", "a %s subscription cannot become %s", from, to).
		WithField("status", "is "+string(from))
}

// Override replaces the fee or price of one charge of the plan version
// for one subscription.
type Override struct {
	Charge string         `json:"charge" doc:"key of the plan version's charge"`
	Fee    *pricing.Fee   `json:"fee,omitempty"`
	Price  *pricing.Price `json:"price,omitempty"`
}

// Subscription is a customer's subscription to a plan version.
type Subscription struct {
	ID               string          `json:"id"`
	CustomerID       string          `json:"customer_id"`
	PlanID           string          `json:"plan_id"`
	VersionID        string          `json:"version_id"`
	Status           Status          `json:"status"`
	Quantity         decimal.Decimal `json:"quantity"`
	Overrides        []Override      `json:"price_overrides"`
	Timezone         string          `json:"timezone"`
	BillingInterval  period.Interval `json:"billing_interval"`
	BillingAnchor    time.Time       `json:"billing_anchor"`
	StartedAt        time.Time       `json:"started_at"`
	TrialEnd         *time.Time      `json:"trial_end,omitempty"`
	EndsAt           *time.Time      `json:"ends_at,omitempty"`
	CanceledAt       *time.Time      `json:"canceled_at,omitempty"`
	EndedAt          *time.Time      `json:"ended_at,omitempty"`
	PausedAt         *time.Time      `json:"paused_at,omitempty"`
	PendingVersionID string          `json:"pending_version_id,omitempty"`
	PendingAt        *time.Time      `json:"pending_at,omitempty"`
	SuspendedAt      *time.Time      `json:"suspended_at,omitempty" doc:"set while access is suspended for a payment (kept if it is then canceled)"`
	SuspendReason    string          `json:"suspend_reason,omitempty" doc:"payment_overdue or payment_disputed, while suspended"`
	AccessUntil      *time.Time      `json:"access_until,omitempty" doc:"while suspended: suspendable features stay open until then (the end of a prepaid period that was paid)"`
	CurrentPeriod    *period.Period  `json:"current_period,omitempty" doc:"the billing (or trial) period containing now"`
	CreatedAt        time.Time       `json:"created_at"`
	UpdatedAt        time.Time       `json:"updated_at"`

	tenant string
}

// Location returns the zone the subscription's periods are computed in.
func (s Subscription) Location() *time.Location {
	loc, err := time.LoadLocation(s.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// Schedule returns the subscription's billing schedule.
func (s Subscription) Schedule() period.Schedule {
	return period.NewSchedule(s.BillingAnchor, s.BillingInterval, s.Location())
}

// PeriodAt returns the period containing t: the trial [StartedAt,
// TrialEnd) while t is in it, else the billing period of the schedule
// (computed in the customer's zone). The first billing period of a
// calendar-anchored subscription starts before StartedAt; billing prices
// from the first phase's start.
func (s Subscription) PeriodAt(t time.Time) period.Period {
	if s.TrialEnd != nil && t.Before(*s.TrialEnd) {
		start := s.StartedAt
		return period.Period{Start: start, End: *s.TrialEnd}
	}
	return s.Schedule().Containing(t)
}

// billFrom is when billing starts: the trial end, else the start.
func (s Subscription) billFrom() time.Time {
	if s.TrialEnd != nil && s.TrialEnd.After(s.StartedAt) {
		return *s.TrialEnd
	}
	return s.StartedAt
}

// live reports whether the subscription grants access at t.
func (s Subscription) live(t time.Time) bool {
	if t.Before(s.StartedAt) {
		return false
	}
	switch s.Status {
	case Trialing, Active, PastDue, Suspended: // suspended: features not suspendable stay open
		return true
	case Canceled: // until it ends, unless canceled while paused
		return s.PausedAt == nil && (s.EndsAt == nil || t.Before(*s.EndsAt))
	}
	return false
}

// Suspension reasons: the reason an entitlement check gives for a
// suspendable feature of a suspended subscription.
const (
	ReasonPaymentOverdue  = "payment_overdue"
	ReasonPaymentDisputed = "payment_disputed"
)

// suspendedAt reports whether suspendable features are closed at t: the
// subscription is suspended (or was canceled while suspended) and any
// prepaid access it kept has run out.
func (s Subscription) suspendedAt(t time.Time) bool {
	return s.SuspendedAt != nil && (s.AccessUntil == nil || !t.Before(*s.AccessUntil))
}

// Pricing returns version v's pricing with the subscription's overrides.
func Pricing(v catalog.Version, overrides []Override) pricing.PlanPricing {
	pp := v.Pricing()
	if len(overrides) == 0 {
		return pp
	}
	charges := make([]pricing.Charge, len(pp.Charges))
	copy(charges, pp.Charges)
	for _, o := range overrides {
		for i := range charges {
			if charges[i].Key != o.Charge {
				continue
			}
			if o.Fee != nil && charges[i].Kind == pricing.ChargeFee {
				f := *o.Fee
				charges[i].Fee = &f
			}
			if o.Price != nil && charges[i].Kind == pricing.ChargeUsage {
				p := *o.Price
				charges[i].Price = &p
			}
		}
	}
	pp.Charges = charges
	return pp
}

// Quantities returns the fee quantities of pp at qty seats.
func Quantities(pp pricing.PlanPricing, qty decimal.Decimal) map[string]decimal.Decimal {
	out := map[string]decimal.Decimal{}
	for _, ch := range pp.Charges {
		if ch.Kind == pricing.ChargeFee {
			out[ch.Key] = qty
		}
	}
	return out
}

// Service manages subscriptions and answers entitlement checks for the
// caller's tenant (read from ctx), except Advance, which works for all
// tenants.
type Service struct {
	db    *db.DB
	clock abacus.Clock
	log   *slog.Logger
	cat   *catalog.Service
	usage catalog.UsageSource

	cache  *stateCache
	onEnd  []EndHook
	onSave []SaveHook
	live   map[string]LiveUsage // by static feature key (UseLiveUsage)

	suspendable  SuspendableFunc                 // UseSuspendable
	onInvalidate []func(tenant, customer string) // OnInvalidate
}

// EndHook is told, inside the transaction that ends subscription sub of
// tenant, that it ends at at (earlier than its period end when canceled
// now). A module that schedules work by the subscription's periods moves
// that work to the end in the same transaction; an error undoes the end.
type EndHook func(ctx context.Context, tx *db.Tx, tenant, sub string, at time.Time) error

// OnEnd adds h to the hooks run when a subscription ends. Call it before
// the service is used.
func (s *Service) OnEnd(h EndHook) { s.onEnd = append(s.onEnd, h) }

// Saved is what a SaveHook learns of a subscription as it is written: when
// it starts to be billed and when its next time-driven transition (trial
// end, scheduled plan change, end of a cancellation) is due, if any.
type Saved struct {
	Tenant, ID   string
	StartedAt    time.Time
	TrialEnd     *time.Time
	NextActionAt *time.Time
}

// SaveHook is told, inside the transaction that creates or changes a
// subscription, its schedule as written. A module that keeps its own
// per-subscription schedule (billing's cycles) keeps it in step there, so
// it never reads the subscription tables; an error undoes the write.
type SaveHook func(ctx context.Context, tx *db.Tx, s Saved) error

// OnSave adds h to the hooks run whenever a subscription is written. Call
// it before the service is used.
func (s *Service) OnSave(h SaveHook) { s.onSave = append(s.onSave, h) }

// save writes sub and tells the save hooks.
func (s *Service) save(ctx context.Context, tx *db.Tx, sub Subscription) error {
	if err := saveSub(ctx, tx, sub); err != nil {
		return err
	}
	saved := Saved{Tenant: sub.tenant, ID: sub.ID, StartedAt: sub.StartedAt, TrialEnd: sub.TrialEnd, NextActionAt: nextAction(sub)}
	for _, h := range s.onSave {
		if err := h(ctx, tx, saved); err != nil {
			return fmt.Errorf("saving %s: %w", sub.ID, err)
		}
	}
	return nil
}

// NewService returns a subscription service over the catalog's database
// and usage source.
func NewService(cat *catalog.Service, clock abacus.Clock, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	s := &Service{db: cat.DB(), clock: clock, log: log, cat: cat, usage: cat.Usage(), cache: newStateCache(2 * time.Second)}
	cat.OnChange(s.invalidate)
	cat.GuardCurrency(currencyLocked)
	return s
}

func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Microsecond) }

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
