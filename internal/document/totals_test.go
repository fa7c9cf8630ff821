package document

import (
	"testing"

	"github.com/shopspring/decimal"
)

func TestComputeTotalsTaxRounding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		exp      int32
		rounding Rounding
		lines    []Line
		wantTax  string
		wantNet  []string // computed line net amounts, when checked
		wantPaid string
	}{
		{
			name: "tax is rounded once per category, not per line", exp: 2,
			lines: []Line{
				{Quantity: dec("1"), UnitPrice: dec("0.05"), Tax: std("10")},
				{Quantity: dec("1"), UnitPrice: dec("0.05"), Tax: std("10")},
				{Quantity: dec("1"), UnitPrice: dec("0.05"), Tax: std("10")},
			},
			wantTax: "0.02", // 0.15 × 10 % = 0.015 → 0.02; per line it would be 0.03
		},
		{
			name: "half up", exp: 2, lines: []Line{{Quantity: dec("1"), UnitPrice: dec("0.25"), Tax: std("10")}},
			wantTax: "0.03",
		},
		{
			name: "half even on request", exp: 2, rounding: RoundHalfEven,
			lines:   []Line{{Quantity: dec("1"), UnitPrice: dec("0.25"), Tax: std("10")}},
			wantTax: "0.02",
		},
		{
			name: "negative taxable rounds away from zero", exp: 2,
			lines:   []Line{{Quantity: dec("-1"), UnitPrice: dec("0.25"), Tax: std("10")}},
			wantTax: "-0.03",
		},
		{
			name: "exponent 0 rounds to whole units", exp: 0,
			lines:   []Line{{Quantity: dec("3333"), UnitPrice: dec("0.5"), Tax: std("10")}},
			wantNet: []string{"1667"}, wantTax: "167", // 1666.5 → 1667; 166.7 → 167
		},
		{
			name: "exponent 3 keeps fils", exp: 3,
			lines:   []Line{{Quantity: dec("3"), UnitPrice: dec("15.125"), Tax: std("5")}},
			wantNet: []string{"45.375"}, wantTax: "2.269", // 2.26875 → 2.269
		},
		{
			name: "line allowances and base quantity enter the net amount", exp: 2,
			lines: []Line{{Quantity: dec("1500"), UnitPrice: dec("2"), BaseQuantity: dec("1000"), Tax: std("20"),
				AllowanceCharges: []AllowanceCharge{{Amount: dec("0.50"), Reason: "Loyalty"}, {Charge: true, Amount: dec("0.10"), Reason: "Handling"}}}},
			wantNet: []string{"2.60"}, wantTax: "0.52",
		},
		{
			name: "zero-rated and exempt carry no tax", exp: 2,
			lines: []Line{
				{Quantity: dec("1"), UnitPrice: dec("100"), Tax: Tax{Category: TaxZeroRated}},
				{Quantity: dec("1"), UnitPrice: dec("100"), Tax: Tax{Category: TaxExempt, ExemptionReasonCode: "VATEX-EU-132-1I"}},
			},
			wantTax: "0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &Document{CurrencyExponent: tt.exp, Lines: tt.lines}
			d.ComputeTotals(tt.rounding)
			if !d.Totals.Tax.Equal(dec(tt.wantTax)) {
				t.Errorf("tax = %s, want %s", d.Totals.Tax, tt.wantTax)
			}
			for i, want := range tt.wantNet {
				if !d.Lines[i].NetAmount.Equal(dec(want)) {
					t.Errorf("line %d net = %s, want %s", i, d.Lines[i].NetAmount, want)
				}
			}
			if !d.Totals.TaxInclusive.Equal(d.Totals.TaxExclusive.Add(d.Totals.Tax)) || !d.Totals.Payable.Equal(d.Totals.TaxInclusive) {
				t.Errorf("totals do not add up: %+v", d.Totals)
			}
		})
	}
}

func TestComputeTotalsGroupsAllowancesAndPrepaid(t *testing.T) {
	t.Parallel()
	d := &Document{CurrencyExponent: 2,
		Lines: []Line{
			{Quantity: dec("1"), UnitPrice: dec("100"), Tax: std("19")},
			{Quantity: dec("1"), UnitPrice: dec("50"), Tax: std("7")},
			{Quantity: dec("2"), UnitPrice: dec("30"), Tax: Tax{Category: TaxReverseCharge}},
		},
		AllowanceCharges: []AllowanceCharge{
			{Amount: dec("10"), Reason: "Coupon", Tax: &Tax{Category: TaxStandard, Rate: dec("19")}},
			{Charge: true, Amount: dec("5"), Reason: "Shipping", Tax: &Tax{Category: TaxStandard, Rate: dec("7")}},
		},
		Totals: Totals{Prepaid: dec("20")},
	}
	d.ComputeTotals(RoundHalfUp)
	want := []struct{ cat, rate, taxable, tax, code string }{
		{"S", "19", "90", "17.1", ""},
		{"S", "7", "55", "3.85", ""},
		{"AE", "0", "60", "0", "VATEX-EU-AE"},
	}
	if len(d.TaxBreakdown) != len(want) {
		t.Fatalf("breakdown = %+v", d.TaxBreakdown)
	}
	for i, w := range want {
		g := d.TaxBreakdown[i]
		if string(g.Tax.Category) != w.cat || !g.Tax.Rate.Equal(dec(w.rate)) || !g.TaxableAmount.Equal(dec(w.taxable)) || !g.TaxAmount.Equal(dec(w.tax)) || g.Tax.ExemptionReasonCode != w.code {
			t.Errorf("group %d = %+v, want %+v", i, g, w)
		}
	}
	tot := d.Totals
	for _, c := range []struct {
		name      string
		got, want decimal.Decimal
	}{
		{"line extension", tot.LineExtension, dec("210")},
		{"allowances", tot.AllowanceTotal, dec("10")},
		{"charges", tot.ChargeTotal, dec("5")},
		{"tax exclusive", tot.TaxExclusive, dec("205")},
		{"tax", tot.Tax, dec("20.95")},
		{"tax inclusive", tot.TaxInclusive, dec("225.95")},
		{"payable", tot.Payable, dec("205.95")},
	} {
		if !c.got.Equal(c.want) {
			t.Errorf("%s = %s, want %s", c.name, c.got, c.want)
		}
	}
}

func TestAverageUnitPrice(t *testing.T) {
	t.Parallel()
	tests := []struct{ amount, qty string }{
		{"837.28", "1234567"}, {"1667", "3333"}, {"0.01", "0.003"}, {"99999.99", "987654321"}, {"10", "3"},
	}
	limit := dec("0.0001")
	for _, tt := range tests {
		p := AverageUnitPrice(dec(tt.amount), dec(tt.qty))
		if diff := dec(tt.qty).Mul(p).Sub(dec(tt.amount)).Abs(); diff.GreaterThan(limit) {
			t.Errorf("AverageUnitPrice(%s, %s) = %s: quantity × price is off by %s", tt.amount, tt.qty, p, diff)
		}
	}
	if got := AverageUnitPrice(dec("5"), decimal.Zero); !got.Equal(dec("5")) {
		t.Errorf("zero quantity: got %s", got)
	}
}
