package metering

import (
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
)

var testNow = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

const goodEvent = `{"specversion":"1.0","id":"e1","source":"api","type":"request","subject":"cus_1","time":"2026-03-10T11:59:00Z","data":{"tokens":12,"model":"gpt-4"}}`

func TestDecodeEventsAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ct, body string
		n              int
	}{
		{"single cloudevent", "application/cloudevents+json", goodEvent, 1},
		{"charset parameter", "application/cloudevents+json; charset=utf-8", goodEvent, 1},
		{"case-insensitive", "Application/CloudEvents+JSON;Charset=UTF-8", goodEvent, 1},
		{"batch", "application/cloudevents-batch+json", "[" + goodEvent + "," + goodEvent + "]", 2},
		{"json object", "application/json", goodEvent, 1},
		{"json array", "application/json", " [ " + goodEvent + " ] ", 1},
		{"no data", "application/json", `{"specversion":"1.0","id":"e","source":"s","type":"t","subject":"x"}`, 1},
		{"null data", "application/json", `{"specversion":"1.0","id":"e","source":"s","type":"t","subject":"x","data":null}`, 1},
		{"extensions ignored", "application/json", `{"specversion":"1.0","id":"e","source":"s","type":"t","subject":"x","myext":[1,{"a":2}]}`, 1},
		{"escaped strings", "application/json", `{"specversion":"1.0","id":"e\u00e9","source":"s\/x","type":"t","subject":"x"}`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			evs, err := DecodeEvents(tt.ct, []byte(tt.body), testNow, Limits{})
			if err != nil {
				t.Fatalf("DecodeEvents: %v", err)
			}
			if len(evs) != tt.n {
				t.Fatalf("got %d events, want %d", len(evs), tt.n)
			}
			for _, e := range evs {
				if !e.ReceivedAt.Equal(testNow) || e.Time.IsZero() {
					t.Errorf("times not set: %+v", e)
				}
			}
		})
	}
}

