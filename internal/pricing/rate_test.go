package pricing_test

import (
	"math/rand/v2"
	"testing"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/money"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/shopspring/decimal"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func dp(s string) *decimal.Decimal { v := d(s); return &v }

var (
	eur = money.MustCurrency("EUR")
	jpy = money.MustCurrency("JPY")
	kwd = money.MustCurrency("KWD")
)

// threeTiers: 0–100 at 1.00 + 10.00 flat, 100–1000 at 0.50, above at 0.10.
func threeTiers() []pricing.Tier {
	return []pricing.Tier{
		{UpTo: dp("100"), UnitAmount: d("1"), FlatAmount: d("10")},
		{UpTo: dp("1000"), UnitAmount: d("0.5")},
		{UnitAmount: d("0.1")},
	}
}

func TestRate(t *testing.T) {
	t.Parallel()
	perUnit := func(unit string) pricing.Price { return pricing.Price{Model: pricing.PerUnit, UnitAmount: d(unit)} }
	pkg := func(size, unit string) pricing.Price {
		return pricing.Price{Model: pricing.Package, PackageSize: d(size), UnitAmount: d(unit)}
	}
	grad := pricing.Price{Model: pricing.Graduated, Tiers: threeTiers()}
	vol := pricing.Price{Model: pricing.Volume, Tiers: threeTiers()}
	pct := pricing.Price{Model: pricing.Percentage, Percentage: d("2.9"), FixedAmountPerEvent: d("0.30")}
	bounded := pricing.Price{Model: pricing.PerUnit, UnitAmount: d("0.1"), Minimum: dp("5"), Maximum: dp("20")}

	tests := []struct {
		name      string
		price     pricing.Price
		qty       string
		events    int64
		c         money.Currency
		r         money.Rounding
		unrounded string
		amount    string
	}{
		{"per_unit zero", perUnit("0.05"), "0", 0, eur, "", "0", "0"},
		{"per_unit", perUnit("0.05"), "10", 0, eur, "", "0.5", "0.5"},
		{"per_unit fractional units", perUnit("0.10"), "0.5", 0, eur, "", "0.05", "0.05"},
		{"per_unit beyond 2^63", perUnit("0.000001"), "1e30", 0, eur, "", "1e24", "1e24"},
		{"per_unit 2^64+1 units", perUnit("1"), "18446744073709551617", 0, eur, "", "18446744073709551617", "18446744073709551617"},
		{"per_unit sub-cent price", perUnit("0.0001"), "3", 0, eur, "", "0.0003", "0"},
		{"per_unit sub-cent price, up", perUnit("0.0001"), "3", 0, eur, money.RoundUp, "0.0003", "0.01"},
		{"EUR half_up tie", perUnit("0.0025"), "5", 0, eur, money.RoundHalfUp, "0.0125", "0.01"},
		{"EUR half_up 0.125", perUnit("0.125"), "1", 0, eur, money.RoundHalfUp, "0.125", "0.13"},
		{"EUR half_even 0.125", perUnit("0.125"), "1", 0, eur, money.RoundHalfEven, "0.125", "0.12"},
		{"EUR down", perUnit("0.129"), "1", 0, eur, money.RoundDown, "0.129", "0.12"},
		{"JPY half_up 2.5", perUnit("0.5"), "5", 0, jpy, money.RoundHalfUp, "2.5", "3"},
		{"JPY half_even 2.5", perUnit("0.5"), "5", 0, jpy, money.RoundHalfEven, "2.5", "2"},
		{"JPY up", perUnit("0.5"), "3", 0, jpy, money.RoundUp, "1.5", "2"},
		{"JPY down", perUnit("0.5"), "3", 0, jpy, money.RoundDown, "1.5", "1"},
		{"KWD half_up", perUnit("0.0005"), "1", 0, kwd, money.RoundHalfUp, "0.0005", "0.001"},
		{"KWD half_even", perUnit("0.0005"), "1", 0, kwd, money.RoundHalfEven, "0.0005", "0"},
		{"KWD up", perUnit("0.0001"), "1", 0, kwd, money.RoundUp, "0.0001", "0.001"},
		{"KWD keeps 3 digits", perUnit("1.2345"), "1", 0, kwd, money.RoundDown, "1.2345", "1.234"},

		{"package zero", pkg("100", "5"), "0", 0, eur, "", "0", "0"},
		{"package one unit is a full package", pkg("100", "5"), "1", 0, eur, "", "5", "5"},
		{"package exactly full", pkg("100", "5"), "100", 0, eur, "", "5", "5"},
		{"package one above", pkg("100", "5"), "101", 0, eur, "", "10", "10"},
		{"package fraction above", pkg("100", "5"), "100.000000000000000000001", 0, eur, "", "10", "10"},
		{"package fractional size", pkg("0.5", "1"), "1.2", 0, eur, "", "3", "3"},
		{"package beyond 2^63", pkg("1000", "5"), "1e30", 0, eur, "", "5e27", "5e27"},

		{"graduated zero", grad, "0", 0, eur, "", "0", "0"},
		{"graduated first unit takes the flat fee", grad, "1", 0, eur, "", "11", "11"},
		{"graduated at first up_to", grad, "100", 0, eur, "", "110", "110"},
		{"graduated one above", grad, "101", 0, eur, "", "110.5", "110.5"},
		{"graduated half a unit above", grad, "100.5", 0, eur, "", "110.25", "110.25"},
		{"graduated at second up_to", grad, "1000", 0, eur, "", "560", "560"},
		{"graduated into the last tier", grad, "1001", 0, eur, "", "560.1", "560.1"},
		{"graduated beyond 2^63", grad, "1e30", 0, eur, "", "100000000000000000000000000460", "100000000000000000000000000460"},
		{"graduated JPY rounding", grad, "100.3", 0, jpy, "", "110.15", "110"},

		{"volume zero", vol, "0", 0, eur, "", "0", "0"},
		{"volume fractional in first tier", vol, "0.5", 0, eur, "", "10.5", "10.5"},
		{"volume at first up_to", vol, "100", 0, eur, "", "110", "110"},
		{"volume one above", vol, "101", 0, eur, "", "50.5", "50.5"},
		{"volume at second up_to", vol, "1000", 0, eur, "", "500", "500"},
		{"volume one above second", vol, "1001", 0, eur, "", "100.1", "100.1"},
		{"volume beyond 2^63", vol, "1e30", 0, eur, "", "1e29", "1e29"},

		{"percentage zero", pct, "0", 0, eur, "", "0", "0"},
		{"percentage plus event fees", pct, "1000", 10, eur, "", "32", "32"},
		{"percentage rounds", pct, "10.55", 1, eur, "", "0.60595", "0.61"},
		{"percentage KWD", pricing.Price{Model: pricing.Percentage, Percentage: d("1.5")}, "1.001", 0, kwd, money.RoundHalfEven, "0.015015", "0.015"},
		{"percentage beyond 2^63", pct, "1e30", 0, eur, "", "2.9e28", "2.9e28"},
		{"percentage 100", pricing.Price{Model: pricing.Percentage, Percentage: d("100")}, "12.34", 0, eur, "", "12.34", "12.34"},

		{"minimum applies with no usage", bounded, "0", 0, eur, "", "5", "5"},
		{"within bounds", bounded, "100", 0, eur, "", "10", "10"},
		{"maximum caps", bounded, "1000", 0, eur, "", "20", "20"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := pricing.Rate(tt.price, pricing.Usage{Quantity: d(tt.qty), Events: tt.events}, tt.c, tt.r)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Unrounded.Equal(d(tt.unrounded)) {
				t.Errorf("unrounded = %s, want %s", res.Unrounded, tt.unrounded)
			}
			if !res.Amount.Equal(d(tt.amount)) {
				t.Errorf("amount = %s, want %s", res.Amount, tt.amount)
			}
			sum := decimal.Zero
			for _, c := range res.Components {
				sum = sum.Add(c.Amount)
			}
			if !sum.Equal(res.Subtotal) || !res.Subtotal.Add(res.Adjustment).Equal(res.Unrounded) {
				t.Errorf("breakdown %s + adjustment %s does not add up to %s", sum, res.Adjustment, res.Unrounded)
			}
		})
	}
}

