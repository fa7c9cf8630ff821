package period_test

import (
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/shopspring/decimal"
)

func utc(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, time.UTC) }

func TestMonthEndAnchorClampsWithoutDrift(t *testing.T) {
	t.Parallel()
	s := period.NewSchedule(utc(2024, time.January, 31, 0), period.Monthly, nil)
	want := []time.Time{
		utc(2024, time.January, 31, 0), utc(2024, time.February, 29, 0), utc(2024, time.March, 31, 0),
		utc(2024, time.April, 30, 0), utc(2024, time.May, 31, 0),
	}
	for k, w := range want {
		if got := s.Start(k); !got.Equal(w) {
			t.Errorf("Start(%d) = %v, want %v", k, got, w)
		}
	}
	if got := s.Start(13); !got.Equal(utc(2025, time.February, 28, 0)) {
		t.Errorf("Start(13) = %v, want 2025-02-28", got)
	}
	if got := s.Start(-1); !got.Equal(utc(2023, time.December, 31, 0)) {
		t.Errorf("Start(-1) = %v", got)
	}
	if got := s.Start(-11); !got.Equal(utc(2023, time.February, 28, 0)) {
		t.Errorf("Start(-11) = %v", got)
	}
}

func TestContaining(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	nyAt := func(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, ny) }
	tests := []struct {
		name       string
		anchor     time.Time
		iv         period.Interval
		loc        *time.Location
		t          time.Time
		start, end time.Time
	}{
		{"monthly mid", utc(2024, 1, 15, 0), period.Monthly, nil, utc(2024, 3, 20, 5), utc(2024, 3, 15, 0), utc(2024, 4, 15, 0)},
		{"exactly at boundary", utc(2024, 1, 15, 0), period.Monthly, nil, utc(2024, 3, 15, 0), utc(2024, 3, 15, 0), utc(2024, 4, 15, 0)},
		{"just before boundary", utc(2024, 1, 15, 0), period.Monthly, nil, utc(2024, 3, 15, 0).Add(-time.Nanosecond), utc(2024, 2, 15, 0), utc(2024, 3, 15, 0)},
		{"before anchor", utc(2024, 1, 15, 0), period.Monthly, nil, utc(2023, 11, 1, 0), utc(2023, 10, 15, 0), utc(2023, 11, 15, 0)},
		{"month end in Feb leap", utc(2024, 1, 31, 0), period.Monthly, nil, utc(2024, 3, 1, 0), utc(2024, 2, 29, 0), utc(2024, 3, 31, 0)},
		{"month end in Feb", utc(2023, 1, 31, 0), period.Monthly, nil, utc(2023, 3, 30, 0), utc(2023, 2, 28, 0), utc(2023, 3, 31, 0)},
		{"every 2 months", utc(2024, 1, 1, 0), period.Interval{Unit: period.Month, Count: 2}, nil, utc(2024, 4, 30, 0), utc(2024, 3, 1, 0), utc(2024, 5, 1, 0)},
		{"quarter", utc(2024, 2, 1, 0), period.Quarterly, nil, utc(2024, 7, 31, 0), utc(2024, 5, 1, 0), utc(2024, 8, 1, 0)},
		{"year from leap day", utc(2024, 2, 29, 0), period.Yearly, nil, utc(2026, 6, 1, 0), utc(2026, 2, 28, 0), utc(2027, 2, 28, 0)},
		{"year back to leap day", utc(2024, 2, 29, 0), period.Yearly, nil, utc(2028, 3, 1, 0), utc(2028, 2, 29, 0), utc(2029, 2, 28, 0)},
		{"weekly", utc(2024, 1, 1, 0), period.Weekly, nil, utc(2024, 1, 17, 23), utc(2024, 1, 15, 0), utc(2024, 1, 22, 0)},
		{"weekly before anchor", utc(2024, 1, 1, 0), period.Weekly, nil, utc(2023, 12, 31, 23), utc(2023, 12, 25, 0), utc(2024, 1, 1, 0)},
		{"biweekly", utc(2024, 1, 1, 0), period.Interval{Unit: period.Week, Count: 2}, nil, utc(2024, 1, 29, 0), utc(2024, 1, 29, 0), utc(2024, 2, 12, 0)},
		// New York springs forward on 2024-03-10: the period still starts at local midnight.
		{"monthly across DST", nyAt(2024, 1, 1, 0), period.Monthly, ny, nyAt(2024, 3, 20, 0), nyAt(2024, 3, 1, 0), nyAt(2024, 4, 1, 0)},
		{"weekly across DST", nyAt(2024, 3, 4, 0), period.Weekly, ny, nyAt(2024, 3, 12, 0), nyAt(2024, 3, 11, 0), nyAt(2024, 3, 18, 0)},
		// Anchor given in UTC, periods follow the customer's local midnight.
		{"anchor in other zone", time.Date(2024, 1, 1, 5, 0, 0, 0, time.UTC), period.Monthly, ny, time.Date(2024, 7, 1, 3, 0, 0, 0, time.UTC), nyAt(2024, 6, 1, 0), nyAt(2024, 7, 1, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := period.Containing(tt.anchor, tt.iv, tt.loc, tt.t)
			if !p.Start.Equal(tt.start) || !p.End.Equal(tt.end) {
				t.Fatalf("Containing(%v) = [%v, %v), want [%v, %v)", tt.t, p.Start, p.End, tt.start, tt.end)
			}
			if !p.Contains(tt.t) {
				t.Fatalf("period does not contain t")
			}
			n := period.NewSchedule(tt.anchor, tt.iv, tt.loc).Next(p)
			if !n.Start.Equal(p.End) || !n.End.After(n.Start) {
				t.Fatalf("Next = %+v, want it to start at %v", n, p.End)
			}
		})
	}
}