func TestDecodeEventsFields(t *testing.T) {
	t.Parallel()
	body := []byte(goodEvent)
	evs, err := DecodeEvents("application/json", body, testNow, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range body {
		body[i] = 'x' // the events must not alias the caller's buffer
	}
	e := evs[0]
	if e.ID != "e1" || e.Source != "api" || e.Type != "request" || e.Subject != "cus_1" || e.SpecVersion != "1.0" {
		t.Errorf("attributes: %+v", e)
	}
	if !e.Time.Equal(time.Date(2026, 3, 10, 11, 59, 0, 0, time.UTC)) {
		t.Errorf("time = %v", e.Time)
	}
	if string(e.Data) != `{"tokens":12,"model":"gpt-4"}` {
		t.Errorf("data = %s", e.Data)
	}
	evs, err = DecodeEvents("application/json", []byte(`{"specversion":"1.0","id":"e\u00e9","source":"s","type":"t","subject":"x"}`), testNow, Limits{})
	if err != nil || evs[0].ID != "eé" || !evs[0].Time.Equal(testNow) {
		t.Errorf("escaped id / default time: %+v %v", evs, err)
	}
}

// withData is goodEvent with data replaced.
func withData(data string) string {
	return strings.Replace(goodEvent, `{"tokens":12,"model":"gpt-4"}`, data, 1)
}

// manyKeys is an object with n distinct keys, then dup again when set.
func manyKeys(n int, dup string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = `"k` + itoa(i) + `":` + itoa(i)
	}
	if dup != "" {
		parts = append(parts, `"`+dup+`":0`)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// Keys are unique per object, not per body: the same key in two objects,
// or many distinct keys in one, is accepted.
func TestDecodeEventsDistinctKeys(t *testing.T) {
	t.Parallel()
	for _, data := range []string{manyKeys(40, ""), `{"a":{"k":1},"b":{"k":1},"k":[{"k":1},{"k":2}]}`} {
		if _, err := DecodeEvents("application/json", []byte(withData(data)), testNow, Limits{}); err != nil {
			t.Errorf("%s: %v", data, err)
		}
	}
}

func TestDecodeEventsRejects(t *testing.T) {
	t.Parallel()
	ev := func(mod string) string {
		return strings.Replace(goodEvent, `"specversion":"1.0"`, mod, 1)
	}
	tests := []struct {
		name, ct, body string
		kind           abacus.Kind
		code           string
		fields         []string // "index:field" of each expected problem
		msg            string   // substring of the message
	}{
		{"unknown media type", "text/plain", goodEvent, abacus.KindUnsupportedMediaType, CodeUnsupportedMediaType, nil, "text/plain"},
		{"bad charset", "application/json; charset=latin1", goodEvent, abacus.KindUnsupportedMediaType, CodeUnsupportedMediaType, nil, "latin1"},
		{"array for single", "application/cloudevents+json", "[" + goodEvent + "]", abacus.KindInvalid, CodeInvalidJSON, nil, "single JSON object"},
		{"object for batch", "application/cloudevents-batch+json", goodEvent, abacus.KindInvalid, CodeInvalidJSON, nil, "array"},
		{"bad json", "application/json", "{\n\"id\": \"x\",\n \"source\" \"s\"}", abacus.KindInvalid, CodeInvalidJSON, nil, "line 3, column 11"},
		{"truncated", "application/json", goodEvent[:50], abacus.KindInvalid, CodeInvalidJSON, nil, "at byte 50"},
		{"trailing garbage", "application/json", goodEvent + "x", abacus.KindInvalid, CodeInvalidJSON, nil, "after the JSON value"},
		{"scalar body", "application/json", `42`, abacus.KindInvalid, CodeInvalidJSON, nil, "object or array"},
		{"not utf8", "application/json", "{\"id\":\"\xff\"}", abacus.KindInvalid, CodeInvalidUTF8, nil, "UTF-8"},
		{"empty batch", "application/json", `[]`, abacus.KindInvalid, CodeInvalidEvent, nil, "no events"},
		{"missing everything", "application/json", `{}`, abacus.KindInvalid, CodeInvalidEvent,
			[]string{"0:id", "0:source", "0:type", "0:subject", "0:specversion"}, ""},
		{"wrong types", "application/json", `{"specversion":1,"id":7,"source":true,"type":null,"subject":["x"],"time":5,"data":"x"}`, abacus.KindInvalid, CodeInvalidEvent,
			[]string{"0:specversion", "0:id", "0:source", "0:type", "0:subject", "0:time", "0:data"}, "must be a string, got number"},
		{"spec version", "application/json", ev(`"specversion":"0.3"`), abacus.KindInvalid, CodeInvalidEvent, []string{"0:specversion"}, `"0.3"`},
		{"data array", "application/json", strings.Replace(goodEvent, `{"tokens":12,"model":"gpt-4"}`, `[1]`, 1), abacus.KindInvalid, CodeInvalidEvent, []string{"0:data"}, "got array"},
		{"bad time", "application/json", strings.Replace(goodEvent, "2026-03-10T11:59:00Z", "yesterday", 1), abacus.KindInvalid, CodeInvalidEvent, []string{"0:time"}, "RFC 3339"},
		{"future", "application/json", strings.Replace(goodEvent, "2026-03-10T11:59:00Z", "2026-03-10T12:05:01Z", 1), abacus.KindInvalid, CodeInvalidEvent, []string{"0:time"}, "ahead"},
		{"too old", "application/json", strings.Replace(goodEvent, "2026-03-10T11:59:00Z", "2026-02-03T11:59:59Z", 1), abacus.KindInvalid, CodeInvalidEvent, []string{"0:time"}, "35 days"},
		{"duplicate attribute", "application/json", ev(`"specversion":"1.0","id":"a"`), abacus.KindInvalid, CodeInvalidEvent, []string{"0:id"}, "more than once"},
		{"duplicate data key", "application/json", withData(`{"tokens":12,"tokens":13}`), abacus.KindInvalid, CodeInvalidEvent, []string{"0:data.tokens"}, "more than once"},
		{"duplicate nested data key", "application/json", withData(`{"a":[{"b":1},{"b":1,"c":{"d":1,"d":2}}]}`), abacus.KindInvalid, CodeInvalidEvent, []string{"0:data.a[1].c.d"}, "more than once"},
		{"duplicate key among many", "application/json", withData(manyKeys(40, "k7")), abacus.KindInvalid, CodeInvalidEvent, []string{"0:data.k7"}, "more than once"},
		{"duplicate extension", "application/json", ev(`"specversion":"1.0","region":"eu","region":"us"`), abacus.KindInvalid, CodeInvalidEvent, []string{"0:region"}, "more than once"},
		{"data_base64", "application/json", ev(`"specversion":"1.0","data_base64":"eA=="`), abacus.KindInvalid, CodeInvalidEvent, []string{"0:data_base64"}, ""},
		{"bad datacontenttype", "application/json", ev(`"specversion":"1.0","datacontenttype":"text/xml"`), abacus.KindInvalid, CodeInvalidEvent, []string{"0:datacontenttype"}, ""},
		{"batch lists every bad index", "application/json", "[" + goodEvent + "," + ev(`"specversion":"2"`) + ",7," + strings.Replace(goodEvent, `"id":"e1"`, `"id":""`, 1) + "]", abacus.KindInvalid, CodeInvalidEvent,
			[]string{"1:specversion", "2:", "3:id"}, "(and 2 more problems)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			evs, err := DecodeEvents(tt.ct, []byte(tt.body), testNow, Limits{})
			e, ok := abacus.AsError(err)
			if !ok {
				t.Fatalf("want *abacus.Error, got %v (events %d)", err, len(evs))
			}
			if evs != nil {
				t.Errorf("events returned with an error")
			}
			if e.Kind != tt.kind || e.Code != tt.code {
				t.Errorf("got %s/%s, want %s/%s: %v", e.Kind, e.Code, tt.kind, tt.code, e)
			}
			if !strings.Contains(e.Message, tt.msg) {
				t.Errorf("message %q lacks %q", e.Message, tt.msg)
			}
			if tt.fields != nil {
				var got []string
				for _, f := range e.Fields {
					got = append(got, itoa(*f.Index)+":"+f.Field)
				}
				if strings.Join(got, ",") != strings.Join(tt.fields, ",") {
					t.Errorf("fields = %v, want %v (%+v)", got, tt.fields, e.Fields)
				}
			}
		})
	}
}

func TestDecodeEventsLimits(t *testing.T) {
	t.Parallel()
	batch := "[" + strings.TrimSuffix(strings.Repeat(goodEvent+",", 3), ",") + "]"
	big := strings.Replace(goodEvent, `"tokens":12`, `"pad":"`+strings.Repeat("x", 300)+`"`, 1)
	tests := []struct {
		name   string
		body   string
		limits Limits
		code   string
	}{
		{"body", batch, Limits{MaxBatchBytes: 100}, CodePayloadTooLarge},
		{"count", batch, Limits{MaxBatchEvents: 2}, CodeBatchTooLarge},
		{"event", "[" + goodEvent + "," + big + "]", Limits{MaxEventBytes: 300}, CodeEventTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeEvents("application/json", []byte(tt.body), testNow, tt.limits)
			e, ok := abacus.AsError(err)
			if !ok || e.Kind != abacus.KindTooLarge || e.Code != tt.code {
				t.Fatalf("got %v, want too_large/%s", err, tt.code)
			}
		})
	}
	if _, err := DecodeEvents("application/json", []byte(batch), testNow, Limits{MaxBatchEvents: 3}); err != nil {
		t.Errorf("exactly at the limit: %v", err)
	}
}

