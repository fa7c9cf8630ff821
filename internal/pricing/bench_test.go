package pricing_test

import (
	"testing"

	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/shopspring/decimal"
)

func BenchmarkRateGraduated(b *testing.B) {
	p := pricing.Price{Model: pricing.Graduated, Tiers: threeTiers()}
	u := pricing.Usage{Quantity: d("123456.789")}
	for b.Loop() {
		if _, err := pricing.Rate(p, u, eur, ""); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkQuote(b *testing.B) {
	in := pricing.QuoteInput{
		Period:     feb2024,
		From:       day(2024, 2, 15),
		Quantities: map[string]decimal.Decimal{"seats": d("3")},
		Usage:      map[string]pricing.Usage{"api_calls": {Quantity: d("1000")}, "gb": {Quantity: d("1500.5")}},
	}
	pp := plan()
	for b.Loop() {
		if _, err := pricing.Quote(pp, in); err != nil {
			b.Fatal(err)
		}
	}
}
