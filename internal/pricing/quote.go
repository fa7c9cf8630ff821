package pricing

import (
	"fmt"
	"sort"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/money"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/shopspring/decimal"
)

// ChargeKind is the kind of a plan version's charge.
type ChargeKind string

const (
	ChargeFee   ChargeKind = "fee"   // fixed recurring fee (Charge.Fee)
	ChargeUsage ChargeKind = "usage" // usage of Charge.Meter priced by Charge.Price
)

// Charge is one charge of a plan version. Key identifies it within the
// version (quantities and invoice lines refer to it).
type Charge struct {
	Key         string     `json:"key"`
	Description string     `json:"description,omitempty"`
	Kind        ChargeKind `json:"kind" enum:"fee,usage"`
	Fee         *Fee       `json:"fee,omitempty"`
	Meter       string     `json:"meter,omitempty"`
	Price       *Price     `json:"price,omitempty"`
}

func (ch Charge) label() string {
	if ch.Description != "" {
		return ch.Description
	}
	return ch.Key
}

// PlanPricing is the priced part of a plan version: its currency, its
// rounding mode (half_up when empty), its charges and an optional minimum
// commitment per period. The commitment covers usage charges only: fixed
// fees are known in advance (and often billed on another invoice), so
// they do not count toward it.
type PlanPricing struct {
	Currency          string           `json:"currency"`
	Rounding          money.Rounding   `json:"rounding,omitempty"`
	Charges           []Charge         `json:"charges"`
	MinimumCommitment *decimal.Decimal `json:"minimum_commitment,omitempty"`
}

// Validate returns nil or a KindInvalid *abacus.Error with code
// "invalid_plan_pricing" naming every bad field under field, e.g.
// "charges[2].price.tiers[1].up_to" for field "".
func (pp PlanPricing) Validate(field string) error {
	var v abacus.Validation
	pp.ValidateInto(&v, field)
	return v.Err("invalid_plan_pricing")
}

// ValidateInto records every problem of pp in v under field: an unknown
// currency or rounding, charges without a unique key, a fee charge
// without a fee, a usage charge without a meter or price, and the
// problems of each Fee and Price.
func (pp PlanPricing) ValidateInto(v *abacus.Validation, field string) {
	if _, err := money.LookupCurrency(pp.Currency); err != nil {
		v.Add(join(field, "currency"), "unknown currency %q; use an ISO 4217 code such as USD or EUR", pp.Currency)
	}
	if err := pp.Rounding.Validate(""); err != nil {
		v.Add(join(field, "rounding"), "unknown rounding %q; use half_up, half_even, up or down", string(pp.Rounding))
	}
	if pp.MinimumCommitment != nil {
		nonNegative(v, join(field, "minimum_commitment"), *pp.MinimumCommitment)
	}
	seen := map[string]bool{}
	for i, ch := range pp.Charges {
		cf := join(field, fmt.Sprintf("charges[%d]", i))
		switch {
		case ch.Key == "":
			v.Add(cf+".key", "is required")
		case seen[ch.Key]:
			v.Add(cf+".key", "duplicate key %q; each charge of a version needs its own key", ch.Key)
		}
		seen[ch.Key] = true
		switch ch.Kind {
		case ChargeFee:
			if ch.Fee == nil {
				v.Add(cf+".fee", "is required for a fee charge")
			} else {
				ch.Fee.ValidateInto(v, cf+".fee")
			}
			if ch.Price != nil || ch.Meter != "" {
				v.Add(cf+".kind", "a fee charge has no meter or price; use kind usage for metered charges")
			}
		case ChargeUsage:
			if ch.Meter == "" {
				v.Add(cf+".meter", "is required for a usage charge")
			}
			if ch.Price == nil {
				v.Add(cf+".price", "is required for a usage charge")
			} else {
				ch.Price.ValidateInto(v, cf+".price")
			}
			if ch.Fee != nil {
				v.Add(cf+".fee", "applies only to fee charges; remove it")
			}
		default:
			v.Add(cf+".kind", "unknown charge kind %q; use fee or usage", string(ch.Kind))
		}
	}
}