func TestValidateAndDedup(t *testing.T) {
	t.Parallel()
	good := Event{ID: "a", Source: "s", SpecVersion: "1.0", Type: "t", Subject: "x", Time: testNow, Data: []byte(`{"a":1}`)}
	bad := good
	bad.Data = []byte(`{"a":}`)
	bad.SpecVersion = ""
	err := Validate([]Event{good, bad}, testNow, Limits{})
	e, ok := abacus.AsError(err)
	if !ok || len(e.Fields) != 2 || *e.Fields[0].Index != 1 || e.Fields[0].Field != "specversion" || e.Fields[1].Field != "data" {
		t.Fatalf("Validate = %#v", err)
	}
	if err := Validate([]Event{good, good}, testNow, Limits{}); err != nil {
		t.Errorf("duplicates must not be an error: %v", err)
	}
	other := good
	other.ID = "b"
	kept, dups := DedupBatch([]Event{good, other, good, other, good})
	if len(kept) != 2 || kept[0].ID != "a" || kept[1].ID != "b" || len(dups) != 3 || dups[0] != 2 || dups[2] != 4 {
		t.Errorf("DedupBatch = %v %v", kept, dups)
	}
}

func FuzzDecodeEvents(f *testing.F) {
	f.Add("application/json", []byte(goodEvent))
	f.Add("application/json", []byte("["+goodEvent+","+goodEvent+"]"))
	f.Add("application/cloudevents+json", []byte(`{"id":1,"data":[{"a":"\ud800"}]}`))
	f.Add("application/json", []byte(`[{"data":{"a":[[[[[]]]]]}}, 1, "x"]`))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		evs, err := DecodeEvents(ct, body, testNow, Limits{MaxBatchEvents: 50})
		if err != nil {
			if _, ok := abacus.AsError(err); !ok {
				t.Fatalf("error is not *abacus.Error: %v", err)
			}
			return
		}
		for i := range evs {
			evs[i].TenantID = "t"
		}
		if err := Validate(evs, testNow, Limits{}); err != nil {
			t.Fatalf("decoded events fail Validate: %v", err)
		}
		back, err := DecodeBatch(EncodeBatch(evs))
		if err != nil || len(back) != len(evs) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func timeMinutes(n int) time.Duration { return time.Duration(n) * time.Minute }
