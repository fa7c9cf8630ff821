package metering

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// AvgScale is the number of decimal places AVG results are rounded to
// (half away from zero).
const AvgScale = 12

// State is the mergeable partial result of one aggregation over some
// events. Merging is associative and commutative, so per-minute deltas can
// be added to stored rows in any order and windows can merge rows in any
// grouping. How each field maps to a stored row, so the store can merge a
// delta with plain SQL:
//
//	Count                   count = count + $delta           (every aggregation)
//	Sum                     sum = sum + $delta               (SUM, AVG)
//	Min, Max                min = LEAST(min, $d), max = GREATEST(max, $d)
//	Latest, LatestAt,       replace when ($at, $source, $id) > (at, source, id)
//	LatestSource, LatestID
//	Distinct                INSERT … ON CONFLICT DO NOTHING into a set table
//	                        keyed by (rollup key, value)  (UNIQUE_COUNT)
//
// Distinct keeps every distinct value so the count is exact, never an
// estimate: memory is about len(value)+50 bytes per distinct value per
// rollup key, and the set table grows by one row per distinct value per
// (minute, subject, group).
type State struct {
	Agg   Aggregation
	Count int64 // events that contributed a value (every event for COUNT)
	Sum   decimal.Decimal
	Min   decimal.Decimal // valid when Count > 0
	Max   decimal.Decimal // valid when Count > 0

	Latest       decimal.Decimal
	LatestAt     time.Time
	LatestSource string
	LatestID     string

	Distinct map[string]struct{}
}

// NewState returns the empty state of aggregation agg.
func NewState(agg Aggregation) State {
	s := State{Agg: agg}
	if agg == AggUniqueCount {
		s.Distinct = make(map[string]struct{})
	}
	return s
}

// later reports whether (at, source, id) is newer than the state's latest
// value: by event time, ties broken by source and then id so the result
// does not depend on arrival order.
func (s *State) later(at time.Time, source, id string) bool {
	if c := at.Compare(s.LatestAt); c != 0 {
		return c > 0
	}
	if source != s.LatestSource {
		return source > s.LatestSource
	}
	return id > s.LatestID
}

// observe folds one value in. text is the value's text form, used only by
// UNIQUE_COUNT.
func (s *State) observe(v decimal.Decimal, text []byte, ev *Event) {
	first := s.Count == 0
	s.Count++
	switch s.Agg {
	case AggSum, AggAvg:
		s.Sum = s.Sum.Add(v)
	case AggMin:
		if first || v.LessThan(s.Min) {
			s.Min = v
		}
	case AggMax:
		if first || v.GreaterThan(s.Max) {
			s.Max = v
		}
	case AggLatest:
		if first || s.later(ev.Time, ev.Source, ev.ID) {
			s.Latest, s.LatestAt, s.LatestSource, s.LatestID = v, ev.Time, ev.Source, ev.ID
		}
	case AggUniqueCount:
		if _, ok := s.Distinct[string(text)]; !ok {
			s.Distinct[string(text)] = struct{}{}
		}
	}
}

// Merge folds o into s. It returns an error when the aggregations differ,
// which is a programming error in the caller.
func (s *State) Merge(o *State) error {
	if s.Agg != o.Agg {
		return fmt.Errorf("merging %s state into %s state", o.Agg, s.Agg)
	}
	if o.Count == 0 {
		return nil
	}
	first := s.Count == 0
	s.Count += o.Count
	switch s.Agg {
	case AggSum, AggAvg:
		s.Sum = s.Sum.Add(o.Sum)
	case AggMin:
		if first || o.Min.LessThan(s.Min) {
			s.Min = o.Min
		}
	case AggMax:
		if first || o.Max.GreaterThan(s.Max) {
			s.Max = o.Max
		}
	case AggLatest:
		if first || s.later(o.LatestAt, o.LatestSource, o.LatestID) {
			s.Latest, s.LatestAt, s.LatestSource, s.LatestID = o.Latest, o.LatestAt, o.LatestSource, o.LatestID
		}
	case AggUniqueCount:
		if s.Distinct == nil {
			s.Distinct = make(map[string]struct{}, len(o.Distinct))
		}
		for k := range o.Distinct {
			s.Distinct[k] = struct{}{}
		}
	}
	return nil
}

// Value returns the aggregation's result: COUNT the count, SUM the sum,
// AVG sum/count rounded to AvgScale places, MIN/MAX/LATEST the value,
// UNIQUE_COUNT the number of distinct values. An empty state is zero.
func (s *State) Value() decimal.Decimal {
	if s.Count == 0 {
		return decimal.Zero
	}
	switch s.Agg {
	case AggCount:
		return decimal.NewFromInt(s.Count)
	case AggSum:
		return s.Sum
	case AggAvg:
		return s.Sum.DivRound(decimal.NewFromInt(s.Count), AvgScale)
	case AggMin:
		return s.Min
	case AggMax:
		return s.Max
	case AggLatest:
		return s.Latest
	case AggUniqueCount:
		return decimal.NewFromInt(int64(len(s.Distinct)))
	}
	return decimal.Zero
}
