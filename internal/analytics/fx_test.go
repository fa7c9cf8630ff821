package analytics

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/money"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// problemFields returns the code and the fields an error names.
func problemFields(t *testing.T, err error) (string, []string) {
	t.Helper()
	var e *abacus.Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want an *abacus.Error", err)
	}
	var fields []string
	for _, f := range e.Fields {
		fields = append(fields, f.Field)
	}
	return e.Code, fields
}

// TestConvertedTotals: with USD→EUR at 0.123449, 49.0000 EUR and 50.0000
// USD of MRR convert to 49 + 6.17245 = 55.17245, rounded once by the
// tenant's mode; the figures of each currency stay as they are, the
// converted point says it is one and with which rates, and a currency
// without a rate is an error naming it.
func TestConvertedTotals(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, dd *db.DB) {
		b := newBundle(t, dd, time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC))
		for _, c := range []struct{ cur, fee string }{{"EUR", "49"}, {"USD", "50"}} {
			plan := b.plan("pro-"+strings.ToLower(c.cur), c.cur, c.fee, period.Monthly, 0)
			_, err := b.subs.Create(b.ctx, subscription.CreateInput{CustomerID: b.customer("C "+c.cur, c.cur), PlanID: plan})
			must(t, err)
		}
		b.feed(50)
		q := Query{From: "2026-03-02", To: "2026-03-02", Interval: "day", ConvertTo: "EUR"}

		_, err := b.svc.MRR(b.ctx, q)
		if code, fields := problemFields(t, err); code != "fx_rate_missing" || len(fields) != 1 || fields[0] != "convert_to" ||
			!strings.Contains(err.Error(), "USD") {
			t.Fatalf("without rates: %v (%s %v), want fx_rate_missing on convert_to naming USD", err, code, fields)
		}
		for _, m := range []struct {
			mode money.Rounding
			want string
		}{{money.RoundHalfUp, "55.1725"}, {money.RoundHalfEven, "55.1724"}, {money.RoundUp, "55.1725"}, {money.RoundDown, "55.1724"}} {
			mode, want := m.mode, m.want
			_, err := b.svc.PutFXRates(b.ctx, FXRatesInput{Rounding: mode, Rates: []FXRate{
				{From: "USD", To: "EUR", Rate: d("0.123449")}, {From: "EUR", To: "USD", Rate: d("8.1")}}})
			must(t, err)
			pts, err := b.svc.MRR(b.ctx, q)
			must(t, err)
			if len(pts) != 3 || pts[0].Currency != "EUR" || pts[0].MRR != "49.0000" || pts[0].Converted ||
				pts[1].Currency != "USD" || pts[1].MRR != "50.0000" || pts[1].Converted {
				t.Fatalf("%s: the currencies' own points changed: %+v", mode, pts)
			}
			c := pts[2]
			if !c.Converted || c.Currency != "EUR" || c.MRR != want || c.New != want || c.Customers != 2 ||
				c.FXRates != "EUR:1;USD:0.123449" || c.FXRounding != string(mode) {
				t.Errorf("%s: converted point %+v, want mrr and new %s from 2 customers at EUR:1;USD:0.123449", mode, c, want)
			}
			if arr := d(want).Mul(decimal.NewFromInt(12)).StringFixed(4); c.ARR != arr {
				t.Errorf("%s: converted ARR %s, want 12 × %s = %s", mode, c.ARR, want, arr)
			}
		}
		rev, err := b.svc.Revenue(b.ctx, Query{From: "2026-03-01", To: "2026-03-02", Interval: "month", ConvertTo: "USD"})
		must(t, err)
		if last := rev[len(rev)-1]; !last.Converted || last.Currency != "USD" || last.Invoiced != "0.00" || last.FXRates != "EUR:8.1;USD:1" {
			t.Errorf("converted revenue: %+v", rev)
		}
		if _, err := b.svc.MRR(b.ctx, Query{ConvertTo: "GBP"}); err == nil || !strings.Contains(err.Error(), "EUR, USD") {
			t.Errorf("convert_to GBP without rates into GBP: %v, want both currencies named", err)
		}
		if _, err := b.svc.MRR(b.ctx, Query{ConvertTo: "EURO"}); err == nil {
			t.Error("convert_to EURO was accepted")
		} else if code, fields := problemFields(t, err); code != "invalid_analytics_query" || fields[0] != "convert_to" {
			t.Errorf("convert_to EURO: %s %v", code, fields)
		}
		fx, err := b.svc.FXRates(b.ctx)
		must(t, err)
		if len(fx.Rates) != 2 || fx.Rates[0].From != "EUR" || fx.Rounding != money.RoundDown || fx.UpdatedAt == nil {
			t.Errorf("stored rates: %+v", fx)
		}
	})
}

// TestFXRatesProblemsNameTheField: every bad rate is named by its place.
func TestFXRatesProblemsNameTheField(t *testing.T) {
	t.Parallel()
	in := FXRatesInput{Rounding: "nearest", Rates: []FXRate{
		{From: "USD", To: "EUR", Rate: d("0.92")},
		{From: "XXY", To: "EUR", Rate: d("1")},
		{From: "EUR", To: "EUR", Rate: d("1")},
		{From: "GBP", To: "EUR", Rate: d("0")},
		{From: "CHF", To: "EUR", Rate: d("1.0000000000001")},
		{From: "JPY", To: "EUR", Rate: d("1000000000")},
		{From: "usd", To: "EUR", Rate: d("0.93")},
	}}
	code, fields := problemFields(t, in.validate())
	want := []string{"rounding", "rates[1].from", "rates[2].to", "rates[3].rate", "rates[4].rate", "rates[5].rate", "rates[6].from"}
	if code != "invalid_fx_rates" || strings.Join(fields, " ") != strings.Join(want, " ") {
		t.Errorf("got %s %v, want invalid_fx_rates %v", code, fields, want)
	}
}
