package metering

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // windowTimeZone must work on hosts without a zoneinfo database

	"github.com/abacusbilling/abacus"
	"github.com/shopspring/decimal"
)

// WindowSize is the length of query windows.
type WindowSize string

// The window sizes, as in OpenMeter.
const (
	WindowMinute WindowSize = "MINUTE"
	WindowHour   WindowSize = "HOUR"
	WindowDay    WindowSize = "DAY"
	WindowMonth  WindowSize = "MONTH"
)

// CodeInvalidQuery is the code of every query validation error.
const CodeInvalidQuery = "invalid_query"

// Query asks for a meter's usage, with OpenMeter's query semantics:
//
//   - [From, To) is half-open and both ends are required (the HTTP layer
//     fills defaults) and must fall on whole minutes, the precision usage
//     is kept at. They need not be aligned to WindowSize: windows keep
//     their natural boundaries (WindowStart may precede From) but count
//     only usage inside [From, To).
//   - WindowSize "" returns one total per subject/group with
//     WindowStart=From and WindowEnd=To.
//   - HOUR windows start at whole local hours of TimeZone (so at :30 UTC
//     in Asia/Kolkata); DAY and MONTH windows start at local midnight and
//     the first of the month, and last 23 or 25 hours across DST changes.
//   - Subjects filters by subject and also groups by it (as OpenMeter
//     does); GroupBy "subject" groups by subject without filtering.
//   - Windows without usage are omitted.
type Query struct {
	From          time.Time
	To            time.Time
	WindowSize    WindowSize
	TimeZone      string // IANA name; "" means UTC
	Subjects      []string
	GroupBy       []string          // meter groupBy names and/or "subject"
	FilterGroupBy map[string]string // exact match on meter groupBy values
}

// Row is a stored rollup row read for a query. Start is the UTC start of
// the row's period; rows may be per minute, or coarser (hour, day) only
// when every window of the query contains whole rows.
type Row struct {
	Start    time.Time
	Subject  string
	GroupKey string
	State    State
}

// Window is one row of a query result. Events is the number of events
// behind Value: those that contributed a value (State.Count), so for a
// SUM meter not those whose value was missing, null or not a number. It
// is for Go callers (per-event fees) and not part of the JSON answer.
type Window struct {
	WindowStart time.Time
	WindowEnd   time.Time
	Subject     *string            // set when grouping by subject
	GroupBy     map[string]*string // requested groupBy names; nil value when the events lacked it
	Value       decimal.Decimal
	Events      int64
}

// MarshalJSON writes the OpenMeter shape with value as an exact JSON
// number (Events is left out).
func (w Window) MarshalJSON() ([]byte, error) {
	gb := w.GroupBy
	if gb == nil {
		gb = map[string]*string{}
	}
	return json.Marshal(struct {
		Value       json.RawMessage    `json:"value"`
		WindowStart time.Time          `json:"windowStart"`
		WindowEnd   time.Time          `json:"windowEnd"`
		Subject     *string            `json:"subject"`
		GroupBy     map[string]*string `json:"groupBy"`
	}{json.RawMessage(w.Value.String()), w.WindowStart, w.WindowEnd, w.Subject, gb})
}

// QueryResult is the answer to a Query.
type QueryResult struct {
	From       time.Time   `json:"from"`
	To         time.Time   `json:"to"`
	WindowSize *WindowSize `json:"windowSize,omitempty"`
	Data       []Window    `json:"data"`
}

var locCache sync.Map // name -> *time.Location

func loadLocation(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	if l, ok := locCache.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	locCache.Store(name, l)
	return l, nil
}

// validate checks q against meter m and returns the location.
func (q *Query) validate(m *Compiled) (*time.Location, error) {
	var v abacus.Validation
	switch q.WindowSize {
	case "", WindowMinute, WindowHour, WindowDay, WindowMonth:
	default:
		v.Add("windowSize", "must be MINUTE, HOUR, DAY or MONTH, got %q", q.WindowSize)
	}
	loc, err := loadLocation(q.TimeZone)
	if err != nil {
		v.Add("windowTimeZone", "unknown time zone %q; use an IANA name such as Europe/Berlin", q.TimeZone)
	}
	for _, f := range []struct {
		name string
		t    time.Time
	}{{"from", q.From}, {"to", q.To}} {
		switch {
		case f.t.IsZero():
			v.Add(f.name, "is required")
		case !f.t.Truncate(time.Minute).Equal(f.t):
			v.Add(f.name, "must fall on a whole minute; usage is kept per minute")
		}
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		v.Add("from", "must be before to")
	}
	for _, g := range q.GroupBy {
		if _, ok := m.Meter.GroupBy[g]; !ok && g != "subject" {
			v.Add("groupBy", "%q is not a groupBy of meter %s; use subject or one of %s", g, m.Meter.Slug, strings.Join(m.groupNames, ", "))
		}
	}
	for _, k := range sortedKeys(q.FilterGroupBy) {
		if _, ok := m.Meter.GroupBy[k]; !ok {
			v.Add("filterGroupBy["+k+"]", "%q is not a groupBy of meter %s", k, m.Meter.Slug)
		}
	}
	if err := v.Err(CodeInvalidQuery); err != nil {
		return nil, err
	}
	return loc, nil
}

