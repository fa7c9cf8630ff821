package pricing

import (
	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/money"
	"github.com/shopspring/decimal"
)

// Usage is what a meter measured in a period: Quantity is the meter's
// value (units, GB, or the summed value a percentage applies to) and
// Events the number of events, for per-event fees.
type Usage struct {
	Quantity decimal.Decimal `json:"quantity"`
	Events   int64           `json:"events"`
}

// Add returns the usage of u and o together: quantities and events added,
// as for two spans or two subjects of a SUM meter.
func (u Usage) Add(o Usage) Usage {
	return Usage{Quantity: u.Quantity.Add(o.Quantity), Events: u.Events + o.Events}
}

// ComponentKind says what a Component of a rated amount prices.
type ComponentKind string

const (
	ComponentUnits      ComponentKind = "units"      // per_unit: quantity × unit_amount
	ComponentPackages   ComponentKind = "packages"   // package: packages × unit_amount
	ComponentTier       ComponentKind = "tier"       // graduated or volume tier
	ComponentPercentage ComponentKind = "percentage" // percentage of the summed value
	ComponentEventFee   ComponentKind = "event_fee"  // events × fixed_amount_per_event
)

// Component is one line of a rated amount's breakdown, e.g. "units 101 to
// 1000 at 0.05 plus 10.00". Amounts are exact, not rounded. For tiers,
// Tier is the tier's index and From/UpTo its bounds (UpTo nil = no bound);
// for percentage, UnitAmount is the rate as a fraction (2.9 % → 0.029).
type Component struct {
	Kind       ComponentKind    `json:"kind"`
	Tier       *int             `json:"tier,omitempty"`
	From       *decimal.Decimal `json:"from,omitempty"`
	UpTo       *decimal.Decimal `json:"up_to,omitempty"`
	Quantity   decimal.Decimal  `json:"quantity"`
	UnitAmount decimal.Decimal  `json:"unit_amount"`
	FlatAmount decimal.Decimal  `json:"flat_amount"`
	Amount     decimal.Decimal  `json:"amount"`
}

// Bound names the per-period bound that changed a rated amount.
type Bound string

const (
	BoundMinimum Bound = "minimum"
	BoundMaximum Bound = "maximum"
)

// Result is a rated usage charge. Subtotal is the exact sum of the
// components; Adjustment is what the price's minimum added (positive) or
// maximum removed (negative), with AdjustedBy naming it; Unrounded is
// Subtotal + Adjustment and Amount is Unrounded rounded to the currency.
type Result struct {
	Quantity   decimal.Decimal `json:"quantity"`
	Events     int64           `json:"events"`
	Components []Component     `json:"components"`
	Subtotal   decimal.Decimal `json:"subtotal"`
	Adjustment decimal.Decimal `json:"adjustment"`
	AdjustedBy Bound           `json:"adjusted_by,omitempty"`
	Unrounded  decimal.Decimal `json:"unrounded"`
	Amount     decimal.Decimal `json:"amount"`
}

// Rate prices usage with p in currency c, rounding with r (see the
// package doc). A quantity of zero costs nothing but the price's minimum:
// no tier's flat amount applies until a unit falls in the tier. It returns
// the "invalid_price" error of Validate for a bad price, and a KindInvalid
// *abacus.Error with code "invalid_usage" for a negative quantity or event
// count.
func Rate(p Price, u Usage, c money.Currency, r money.Rounding) (Result, error) {
	if err := p.Validate("price"); err != nil {
		return Result{}, err
	}
	if u.Quantity.IsNegative() || u.Events < 0 {
		return Result{}, abacus.Invalid("invalid_usage",
			"usage must not be negative (quantity %s, events %d); correct the meter's events", u.Quantity, u.Events)
	}
	res := Result{Quantity: u.Quantity, Events: u.Events, Components: components(p, u)}
	res.Subtotal = decimal.Zero
	for _, c := range res.Components {
		res.Subtotal = res.Subtotal.Add(c.Amount)
	}
	total := res.Subtotal
	switch {
	case p.Minimum != nil && total.LessThan(*p.Minimum):
		total, res.AdjustedBy = *p.Minimum, BoundMinimum
	case p.Maximum != nil && total.GreaterThan(*p.Maximum):
		total, res.AdjustedBy = *p.Maximum, BoundMaximum
	}
	res.Adjustment = total.Sub(res.Subtotal)
	res.Unrounded = total
	res.Amount = money.Round(total, c, r)
	return res, nil
}

// components returns the breakdown of a valid price for non-negative usage.
func components(p Price, u Usage) []Component {
	q := u.Quantity
	switch p.Model {
	case PerUnit:
		return []Component{{Kind: ComponentUnits, Quantity: q, UnitAmount: p.UnitAmount, Amount: q.Mul(p.UnitAmount)}}
	case Package:
		// QuoRem is exact, unlike Div, so a quantity just above a package
		// boundary is never rounded back onto it.
		n, rem := q.QuoRem(p.PackageSize, 0)
		if !rem.IsZero() {
			n = n.Add(decimal.NewFromInt(1))
		}
		return []Component{{Kind: ComponentPackages, Quantity: n, UnitAmount: p.UnitAmount, Amount: n.Mul(p.UnitAmount)}}
	case Graduated:
		return graduated(p.Tiers, q)
	case Volume:
		return volume(p.Tiers, q)
	case Percentage:
		rate := p.Percentage.Shift(-2) // exact, unlike Div
		out := []Component{{Kind: ComponentPercentage, Quantity: q, UnitAmount: rate, Amount: q.Mul(rate)}}
		if !p.FixedAmountPerEvent.IsZero() {
			n := decimal.NewFromInt(u.Events)
			out = append(out, Component{Kind: ComponentEventFee, Quantity: n, UnitAmount: p.FixedAmountPerEvent, Amount: n.Mul(p.FixedAmountPerEvent)})
		}
		return out
	}
	return nil
}

func tierComponent(i int, from decimal.Decimal, t Tier, qty decimal.Decimal) Component {
	idx, f := i, from
	return Component{
		Kind: ComponentTier, Tier: &idx, From: &f, UpTo: t.UpTo,
		Quantity: qty, UnitAmount: t.UnitAmount, FlatAmount: t.FlatAmount,
		Amount: qty.Mul(t.UnitAmount).Add(t.FlatAmount),
	}
}

func graduated(tiers []Tier, q decimal.Decimal) []Component {
	out := []Component{}
	from := decimal.Zero
	for i, t := range tiers {
		if !q.GreaterThan(from) {
			break
		}
		upper := q
		if t.UpTo != nil && t.UpTo.LessThan(q) {
			upper = *t.UpTo
		}
		out = append(out, tierComponent(i, from, t, upper.Sub(from)))
		if t.UpTo == nil {
			break
		}
		from = *t.UpTo
	}
	return out
}

func volume(tiers []Tier, q decimal.Decimal) []Component {
	if !q.IsPositive() {
		return []Component{}
	}
	from := decimal.Zero
	for i, t := range tiers {
		if t.UpTo == nil || !q.GreaterThan(*t.UpTo) {
			return []Component{tierComponent(i, from, t, q)}
		}
		from = *t.UpTo
	}
	return []Component{} // unreachable for a valid price: the last tier is open-ended
}
