package metering

import (
	"strings"
	"testing"

	"github.com/abacusbilling/abacus"
	"github.com/shopspring/decimal"
)

func TestMeterValidate(t *testing.T) {
	t.Parallel()
	ok := Meter{Slug: "tokens_total", EventType: "request", Aggregation: AggSum, ValueProperty: "$.tokens", GroupBy: map[string]string{"model": "$.model"}}
	tests := []struct {
		name   string
		mod    func(m *Meter)
		fields []string
	}{
		{"valid", func(*Meter) {}, nil},
		{"count without value", func(m *Meter) { m.Aggregation, m.ValueProperty = AggCount, "" }, nil},
		{"bracket paths", func(m *Meter) { m.ValueProperty = `$.usage["input tokens"][0]` }, nil},
		{"empty", func(m *Meter) { *m = Meter{} }, []string{"slug", "eventType", "aggregation"}},
		{"slug pattern", func(m *Meter) { m.Slug = "Tokens--x" }, []string{"slug"}},
		{"slug length", func(m *Meter) { m.Slug = strings.Repeat("a", 64) }, []string{"slug"}},
		{"aggregation", func(m *Meter) { m.Aggregation = "MEDIAN" }, []string{"aggregation"}},
		{"value required", func(m *Meter) { m.ValueProperty = "" }, []string{"valueProperty"}},
		{"value on count", func(m *Meter) { m.Aggregation = AggCount }, []string{"valueProperty"}},
		{"value path", func(m *Meter) { m.ValueProperty = "tokens" }, []string{"valueProperty"}},
		{"group key", func(m *Meter) { m.GroupBy = map[string]string{"9x": "$.a", "subject": "$.s", "ok": "$"} }, []string{"groupBy.9x", "groupBy.ok", "groupBy.subject"}},
		{"too many groups", func(m *Meter) {
			m.GroupBy = map[string]string{}
			for i := range 21 {
				m.GroupBy["g"+itoa(i)] = "$.a"
			}
		}, []string{"groupBy"}},
		{"filter path", func(m *Meter) { m.Filters = []Filter{{Path: "$.a[", Equals: "x"}} }, []string{"filters[0].path"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := ok
			tt.mod(&m)
			err := m.Validate()
			if tt.fields == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			e, isErr := abacus.AsError(err)
			if !isErr || e.Code != CodeInvalidMeter {
				t.Fatalf("want invalid_meter, got %v", err)
			}
			var got []string
			for _, f := range e.Fields {
				got = append(got, f.Field)
			}
			if strings.Join(got, ",") != strings.Join(tt.fields, ",") {
				t.Errorf("fields = %v, want %v", got, tt.fields)
			}
		})
	}
}