func TestRateBreakdown(t *testing.T) {
	t.Parallel()
	res, err := pricing.Rate(pricing.Price{Model: pricing.Graduated, Tiers: threeTiers()}, pricing.Usage{Quantity: d("1001")}, eur, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		tier              int
		from, qty, amount string
	}{
		{0, "0", "100", "110"}, {1, "100", "900", "450"}, {2, "1000", "1", "0.1"},
	}
	if len(res.Components) != len(want) {
		t.Fatalf("components = %+v", res.Components)
	}
	for i, w := range want {
		c := res.Components[i]
		if c.Kind != pricing.ComponentTier || *c.Tier != w.tier || !c.From.Equal(d(w.from)) || !c.Quantity.Equal(d(w.qty)) || !c.Amount.Equal(d(w.amount)) {
			t.Errorf("component %d = %+v, want %+v", i, c, w)
		}
	}
	if res.Components[2].UpTo != nil {
		t.Errorf("last tier up_to = %v, want nil", res.Components[2].UpTo)
	}

	bounded := pricing.Price{Model: pricing.PerUnit, UnitAmount: d("0.1"), Minimum: dp("5"), Maximum: dp("20")}
	for _, tt := range []struct {
		qty        string
		by         pricing.Bound
		adjustment string
	}{{"0", pricing.BoundMinimum, "5"}, {"100", "", "0"}, {"1000", pricing.BoundMaximum, "-80"}} {
		res, err := pricing.Rate(bounded, pricing.Usage{Quantity: d(tt.qty)}, eur, "")
		if err != nil {
			t.Fatal(err)
		}
		if res.AdjustedBy != tt.by || !res.Adjustment.Equal(d(tt.adjustment)) {
			t.Errorf("qty %s: adjusted by %q %s, want %q %s", tt.qty, res.AdjustedBy, res.Adjustment, tt.by, tt.adjustment)
		}
	}

	pct := pricing.Price{Model: pricing.Percentage, Percentage: d("2.9"), FixedAmountPerEvent: d("0.30")}
	res, err = pricing.Rate(pct, pricing.Usage{Quantity: d("1000"), Events: 10}, eur, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Components) != 2 || res.Components[0].Kind != pricing.ComponentPercentage || !res.Components[0].UnitAmount.Equal(d("0.029")) ||
		res.Components[1].Kind != pricing.ComponentEventFee || !res.Components[1].Amount.Equal(d("3")) {
		t.Errorf("percentage components = %+v", res.Components)
	}
}

