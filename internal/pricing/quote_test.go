package pricing_test

import (
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/money"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/shopspring/decimal"
)

func day(y int, m time.Month, dd int) time.Time { return time.Date(y, m, dd, 0, 0, 0, 0, time.UTC) }

var feb2024 = period.Period{Start: day(2024, 2, 1), End: day(2024, 3, 1)} // 29 days

func plan() pricing.PlanPricing {
	return pricing.PlanPricing{
		Currency: "EUR",
		Charges: []pricing.Charge{
			{Key: "base", Description: "Platform", Kind: pricing.ChargeFee, Fee: &pricing.Fee{Amount: d("29")}},
			{Key: "seats", Kind: pricing.ChargeFee, Fee: &pricing.Fee{Amount: d("10"), Billed: pricing.InArrears}},
			{Key: "api", Kind: pricing.ChargeUsage, Meter: "api_calls", Price: &pricing.Price{Model: pricing.PerUnit, UnitAmount: d("0.01")}},
			{Key: "storage", Kind: pricing.ChargeUsage, Meter: "gb", Price: &pricing.Price{Model: pricing.Graduated, Tiers: threeTiers()}},
		},
		MinimumCommitment: dp("100"),
	}
}

type wantLine struct {
	kind   pricing.LineKind
	key    string
	amount string
}

func checkLines(t *testing.T, got []pricing.Line, want []wantLine) {
	t.Helper()
	if len(got) != len(want) {
		for _, l := range got {
			t.Logf("  %s %s %s (%s)", l.Kind, l.ChargeKey, l.Amount, l.Unrounded)
		}
		t.Fatalf("%d lines, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Kind != w.kind || got[i].ChargeKey != w.key || !got[i].Amount.Equal(d(w.amount)) {
			t.Errorf("line %d = %s %s %s, want %s %s %s", i, got[i].Kind, got[i].ChargeKey, got[i].Amount, w.kind, w.key, w.amount)
		}
	}
}

func TestQuoteFullPeriod(t *testing.T) {
	t.Parallel()
	lines, err := pricing.Quote(plan(), pricing.QuoteInput{
		Period:     feb2024,
		Quantities: map[string]decimal.Decimal{"seats": d("3")},
		Usage:      map[string]pricing.Usage{"api_calls": {Quantity: d("1000"), Events: 1000}},
	})
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, lines, []wantLine{
		{pricing.LineFee, "base", "29"},
		{pricing.LineFee, "seats", "30"},
		{pricing.LineUsage, "api", "10"},
		{pricing.LineUsage, "storage", "0"},
		{pricing.LineCommitment, "", "90"},
	})
	if lines[0].Proration != nil || lines[0].Billed != pricing.InAdvance || lines[1].Billed != pricing.InArrears {
		t.Errorf("fee lines = %+v / %+v", lines[0], lines[1])
	}
	if lines[2].UnitAmount == nil || !lines[2].UnitAmount.Equal(d("0.01")) || lines[2].Usage == nil {
		t.Errorf("usage line = %+v", lines[2])
	}

	// Usage above the commitment: no true-up line.
	lines, err = pricing.Quote(plan(), pricing.QuoteInput{
		Period: feb2024,
		Usage:  map[string]pricing.Usage{"api_calls": {Quantity: d("5000")}, "gb": {Quantity: d("101")}},
		Parts:  pricing.PartUsage | pricing.PartCommitment,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, lines, []wantLine{{pricing.LineUsage, "api", "50"}, {pricing.LineUsage, "storage", "110.5"}})
}