func TestExtractValue(t *testing.T) {
	t.Parallel()
	data := []byte(`{"a":{"b":"12.5","x y":-3,"arr":[10,{"c":"1e30"}]},"big":123456789012345678901234567890,
		"e":1e30,"neg":-0.000001,"frac":0.1,"s":"abc","n":null,"t":true,"huge":1e999999,"dup":1,"dup":2,"esc\"k":7}`)
	tests := []struct {
		path string
		want string // decimal text, or "missing" / "nan"
	}{
		{"$.a.b", "12.5"},
		{`$.a["x y"]`, "-3"},
		{"$.a.arr[0]", "10"},
		{"$.a.arr[1].c", "1000000000000000000000000000000"},
		{"$.a.arr[2]", "missing"},
		{"$.big", "123456789012345678901234567890"},
		{"$.e", "1000000000000000000000000000000"},
		{"$.neg", "-0.000001"},
		{"$.frac", "0.1"},
		{"$.s", "nan"},
		{"$.t", "nan"},
		{"$.n", "missing"},
		{"$.nope", "missing"},
		{"$.a.b.c", "missing"},
		{"$.huge", "nan"},
		{"$.dup", "1"},
		{`$["esc\"k"]`, "7"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			c, err := Compile(Meter{Slug: "m", EventType: "t", Aggregation: AggSum, ValueProperty: tt.path})
			if err != nil {
				t.Fatal(err)
			}
			v, _, out := c.Value(data, nil)
			var got string
			switch out {
			case MissingValue:
				got = "missing"
			case NotNumeric:
				got = "nan"
			default:
				got = v.String()
			}
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestGroupKey(t *testing.T) {
	t.Parallel()
	c, err := Compile(Meter{Slug: "m", EventType: "t", Aggregation: AggCount, GroupBy: map[string]string{
		"z": "$.z", "a": "$.a", "n": "$.n", "q": "$.q", "o": "$.o",
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := string(c.AppendGroupKey(nil, []byte(`{"z":"x\u0022y","a":12.0,"q":"plain","o":{"k": 1}}`)))
	want := `{"a":"12.0","n":null,"o":"{\"k\": 1}","q":"plain","z":"x\"y"}`
	if got != want {
		t.Errorf("key = %s\nwant %s", got, want)
	}
	m, err := ParseGroupKey(got)
	if err != nil || *m["z"] != `x"y` || m["n"] != nil || *m["a"] != "12.0" {
		t.Errorf("ParseGroupKey = %v, %v", m, err)
	}
}

func TestAggregatorOutcomes(t *testing.T) {
	t.Parallel()
	sum, _ := Compile(Meter{ID: "mtr_sum", Slug: "s", EventType: "req", Aggregation: AggSum, ValueProperty: "$.n",
		GroupBy: map[string]string{"model": "$.model"}, Filters: []Filter{{Path: "$.env", Equals: "prod"}}})
	cnt, _ := Compile(Meter{ID: "mtr_cnt", Slug: "c", EventType: "req", Aggregation: AggCount})
	set := NewMeterSet("ten_1", sum, cnt)
	ev := func(min int, data string) Event {
		return Event{TenantID: "ten_1", ID: "i", Source: "s", Type: "req", Subject: "cus", Time: testNow.Add(timeMinutes(min)), Data: []byte(data)}
	}
	events := []Event{
		ev(0, `{"n":1,"model":"a","env":"prod"}`),
		ev(0, `{"n":"2.5","model":"a","env":"prod"}`),
		ev(1, `{"n":4,"model":"a","env":"prod"}`),
		ev(0, `{"n":8,"env":"prod"}`),
		ev(0, `{"n":"x","model":"a","env":"prod"}`),
		ev(0, `{"model":"a","env":"prod"}`),
		ev(0, `{"n":100,"model":"a","env":"dev"}`),
		{TenantID: "ten_2", Type: "req"},
		{TenantID: "ten_1", Type: "other"},
	}
	a := NewAggregator()
	out := a.Add(set, events)
	want := Outcome{Events: 9, OtherTenant: 1, NoMeter: 1, Folded: 11, Filtered: 1, MissingValue: 1, NotNumeric: 1}
	if out != want {
		t.Errorf("outcome = %+v\nwant %+v", out, want)
	}
	got := map[string]string{}
	for _, r := range a.Rollups() {
		got[r.Key.MeterID+"|"+r.Key.Minute.Format("15:04")+"|"+r.Key.GroupKey] = r.State.Value().String()
	}
	wantRows := map[string]string{
		`mtr_sum|12:00|{"model":"a"}`:  "3.5",
		`mtr_sum|12:01|{"model":"a"}`:  "4",
		`mtr_sum|12:00|{"model":null}`: "8",
		`mtr_cnt|12:00|`:               "6",
		`mtr_cnt|12:01|`:               "1",
	}
	if len(got) != len(wantRows) {
		t.Errorf("rollups = %v", got)
	}
	for k, v := range wantRows {
		if got[k] != v {
			t.Errorf("%s = %q, want %s", k, got[k], v)
		}
	}
	a.Reset()
	if a.Len() != 0 || len(a.Rollups()) != 0 {
		t.Errorf("Reset left rows")
	}
	a.Add(set, events[:1])
	if a.Len() != 2 {
		t.Errorf("after reset: %d rows", a.Len())
	}
}

func TestStateValues(t *testing.T) {
	t.Parallel()
	vals := []string{"3", "-1.5", "10", "2"}
	tests := []struct {
		agg  Aggregation
		want string
	}{
		{AggCount, "4"}, {AggSum, "13.5"}, {AggMin, "-1.5"}, {AggMax, "10"},
		{AggAvg, "3.375"}, {AggUniqueCount, "4"}, {AggLatest, "10"},
	}
	for _, tt := range tests {
		t.Run(string(tt.agg), func(t *testing.T) {
			t.Parallel()
			s := NewState(tt.agg)
			for i, v := range vals {
				// "10" is the newest; the rest share an older time.
				at := testNow
				if v == "10" {
					at = testNow.Add(timeMinutes(1))
				}
				s.observe(decimal.RequireFromString(v), []byte(v), &Event{Time: at, Source: "s", ID: itoa(i)})
			}
			if got := s.Value().String(); got != tt.want {
				t.Errorf("value = %s, want %s", got, tt.want)
			}
		})
	}
	avg := NewState(AggAvg)
	for _, v := range []int64{1, 1, 2} {
		avg.observe(decimal.NewFromInt(v), nil, &Event{})
	}
	if got := avg.Value().String(); got != "1.333333333333" {
		t.Errorf("avg rounding = %s", got)
	}
	a, b := NewState(AggSum), NewState(AggMax)
	if a.Merge(&b) == nil {
		t.Errorf("merging different aggregations must fail")
	}
}