func TestRateRejectsBadInput(t *testing.T) {
	t.Parallel()
	ok := pricing.Price{Model: pricing.PerUnit, UnitAmount: d("1")}
	tests := []struct {
		name  string
		price pricing.Price
		u     pricing.Usage
		code  string
	}{
		{"negative quantity", ok, pricing.Usage{Quantity: d("-1")}, "invalid_usage"},
		{"negative events", ok, pricing.Usage{Events: -1}, "invalid_usage"},
		{"bad price", pricing.Price{Model: pricing.Package}, pricing.Usage{Quantity: d("1")}, "invalid_price"},
	}
	for _, tt := range tests {
		_, err := pricing.Rate(tt.price, tt.u, eur, "")
		if e, ok := abacus.AsError(err); !ok || e.Code != tt.code || e.Kind != abacus.KindInvalid {
			t.Errorf("%s: err = %v, want %s", tt.name, err, tt.code)
		}
	}
}

// randomTiers returns 1–6 valid tiers with amounts in cents and bounds in
// tenths of a unit.
func randomTiers(rng *rand.Rand) []pricing.Tier {
	n := 1 + rng.IntN(6)
	tiers := make([]pricing.Tier, n)
	bound := int64(0)
	for i := range tiers {
		tiers[i] = pricing.Tier{
			UnitAmount: decimal.New(rng.Int64N(10000), -2),
			FlatAmount: decimal.New(rng.Int64N(3)*rng.Int64N(10000), -2),
		}
		if i < n-1 {
			bound += 1 + rng.Int64N(5000)
			b := decimal.New(bound, -1)
			tiers[i].UpTo = &b
		}
	}
	return tiers
}

func TestGraduatedNeverDecreases(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		p := pricing.Price{Model: pricing.Graduated, Tiers: randomTiers(rng)}
		prev := decimal.Zero
		q := decimal.Zero
		for range 60 {
			q = q.Add(decimal.New(rng.Int64N(3000), -1)) // steps of 0 to 300 units, often landing on bounds
			res, err := pricing.Rate(p, pricing.Usage{Quantity: q}, eur, "")
			if err != nil {
				t.Fatal(err)
			}
			if res.Unrounded.LessThan(prev) || res.Amount.LessThan(money.Round(prev, eur, "")) {
				t.Fatalf("tiers %+v: total fell from %s to %s at quantity %s", p.Tiers, prev, res.Unrounded, q)
			}
			prev = res.Unrounded
		}
	}
}

func TestGraduatedAndVolumeAgreeOnOneTier(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		tier := []pricing.Tier{{UnitAmount: decimal.New(rng.Int64N(100000), -int32(rng.IntN(6))), FlatAmount: decimal.New(rng.Int64N(5000), -2)}}
		q := decimal.New(rng.Int64N(1<<62), -int32(rng.IntN(8)))
		if rng.IntN(10) == 0 {
			q = decimal.Zero
		}
		u := pricing.Usage{Quantity: q}
		g, err1 := pricing.Rate(pricing.Price{Model: pricing.Graduated, Tiers: tier}, u, jpy, money.RoundHalfEven)
		v, err2 := pricing.Rate(pricing.Price{Model: pricing.Volume, Tiers: tier}, u, jpy, money.RoundHalfEven)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if !g.Unrounded.Equal(v.Unrounded) || !g.Amount.Equal(v.Amount) {
			t.Fatalf("tier %+v quantity %s: graduated %s, volume %s", tier[0], q, g.Unrounded, v.Unrounded)
		}
	}
}