func TestDSTPeriodLength(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	p := period.Containing(time.Date(2024, 1, 1, 0, 0, 0, 0, ny), period.Monthly, ny, time.Date(2024, 3, 5, 0, 0, 0, 0, ny))
	if got, want := p.Duration(), 31*24*time.Hour-time.Hour; got != want {
		t.Errorf("March 2024 in New York lasts %v, want %v", got, want)
	}
}

// Periods laid end to end never overlap or leave gaps, whatever the anchor.
func TestPeriodsAreContiguous(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		ny = time.UTC
	}
	for _, iv := range []period.Interval{period.Weekly, period.Monthly, period.Quarterly, period.Yearly, {Unit: period.Month, Count: 5}} {
		for _, anchor := range []time.Time{utc(2024, 1, 31, 12), utc(2023, 3, 30, 6), time.Date(2024, 3, 10, 2, 30, 0, 0, ny)} {
			s := period.NewSchedule(anchor, iv, ny)
			prev := s.Period(-30)
			for k := -29; k < 60; k++ {
				p := s.Period(k)
				if !p.Start.Equal(prev.End) || !p.End.After(p.Start) {
					t.Fatalf("%v anchor %v: period %d = %+v after %+v", iv, anchor, k, p, prev)
				}
				mid := p.Start.Add(p.Duration() / 2)
				if s.Index(mid) != k || s.Index(p.Start) != k || s.Index(p.End.Add(-time.Nanosecond)) != k {
					t.Fatalf("%v anchor %v: Index disagrees for period %d", iv, anchor, k)
				}
				prev = p
			}
		}
	}
}

