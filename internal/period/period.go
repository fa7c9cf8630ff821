// Package period does the calendar math of billing periods: where a
// period starts and ends for an anchor, an interval and the customer's
// time zone, and what fraction of a period a span of time covers.
//
// Periods are computed on the wall clock of the customer's zone, so a
// monthly period starts at the same local time each month across DST
// changes (and is then an hour shorter or longer in real time). Every
// boundary is derived from the anchor directly, never from the previous
// boundary, so month-end anchors clamp without drifting: an anchor of
// Jan 31 gives Feb 28 (Feb 29 in a leap year), then Mar 31, Apr 30, …
//
// Proration basis: elapsed real time. Fraction is the time a span covers
// inside the period divided by the period's length, to the nanosecond, so
// whole-second inputs give exact seconds over seconds. Month lengths and
// leap years fall out of it: one day is 1/28 of February 2023, 1/29 of
// February 2024 and 1/31 of March. In zones with DST the month holding the
// change is an hour shorter or longer, so its days weigh slightly more or
// less; that is the price of being exact about time actually served.
package period

import (
	"fmt"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/shopspring/decimal"
)

// Unit is the calendar unit of an interval.
type Unit string

const (
	Week    Unit = "week"
	Month   Unit = "month"
	Quarter Unit = "quarter"
	Year    Unit = "year"
)

// MaxCount bounds Interval.Count: every 100 years is already absurd.
const MaxCount = 100

// Interval is a billing interval: Count units ("every 2 months"). A zero
// Count means 1.
type Interval struct {
	Unit  Unit `json:"unit" enum:"week,month,quarter,year"`
	Count int  `json:"count,omitempty"`
}

// Monthly, Yearly and friends are the common intervals.
var (
	Weekly    = Interval{Unit: Week, Count: 1}
	Monthly   = Interval{Unit: Month, Count: 1}
	Quarterly = Interval{Unit: Quarter, Count: 1}
	Yearly    = Interval{Unit: Year, Count: 1}
)

func (iv Interval) count() int {
	if iv.Count == 0 {
		return 1
	}
	return iv.Count
}

// String returns e.g. "month" or "2 months".
func (iv Interval) String() string {
	if iv.count() == 1 {
		return string(iv.Unit)
	}
	return fmt.Sprintf("%d %ss", iv.count(), iv.Unit)
}

// ValidateInto records the interval's problems in v under field
// (e.g. "billing_interval.unit").
func (iv Interval) ValidateInto(v *abacus.Validation, field string) {
	switch iv.Unit {
	case Week, Month, Quarter, Year:
	default:
		v.Add(join(field, "unit"), "unknown interval unit %q; use week, month, quarter or year", string(iv.Unit))
	}
	if iv.Count < 0 || iv.Count > MaxCount {
		v.Add(join(field, "count"), "must be between 1 and %d", MaxCount)
	}
}

// Validate returns nil or a KindInvalid *abacus.Error with code
// "invalid_interval" naming each bad field under field.
func (iv Interval) Validate(field string) error {
	var v abacus.Validation
	iv.ValidateInto(&v, field)
	return v.Err("invalid_interval")
}

// months returns the interval in months, or 0 for week intervals.
func (iv Interval) months() int {
	switch iv.Unit {
	case Month:
		return iv.count()
	case Quarter:
		return 3 * iv.count()
	case Year:
		return 12 * iv.count()
	}
	return 0
}

func join(field, sub string) string {
	if field == "" {
		return sub
	}
	return field + "." + sub
}

// Period is a half-open span of time [Start, End).
type Period struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Contains reports whether t is in [Start, End).
func (p Period) Contains(t time.Time) bool { return !t.Before(p.Start) && t.Before(p.End) }

// Duration returns the period's length in real time.
func (p Period) Duration() time.Duration { return p.End.Sub(p.Start) }

// Fraction returns the part of p that [from, to) covers; see the package
// doc for the basis.
func (p Period) Fraction(from, to time.Time) decimal.Decimal {
	return Fraction(p.Start, p.End, from, to)
}

// Clip returns the part of [from, to) inside p, and false when they do
// not overlap.
func (p Period) Clip(from, to time.Time) (Period, bool) {
	if from.Before(p.Start) {
		from = p.Start
	}
	if to.After(p.End) {
		to = p.End
	}
	if !from.Before(to) {
		return Period{}, false
	}
	return Period{Start: from, End: to}, true
}

// FractionPlaces is the number of decimal places Fraction keeps (rounded
// half-even). Use Prorate to scale an amount: it divides last and loses
// nothing that a currency could show.
const FractionPlaces = 18

// Fraction returns the share of the period [periodStart, periodEnd) that
// [from, to) covers, in [0, 1]: the overlap's length over the period's
// length, in elapsed time. Parts of [from, to) outside the period do not
// count; an empty overlap or an empty period gives 0.
func Fraction(periodStart, periodEnd, from, to time.Time) decimal.Decimal {
	num, den := ratio(periodStart, periodEnd, from, to)
	if num == 0 {
		return decimal.Zero
	}
	if num == den {
		return decimal.NewFromInt(1)
	}
	return decimal.NewFromInt(num).DivRound(decimal.NewFromInt(den), FractionPlaces).RoundBank(FractionPlaces)
}

// Prorate returns amount × Fraction(periodStart, periodEnd, from, to),
// multiplying before dividing so the result is exact to 24 decimal places
// (far below any currency's minor unit); round it with money.Round.
func Prorate(amount decimal.Decimal, periodStart, periodEnd, from, to time.Time) decimal.Decimal {
	num, den := ratio(periodStart, periodEnd, from, to)
	switch {
	case num == 0:
		return decimal.Zero
	case num == den:
		return amount
	}
	return amount.Mul(decimal.NewFromInt(num)).DivRound(decimal.NewFromInt(den), 24)
}

// ratio returns the overlap and the period length in nanoseconds.
func ratio(periodStart, periodEnd, from, to time.Time) (num, den int64) {
	p := Period{Start: periodStart, End: periodEnd}
	if !periodStart.Before(periodEnd) {
		return 0, 1
	}
	c, ok := p.Clip(from, to)
	if !ok {
		return 0, 1
	}
	return int64(c.Duration()), int64(p.Duration())
}
