package metering

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
)

// compileWithin compiles doc and fails the test when that takes longer
// than d, without waiting for a compile that never ends.
// sinkBound tells a bounded cost from a CPU sink: the sinks these tests
// guard against took minutes, while what the bounds let through takes well
// under a second on an idle machine. It is generous so that a loaded CI
// machine (tens of processes on two cores) never fails a cheap compile;
// the costs themselves are measured by the benchmarks, not asserted here.
const sinkBound = 20 * time.Second

func compileWithin(t *testing.T, d time.Duration, doc []byte) (*Schema, error) {
	t.Helper()
	type result struct {
		s   *Schema
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		s, err := CompileSchema(doc)
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		t.Logf("%d-byte schema compiled in %s", len(doc), time.Since(start))
		return r.s, r.err
	case <-time.After(d):
		t.Fatalf("compiling a %d-byte schema took more than %s", len(doc), d)
		return nil, nil
	}
}

func nested(open, leaf, close string, n int) []byte {
	return []byte(strings.Repeat(open, n) + leaf + strings.Repeat(close, n))
}

// refFanOut is a schema whose $defs each refer twice to the next one:
// n definitions expand to 2^n subschemas.
func refFanOut(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"$ref":"#/$defs/a0","$defs":{`)
	for i := range n {
		fmt.Fprintf(&b, `"a%d":{"allOf":[{"$ref":"#/$defs/a%d"},{"$ref":"#/$defs/a%d"}]},`, i, i+1, i+1)
	}
	fmt.Fprintf(&b, `"a%d":{"type":"object"}}}`, n)
	return []byte(b.String())
}

// The reproduction of issue 12: a 54 KB schema nested 6,000 levels kept
// 1.4 cores busy for minutes. Such schemas are refused at once, naming
// where they are too deep.
func TestSchemaCostIsBounded(t *testing.T) {
	t.Parallel()
	deepAt := "schema" + strings.Repeat("/items", MaxSchemaDepth)
	for _, c := range []struct {
		name        string
		doc         []byte
		field, says string
	}{
		{"items nested 6,000 deep", nested(`{"items":`, `{"type":"integer"}`, `}`, 6000), deepAt, "nested more than 64 levels deep"},
		{"items nested 3,200 deep", nested(`{"items":`, `{"type":"integer"}`, `}`, 3200), deepAt, "nested more than 64 levels deep"},
		{"allOf nested 4,000 deep", nested(`{"allOf":[`, `{"type":"integer"}`, `]}`, 4000),
			"schema" + strings.Repeat("/allOf/0", MaxSchemaDepth/2), "nested more than 64 levels deep"},
		{"references fanning out 2^40", refFanOut(40), "schema", "expands to more than 5000 subschemas"},
		{"21,000 subschemas in one anyOf", nested(`{"anyOf":[`, strings.Repeat(`{},`, 21_000)+`{}`, `]}`, 1), "schema", "holds more than 5000 subschemas"},
		{"12,000 boolean subschemas", nested(`{"anyOf":[`, strings.Repeat(`true,`, 12_000)+`true`, `]}`, 1), "schema", "holds more than 5000 subschemas"},
		{"a pattern of 2,000 repetitions", []byte(`{"type":"string","pattern":"[a-z]{1,1000}[0-9]{1,1000}"}`), "schema/pattern", "at most 2000 are allowed"},
	} {
		_, err := compileWithin(t, sinkBound, c.doc)
		e, ok := abacus.AsError(err)
		if !ok || e.Code != CodeInvalidEventSchema {
			t.Errorf("%s: want %s, got %v", c.name, CodeInvalidEventSchema, err)
			continue
		}
		if msg, ok := fieldsOf(err)[c.field]; !ok || !strings.Contains(msg, c.says) {
			t.Errorf("%s: want %s saying %q, got %+v", c.name, c.field, c.says, e.Fields)
		}
	}
}

// The largest schemas the bounds let through still compile in well under
// a second and check an event in milliseconds.
func TestSchemaAtTheBoundsIsCheap(t *testing.T) {
	t.Parallel()
	for name, doc := range map[string][]byte{
		"items nested 63 deep":           nested(`{"items":`, `{"type":"integer"}`, `}`, MaxSchemaDepth-1),
		"references fanning out 2^10":    refFanOut(10),
		"a pattern of 1,000 repetitions": []byte(`{"type":"string","pattern":"^[a-z]{1,900}$"}`),
		"3,600 subschemas in one anyOf":  nested(`{"anyOf":[`, strings.Repeat(`{"type":"string"},`, 3600)+`{"type":"string"}`, `]}`, 1),
	} {
		s, err := compileWithin(t, sinkBound, doc)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var v abacus.Validation
		start := time.Now()
		s.Check(0, &Event{Type: "t", Data: []byte(`{"a":"` + strings.Repeat("b", 4000) + `"}`)}, &v)
		if d := time.Since(start); d > sinkBound/4 {
			t.Errorf("%s: checking an event took %s", name, d)
		}
	}
}

// An event's check is bounded too: 1,000 array items each meeting 3,000
// alternatives took minutes per event; such an event is refused at once,
// while smaller data under the same schema is still checked.
func TestEventCheckCostIsBounded(t *testing.T) {
	t.Parallel()
	s, err := CompileSchema(nested(`{"items":{"anyOf":[`, strings.Repeat(`{"type":"string"},`, 3000)+`{"type":"string"}`, `]}}`, 1))
	if err != nil {
		t.Fatal(err)
	}
	check := func(items int) map[string]string {
		var v abacus.Validation
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.Check(0, &Event{Type: "t", Data: []byte("[" + strings.Repeat(`0,`, items-1) + "0]")}, &v)
		}()
		select {
		case <-done:
		case <-time.After(sinkBound):
			t.Fatalf("checking an event of %d items took more than %s", items, sinkBound)
		}
		return fieldsOf(v.Err("invalid_event"))
	}
	if got := check(1000)["0/data"]; !strings.Contains(got, "more than the 500000 checks allowed per event") {
		t.Errorf("1,000 items: want the event refused for its cost, got %q", got)
	}
	if got := check(10); !strings.Contains(got["0/data/0"], "want string") {
		t.Errorf("10 items: want each checked, got %v", got)
	}
}
