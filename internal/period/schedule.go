package period

import "time"

// Schedule is the sequence of billing periods of a subscription: periods
// of Interval laid end to end, one of them starting at Anchor, on the wall
// clock of Location (UTC when nil). Period k starts at Start(k); period 0
// starts at the anchor and negative k go back in time.
type Schedule struct {
	Anchor   time.Time
	Interval Interval
	Location *time.Location
}

// NewSchedule returns a Schedule; loc nil means UTC.
func NewSchedule(anchor time.Time, iv Interval, loc *time.Location) Schedule {
	return Schedule{Anchor: anchor, Interval: iv, Location: loc}
}

func (s Schedule) loc() *time.Location {
	if s.Location == nil {
		return time.UTC
	}
	return s.Location
}

// Start returns the start of period k. Month-based intervals keep the
// anchor's day of month, clamped to the month's last day, and its local
// time of day. The interval must be valid (see Interval.Validate); an
// unknown unit is treated as a month.
func (s Schedule) Start(k int) time.Time {
	loc := s.loc()
	a := s.Anchor.In(loc)
	y, m, d := a.Date()
	hh, mm, ss := a.Clock()
	ns := a.Nanosecond()
	if s.Interval.Unit == Week {
		return time.Date(y, m, d+7*s.Interval.count()*k, hh, mm, ss, ns, loc)
	}
	step := s.Interval.months()
	if step == 0 {
		step = 1
	}
	total := int(m) - 1 + step*k
	y2 := y + floorDiv(total, 12)
	m2 := time.Month(total - 12*floorDiv(total, 12) + 1)
	if last := daysIn(y2, m2); d > last {
		d = last
	}
	return time.Date(y2, m2, d, hh, mm, ss, ns, loc)
}

// Period returns period k.
func (s Schedule) Period(k int) Period {
	return Period{Start: s.Start(k), End: s.Start(k + 1)}
}

// Index returns k such that period k contains t.
func (s Schedule) Index(t time.Time) int {
	loc := s.loc()
	a, lt := s.Anchor.In(loc), t.In(loc)
	var k int
	if s.Interval.Unit == Week {
		days := int(t.Sub(s.Anchor).Hours() / 24)
		k = floorDiv(days, 7*s.Interval.count())
	} else {
		step := s.Interval.months()
		if step == 0 {
			step = 1
		}
		months := (lt.Year()-a.Year())*12 + int(lt.Month()) - int(a.Month())
		k = floorDiv(months, step)
	}
	// The estimate is off by at most one period (day clamping, DST, a
	// partial week); walk to the right one.
	for s.Start(k).After(t) {
		k--
	}
	for !s.Start(k + 1).After(t) {
		k++
	}
	return k
}

// Containing returns the period that contains t: Start ≤ t < End.
func (s Schedule) Containing(t time.Time) Period { return s.Period(s.Index(t)) }

// Next returns the period that follows the one containing p.Start.
func (s Schedule) Next(p Period) Period { return s.Period(s.Index(p.Start) + 1) }

// After returns the first period that starts after t: the one after the
// period containing t.
func (s Schedule) After(t time.Time) Period { return s.Period(s.Index(t) + 1) }

// Containing returns the billing period containing t for a subscription
// anchored at anchor with interval iv in time zone loc (nil = UTC). It is
// Schedule.Containing for callers that hold the three parts separately.
func Containing(anchor time.Time, iv Interval, loc *time.Location, t time.Time) Period {
	return NewSchedule(anchor, iv, loc).Containing(t)
}

// Next returns the billing period after the one containing t.
func Next(anchor time.Time, iv Interval, loc *time.Location, t time.Time) Period {
	return NewSchedule(anchor, iv, loc).After(t)
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
