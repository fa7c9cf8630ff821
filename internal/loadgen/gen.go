// Package loadgen drives an Abacus server (or a bare baseline) with usage
// events and measures it: throughput, request latency, and how long until
// what was acknowledged is queryable. `abacus bench` is its command line;
// the crash tests use its generator.
//
// Events are generated, not read: event i of a run has id "<run>-<i>", a
// subject drawn from a fixed pool and a decimal value of (i mod 997 + 1)
// hundredths, so the exact expected SUM and COUNT are known without
// keeping the events.
package loadgen

import (
	"strconv"
	"time"

	"github.com/shopspring/decimal"
)

// Gen generates the events of one run. Its methods are safe for
// concurrent use (Gen is immutable after construction).
type Gen struct {
	Run       string        // unique per run; prefixes every id
	Type      string        // CloudEvents type, e.g. the meter's eventType
	Source    string        // CloudEvents source
	Subjects  int           // subjects are "customer-0" … "customer-<Subjects-1>"
	Spread    time.Duration // event times spread over [t-Spread, t]; 0 = all at t
	spreadSec int64
}

// NewGen returns a generator; subjects < 1 means 1.
func NewGen(run, typ, source string, subjects int, spread time.Duration) *Gen {
	return &Gen{Run: run, Type: typ, Source: source, Subjects: max(subjects, 1), Spread: spread, spreadSec: int64(spread / time.Second)}
}

// Cents returns event i's value in hundredths.
func Cents(i int64) int64 { return i%997 + 1 }

// SumCents returns the sum of Cents(i) for i in [from, to).
func SumCents(from, to int64) int64 {
	var s int64
	// Whole cycles of 997 values sum to 997*998/2.
	for from < to && from%997 != 0 {
		s += Cents(from)
		from++
	}
	cycles := (to - from) / 997
	s += cycles * (997 * 998 / 2)
	for i := from + cycles*997; i < to; i++ {
		s += Cents(i)
	}
	return s
}

// Decimal converts hundredths to an exact decimal.
func Decimal(cents int64) decimal.Decimal { return decimal.New(cents, -2) }

// AppendEvent appends event i as a CloudEvents JSON object, with time t
// (moved back by the spread, if any). ts is t formatted as RFC 3339 and is
// used when there is no spread, so a batch formats its time once.
func (g *Gen) AppendEvent(b []byte, i int64, t time.Time, ts []byte) []byte {
	b = append(b, `{"specversion":"1.0","id":"`...)
	b = append(b, g.Run...)
	b = append(b, '-')
	b = strconv.AppendInt(b, i, 10)
	b = append(b, `","source":"`...)
	b = append(b, g.Source...)
	b = append(b, `","type":"`...)
	b = append(b, g.Type...)
	b = append(b, `","subject":"customer-`...)
	b = strconv.AppendInt(b, i%int64(g.Subjects), 10)
	b = append(b, `","time":"`...)
	if g.spreadSec > 0 {
		// A multiplicative hash spreads consecutive events over the range.
		off := (i * 7919) % g.spreadSec
		b = t.Add(-time.Duration(off)*time.Second).AppendFormat(b, time.RFC3339)
	} else {
		b = append(b, ts...)
	}
	b = append(b, `","data":{"value":`...)
	c := Cents(i)
	b = strconv.AppendInt(b, c/100, 10)
	b = append(b, '.')
	if c%100 < 10 {
		b = append(b, '0')
	}
	b = strconv.AppendInt(b, c%100, 10)
	b = append(b, `,"model":"m`...)
	b = strconv.AppendInt(b, i%4, 10)
	b = append(b, `"}}`...)
	return b
}

// AppendBody appends the request body for events [from, to) at time t: one
// object when there is one event and single is true, else an array.
func (g *Gen) AppendBody(b []byte, from, to int64, t time.Time, single bool) []byte {
	ts := t.UTC().AppendFormat(make([]byte, 0, 40), time.RFC3339Nano)
	if single && to-from == 1 {
		return g.AppendEvent(b, from, t, ts)
	}
	b = append(b, '[')
	for i := from; i < to; i++ {
		if i > from {
			b = append(b, ',')
		}
		b = g.AppendEvent(b, i, t, ts)
	}
	return append(b, ']')
}