func (pp PlanPricing) currency() money.Currency {
	c, _ := money.LookupCurrency(pp.Currency) // validated before use
	return c
}

// LineKind is the kind of a priced line.
type LineKind string

const (
	LineFee        LineKind = "fee"        // a fixed fee for (part of) a period
	LineUsage      LineKind = "usage"      // a usage charge
	LineProration  LineKind = "proration"  // credit or charge for a mid-period change
	LineCommitment LineKind = "commitment" // minimum commitment true-up
)

// Line is a priced invoice line. Period is the service time it covers;
// Proration is the share of the billing period that is, when less than
// all of it. Unrounded is exact, Amount is rounded to the currency and
// negative for credits. Usage holds the rated breakdown of usage lines.
type Line struct {
	Kind        LineKind         `json:"kind"`
	ChargeKey   string           `json:"charge_key,omitempty"`
	Meter       string           `json:"meter,omitempty"`
	Description string           `json:"description"`
	Billed      Billing          `json:"billed,omitempty"`
	Period      period.Period    `json:"period"`
	Quantity    decimal.Decimal  `json:"quantity"`
	UnitAmount  *decimal.Decimal `json:"unit_amount,omitempty"`
	Proration   *decimal.Decimal `json:"proration,omitempty"`
	Unrounded   decimal.Decimal  `json:"unrounded_amount"`
	Amount      decimal.Decimal  `json:"amount"`
	Usage       *Result          `json:"usage,omitempty"`
}

// Part selects which lines Quote produces; combine with |. Zero means
// all. The commitment line needs PartUsage too: it is measured against
// the usage lines.
type Part uint8

const (
	PartInAdvanceFees Part = 1 << iota
	PartInArrearsFees
	PartUsage
	PartCommitment
	PartAll = PartInAdvanceFees | PartInArrearsFees | PartUsage | PartCommitment
)

// QuantityChange sets the quantity of fee charge Key from At on.
type QuantityChange struct {
	Key      string          `json:"key"`
	At       time.Time       `json:"at"`
	Quantity decimal.Decimal `json:"quantity"`
}

// QuoteInput is what Quote prices. Period is the whole billing period
// (proration is relative to it); [From, To) is the part of it spent on
// this plan version, the whole period when both are zero. Quantities are
// the fee quantities at From by charge key (1 when missing); Changes
// alter them later in the window. Paused lists spans of the window the
// subscription was paused: they are not served, so no fee is billed for
// them and the usage minimum, maximum and commitment are prorated over
// the served time only. Usage is by meter key (none when missing) and
// covers the served time of the window.
type QuoteInput struct {
	Period     period.Period
	From, To   time.Time
	Quantities map[string]decimal.Decimal
	Changes    []QuantityChange
	Usage      map[string]Usage
	Parts      Part
	Paused     []period.Period
}

