package metering

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/abacusbilling/abacus"
)

func fieldsOf(err error) map[string]string {
	out := map[string]string{}
	if e, ok := abacus.AsError(err); ok {
		for _, f := range e.Fields {
			k := f.Field
			if f.Index != nil {
				k = fmt.Sprintf("%d/%s", *f.Index, f.Field)
			}
			out[k] = f.Message
		}
	}
	return out
}

func TestCompileSchemaRefusals(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ doc, field, says string }{
		{`{"type":"objekt"}`, "schema/type", "must be one of"},
		{`{"properties":{"n":{"minimum":"x"}}}`, "schema/properties/n/minimum", "want number"},
		{`{"pattern":"("}`, "schema/pattern", "not valid regex"},
		{`{"$ref":"file:///etc/passwd"}`, "schema", "external references are not allowed"},
		{`{"$ref":"https://example.com/s.json"}`, "schema", "external references are not allowed"},
		{`{"$ref":"#/$defs/nope"}`, "schema", `"#/$defs/nope" not found`},
		{`{"type":`, "schema", "not valid JSON"},
		{`[1]`, "schema", "JSON object"},
		{`{}`, "schema", "constrains nothing"},
		{`{"$ref":"#"}`, "schema", "reference cycle"},
		{`{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}},"allOf":[{"$ref":"#/$defs/a"}]}`, "schema", "reference cycle"},
		{`true`, "schema", "constrains nothing"},
		{`{"description":"` + strings.Repeat("x", MaxSchemaBytes) + `"}`, "schema", "too large"},
	} {
		_, err := CompileSchema([]byte(c.doc))
		e, ok := abacus.AsError(err)
		if !ok || e.Code != CodeInvalidEventSchema || e.Kind != abacus.KindInvalid {
			t.Errorf("%.40s: %v", c.doc, err)
			continue
		}
		msg, ok := fieldsOf(err)[c.field]
		if !ok || !strings.Contains(msg+" "+e.Message, c.says) {
			t.Errorf("%.40s: want %s saying %q, got %+v (%s)", c.doc, c.field, c.says, e.Fields, e.Message)
		}
		if strings.Contains(msg+e.Message, schemaURL) {
			t.Errorf("%.40s: internal URL shown: %s", c.doc, msg)
		}
	}
	for _, ok := range []string{`{"type":"object"}`, `false`, `{"$schema":"http://json-schema.org/draft-07/schema#","type":"object"}`,
		`{"$defs":{"n":{"type":"integer"}},"properties":{"a":{"$ref":"#/$defs/n"}}}`,
		`{"type":"object","properties":{"child":{"$ref":"#"}}}`} { // recursion through data is fine
		if _, err := CompileSchema([]byte(ok)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

func TestSchemaCheck(t *testing.T) {
	t.Parallel()
	s, err := CompileSchema([]byte(`{"type":"object","required":["tokens"],"additionalProperties":false,
		"properties":{"tokens":{"type":"integer","minimum":0},"at":{"type":"string","format":"date-time"},
		"tags":{"type":"array","items":{"type":"string"}},"a/b":{"type":"string"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		data string
		want []string // index-less field names
	}{
		{`{"tokens":12345678901234567890}`, nil}, // big integers stay exact
		{`{"tokens":1,"tags":["x"],"at":"2026-01-02T03:04:05Z"}`, nil},
		{`{"tokens":-1}`, []string{"data/tokens"}},
		{`{"tokens":1.5}`, []string{"data/tokens"}},
		{`{"tokens":1,"at":"yesterday"}`, []string{"data/at"}},
		{`{"tokens":1,"tags":["x",2,true]}`, []string{"data/tags/1", "data/tags/2"}},
		{`{"tokens":1,"a/b":3}`, []string{"data/a~1b"}},
		{`{"tokens":1,"extra":1}`, []string{"data"}},
		{`{}`, []string{"data"}},
		{``, []string{"data"}}, // no data: validated as null
	} {
		var v abacus.Validation
		ev := Event{Type: "llm"}
		if c.data != "" {
			ev.Data = []byte(c.data)
		}
		s.Check(3, &ev, &v)
		var got []string
		for _, f := range v.Fields {
			if f.Index == nil || *f.Index != 3 || !strings.Contains(f.Message, `"llm"`) {
				t.Errorf("%s: bad field error %+v", c.data, f)
			}
			got = append(got, f.Field)
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("%s: fields %v, want %v (%+v)", c.data, got, c.want, v.Fields)
		}
	}
	// At most maxSchemaErrorsPerEvt problems per event.
	many := `{"tokens":1,"tags":[` + strings.TrimSuffix(strings.Repeat("1,", 50), ",") + `]}`
	var v abacus.Validation
	s.Check(0, &Event{Type: "llm", Data: []byte(many)}, &v)
	if len(v.Fields) != maxSchemaErrorsPerEvt {
		t.Errorf("%d problems for one event, want %d", len(v.Fields), maxSchemaErrorsPerEvt)
	}
}

// One answer lists CloudEvents problems and schema problems of every
// event; events of types without a schema, or with other problems in
// type or data, are not checked against a schema.
func TestDecodeEventsCheckedListsEverything(t *testing.T) {
	t.Parallel()
	s, err := CompileSchema([]byte(`{"type":"object","required":["n"]}`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	body := `[
	 {"specversion":"1.0","id":"1","source":"s","type":"a","subject":"x","data":{"n":1}},
	 {"specversion":"1.0","id":"2","source":"s","type":"a","subject":"x","data":{"m":1}},
	 {"specversion":"1.0","id":"3","source":"s","type":"a","data":{}},
	 {"specversion":"1.0","id":"4","source":"s","type":"b","subject":"x","data":{}},
	 {"specversion":"1.0","id":"5","source":"s","type":"a","subject":"x","data":[1]},
	 {"specversion":"1.0","id":"6","source":"s","type":"a","subject":"x","time":"2025-06-01T00:00:00Z","data":{"n":1}}
	]`
	_, err = DecodeEventsChecked(MediaTypeCloudEventBatch, []byte(body), now, Limits{}, Schemas{"a": s}.Check)
	got := fieldsOf(err)
	want := []string{"1/data", "2/subject", "2/data", "4/data", "5/time"}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("missing %s in %v", k, got)
		}
	}
	if !strings.Contains(got["4/data"], "JSON object") {
		t.Errorf("4/data should be the CloudEvents error only: %q", got["4/data"])
	}
	// The same body with a longer window: only the schema problems stay
	// for events 1 and 2, and 6 passes.
	_, err = DecodeEventsChecked(MediaTypeCloudEventBatch, []byte(body), now, Limits{LateWindow: 8784 * time.Hour}, Schemas{"a": s}.Check)
	if _, ok := fieldsOf(err)["5/time"]; ok {
		t.Errorf("the tenant window was not applied: %v", fieldsOf(err))
	}
	// No check: as DecodeEvents.
	_, err = DecodeEventsChecked(MediaTypeCloudEventBatch, []byte(body), now, Limits{}, nil)
	if _, ok := fieldsOf(err)["1/data"]; ok {
		t.Errorf("checked without a check: %v", fieldsOf(err))
	}
}

func TestLateWindowRules(t *testing.T) {
	t.Parallel()
	for d, ok := range map[time.Duration]bool{time.Hour: true, 840 * time.Hour: true, MaxLateWindow: true,
		59 * time.Minute: false, MaxLateWindow + time.Hour: false, time.Hour + time.Millisecond: false} {
		if err := ValidateLateWindow(d); (err == nil) != ok {
			t.Errorf("%s: %v", d, err)
		}
	}
	for d, s := range map[time.Duration]string{840 * time.Hour: "840h", 90 * time.Minute: "1h30m", time.Hour + 10*time.Second: "1h0m10s", 45 * time.Second: "45s"} {
		if got := FormatWindow(d); got != s {
			t.Errorf("FormatWindow(%s) = %s, want %s", d, got, s)
		}
	}
}

func TestValidateMeterList(t *testing.T) {
	t.Parallel()
	err := ValidateMeterList("metering.meters", []Meter{
		{Slug: "a", EventType: "x", Aggregation: AggCount},
		{ID: "mtr_1", Slug: "b", EventType: "x", Aggregation: AggCount},
		{Slug: "a", EventType: "x", Aggregation: AggSum},
	})
	got := fieldsOf(err)
	for _, k := range []string{"metering.meters[1].id", "metering.meters[2].slug", "metering.meters[2].valueProperty"} {
		if _, ok := got[k]; !ok {
			t.Errorf("missing %s in %v", k, got)
		}
	}
	if len(got) != 3 {
		t.Errorf("got %v", got)
	}
	if err := ValidateMeterList("k", nil); err != nil {
		t.Errorf("empty list: %v", err)
	}
}

// The scanner's tree equals encoding/json's (UseNumber), which the schema
// library would otherwise build.
func TestScannerValueMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{
		`{"a":1,"b":-2.5e3,"c":"x\"y\\u00e9\ud83d\ude00","d":[true,false,null,{}],"e":{"f":[[]]}}`,
		`{"dup":1,"dup":"last"}`, `{"\u0061":0}`, `{ "s" : "  " , "n" : 0.000 }`,
		`{"big":123456789012345678901234567890,"neg0":-0}`,
	} {
		sc := scanner{b: []byte(doc)}
		got, serr := sc.value(0)
		if serr != nil {
			t.Fatalf("%s: %v", doc, serr)
		}
		want, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %#v\nwant %#v", doc, got, want)
		}
	}
}