func TestQuotePartialWindow(t *testing.T) {
	t.Parallel()
	lines, err := pricing.Quote(plan(), pricing.QuoteInput{
		Period:     feb2024,
		From:       day(2024, 2, 15), // 15 of 29 days
		Quantities: map[string]decimal.Decimal{"seats": d("3")},
		Usage:      map[string]pricing.Usage{"api_calls": {Quantity: d("1000")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, lines, []wantLine{
		{pricing.LineFee, "base", "15"},     // 29 × 15/29
		{pricing.LineFee, "seats", "15.52"}, // 30 × 15/29 = 15.5172…
		{pricing.LineUsage, "api", "10"},
		{pricing.LineUsage, "storage", "0"},
		{pricing.LineCommitment, "", "41.72"}, // 100 × 15/29 = 51.72 − 10
	})
	if lines[0].Proration == nil || !lines[0].Proration.Equal(period.Fraction(feb2024.Start, feb2024.End, day(2024, 2, 15), feb2024.End)) {
		t.Errorf("proration = %v", lines[0].Proration)
	}
	if !lines[0].Period.Start.Equal(day(2024, 2, 15)) {
		t.Errorf("line period = %+v", lines[0].Period)
	}
}

func TestQuoteFeeProrationAcrossMonths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		currency   string
		amount     string
		start, end time.Time
		from       time.Time
		want       string
	}{
		{"Feb leap 15/29", "EUR", "29", day(2024, 2, 1), day(2024, 3, 1), day(2024, 2, 15), "15"},
		{"Feb 14/28", "EUR", "28", day(2023, 2, 1), day(2023, 3, 1), day(2023, 2, 15), "14"},
		{"30-day month", "EUR", "30", day(2024, 4, 1), day(2024, 5, 1), day(2024, 4, 16), "15"},
		{"31-day month", "EUR", "31", day(2024, 3, 1), day(2024, 4, 1), day(2024, 3, 17), "15"},
		{"EUR 30-day third", "EUR", "10", day(2024, 4, 1), day(2024, 5, 1), day(2024, 4, 21), "3.33"},
		{"JPY 31-day", "JPY", "1000", day(2024, 3, 1), day(2024, 4, 1), day(2024, 3, 17), "484"},
		{"KWD Feb leap", "KWD", "10", day(2024, 2, 1), day(2024, 3, 1), day(2024, 2, 15), "5.172"},
		{"leap year, last day", "EUR", "366", day(2024, 1, 1), day(2025, 1, 1), day(2024, 12, 31), "1"},
		{"non-leap year, last day", "EUR", "365", day(2023, 1, 1), day(2024, 1, 1), day(2023, 12, 31), "1"},
		{"anchor Jan 31 → Feb 29 period", "EUR", "31", day(2024, 2, 29), day(2024, 3, 31), day(2024, 3, 15), "16"},
	}
	for _, tt := range tests {
		pp := pricing.PlanPricing{Currency: tt.currency, Charges: []pricing.Charge{{Key: "f", Kind: pricing.ChargeFee, Fee: &pricing.Fee{Amount: d(tt.amount)}}}}
		lines, err := pricing.Quote(pp, pricing.QuoteInput{Period: period.Period{Start: tt.start, End: tt.end}, From: tt.from})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if len(lines) != 1 || !lines[0].Amount.Equal(d(tt.want)) {
			t.Errorf("%s: lines = %+v, want amount %s", tt.name, lines, tt.want)
		}
	}
}

func TestQuoteQuantityChanges(t *testing.T) {
	t.Parallel()
	lines, err := pricing.Quote(plan(), pricing.QuoteInput{
		Period:     feb2024,
		Quantities: map[string]decimal.Decimal{"seats": d("2"), "base": d("0")},
		Changes: []pricing.QuantityChange{
			{Key: "seats", At: day(2024, 2, 15), Quantity: d("4")},
		},
		Parts: pricing.PartInAdvanceFees | pricing.PartInArrearsFees,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, lines, []wantLine{
		{pricing.LineFee, "seats", "9.66"},  // 2 × 10 × 14/29
		{pricing.LineFee, "seats", "20.69"}, // 4 × 10 × 15/29
	})
	if !lines[0].Period.End.Equal(day(2024, 2, 15)) || !lines[1].Period.Start.Equal(day(2024, 2, 15)) {
		t.Errorf("segments = %+v, %+v", lines[0].Period, lines[1].Period)
	}
}

func TestQuoteRejects(t *testing.T) {
	t.Parallel()
	bad := plan()
	bad.Charges[3].Price.Tiers[1].UpTo = dp("50")
	tests := []struct {
		name  string
		pp    pricing.PlanPricing
		in    pricing.QuoteInput
		code  string
		field string
	}{
		{"overlapping tiers", bad, pricing.QuoteInput{Period: feb2024}, "invalid_plan_pricing", "charges[3].price.tiers[1].up_to"},
		{"window outside period", plan(), pricing.QuoteInput{Period: feb2024, From: day(2024, 1, 1)}, "invalid_quote", "from"},
		{"empty period", plan(), pricing.QuoteInput{}, "invalid_quote", "period"},
		{"negative quantity", plan(), pricing.QuoteInput{Period: feb2024, Quantities: map[string]decimal.Decimal{"seats": d("-1")}}, "invalid_quote", "quantities.seats"},
		{"change of a usage charge", plan(), pricing.QuoteInput{Period: feb2024, Changes: []pricing.QuantityChange{{Key: "api", At: day(2024, 2, 2)}}}, "invalid_quote", "changes[0].key"},
		{"negative usage", plan(), pricing.QuoteInput{Period: feb2024, Usage: map[string]pricing.Usage{"gb": {Quantity: d("-3")}}}, "invalid_usage", ""},
	}
	for _, tt := range tests {
		_, err := pricing.Quote(tt.pp, tt.in)
		e, ok := abacus.AsError(err)
		if !ok || e.Code != tt.code {
			t.Errorf("%s: err = %v, want %s", tt.name, err, tt.code)
			continue
		}
		if tt.field != "" && (len(e.Fields) == 0 || e.Fields[0].Field != tt.field) {
			t.Errorf("%s: fields = %+v, want %s", tt.name, e.Fields, tt.field)
		}
	}
}

func TestChangeQuantity(t *testing.T) {
	t.Parallel()
	lines, err := pricing.ChangeQuantity(plan(), feb2024, day(2024, 2, 15), "base", d("2"), d("5"))
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, lines, []wantLine{
		{pricing.LineProration, "base", "-30"}, // 2 × 29 × 15/29
		{pricing.LineProration, "base", "75"},  // 5 × 29 × 15/29
	})
	if !lines[0].Period.Start.Equal(day(2024, 2, 15)) || !lines[0].Period.End.Equal(feb2024.End) {
		t.Errorf("credit period = %+v", lines[0].Period)
	}

	// An unchanged quantity needs no lines.
	pp := plan()
	pp.Rounding = money.RoundUp
	pp.Charges[0].Fee.Amount = d("9.99")
	lines, err = pricing.ChangeQuantity(pp, feb2024, day(2024, 2, 10), "base", d("3"), d("3"))
	if err != nil || lines != nil {
		t.Errorf("no change: %v %v", lines, err)
	}
	lines, err = pricing.ChangeQuantity(pp, feb2024, day(2024, 2, 10), "base", d("3"), d("4"))
	if err != nil {
		t.Fatal(err)
	}
	// 20 of 29 days remain: 3 × 9.99 × 20/29 = 20.6689…, 4 × 9.99 × 20/29 = 27.5586…;
	// "up" rounds away from zero, so the credit mirrors a charge for 3 seats.
	checkLines(t, lines, []wantLine{{pricing.LineProration, "base", "-20.67"}, {pricing.LineProration, "base", "27.56"}})

	// In-arrears fees settle at the period's end.
	lines, err = pricing.ChangeQuantity(plan(), feb2024, day(2024, 2, 15), "seats", d("2"), d("5"))
	if err != nil || lines != nil {
		t.Errorf("in arrears: %v %v", lines, err)
	}
	for _, key := range []string{"api", "nope"} {
		_, err = pricing.ChangeQuantity(plan(), feb2024, day(2024, 2, 15), key, d("1"), d("2"))
		if e, ok := abacus.AsError(err); !ok || e.Code != "invalid_change" {
			t.Errorf("%s: err = %v", key, err)
		}
	}
	_, err = pricing.ChangeQuantity(plan(), feb2024, day(2024, 3, 15), "base", d("1"), d("2"))
	if e, ok := abacus.AsError(err); !ok || e.Fields[0].Field != "at" {
		t.Errorf("outside period: err = %v", err)
	}
}

func TestChangePlan(t *testing.T) {
	t.Parallel()
	next := pricing.PlanPricing{
		Currency: "EUR",
		Charges: []pricing.Charge{
			{Key: "base", Kind: pricing.ChargeFee, Fee: &pricing.Fee{Amount: d("58")}},
			{Key: "api", Kind: pricing.ChargeUsage, Meter: "api_calls", Price: &pricing.Price{Model: pricing.PerUnit, UnitAmount: d("0.005")}},
		},
	}
	lines, err := pricing.ChangePlan(plan(), next, pricing.PlanChange{
		Period:        feb2024,
		At:            day(2024, 2, 15),
		OldQuantities: map[string]decimal.Decimal{"seats": d("3")},
		Usage:         map[string]pricing.Usage{"api_calls": {Quantity: d("1000")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, lines, []wantLine{
		{pricing.LineFee, "seats", "14.48"}, // 3 × 10 × 14/29, in arrears, old version
		{pricing.LineUsage, "api", "10"},    // usage up to the change at the old price
		{pricing.LineUsage, "storage", "0"},
		{pricing.LineCommitment, "", "38.28"},  // 100 × 14/29 = 48.28 − 10
		{pricing.LineProration, "base", "-15"}, // unused 15/29 of 29
		{pricing.LineProration, "base", "30"},  // remaining 15/29 of 58
	})

	// The rest of the period on the new version, at the period's end.
	rest, err := pricing.Quote(next, pricing.QuoteInput{
		Period: feb2024, From: day(2024, 2, 15),
		Usage: map[string]pricing.Usage{"api_calls": {Quantity: d("2000")}},
		Parts: pricing.PartInArrearsFees | pricing.PartUsage | pricing.PartCommitment,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, rest, []wantLine{{pricing.LineUsage, "api", "10"}})

	usd := next
	usd.Currency = "USD"
	_, err = pricing.ChangePlan(plan(), usd, pricing.PlanChange{Period: feb2024, At: day(2024, 2, 15)})
	if e, ok := abacus.AsError(err); !ok || e.Code != "invalid_change" || e.Fields[0].Field != "currency" {
		t.Errorf("currency mismatch: err = %v", err)
	}

	// A change at the period start credits the whole old fee.
	lines, err = pricing.ChangePlan(plan(), next, pricing.PlanChange{Period: feb2024, At: feb2024.Start})
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, lines, []wantLine{{pricing.LineProration, "base", "-29"}, {pricing.LineProration, "base", "58"}})
}

func TestTrueUp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		spent, commitment string
		c                 money.Currency
		want              string
	}{
		{"60", "100", eur, "40"},
		{"100", "100", eur, "0"},
		{"150", "100", eur, "0"},
		{"0", "51.724", eur, "51.72"},
		{"0", "483.5", jpy, "484"},
		{"1.001", "10", kwd, "8.999"},
	}
	for _, tt := range tests {
		if got := pricing.TrueUp(d(tt.spent), d(tt.commitment), tt.c, ""); !got.Equal(d(tt.want)) {
			t.Errorf("TrueUp(%s, %s) = %s, want %s", tt.spent, tt.commitment, got, tt.want)
		}
	}
}

func TestQuotePaused(t *testing.T) {
	t.Parallel()
	span := func(from, to time.Time) period.Period { return period.Period{Start: from, End: to} }
	bounds := pricing.PlanPricing{Currency: "EUR", Charges: []pricing.Charge{
		{Key: "min", Kind: pricing.ChargeUsage, Meter: "m", Price: &pricing.Price{Model: pricing.PerUnit, UnitAmount: d("1"), Minimum: dp("29")}},
		{Key: "max", Kind: pricing.ChargeUsage, Meter: "x", Price: &pricing.Price{Model: pricing.PerUnit, UnitAmount: d("1"), Maximum: dp("29")}},
	}}
	tests := []struct {
		name string
		pp   pricing.PlanPricing
		in   pricing.QuoteInput
		want []wantLine
	}{
		{"a pause mid-period: fees for 9 + 10 of 29 days, commitment for 19", plan(), pricing.QuoteInput{
			Period: feb2024, Paused: []period.Period{span(day(2024, 2, 10), day(2024, 2, 20))},
			Usage: map[string]pricing.Usage{"api_calls": {Quantity: d("1000")}},
		}, []wantLine{
			{pricing.LineFee, "base", "9"}, {pricing.LineFee, "base", "10"},
			{pricing.LineFee, "seats", "3.10"}, {pricing.LineFee, "seats", "3.45"}, // 10 × 9/29 = 3.103…, 10 × 10/29 = 3.448…
			{pricing.LineUsage, "api", "10"}, {pricing.LineUsage, "storage", "0"},
			{pricing.LineCommitment, "", "55.52"}, // 100 × 19/29 = 65.52 − 10
		}},
		{"paused to the end of a partial window: 7 days served", plan(), pricing.QuoteInput{
			Period: feb2024, From: day(2024, 2, 15), Paused: []period.Period{span(day(2024, 2, 22), feb2024.End)},
			Quantities: map[string]decimal.Decimal{"seats": d("3")},
		}, []wantLine{
			{pricing.LineFee, "base", "7"}, {pricing.LineFee, "seats", "7.24"}, // 30 × 7/29 = 7.2413…
			{pricing.LineUsage, "api", "0"}, {pricing.LineUsage, "storage", "0"},
			{pricing.LineCommitment, "", "24.14"}, // 100 × 7/29
		}},
		{"minimum and maximum over the 15 days served", bounds, pricing.QuoteInput{
			Period: feb2024, Paused: []period.Period{span(feb2024.Start, day(2024, 2, 15))},
			Usage: map[string]pricing.Usage{"x": {Quantity: d("100")}},
		}, []wantLine{{pricing.LineUsage, "min", "15"}, {pricing.LineUsage, "max", "15"}}},
		{"a quantity change while paused", plan(), pricing.QuoteInput{
			Period: feb2024, Paused: []period.Period{span(day(2024, 2, 10), day(2024, 2, 20))},
			Quantities: map[string]decimal.Decimal{"seats": d("2")},
			Changes:    []pricing.QuantityChange{{Key: "seats", At: day(2024, 2, 12), Quantity: d("4")}},
			Parts:      pricing.PartInArrearsFees,
		}, []wantLine{
			{pricing.LineFee, "seats", "6.21"},  // 2 × 10 × 9/29
			{pricing.LineFee, "seats", "13.79"}, // 4 × 10 × 10/29
		}},
		{"two pauses, given out of order", plan(), pricing.QuoteInput{
			Period: feb2024, Paused: []period.Period{span(day(2024, 2, 25), day(2024, 2, 27)), span(day(2024, 2, 3), day(2024, 2, 5))},
			Parts: pricing.PartInAdvanceFees,
		}, []wantLine{{pricing.LineFee, "base", "2"}, {pricing.LineFee, "base", "20"}, {pricing.LineFee, "base", "3"}}},
	}
	for _, tt := range tests {
		lines, err := pricing.Quote(tt.pp, tt.in)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		t.Log(tt.name)
		checkLines(t, lines, tt.want)
	}
	lines, err := pricing.Quote(plan(), tests[0].in)
	if err != nil {
		t.Fatal(err)
	}
	if p := lines[0].Period; !p.Start.Equal(feb2024.Start) || !p.End.Equal(day(2024, 2, 10)) {
		t.Errorf("first fee segment %+v, want up to the pause", p)
	}
	if p := lines[4].Period; !p.Start.Equal(feb2024.Start) || !p.End.Equal(feb2024.End) {
		t.Errorf("usage line period %+v, want the window", p)
	}
}

func TestQuoteRejectsPaused(t *testing.T) {
	t.Parallel()
	span := func(from, to time.Time) period.Period { return period.Period{Start: from, End: to} }
	tests := []struct {
		name   string
		paused []period.Period
		field  string
	}{
		{"outside the window", []period.Period{span(day(2024, 1, 30), day(2024, 2, 2))}, "paused[0]"},
		{"empty", []period.Period{span(day(2024, 2, 3), day(2024, 2, 3))}, "paused[0]"},
		{"overlapping", []period.Period{span(day(2024, 2, 3), day(2024, 2, 10)), span(day(2024, 2, 5), day(2024, 2, 12))}, "paused[1]"},
	}
	for _, tt := range tests {
		_, err := pricing.Quote(plan(), pricing.QuoteInput{Period: feb2024, Paused: tt.paused})
		e, ok := abacus.AsError(err)
		if !ok || e.Code != "invalid_quote" || len(e.Fields) == 0 || e.Fields[0].Field != tt.field {
			t.Errorf("%s: err = %v, want invalid_quote on %s", tt.name, err, tt.field)
		}
	}
}
