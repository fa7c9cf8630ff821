// Package pricing is the pure pricing engine: it turns a plan version's
// charges, a period and the usage in it into priced lines an invoice is
// built from. It does no I/O and reads no clock.
//
// Rounding rule: every amount is computed exactly (decimals, no floats)
// and rounded once per line, to the currency's exponent, with the plan's
// Rounding mode. Tier breakdowns keep their exact amounts; the line's
// Amount is the rounded sum, and an invoice total is the sum of rounded
// line amounts.
package pricing

import (
	"fmt"

	"github.com/abacusbilling/abacus"
	"github.com/shopspring/decimal"
)

// Model is how a usage price turns a quantity into an amount.
type Model string

const (
	// PerUnit charges unit_amount for every unit (fractions included).
	PerUnit Model = "per_unit"
	// Package charges unit_amount per started package of package_size
	// units: a partial package is billed as a full one.
	Package Model = "package"
	// Graduated splits the quantity across the tiers: each tier prices the
	// units that fall in it, plus its flat_amount if any unit does.
	Graduated Model = "graduated"
	// Volume prices every unit at the tier the total quantity falls in,
	// plus that tier's flat_amount.
	Volume Model = "volume"
	// Percentage charges percentage % of the summed value, plus
	// fixed_amount_per_event for every event.
	Percentage Model = "percentage"
)

// Models lists every usage price model.
var Models = []Model{PerUnit, Package, Graduated, Volume, Percentage}

// MaxTiers bounds the number of tiers of a price.
const MaxTiers = 100

// Tier is one tier of a graduated or volume price. It covers the
// quantities above the previous tier's UpTo up to and including its own
// UpTo; the first tier starts at 0 and the last has UpTo nil (no upper
// bound).
type Tier struct {
	UpTo       *decimal.Decimal `json:"up_to"`
	UnitAmount decimal.Decimal  `json:"unit_amount"`
	FlatAmount decimal.Decimal  `json:"flat_amount"`
}

// Price is the price of a usage charge, stored as JSON inside a plan
// version. Which fields apply depends on Model; fields of other models
// must be left zero. Minimum and Maximum bound the charge's amount per
// period (nil = no bound); the minimum applies even when there is no usage.
type Price struct {
	Model               Model            `json:"model"`
	UnitAmount          decimal.Decimal  `json:"unit_amount"`
	PackageSize         decimal.Decimal  `json:"package_size"`
	Tiers               []Tier           `json:"tiers,omitempty"`
	Percentage          decimal.Decimal  `json:"percentage"`
	FixedAmountPerEvent decimal.Decimal  `json:"fixed_amount_per_event"`
	Minimum             *decimal.Decimal `json:"minimum,omitempty"`
	Maximum             *decimal.Decimal `json:"maximum,omitempty"`
}

var hundred = decimal.NewFromInt(100)

// Validate returns nil or a KindInvalid *abacus.Error with code
// "invalid_price" whose Fields name every problem under field, e.g.
// "charges[2].price.tiers[1].up_to".
func (p Price) Validate(field string) error {
	var v abacus.Validation
	p.ValidateInto(&v, field)
	return v.Err("invalid_price")
}

// ValidateInto records every problem of p in v, each named under field.
// Tiers must be contiguous: up_to strictly increasing, only the last one
// open-ended (null), so no quantity is priced twice (overlap) or not at
// all (gap). Amounts must be non-negative, package_size positive,
// percentage within [0, 100] and minimum ≤ maximum.
func (p Price) ValidateInto(v *abacus.Validation, field string) {
	f := func(sub string) string { return join(field, sub) }
	notFor := func(sub string, set bool, models string) {
		if set {
			v.Add(f(sub), "applies only to the %s model; remove it or change the model", models)
		}
	}
	nonNegative(v, f("unit_amount"), p.UnitAmount)
	nonNegative(v, f("fixed_amount_per_event"), p.FixedAmountPerEvent)
	switch p.Model {
	case PerUnit, Package:
		notFor("percentage", !p.Percentage.IsZero(), "percentage")
		notFor("fixed_amount_per_event", !p.FixedAmountPerEvent.IsZero(), "percentage")
		notFor("tiers", len(p.Tiers) > 0, "graduated or volume")
		if p.Model == Package {
			if !p.PackageSize.IsPositive() {
				v.Add(f("package_size"), "must be greater than 0 (units per package)")
			}
		} else {
			notFor("package_size", !p.PackageSize.IsZero(), "package")
		}
	case Graduated, Volume:
		notFor("unit_amount", !p.UnitAmount.IsZero(), "per_unit or package (tiers carry their own unit_amount)")
		notFor("package_size", !p.PackageSize.IsZero(), "package")
		notFor("percentage", !p.Percentage.IsZero(), "percentage")
		notFor("fixed_amount_per_event", !p.FixedAmountPerEvent.IsZero(), "percentage")
		validateTiers(v, f("tiers"), p.Tiers)
	case Percentage:
		notFor("unit_amount", !p.UnitAmount.IsZero(), "per_unit or package")
		notFor("package_size", !p.PackageSize.IsZero(), "package")
		notFor("tiers", len(p.Tiers) > 0, "graduated or volume")
		if p.Percentage.IsNegative() || p.Percentage.GreaterThan(hundred) {
			v.Add(f("percentage"), "must be between 0 and 100")
		}
	default:
		v.Add(f("model"), "unknown price model %q; use per_unit, package, graduated, volume or percentage", string(p.Model))
	}
	if p.Minimum != nil {
		nonNegative(v, f("minimum"), *p.Minimum)
	}
	if p.Maximum != nil {
		nonNegative(v, f("maximum"), *p.Maximum)
	}
	if p.Minimum != nil && p.Maximum != nil && p.Minimum.GreaterThan(*p.Maximum) {
		v.Add(f("minimum"), "must not exceed maximum (%s)", p.Maximum)
	}
}

func validateTiers(v *abacus.Validation, field string, tiers []Tier) {
	switch {
	case len(tiers) == 0:
		v.Add(field, "a graduated or volume price needs at least one tier")
		return
	case len(tiers) > MaxTiers:
		v.Add(field, "at most %d tiers are allowed", MaxTiers)
		return
	}
	prev := decimal.Zero
	for i, t := range tiers {
		// Field names are built only for a problem: Rate validates on every call.
		tf := func(sub string) string { return fmt.Sprintf("%s[%d].%s", field, i, sub) }
		if t.UnitAmount.IsNegative() {
			v.Add(tf("unit_amount"), "must not be negative")
		}
		if t.FlatAmount.IsNegative() {
			v.Add(tf("flat_amount"), "must not be negative")
		}
		last := i == len(tiers)-1
		switch {
		case t.UpTo == nil && !last:
			v.Add(tf("up_to"), "only the last tier may be open-ended (up_to null); this one overlaps every tier after it")
		case t.UpTo == nil:
		case last:
			v.Add(tf("up_to"), "must be null: the last tier has no upper bound, otherwise usage above %s would be unpriced", t.UpTo)
		case !t.UpTo.GreaterThan(prev):
			if i == 0 {
				v.Add(tf("up_to"), "must be greater than 0")
			} else {
				v.Add(tf("up_to"), "must be greater than the previous tier's up_to (%s); tiers must be sorted and must not overlap", prev)
			}
		default:
			prev = *t.UpTo
		}
	}
}

func nonNegative(v *abacus.Validation, field string, d decimal.Decimal) {
	if d.IsNegative() {
		v.Add(field, "must not be negative")
	}
}

func join(field, sub string) string {
	if field == "" {
		return sub
	}
	return field + "." + sub
}
