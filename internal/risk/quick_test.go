package risk

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The fast path accepts only what the built-in schema accepts: seeded
// random events, valid and broken, each field drawn from good and bad
// values; whatever quickValid takes, the schema must take too.
func TestQuickValidImpliesSchema(t *testing.T) {
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
	quick := 0
	for range 20_000 {
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
		if !quickValid(inst.(map[string]any)) {
			continue
		}
		quick++
		if err := builtinSchema.Validate(inst); err != nil {
			t.Fatalf("quickValid took %s, the schema refuses it: %v", b, err)
		}
	}
	if quick < 200 {
		t.Fatalf("only %d of 20,000 events took the fast path", quick)
	}
}
