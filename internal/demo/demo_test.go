package demo

import (
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/period"
)

// The backdated subscriptions start two months (and two hours) before now,
// clamped to shorter months, so both their monthly periods have ended by
// now in every demo customer's time zone.
func TestBackdate(t *testing.T) {
	var zones []*time.Location
	for _, p := range people {
		loc, err := time.LoadLocation(p.tz)
		if err != nil {
			t.Fatal(err)
		}
		zones = append(zones, loc)
	}
	for _, tc := range []struct{ now, want string }{
		{"2026-12-04T14:30:00Z", "2026-10-04T12:30:00Z"}, // across the end of summer time in Europe and the US
		{"2026-03-31T08:00:00Z", "2026-01-31T06:00:00Z"}, // the first period ends on Feb 28
		{"2028-04-29T00:00:00Z", "2028-02-28T22:00:00Z"}, // leap year
		{"2026-04-30T23:59:00Z", "2026-02-28T21:59:00Z"}, // not Mar 2, as AddDate(0, -2, 0) has it
		{"2026-08-31T01:00:00Z", "2026-06-29T23:00:00Z"},
		{"2026-05-31T12:00:00Z", "2026-03-31T10:00:00Z"}, // across the start of summer time
		{"2027-01-01T00:30:00Z", "2026-10-31T22:30:00Z"},
	} {
		now, _ := time.Parse(time.RFC3339, tc.now)
		start := backdate(now)
		if got := start.Format(time.RFC3339); got != tc.want {
			t.Errorf("backdate(%s) = %s, want %s", tc.now, got, tc.want)
		}
		for _, loc := range zones {
			if end := period.NewSchedule(start, period.Monthly, loc).Period(1).End; end.After(now) {
				t.Errorf("now %s: the second period in %s ends later, at %s", tc.now, loc, end)
			}
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	for days, ok := range map[int]bool{-1: false, 0: true, 1: true, MaxUsageDays: true, MaxUsageDays + 1: false} {
		if err := (Options{UsageDays: days}).validate(); (err == nil) != ok {
			t.Errorf("UsageDays %d: %v", days, err)
		}
	}
}