// WindowBounds returns the window of the given size in loc that holds t.
// MINUTE windows are UTC minutes; HOUR windows whole local hours at t's
// UTC offset (so a repeated DST hour yields two windows); DAY and MONTH
// windows run from local midnight to local midnight. Size "" is invalid.
func WindowBounds(t time.Time, size WindowSize, loc *time.Location) (start, end time.Time) {
	switch size {
	case WindowMinute:
		start = t.Truncate(time.Minute)
		return start, start.Add(time.Minute)
	case WindowHour:
		_, off := t.In(loc).Zone()
		s := floorDiv(t.Unix()+int64(off), 3600)*3600 - int64(off)
		start = time.Unix(s, 0).In(loc)
		return start, start.Add(time.Hour)
	case WindowDay:
		lt := t.In(loc)
		y, m, d := lt.Date()
		return time.Date(y, m, d, 0, 0, 0, 0, loc), time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	default: // WindowMonth
		lt := t.In(loc)
		y, m, _ := lt.Date()
		return time.Date(y, m, 1, 0, 0, 0, 0, loc), time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
	}
}

// ParseGroupKey parses a canonical group key (see Compiled.AppendGroupKey)
// into names and values; nil values mark absent ones.
func ParseGroupKey(key string) (map[string]*string, error) {
	if key == "" {
		return map[string]*string{}, nil
	}
	var m map[string]*string
	if err := json.Unmarshal([]byte(key), &m); err != nil {
		return nil, fmt.Errorf("parsing group key %q: %w", key, err)
	}
	return m, nil
}

type outKey struct {
	start   int64
	subject string
	group   string
}

// Windows computes a query's result from stored rows of meter m. Rows
// outside [From, To), of other subjects, or failing FilterGroupBy are
// skipped; the rest are merged per window, subject (when grouped) and
// requested groups. Data is sorted by window start, subject, then group.
// It returns a KindInvalid *abacus.Error with code invalid_query naming
// each bad parameter, or an internal error for a malformed stored group
// key or mismatched state.
func Windows(m *Compiled, q Query, rows []Row) (*QueryResult, error) {
	loc, err := q.validate(m)
	if err != nil {
		return nil, err
	}
	bySubject := len(q.Subjects) > 0 || slices.Contains(q.GroupBy, "subject")
	var groupNames []string
	for _, g := range q.GroupBy {
		if g != "subject" && !slices.Contains(groupNames, g) {
			groupNames = append(groupNames, g)
		}
	}
	slices.Sort(groupNames)
	var subjects map[string]bool
	if len(q.Subjects) > 0 {
		subjects = make(map[string]bool, len(q.Subjects))
		for _, s := range q.Subjects {
			subjects[s] = true
		}
	}

	type projected struct {
		keep  bool
		key   string
		group map[string]*string
	}
	projections := map[string]projected{}
	project := func(gk string) (projected, error) {
		if p, ok := projections[gk]; ok {
			return p, nil
		}
		vals, err := ParseGroupKey(gk)
		if err != nil {
			return projected{}, err
		}
		p := projected{keep: true}
		for k, want := range q.FilterGroupBy {
			if got := vals[k]; got == nil || *got != want {
				p.keep = false
			}
		}
		if len(groupNames) > 0 {
			p.group = make(map[string]*string, len(groupNames))
			var b []byte
			for i, g := range groupNames {
				p.group[g] = vals[g]
				if i == 0 {
					b = append(b, '{')
				} else {
					b = append(b, ',')
				}
				b = appendJSONString(b, g)
				b = append(b, ':')
				if vals[g] == nil {
					b = append(b, "null"...)
				} else {
					b = appendJSONString(b, *vals[g])
				}
			}
			p.key = string(append(b, '}'))
		}
		projections[gk] = p
		return p, nil
	}

	type acc struct {
		w     Window
		state State
	}
	accs := map[outKey]*acc{}
	var curStart, curEnd time.Time // the window of the previous row, reused while rows stay in it
	for i := range rows {
		r := &rows[i]
		if r.Start.Before(q.From) || !r.Start.Before(q.To) {
			continue
		}
		if subjects != nil && !subjects[r.Subject] {
			continue
		}
		p, err := project(r.GroupKey)
		if err != nil {
			return nil, err
		}
		if !p.keep {
			continue
		}
		if q.WindowSize == "" {
			curStart, curEnd = q.From, q.To
		} else if curStart.IsZero() || r.Start.Before(curStart) || !r.Start.Before(curEnd) {
			curStart, curEnd = WindowBounds(r.Start, q.WindowSize, loc)
		}
		k := outKey{start: curStart.Unix(), group: p.key}
		if bySubject {
			k.subject = r.Subject
		}
		a := accs[k]
		if a == nil {
			a = &acc{w: Window{WindowStart: curStart.UTC(), WindowEnd: curEnd.UTC(), GroupBy: p.group}, state: NewState(m.Meter.Aggregation)}
			if bySubject {
				s := r.Subject
				a.w.Subject = &s
			}
			accs[k] = a
		}
		if err := a.state.Merge(&r.State); err != nil {
			return nil, fmt.Errorf("merging rollup of meter %s: %w", m.id, err)
		}
	}

	keys := make([]outKey, 0, len(accs))
	for k := range accs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y outKey) int {
		if x.start != y.start {
			if x.start < y.start {
				return -1
			}
			return 1
		}
		if c := strings.Compare(x.subject, y.subject); c != 0 {
			return c
		}
		return strings.Compare(x.group, y.group)
	})
	res := &QueryResult{From: q.From, To: q.To, Data: make([]Window, 0, len(keys))}
	if q.WindowSize != "" {
		ws := q.WindowSize
		res.WindowSize = &ws
	}
	for _, k := range keys {
		a := accs[k]
		a.w.Value, a.w.Events = a.state.Value(), a.state.Count
		res.Data = append(res.Data, a.w)
	}
	return res, nil
}
