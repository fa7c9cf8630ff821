package metering

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Compiled is a validated meter ready to read values from raw event data.
// It is immutable and safe for concurrent use.
type Compiled struct {
	Meter      Meter
	id         string
	value      path // nil for COUNT
	groupNames []string
	groupPaths []path
	groupHead  [][]byte // `{"name":` then `,"name":`, precomputed
	filters    []compiledFilter
}

type compiledFilter struct {
	p      path
	equals string
}

// Compile validates m (see Meter.Validate, whose error it returns) and
// prepares its paths. Rollups are keyed by m.ID, or by m.Slug when the
// meter has no ID yet (static meters from config).
func Compile(m Meter) (*Compiled, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	c := &Compiled{Meter: m, id: m.ID}
	if c.id == "" {
		c.id = m.Slug
	}
	var err error
	if m.ValueProperty != "" {
		if c.value, err = parsePath(m.ValueProperty); err != nil {
			return nil, fmt.Errorf("compiling valueProperty: %w", err)
		}
	}
	c.groupNames = sortedKeys(m.GroupBy)
	for i, name := range c.groupNames {
		p, err := parsePath(m.GroupBy[name])
		if err != nil {
			return nil, fmt.Errorf("compiling groupBy %s: %w", name, err)
		}
		c.groupPaths = append(c.groupPaths, p)
		head := []byte{','}
		if i == 0 {
			head[0] = '{'
		}
		head = appendJSONString(head, name)
		c.groupHead = append(c.groupHead, append(head, ':'))
	}
	for _, f := range m.Filters {
		p, err := parsePath(f.Path)
		if err != nil {
			return nil, fmt.Errorf("compiling filter %s: %w", f.Path, err)
		}
		c.filters = append(c.filters, compiledFilter{p: p, equals: f.Equals})
	}
	return c, nil
}

// ID is the meter's identity in rollup keys.
func (c *Compiled) ID() string { return c.id }

// GroupNames returns the meter's groupBy names in canonical (sorted) order.
func (c *Compiled) GroupNames() []string { return slices.Clone(c.groupNames) }

// Extract outcomes for one event and one meter.
type Extract int

const (
	Extracted    Extract = iota // the event contributes a value
	Filtered                    // a filter did not match, or the event is before eventFrom
	MissingValue                // valueProperty is absent or null in data
	NotNumeric                  // the value is not a number or numeric string within range
)

// Value reads the meter's value from data: for COUNT always 1; for
// UNIQUE_COUNT the text form (numbers and booleans as their JSON text) in
// text; otherwise an exact decimal parsed from the JSON text (a number or
// a string holding one, exponent within ±64). The outcome says why there
// is no value; such events are stored but add nothing to this meter.
func (c *Compiled) Value(data []byte, text []byte) (v decimal.Decimal, textOut []byte, out Extract) {
	if c.value == nil {
		return decimal.Decimal{}, text, Extracted
	}
	raw, ok := c.value.lookup(data)
	if !ok || raw[0] == 'n' {
		return decimal.Decimal{}, text, MissingValue
	}
	if c.Meter.Aggregation == AggUniqueCount {
		text, _ = appendText(text, raw)
		return decimal.Decimal{}, text, Extracted
	}
	d, ok := parseNumber(raw)
	if !ok {
		return decimal.Decimal{}, text, NotNumeric
	}
	return d, text, Extracted
}

// matches reports whether ev passes eventFrom and every filter.
func (c *Compiled) matches(ev *Event, scratch []byte) ([]byte, bool) {
	if c.Meter.EventFrom != nil && ev.Time.Before(*c.Meter.EventFrom) {
		return scratch, false
	}
	for _, f := range c.filters {
		raw, ok := f.p.lookup(ev.Data)
		if !ok {
			return scratch, false
		}
		var present bool
		scratch, present = appendText(scratch[:0], raw)
		if !present || string(scratch) != f.equals {
			return scratch, false
		}
	}
	return scratch, true
}

// AppendGroupKey appends the canonical group key of data for this meter:
// a JSON object of the groupBy names in sorted order whose values are
// strings (numbers and booleans as their JSON text) or null when absent,
// e.g. {"model":"gpt-4","region":null}. A meter without groupBy has the
// empty key "". The key is stable and unambiguous, so it can be stored as
// part of a database key and parsed back with ParseGroupKey.
func (c *Compiled) AppendGroupKey(dst, data []byte) []byte {
	for i, p := range c.groupPaths {
		dst = append(dst, c.groupHead[i]...)
		raw, ok := p.lookup(data)
		switch {
		case !ok || raw[0] == 'n':
			dst = append(dst, "null"...)
		case raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0:
			dst = append(dst, raw...) // already canonical: no escapes needed
		case raw[0] == '"':
			dst = appendJSONString(dst, unescape(raw[1:len(raw)-1]))
		default:
			dst = appendJSONString(dst, string(raw))
		}
	}
	if len(c.groupPaths) > 0 {
		dst = append(dst, '}')
	}
	return dst
}

// appendJSONString appends s as a JSON string, escaping only what JSON
// requires, so equal strings always give equal bytes.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// MeterSet is the compiled meters of one tenant, indexed by event type.
type MeterSet struct {
	TenantID string
	byType   map[string][]*Compiled
}

