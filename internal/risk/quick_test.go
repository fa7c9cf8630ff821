package risk

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"regexp"
	"strings"
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

// The regular expressions the hand-written quick checks stand for: the
// built-in schema's patterns, and stricter ones than its formats for time
// and e-mail (TestQuickValidImpliesSchema holds those to the schema).
var schemaPatterns = map[string]*regexp.Regexp{
	"type":     regexp.MustCompile(`^(registration|login|order|payment|refund|dispute|custom:[a-z0-9][a-z0-9_.-]{0,63})$`),
	"time":     regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$`),
	"email":    regexp.MustCompile(`^[A-Za-z0-9_%+-]+(\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,63}$`),
	"phone":    regexp.MustCompile(`^\+?[0-9 ()./-]{4,32}$`),
	"card_bin": regexp.MustCompile(`^[0-9]{6,8}$`),
	"last4":    regexp.MustCompile(`^[0-9]{4}$`),
	"amount":   regexp.MustCompile(`^[0-9]{1,15}(\.[0-9]{1,6})?$`),
	"currency": regexp.MustCompile(`^[A-Z]{3}$`),
	"country":  regexp.MustCompile(`^[A-Z]{2}$`),
}

// TestQuickChecksAnswerAsTheirPatterns: each hand-written check accepts
// exactly what its expression accepts, on strings built from the
// characters that matter to it at lengths around its bounds.
func TestQuickChecksAnswerAsTheirPatterns(t *testing.T) {
	t.Parallel()
	checks := map[string]func(string) bool{
		"type":     quickType,
		"time":     isQuickTime,
		"email":    isQuickEmail,
		"phone":    func(s string) bool { return quickString("phone", s) },
		"card_bin": func(s string) bool { return quickString("card_bin", s) },
		"last4":    func(s string) bool { return quickString("card_last4", s) },
		"amount":   func(s string) bool { return quickString("amount", s) },
		"currency": func(s string) bool { return quickString("currency", s) },
		"country":  func(s string) bool { return quickAddressField("country", s) },
	}
	alphabet := map[string]string{
		"type":  "custom:aZ09_.-x",
		"time":  "0123456789-T:.Z+z ",
		"email": "aZ09_%+-.@x-é",
		"phone": "+0123456789 ()./-a",
	}
	seeds := map[string][]string{
		"type":  {"order", "login", "custom:a", "custom:" + strings.Repeat("a", 64), "custom:" + strings.Repeat("a", 65), "custom:_a", "custom:", "Custom:a", "orders"},
		"time":  {"2026-12-07T09:30:00Z", "2026-12-07T09:30:00.123456789Z", "2026-12-07T09:30:00.1234567890Z", "2026-12-07T09:30:00+01:00", "2026-12-07T09:30:00.Z", "2026-12-07T09:30:00", "2026-12-07 09:30:00Z", "2026-12-07T09:30:00-0100"},
		"email": {"ada@example.com", "a.b@c.de", ".a@b.cd", "a.@b.cd", "a..b@c.de", "a@b.c", "a@-b.cd", "a@b-.cd", "a@b.c-d", "a@" + strings.Repeat("b", 63) + ".cd", "a@" + strings.Repeat("b", 64) + ".cd", "a@b." + strings.Repeat("c", 64), "a@@b.cd", "a@b..cd", "a@b.cd.", "a@.b.cd", "a+b%c_d-e@x-y.z.co"},
	}
	rng := rand.New(rand.NewPCG(2026, 12))
	for name, check := range checks {
		pattern := schemaPatterns[name]
		cases := seeds[name]
		chars := alphabet[name]
		if chars == "" {
			chars = "0123456789.AZaz-"
		}
		for range 20000 {
			b := make([]byte, rng.IntN(40))
			for i := range b {
				b[i] = chars[rng.IntN(len(chars))]
			}
			cases = append(cases, string(b))
		}
		for _, s := range seeds[name] { // mutations of the seeds
			for range 200 {
				b := []byte(s)
				if len(b) > 0 {
					b[rng.IntN(len(b))] = chars[rng.IntN(len(chars))]
				}
				cases = append(cases, string(b))
			}
		}
		for _, s := range cases {
			if got, want := check(s), pattern.MatchString(s); got != want {
				t.Errorf("%s check of %q: %v, the pattern says %v", name, s, got, want)
			}
		}
	}
}
