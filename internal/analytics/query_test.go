package analytics

import (
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
)

func TestQueryProblemsNameTheParameter(t *testing.T) {
	t.Parallel()
	today := dayOf(time.Date(2026, 12, 6, 15, 0, 0, 0, time.UTC))
	for _, c := range []struct {
		q     Query
		field string
	}{
		{Query{Interval: "hour"}, "interval"},
		{Query{Interval: "week"}, "interval"},
		{Query{From: "2026-13-01"}, "from"},
		{Query{To: "yesterday"}, "to"},
		{Query{From: "2026-12-06", To: "2026-12-01"}, "from"},
		{Query{From: "2016-12-05", To: "2026-12-06"}, "from"},
		{Query{Currency: "EURO"}, "currency"},
		{Query{Currency: "XXY"}, "currency"},
	} {
		_, err := parse(c.q, today, "day", "month")
		e, ok := abacus.AsError(err)
		if !ok || e.Kind != abacus.KindInvalid || e.Code != "invalid_analytics_query" || len(e.Fields) != 1 || e.Fields[0].Field != c.field {
			t.Errorf("%+v: got %v, want invalid_analytics_query naming %s", c.q, err, c.field)
		}
	}
	w, err := parse(Query{From: "2016-12-06", To: "2026-12-06", Currency: "eur"}, today, "day", "month")
	if err != nil || w.currency != "EUR" || w.interval != "month" {
		t.Errorf("ten years exactly: %+v %v", w, err)
	}
	w, err = parse(Query{}, today, "day", "month")
	if err != nil || dateOf(w.to).Format(dateLayout) != "2026-12-06" || dateOf(w.from).Format(dateLayout) != "2025-12-06" {
		t.Errorf("defaults: %s..%s %v", dateOf(w.from).Format(dateLayout), dateOf(w.to).Format(dateLayout), err)
	}
	bs := w.buckets()
	if len(bs) != 13 || dateOf(bs[0][1]).Format(dateLayout) != "2025-12-31" || dateOf(bs[12][1]).Format(dateLayout) != "2026-12-06" {
		t.Errorf("monthly points: %d, first ends %s, last %s", len(bs), dateOf(bs[0][1]).Format(dateLayout), dateOf(bs[len(bs)-1][1]).Format(dateLayout))
	}
}

func TestCSV(t *testing.T) {
	t.Parallel()
	out, err := answer([]MRRPoint{{Date: "2026-11-30", Currency: "EUR", MRR: "1.5000", Customers: 2}}, "text/csv")
	if err != nil {
		t.Fatal(err)
	}
	want := "date,currency,mrr,arr,new,expansion,contraction,churn,reactivation,customers,arpa,usage_revenue,converted,fx_rates,fx_rounding\n" +
		"2026-11-30,EUR,1.5000,,,,,,,2,,,false,,\n"
	if got := string(out.Body.([]byte)); got != want || !strings.HasPrefix(out.ContentType, "text/csv") {
		t.Errorf("got %q (%s), want %q", got, out.ContentType, want)
	}
}

// TestMonthBefore: a trailing month ends on a date and starts after the
// same date a month before, or that month's last day.
func TestMonthBefore(t *testing.T) {
	t.Parallel()
	for _, tt := range [][2]string{
		{"2026-03-15", "2026-02-15"}, {"2026-03-31", "2026-02-28"}, {"2024-03-30", "2024-02-29"},
		{"2026-01-31", "2025-12-31"}, {"2026-05-31", "2026-04-30"}, {"2026-02-28", "2026-01-28"},
	} {
		d, _ := time.Parse(dateLayout, tt[0])
		if got := dateOf(monthBefore(dayOf(d))).Format(dateLayout); got != tt[1] {
			t.Errorf("monthBefore(%s) = %s, want %s", tt[0], got, tt[1])
		}
	}
}