// Quote prices plan version pp for one window of a billing period and
// returns its lines in charge order, the commitment true-up last:
//
//   - a fee line per fee charge and quantity segment outside the pauses
//     (segments with quantity 0 are left out), prorated when the window
//     is not the whole period;
//   - a usage line per usage charge, covering the window; when the window
//     is partial or paused, the price's minimum and maximum are prorated
//     by the time served;
//   - a commitment line when the rounded usage lines sum below the
//     commitment (prorated the same way).
//
// An invoice at the end of period P typically asks for
// PartInArrearsFees|PartUsage|PartCommitment of P and PartInAdvanceFees of
// the next period. Quote returns the "invalid_plan_pricing" error of
// Validate, the "invalid_usage" error of Rate, or a KindInvalid
// *abacus.Error with code "invalid_quote" for a window outside the period,
// a paused span that is empty, outside the window or overlaps another, a
// negative quantity or a change of an unknown charge.
func Quote(pp PlanPricing, in QuoteInput) ([]Line, error) {
	if err := pp.Validate(""); err != nil {
		return nil, err
	}
	w, err := in.window()
	if err != nil {
		return nil, err
	}
	parts := in.Parts
	if parts == 0 {
		parts = PartAll
	}
	paused, err := in.paused(w)
	if err != nil {
		return nil, err
	}
	c, r := pp.currency(), pp.Rounding.OrDefault()
	partial := !w.Start.Equal(in.Period.Start) || !w.End.Equal(in.Period.End) || len(paused) > 0
	served := w.Duration()
	for _, p := range paused {
		served -= p.Duration()
	}
	scale := func(d decimal.Decimal) decimal.Decimal {
		// A span from the period start as long as the time served: its
		// share of the period is the served share, exactly as Prorate
		// computes it.
		return period.Prorate(d, in.Period.Start, in.Period.End, in.Period.Start, in.Period.Start.Add(served))
	}
	if err := checkChanges(pp, in, w); err != nil {
		return nil, err
	}

	var lines []Line
	spent := decimal.Zero
	for i, ch := range pp.Charges {
		switch ch.Kind {
		case ChargeFee:
			want := PartInAdvanceFees
			if ch.Fee.Billed.OrDefault() == InArrears {
				want = PartInArrearsFees
			}
			if parts&want == 0 {
				continue
			}
			for _, seg := range segments(ch.Key, in, w) {
				if seg.qty.IsNegative() {
					return nil, abacus.Invalid("invalid_quote", "quantity of charge %q must not be negative, got %s", ch.Key, seg.qty).
						WithField(fmt.Sprintf("quantities.%s", ch.Key), "must not be negative")
				}
				if seg.qty.IsZero() {
					continue
				}
				for _, p := range unpaused(seg.p, paused) {
					lines = append(lines, feeLine(ch, in.Period, p, seg.qty, partial, c, r))
				}
			}
		case ChargeUsage:
			if parts&PartUsage == 0 {
				continue
			}
			price := *ch.Price
			if partial {
				price.Minimum = scaled(price.Minimum, scale)
				price.Maximum = scaled(price.Maximum, scale)
			}
			u := in.Usage[ch.Meter]
			res, err := Rate(price, u, c, r)
			if err != nil {
				return nil, fmt.Errorf("pricing charge %d (%s): %w", i, ch.Key, err)
			}
			l := Line{
				Kind: LineUsage, ChargeKey: ch.Key, Meter: ch.Meter, Description: ch.label(),
				Period: w, Quantity: u.Quantity, Unrounded: res.Unrounded, Amount: res.Amount, Usage: &res,
			}
			if price.Model == PerUnit && res.AdjustedBy == "" {
				ua := price.UnitAmount
				l.UnitAmount = &ua
			}
			spent = spent.Add(res.Amount)
			lines = append(lines, l)
		}
	}
	if pp.MinimumCommitment != nil && parts&PartCommitment != 0 && parts&PartUsage != 0 {
		commit := scale(*pp.MinimumCommitment)
		if due := TrueUp(spent, commit, c, r); due.IsPositive() {
			lines = append(lines, Line{
				Kind: LineCommitment, Description: fmt.Sprintf("Minimum commitment of %s", money.FormatAmount(money.Round(commit, c, r), c)),
				Period: w, Quantity: decimal.NewFromInt(1), Unrounded: due, Amount: due,
			})
		}
	}
	return lines, nil
}

func scaled(d *decimal.Decimal, f func(decimal.Decimal) decimal.Decimal) *decimal.Decimal {
	if d == nil {
		return nil
	}
	s := f(*d)
	return &s
}

func feeLine(ch Charge, full, p period.Period, qty decimal.Decimal, partial bool, c money.Currency, r money.Rounding) Line {
	unrounded := FeeAmount(*ch.Fee, qty, full, p.Start, p.End)
	ua := ch.Fee.Amount
	l := Line{
		Kind: LineFee, ChargeKey: ch.Key, Description: ch.label(), Billed: ch.Fee.Billed.OrDefault(),
		Period: p, Quantity: qty, UnitAmount: &ua, Unrounded: unrounded, Amount: money.Round(unrounded, c, r),
	}
	if partial || !p.Start.Equal(full.Start) || !p.End.Equal(full.End) {
		f := full.Fraction(p.Start, p.End)
		l.Proration = &f
	}
	return l
}