func TestFraction(t *testing.T) {
	t.Parallel()
	d := decimal.RequireFromString
	tests := []struct {
		name       string
		start, end time.Time
		from, to   time.Time
		want       string
	}{
		{"whole period", utc(2024, 3, 1, 0), utc(2024, 4, 1, 0), utc(2024, 3, 1, 0), utc(2024, 4, 1, 0), "1"},
		{"half of Feb non-leap", utc(2023, 2, 1, 0), utc(2023, 3, 1, 0), utc(2023, 2, 15, 0), utc(2023, 3, 1, 0), "0.5"},
		{"15 of 29 days Feb leap", utc(2024, 2, 1, 0), utc(2024, 3, 1, 0), utc(2024, 2, 15, 0), utc(2024, 3, 1, 0), "0.517241379310344828"},
		{"15 of 30 days", utc(2024, 4, 1, 0), utc(2024, 5, 1, 0), utc(2024, 4, 16, 0), utc(2024, 5, 1, 0), "0.5"},
		{"one day of 31", utc(2024, 3, 1, 0), utc(2024, 4, 1, 0), utc(2024, 3, 31, 0), utc(2024, 4, 1, 0), "0.032258064516129032"},
		{"leap year, one day", utc(2024, 1, 1, 0), utc(2025, 1, 1, 0), utc(2024, 2, 29, 0), utc(2024, 3, 1, 0), "0.002732240437158470"},
		{"clipped to the period", utc(2024, 4, 1, 0), utc(2024, 5, 1, 0), utc(2024, 3, 1, 0), utc(2024, 4, 16, 0), "0.5"},
		{"outside", utc(2024, 4, 1, 0), utc(2024, 5, 1, 0), utc(2024, 5, 1, 0), utc(2024, 6, 1, 0), "0"},
		{"reversed", utc(2024, 4, 1, 0), utc(2024, 5, 1, 0), utc(2024, 4, 20, 0), utc(2024, 4, 10, 0), "0"},
		{"empty period", utc(2024, 4, 1, 0), utc(2024, 4, 1, 0), utc(2024, 3, 1, 0), utc(2024, 5, 1, 0), "0"},
	}
	for _, tt := range tests {
		got := period.Fraction(tt.start, tt.end, tt.from, tt.to)
		if !got.Equal(d(tt.want)) {
			t.Errorf("%s: Fraction = %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestProrate(t *testing.T) {
	t.Parallel()
	d := decimal.RequireFromString
	tests := []struct {
		name       string
		amount     string
		start, end time.Time
		from       time.Time
		want       string
	}{
		// 29.00 a month: 15 days of a 29-day February is exactly 15.00.
		{"Feb leap 15/29", "29", utc(2024, 2, 1, 0), utc(2024, 3, 1, 0), utc(2024, 2, 15, 0), "15"},
		{"Feb 14/28", "28", utc(2023, 2, 1, 0), utc(2023, 3, 1, 0), utc(2023, 2, 15, 0), "14"},
		{"30-day month 10/30", "30", utc(2024, 6, 1, 0), utc(2024, 7, 1, 0), utc(2024, 6, 21, 0), "10"},
		{"31-day month 10/31", "31", utc(2024, 7, 1, 0), utc(2024, 8, 1, 0), utc(2024, 7, 22, 0), "10"},
		{"third of 100", "100", utc(2024, 6, 1, 0), utc(2024, 7, 1, 0), utc(2024, 6, 21, 0), "33.333333333333333333333333"},
		{"leap year 366 days", "366", utc(2024, 1, 1, 0), utc(2025, 1, 1, 0), utc(2024, 12, 31, 0), "1"},
		{"non-leap year 365 days", "365", utc(2023, 1, 1, 0), utc(2024, 1, 1, 0), utc(2023, 12, 31, 0), "1"},
	}
	for _, tt := range tests {
		got := period.Prorate(d(tt.amount), tt.start, tt.end, tt.from, tt.end)
		if got.Sub(d(tt.want)).Abs().GreaterThan(d("1e-24")) {
			t.Errorf("%s: Prorate = %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestIntervalValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		iv     period.Interval
		fields []string
	}{
		{period.Monthly, nil},
		{period.Interval{Unit: period.Year}, nil},
		{period.Interval{Unit: "day"}, []string{"billing_interval.unit"}},
		{period.Interval{Unit: period.Week, Count: -1}, []string{"billing_interval.count"}},
		{period.Interval{Unit: "", Count: 101}, []string{"billing_interval.unit", "billing_interval.count"}},
	}
	for _, tt := range tests {
		err := tt.iv.Validate("billing_interval")
		if tt.fields == nil {
			if err != nil {
				t.Errorf("%v: %v", tt.iv, err)
			}
			continue
		}
		e, ok := abacus.AsError(err)
		if !ok || e.Code != "invalid_interval" || len(e.Fields) != len(tt.fields) {
			t.Fatalf("%v: %v", tt.iv, err)
		}
		for i, f := range tt.fields {
			if e.Fields[i].Field != f {
				t.Errorf("%v: field %d = %s, want %s", tt.iv, i, e.Fields[i].Field, f)
			}
		}
	}
	if s := (period.Interval{Unit: period.Month, Count: 2}).String(); s != "2 months" {
		t.Errorf("String = %q", s)
	}
}
