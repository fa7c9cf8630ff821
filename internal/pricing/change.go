package pricing

import (
	"fmt"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/money"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/shopspring/decimal"
)

// ChangeQuantity returns the lines that settle, at once, a change of fee
// charge key's quantity from oldQty to newQty at time at within period p:
// a credit for oldQty over [at, p.End) and a charge for newQty over the
// same time, both of kind proration. Only in-advance fees are settled this
// way; an in-arrears fee gives no lines (pass the change to Quote as a
// QuantityChange at the period's end instead). It returns the
// "invalid_plan_pricing" error of Validate, or a KindInvalid *abacus.Error
// with code "invalid_change" for an unknown key, a charge that is not a
// fee, a negative quantity or at outside p.
func ChangeQuantity(pp PlanPricing, p period.Period, at time.Time, key string, oldQty, newQty decimal.Decimal) ([]Line, error) {
	if err := pp.Validate(""); err != nil {
		return nil, err
	}
	if err := checkAt(p, at); err != nil {
		return nil, err
	}
	if oldQty.IsNegative() || newQty.IsNegative() {
		return nil, abacus.Invalid("invalid_change", "quantities must not be negative (from %s to %s)", oldQty, newQty).
			WithField("quantity", "must not be negative")
	}
	for _, ch := range pp.Charges {
		if ch.Key != key {
			continue
		}
		if ch.Kind != ChargeFee {
			return nil, abacus.Invalid("invalid_change", "charge %q is a usage charge; only fee quantities change", key).
				WithField("charge_key", "must be the key of a fee charge")
		}
		if ch.Fee.Billed.OrDefault() != InAdvance || oldQty.Equal(newQty) {
			return nil, nil
		}
		c, r := pp.currency(), pp.Rounding.OrDefault()
		return []Line{
			prorationLine(ch, p, at, oldQty, true, c, r),
			prorationLine(ch, p, at, newQty, false, c, r),
		}, nil
	}
	return nil, abacus.Invalid("invalid_change", "plan version has no charge %q", key).
		WithField("charge_key", "must be the key of a fee charge of the plan version")
}

// prorationLine credits (or charges) qty of an in-advance fee for the rest
// of period p from at. A zero quantity still gives a line, of amount 0,
// so the invoice shows what changed.
func prorationLine(ch Charge, p period.Period, at time.Time, qty decimal.Decimal, credit bool, c money.Currency, r money.Rounding) Line {
	rest := period.Period{Start: at, End: p.End}
	amt := FeeAmount(*ch.Fee, qty, p, at, p.End)
	desc := fmt.Sprintf("Remaining time on %s × %s", qty, ch.label())
	if credit {
		amt = amt.Neg()
		desc = fmt.Sprintf("Unused time on %s × %s", qty, ch.label())
	}
	ua := ch.Fee.Amount
	f := p.Fraction(at, p.End)
	return Line{
		Kind: LineProration, ChargeKey: ch.Key, Description: desc, Billed: InAdvance,
		Period: rest, Quantity: qty, UnitAmount: &ua, Proration: &f,
		// Rounding is symmetric around zero, so a credit equals the
		// charge it reverses.
		Unrounded: amt, Amount: money.Round(amt, c, r),
	}
}

// PlanChange describes an immediate change of plan version within a
// billing period.
type PlanChange struct {
	// Period is the current billing period; the schedule does not change.
	Period period.Period
	// From is when the old version started in this period (zero = Period.Start).
	From time.Time
	// At is when the new version takes effect, within Period.
	At time.Time
	// OldQuantities and NewQuantities are fee quantities by charge key on
	// each version (1 when missing).
	OldQuantities, NewQuantities map[string]decimal.Decimal
	// Usage is the usage from From up to At, priced on the old version.
	Usage map[string]Usage
}

// ChangePlan returns the lines of an immediate change from plan version
// old to next at ch.At:
//
//   - the old version's in-arrears fees, usage and commitment for
//     [From, At) (usage up to the change is priced on the old version);
//   - a credit for the old version's in-advance fees over [At, End);
//   - a charge for the new version's in-advance fees over [At, End).
//
// The new version's in-arrears fees and usage for [At, End) are billed at
// the period's end: Quote(next, {From: At, Parts: PartInArrearsFees |
// PartUsage | PartCommitment}). Both versions must share a currency. It
// returns the "invalid_plan_pricing" error of Validate, Quote's errors,
// or a KindInvalid *abacus.Error with code "invalid_change" for a
// currency mismatch or At outside the period.
func ChangePlan(old, next PlanPricing, ch PlanChange) ([]Line, error) {
	if err := old.Validate("old"); err != nil {
		return nil, err
	}
	if err := next.Validate("new"); err != nil {
		return nil, err
	}
	if old.currency() != next.currency() {
		return nil, abacus.Invalid("invalid_change", "the new plan version is in %s but the subscription is billed in %s; pick a version in %s",
			next.currency(), old.currency(), old.currency()).WithField("currency", "must match the current plan version's currency")
	}
	if err := checkAt(ch.Period, ch.At); err != nil {
		return nil, err
	}
	var lines []Line
	from := ch.From
	if from.IsZero() {
		from = ch.Period.Start
	}
	if from.Before(ch.At) {
		used, err := Quote(old, QuoteInput{
			Period: ch.Period, From: from, To: ch.At, Quantities: ch.OldQuantities, Usage: ch.Usage,
			Parts: PartInArrearsFees | PartUsage | PartCommitment,
		})
		if err != nil {
			return nil, err
		}
		lines = append(lines, used...)
	}
	if ch.At.Equal(ch.Period.End) {
		return lines, nil
	}
	for _, side := range []struct {
		pp     PlanPricing
		qty    map[string]decimal.Decimal
		credit bool
	}{{old, ch.OldQuantities, true}, {next, ch.NewQuantities, false}} {
		c, r := side.pp.currency(), side.pp.Rounding.OrDefault()
		for _, charge := range side.pp.Charges {
			if charge.Kind != ChargeFee || charge.Fee.Billed.OrDefault() != InAdvance {
				continue
			}
			q, ok := side.qty[charge.Key]
			if !ok {
				q = decimal.NewFromInt(1)
			}
			if q.IsNegative() {
				return nil, abacus.Invalid("invalid_change", "quantity of charge %q must not be negative, got %s", charge.Key, q).
					WithField("quantities."+charge.Key, "must not be negative")
			}
			if q.IsZero() {
				continue
			}
			lines = append(lines, prorationLine(charge, ch.Period, ch.At, q, side.credit, c, r))
		}
	}
	return lines, nil
}

func checkAt(p period.Period, at time.Time) error {
	if at.Before(p.Start) || at.After(p.End) || !p.Start.Before(p.End) {
		return abacus.Invalid("invalid_change", "the change time %s must fall within the billing period [%s, %s)", at, p.Start, p.End).
			WithField("at", "must be within the billing period")
	}
	return nil
}