func (in QuoteInput) window() (period.Period, error) {
	if !in.Period.Start.Before(in.Period.End) {
		return period.Period{}, abacus.Invalid("invalid_quote", "the billing period must end after it starts").WithField("period", "end must be after start")
	}
	from, to := in.From, in.To
	if from.IsZero() {
		from = in.Period.Start
	}
	if to.IsZero() {
		to = in.Period.End
	}
	if from.Before(in.Period.Start) || to.After(in.Period.End) || !from.Before(to) {
		return period.Period{}, abacus.Invalid("invalid_quote",
			"the window [%s, %s) must be a non-empty part of the period [%s, %s)", from, to, in.Period.Start, in.Period.End).
			WithField("from", "must be within the billing period and before to")
	}
	return period.Period{Start: from, End: to}, nil
}

// paused returns in.Paused sorted, after checking each span is a
// non-empty part of window w that overlaps no other.
func (in QuoteInput) paused(w period.Period) ([]period.Period, error) {
	if len(in.Paused) == 0 {
		return nil, nil
	}
	idx := make([]int, len(in.Paused))
	for i, p := range in.Paused {
		if p.Start.Before(w.Start) || p.End.After(w.End) || !p.Start.Before(p.End) {
			return nil, abacus.Invalid("invalid_quote", "paused span %d [%s, %s) must be a non-empty part of the window [%s, %s)",
				i, p.Start, p.End, w.Start, w.End).WithField(fmt.Sprintf("paused[%d]", i), "must be within the window and end after it starts")
		}
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return in.Paused[idx[a]].Start.Before(in.Paused[idx[b]].Start) })
	out := make([]period.Period, len(idx))
	for k, i := range idx {
		out[k] = in.Paused[i]
		if k > 0 && out[k].Start.Before(out[k-1].End) {
			later := max(i, idx[k-1])
			return nil, abacus.Invalid("invalid_quote", "paused spans %d and %d overlap", min(i, idx[k-1]), later).
				WithField(fmt.Sprintf("paused[%d]", later), "must not overlap another paused span")
		}
	}
	return out, nil
}

// unpaused returns the parts of p outside paused (sorted, disjoint).
func unpaused(p period.Period, paused []period.Period) []period.Period {
	var out []period.Period
	start := p.Start
	for _, gap := range paused {
		if !gap.End.After(start) {
			continue
		}
		if !gap.Start.Before(p.End) {
			break
		}
		if gap.Start.After(start) {
			out = append(out, period.Period{Start: start, End: gap.Start})
		}
		start = gap.End
	}
	if start.Before(p.End) {
		out = append(out, period.Period{Start: start, End: p.End})
	}
	return out
}

func checkChanges(pp PlanPricing, in QuoteInput, w period.Period) error {
	fees := map[string]bool{}
	for _, ch := range pp.Charges {
		if ch.Kind == ChargeFee {
			fees[ch.Key] = true
		}
	}
	for i, qc := range in.Changes {
		if !fees[qc.Key] {
			return abacus.Invalid("invalid_quote", "quantity change %d names %q, which is not a fee charge of this plan version", i, qc.Key).
				WithField(fmt.Sprintf("changes[%d].key", i), "must be the key of a fee charge")
		}
	}
	return nil
}

type segment struct {
	p   period.Period
	qty decimal.Decimal
}

// segments splits window w at the quantity changes of fee key.
func segments(key string, in QuoteInput, w period.Period) []segment {
	qty, ok := in.Quantities[key]
	if !ok {
		qty = decimal.NewFromInt(1)
	}
	var changes []QuantityChange
	for _, qc := range in.Changes {
		if qc.Key == key {
			changes = append(changes, qc)
		}
	}
	sort.SliceStable(changes, func(i, j int) bool { return changes[i].At.Before(changes[j].At) })
	var out []segment
	start := w.Start
	for _, qc := range changes {
		if !qc.At.After(start) {
			qty = qc.Quantity // a change at or before the window start sets the opening quantity
			continue
		}
		if !qc.At.Before(w.End) {
			break
		}
		out = append(out, segment{p: period.Period{Start: start, End: qc.At}, qty: qty})
		start, qty = qc.At, qc.Quantity
	}
	return append(out, segment{p: period.Period{Start: start, End: w.End}, qty: qty})
}
