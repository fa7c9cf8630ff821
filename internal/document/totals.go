package document

import (
	"sort"

	"github.com/shopspring/decimal"
)

// Rounding is how an amount is rounded to the currency's minor unit.
type Rounding int

const (
	// RoundHalfUp rounds halves away from zero (2.345 → 2.35, −2.345 →
	// −2.35). It is the default and what EN 16931 validators compute.
	RoundHalfUp Rounding = iota
	// RoundHalfEven rounds halves to the even digit (2.345 → 2.34).
	RoundHalfEven
)

func (r Rounding) round(d decimal.Decimal, places int32) decimal.Decimal {
	if r == RoundHalfEven {
		return d.RoundBank(places)
	}
	return d.Round(places)
}

var hundred = decimal.NewFromInt(100)

// lineBase is Quantity × UnitPrice / BaseQuantity + line charges − line
// allowances, unrounded: the value PEPPOL-EN16931-R120 compares the line
// net amount with.
func (l *Line) lineBase() decimal.Decimal {
	base := l.BaseQuantity
	if base.IsZero() {
		base = decimal.NewFromInt(1)
	}
	v := l.Quantity.Mul(l.UnitPrice).Div(base)
	for _, ac := range l.AllowanceCharges {
		if ac.Charge {
			v = v.Add(ac.Amount)
		} else {
			v = v.Sub(ac.Amount)
		}
	}
	return v
}

// AverageUnitPrice returns a unit price p for a line whose amount does not
// come from one price (a graduated or volume tier usage line, a minimum
// commitment) such that quantity × p is within 0.0001 of amount, as
// Peppol requires of every line (R120). It keeps four more decimals than
// the quantity has integer digits. It returns amount when quantity is zero.
func AverageUnitPrice(amount, quantity decimal.Decimal) decimal.Decimal {
	if quantity.IsZero() {
		return amount
	}
	digits := int32(len(quantity.Abs().Truncate(0).String()))
	return amount.DivRound(quantity, digits+4)
}

// ComputeTotals fills in what EN 16931 derives from the lines and the
// document-level allowances and charges, so callers never re-implement it:
//
//   - a line's NetAmount when it is zero: Quantity × UnitPrice /
//     BaseQuantity + line charges − line allowances, rounded to the currency;
//   - TaxBreakdown: one group per tax category and rate; taxable amount = Σ
//     line net amounts + charges − allowances of that group; tax amount =
//     taxable × rate / 100 rounded once per group (not per line) to the
//     currency's minor unit with r (RoundHalfUp unless the tax authority
//     says otherwise), and zero for categories other than S, L and M;
//     missing exemption reasons for AE, K, G and O get the standard VATEX
//     code and text (E has no default: the caller must name the exemption);
//   - Totals, from the breakdown and Totals.Prepaid / PayableRounding, which
//     the caller sets (prepaid = credits and payments already applied).
//
// It does not check anything; call Validate afterwards.
func (d *Document) ComputeTotals(r Rounding) {
	exp := d.CurrencyExponent
	groups := map[string]*TaxSubtotal{}
	var order []string
	add := func(t Tax, amount decimal.Decimal) {
		k := t.key()
		g, ok := groups[k]
		if !ok {
			g = &TaxSubtotal{Tax: Tax{Category: t.Category, Rate: t.Rate}}
			groups[k] = g
			order = append(order, k)
		}
		if g.Tax.ExemptionReason == "" && g.Tax.ExemptionReasonCode == "" {
			g.Tax.ExemptionReason, g.Tax.ExemptionReasonCode = t.ExemptionReason, t.ExemptionReasonCode
		}
		g.TaxableAmount = g.TaxableAmount.Add(amount)
	}

	var lineSum, allowances, charges decimal.Decimal
	for i := range d.Lines {
		l := &d.Lines[i]
		if l.NetAmount.IsZero() {
			l.NetAmount = r.round(l.lineBase(), exp)
		}
		lineSum = lineSum.Add(l.NetAmount)
		add(l.Tax, l.NetAmount)
	}
	for _, ac := range d.AllowanceCharges {
		var t Tax
		if ac.Tax != nil {
			t = *ac.Tax
		}
		if ac.Charge {
			charges = charges.Add(ac.Amount)
			add(t, ac.Amount)
		} else {
			allowances = allowances.Add(ac.Amount)
			add(t, ac.Amount.Neg())
		}
	}

	d.TaxBreakdown = make([]TaxSubtotal, 0, len(order)) // never write into a slice the caller may share
	var tax decimal.Decimal
	for _, k := range order {
		g := groups[k]
		if g.Tax.Category.charged() {
			g.TaxAmount = r.round(g.TaxableAmount.Mul(g.Tax.Rate).Div(hundred), exp)
		}
		if g.Tax.Category.needsExemption() && g.Tax.ExemptionReason == "" && g.Tax.ExemptionReasonCode == "" {
			if def, ok := defaultExemption[g.Tax.Category]; ok {
				g.Tax.ExemptionReasonCode, g.Tax.ExemptionReason = def[0], def[1]
			}
		}
		tax = tax.Add(g.TaxAmount)
		d.TaxBreakdown = append(d.TaxBreakdown, *g)
	}
	sortBreakdown(d.TaxBreakdown)

	t := &d.Totals
	t.LineExtension = lineSum
	t.AllowanceTotal = allowances
	t.ChargeTotal = charges
	t.TaxExclusive = lineSum.Sub(allowances).Add(charges)
	t.Tax = tax
	t.TaxInclusive = t.TaxExclusive.Add(tax)
	t.Payable = t.TaxInclusive.Sub(t.Prepaid).Add(t.PayableRounding)
}

// sortBreakdown orders groups by category (S first) and then by rate,
// highest first, so documents read the same every time.
func sortBreakdown(b []TaxSubtotal) {
	sort.SliceStable(b, func(i, j int) bool {
		ci, cj := taxCategoryOrder[b[i].Tax.Category], taxCategoryOrder[b[j].Tax.Category]
		if ci != cj {
			return ci < cj
		}
		return b[i].Tax.Rate.GreaterThan(b[j].Tax.Rate)
	})
}