// NewMeterSet indexes meters by event type for tenantID.
func NewMeterSet(tenantID string, meters ...*Compiled) *MeterSet {
	s := &MeterSet{TenantID: tenantID, byType: make(map[string][]*Compiled)}
	for _, m := range meters {
		s.byType[m.Meter.EventType] = append(s.byType[m.Meter.EventType], m)
	}
	return s
}

// ForType returns the meters that count events of type t.
func (s *MeterSet) ForType(t string) []*Compiled { return s.byType[t] }

// RollupKey identifies one stored rollup row.
type RollupKey struct {
	TenantID string
	MeterID  string
	Minute   time.Time // UTC start of the event-time minute
	Subject  string
	GroupKey string // see Compiled.AppendGroupKey
}

// Rollup is a delta for one rollup row.
type Rollup struct {
	Key   RollupKey
	State State
}

// Outcome counts what happened to the events of one Add call. The meter
// worker exports these as counters: an event whose value is missing or
// not numeric is still stored (it may count for another meter, or after
// the meter is fixed and replayed) but adds nothing to that meter.
type Outcome struct {
	Events       int // events seen
	OtherTenant  int // events skipped because they belong to another tenant than the set
	NoMeter      int // events whose type no meter counts
	Folded       int // (event, meter) pairs that contributed a value
	Filtered     int // (event, meter) pairs dropped by a filter or eventFrom
	MissingValue int // (event, meter) pairs whose value is absent or null
	NotNumeric   int // (event, meter) pairs whose value is not a number in range
}

// Aggregator folds events into per-minute rollup deltas in memory. The
// meter worker folds one bus message (or a few), writes Rollups in one
// transaction and calls Reset. Not safe for concurrent use.
type Aggregator struct {
	index   map[string]int
	rollups []Rollup
	key     []byte
	group   []byte
	text    []byte
	scratch []byte
}

// NewAggregator returns an empty aggregator.
func NewAggregator() *Aggregator {
	return &Aggregator{index: make(map[string]int)}
}

// Add folds events of set's tenant into the deltas, for every meter of the
// event's type, and reports per-event outcomes.
func (a *Aggregator) Add(set *MeterSet, events []Event) Outcome {
	var out Outcome
	for i := range events {
		ev := &events[i]
		out.Events++
		if ev.TenantID != set.TenantID {
			out.OtherTenant++
			continue
		}
		meters := set.byType[ev.Type]
		if len(meters) == 0 {
			out.NoMeter++
			continue
		}
		minute := floorDiv(ev.Time.Unix(), 60)
		for _, c := range meters {
			var ok bool
			if a.scratch, ok = c.matches(ev, a.scratch); !ok {
				out.Filtered++
				continue
			}
			v, text, res := c.Value(ev.Data, a.text[:0])
			a.text = text
			switch res {
			case MissingValue:
				out.MissingValue++
				continue
			case NotNumeric:
				out.NotNumeric++
				continue
			}
			a.group = c.AppendGroupKey(a.group[:0], ev.Data)
			a.key = appendStr(a.key[:0], set.TenantID)
			a.key = appendStr(a.key, c.id)
			a.key = binary.BigEndian.AppendUint64(a.key, uint64(minute))
			a.key = appendStr(a.key, ev.Subject)
			a.key = append(a.key, a.group...)
			idx, found := a.index[string(a.key)]
			if !found {
				idx = len(a.rollups)
				a.rollups = append(a.rollups, Rollup{
					Key: RollupKey{
						TenantID: set.TenantID, MeterID: c.id,
						Minute:  time.Unix(minute*60, 0).UTC(),
						Subject: ev.Subject, GroupKey: string(a.group),
					},
					State: NewState(c.Meter.Aggregation),
				})
				a.index[string(a.key)] = idx
			}
			a.rollups[idx].State.observe(v, text, ev)
			out.Folded++
		}
	}
	return out
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// Len returns the number of rollup deltas held.
func (a *Aggregator) Len() int { return len(a.rollups) }

// Rollups returns a copy of the deltas sorted by key (tenant, meter,
// minute, subject, group), so concurrent writers lock rows in the same
// order. UNIQUE_COUNT sets are shared with the aggregator until Reset.
func (a *Aggregator) Rollups() []Rollup {
	out := slices.Clone(a.rollups)
	slices.SortFunc(out, func(x, y Rollup) int {
		if c := strings.Compare(x.Key.TenantID, y.Key.TenantID); c != 0 {
			return c
		}
		if c := strings.Compare(x.Key.MeterID, y.Key.MeterID); c != 0 {
			return c
		}
		if c := x.Key.Minute.Compare(y.Key.Minute); c != 0 {
			return c
		}
		if c := strings.Compare(x.Key.Subject, y.Key.Subject); c != 0 {
			return c
		}
		return strings.Compare(x.Key.GroupKey, y.Key.GroupKey)
	})
	return out
}

// Reset empties the aggregator for the next batch, keeping its buffers.
func (a *Aggregator) Reset() {
	clear(a.index)
	clear(a.rollups)
	a.rollups = a.rollups[:0]
}
