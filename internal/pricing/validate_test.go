package pricing_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/pricing"
)

func fields(t *testing.T, err error, code string) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	e, ok := abacus.AsError(err)
	if !ok || e.Kind != abacus.KindInvalid || e.Code != code {
		t.Fatalf("err = %v, want a %s *abacus.Error", err, code)
	}
	var out []string
	for _, f := range e.Fields {
		out = append(out, f.Field)
	}
	return out
}

func TestPriceValidate(t *testing.T) {
	t.Parallel()
	tier := func(upTo string, unit string) pricing.Tier {
		tr := pricing.Tier{UnitAmount: d(unit)}
		if upTo != "" {
			tr.UpTo = dp(upTo)
		}
		return tr
	}
	tests := []struct {
		name  string
		price pricing.Price
		want  []string
	}{
		{"per_unit ok", pricing.Price{Model: pricing.PerUnit, UnitAmount: d("0.01")}, nil},
		{"graduated ok", pricing.Price{Model: pricing.Graduated, Tiers: threeTiers()}, nil},
		{"one open tier ok", pricing.Price{Model: pricing.Volume, Tiers: []pricing.Tier{tier("", "1")}}, nil},
		{"unknown model", pricing.Price{Model: "flat"}, []string{"p.model"}},
		{"negative unit amount", pricing.Price{Model: pricing.PerUnit, UnitAmount: d("-1")}, []string{"p.unit_amount"}},
		{"package size zero", pricing.Price{Model: pricing.Package, UnitAmount: d("1")}, []string{"p.package_size"}},
		{"package size negative", pricing.Price{Model: pricing.Package, PackageSize: d("-5")}, []string{"p.package_size"}},
		{"no tiers", pricing.Price{Model: pricing.Graduated}, []string{"p.tiers"}},
		{"overlap: unsorted", pricing.Price{Model: pricing.Graduated, Tiers: []pricing.Tier{tier("100", "1"), tier("50", "1"), tier("", "1")}}, []string{"p.tiers[1].up_to"}},
		{"overlap: equal bounds", pricing.Price{Model: pricing.Volume, Tiers: []pricing.Tier{tier("100", "1"), tier("100", "1"), tier("", "1")}}, []string{"p.tiers[1].up_to"}},
		{"overlap: open tier in the middle", pricing.Price{Model: pricing.Graduated, Tiers: []pricing.Tier{tier("", "1"), tier("100", "1"), tier("", "1")}}, []string{"p.tiers[0].up_to"}},
		{"gap: last tier bounded", pricing.Price{Model: pricing.Graduated, Tiers: []pricing.Tier{tier("100", "1"), tier("200", "1")}}, []string{"p.tiers[1].up_to"}},
		{"first bound zero", pricing.Price{Model: pricing.Graduated, Tiers: []pricing.Tier{tier("0", "1"), tier("", "1")}}, []string{"p.tiers[0].up_to"}},
		{"negative tier amounts", pricing.Price{Model: pricing.Graduated, Tiers: []pricing.Tier{{UpTo: dp("10"), UnitAmount: d("-1"), FlatAmount: d("-2")}, tier("", "1")}},
			[]string{"p.tiers[0].unit_amount", "p.tiers[0].flat_amount"}},
		{"percentage above 100", pricing.Price{Model: pricing.Percentage, Percentage: d("100.01")}, []string{"p.percentage"}},
		{"percentage negative", pricing.Price{Model: pricing.Percentage, Percentage: d("-1")}, []string{"p.percentage"}},
		{"minimum above maximum", pricing.Price{Model: pricing.PerUnit, Minimum: dp("10"), Maximum: dp("5")}, []string{"p.minimum"}},
		{"negative maximum", pricing.Price{Model: pricing.PerUnit, Maximum: dp("-5")}, []string{"p.maximum"}},
		{"fields of another model", pricing.Price{Model: pricing.Volume, UnitAmount: d("1"), PackageSize: d("10"), Percentage: d("5"), FixedAmountPerEvent: d("0.1"), Tiers: threeTiers()},
			[]string{"p.unit_amount", "p.package_size", "p.percentage", "p.fixed_amount_per_event"}},
		{"tiers on per_unit", pricing.Price{Model: pricing.PerUnit, Tiers: threeTiers()}, []string{"p.tiers"}},
	}
	for _, tt := range tests {
		got := fields(t, tt.price.Validate("p"), "invalid_price")
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: fields = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestPlanPricingValidateNamesFieldPath(t *testing.T) {
	t.Parallel()
	const body = `{
	  "currency": "EUR",
	  "rounding": "half_even",
	  "charges": [
	    {"key": "base", "kind": "fee", "fee": {"amount": "49", "billed": "monthly"}},
	    {"key": "api", "kind": "usage", "meter": "api_calls", "price": {"model": "per_unit", "unit_amount": "0.001"}},
	    {"key": "storage", "kind": "usage", "meter": "gb", "price": {"model": "graduated", "tiers": [
	      {"up_to": 100, "unit_amount": "0"},
	      {"up_to": 50, "unit_amount": "0.1"},
	      {"up_to": null, "unit_amount": "0.05"}
	    ]}},
	    {"key": "api", "kind": "usage", "price": {"model": "per_unit"}},
	    {"key": "x", "kind": "bonus"}
	  ],
	  "minimum_commitment": "-1"
	}`
	var pp pricing.PlanPricing
	if err := json.Unmarshal([]byte(body), &pp); err != nil {
		t.Fatal(err)
	}
	got := fields(t, pp.Validate(""), "invalid_plan_pricing")
	want := []string{
		"minimum_commitment",
		"charges[0].fee.billed",
		"charges[2].price.tiers[1].up_to",
		"charges[3].key",
		"charges[3].meter",
		"charges[4].kind",
	}
	if !slices.Equal(got, want) {
		t.Errorf("fields = %v\nwant      %v", got, want)
	}
	pp = pricing.PlanPricing{Currency: "XYZ", Rounding: "nearest"}
	if got := fields(t, pp.Validate("version"), "invalid_plan_pricing"); !slices.Equal(got, []string{"version.currency", "version.rounding"}) {
		t.Errorf("fields = %v", got)
	}
}

func TestPriceJSONRoundTrip(t *testing.T) {
	t.Parallel()
	in := pricing.Price{Model: pricing.Graduated, Tiers: threeTiers(), Minimum: dp("1.5")}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out pricing.Price
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Tiers) != 3 || out.Tiers[2].UpTo != nil || !out.Tiers[1].UpTo.Equal(d("1000")) || !out.Minimum.Equal(d("1.5")) || out.Maximum != nil {
		t.Errorf("round trip: %s → %+v", b, out)
	}
	if !strings.Contains(string(b), `"up_to":null`) {
		t.Errorf("open-ended tier not encoded as null: %s", b)
	}
}
