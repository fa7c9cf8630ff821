package risk

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/abacusbilling/abacus"
)

// The fast path accepts only what the built-in schema accepts: seeded
// random events, valid and broken, each field drawn from good and bad
// values; whatever quickValid takes, the schema must take too.
func TestQuickValidImpliesSchema(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(18, 7))
	pick := func(vs ...any) any { // mostly the good first value
		if r.IntN(10) < 7 {
			return vs[0]
		}
		return vs[r.IntN(len(vs))]
	}
	fields := map[string]func() any{
		"type": func() any {
			return pick("login", "order", "payment", "login", "registration", "refund", "dispute", "custom:x.y", "custom:", "Order", 7)
		},
		"time": func() any {
			return pick("2026-11-02T09:30:00Z", "2026-11-02T09:30:00.123456+01:00", "2026-11-02 09:30:00", "2026-13-02T09:30:00Z", "yesterday")
		},
		"customer_id": func() any { return pick("c1", "", 5, string(bytes.Repeat([]byte("x"), 256)), "é") },
		"end_user_id": func() any { return pick("eu_1", "", nil) },
		"device_id":   func() any { return pick("d", "", true) },
		"ip": func() any {
			return pick("203.0.113.7", "2001:db8::1", "300.1.1.1", "01.2.3.4", "::ffff:1.2.3.4", "fe80::1%eth0", "x")
		},
		"email": func() any {
			return pick("ana@example.com", "a.b+c@mail.example.co", "ana@", "@x.com", ".a@x.com", "a..b@x.com", "ana@localhost", "ana@ex_ample.com")
		},
		"phone":      func() any { return pick("+49 30 1234567", "12", "phone", "+1 (555) 010-9999") },
		"card_bin":   func() any { return pick("424242", "4242", "42424242", "abcdef") },
		"card_last4": func() any { return pick("4242", "42", "4x42") },
		"amount":     func() any { return pick("249.00", "0", "1.1234567", "-5", "1e3", 12.5, "12.") },
		"currency":   func() any { return pick("EUR", "eur", "EURO") },
		"shipping_address": func() any {
			return pick(map[string]any{"country": "DE", "city": "Berlin"}, map[string]any{"country": "Germany"}, map[string]any{"planet": "Mars"}, "1 Main St")
		},
		"properties": func() any {
			return pick(map[string]any{"status": "failed"}, map[string]any{"status": "lost"}, map[string]any{"n": 1}, []any{1})
		},
		"colour": func() any { return "red" },
	}
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	p := parser{hash: newHasher(bytes.Repeat([]byte{1}, 32)), clock: abacus.NewFakeClock(time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC))}
	quick, nTyped := 0, 0
	for range 8_000 {
		m := map[string]any{}
		for _, k := range names {
			if k == "colour" && r.IntN(20) != 0 || r.IntN(3) == 0 && k != "type" {
				continue
			}
			if v := fields[k](); v != nil {
				m[k] = v
			}
		}
		b, _ := json.Marshal(m)
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		fast, _, typed := p.parseFast("ten_q", b, noSchema)
		typed = typed && plainJSON(b)
		if typed {
			nTyped++
		}
		if typed && !quickValid(inst.(map[string]any)) {
			t.Fatalf("the typed decode took %s, quickValid does not", b)
		}
		if !quickValid(inst.(map[string]any)) {
			continue
		}
		quick++
		if err := builtinSchema.Validate(inst); err != nil {
			t.Fatalf("quickValid took %s, the schema refuses it: %v", b, err)
		}
		// Both paths read a valid event the same way.
		slow, _, err := p.Parse("ten_q", b, map[string]*jsonschema.Schema{"x": nil})
		if plainJSON(b) && err == nil && !typed || typed && (err != nil || !sameEvents(fast, slow)) {
			t.Fatalf("%s: typed decode %v %s, schema path %v %s", b, typed, eventsJSON(fast), err, eventsJSON(slow))
		}
	}
	if quick < 100 || nTyped < quick/2 {
		t.Fatalf("of 8,000 events, only %d passed quickValid and %d the typed decode", quick, nTyped)
	}
}

// What the typed decode might read differently is left to the schema
// path, which refuses it or reads it as the schema says.
func TestTypedDecodeLeavesDoubtToTheSchema(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`{"type":"login","customer_id":"a","customer_id":"b"}`,
		`{"Type":"login","customer_id":"a"}`,
		`{"type":"login","customer_id":"a","\u0074ype":"order"}`,
		`{"type":"login","customer_id":"a","device_id":null}`,
		`{"type":"login","customer_id":"a","device_id":""}`,
		`{"type":"login","customer_id":"a","ſhipping_address":{"country":"DE"}}`,
		`{"type":"login","customer_id":"a","properties":{"n":1,"n":2}}`,
		"{\"type\":\"login\",\"customer_id\":\"a\xff\"}",
	} {
		if plainJSON([]byte(body)) {
			t.Errorf("plainJSON(%s) = true", body)
		}
	}
	p := parser{hash: newHasher(bytes.Repeat([]byte{1}, 32)), clock: abacus.SystemClock{}}
	for _, body := range []string{
		`{"type":"login","customer_id":"a","colour":"red"}`,
		`{"type":"order","customer_id":"a","amount":"5"}`,
		`{"type":"login","customer_id":"a","amount":5}`,
		`[{"type":"login","customer_id":"a"},{"type":"login","customer_id":"a","colour":"red"}]`,
		`{"type":"login","customer_id":"a","shipping_address":{"country":"DE","planet":"mars"}}`,
		`{"type":"login","customer_id":"a"} x`,
		`{"type":"login","customer_id":"a"} {}`,
		`{"type":"login","customer_id":"a","time":"2000-01-01T00:00:00Z"}`,
	} {
		if _, _, ok := p.parseFast("ten_q", []byte(body), noSchema); ok {
			t.Errorf("the typed decode took %s", body)
		}
	}
	if _, _, ok := p.parseFast("ten_q", []byte(`{"type":"login","customer_id":"a"}`), func(string) bool { return true }); ok {
		t.Error("the typed decode took an event a tenant schema covers")
	}
}

func noSchema(string) bool { return false }

func sameEvents(a, b []*Event) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := *a[i], *b[i]
		x.ID, y.ID = "", ""
		if eventsJSON([]*Event{&x}) != eventsJSON([]*Event{&y}) || x.amountMicros != y.amountMicros {
			return false
		}
	}
	return true
}

func eventsJSON(evs []*Event) string {
	b, _ := json.Marshal(evs)
	return string(b)
}
