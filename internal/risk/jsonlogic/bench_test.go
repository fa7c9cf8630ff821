package jsonlogic

import "testing"

// BenchmarkRule evaluates the account-takeover rule of docs/risk.md on a
// decision's data (compiled once). For comparison, the same rule and data
// through github.com/diegoholiveira/jsonlogic/v3 v3.5.1 ApplyInterface
// (which deep-copies the data and walks the rule's JSON on every call):
// see docs/benchmarks.md.
func BenchmarkRule(b *testing.B) {
	r, err := Compile([]byte(`{"and":[{"==":[{"var":"event.type"},"order"]},{">=":[{"var":"counters.resets_per_customer_1d"},1]},{">=":[{"var":"counters.devices_per_customer_1d"},2]},{">=":[{"var":"event.amount"},500]}]}`), Options{})
	if err != nil {
		b.Fatal(err)
	}
	data := map[string]any{"event": map[string]any{"type": "order", "amount": 900.0, "email_domain": "example.com"},
		"counters": map[string]any{"resets_per_customer_1d": 1.0, "devices_per_customer_1d": 2.0}, "score": 10.0}
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := r.Match(data); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

// TestComparisonsTakeNoArgumentSlice holds the cost of a decision's usual
// rule: comparisons of two arguments evaluate them without a slice each,
// so a rule of four comparisons allocates only for its evaluation state
// and its "in" over a literal array, which is made anew per evaluation as
// JavaScript does (a slice per comparison made it 7).
func TestComparisonsTakeNoArgumentSlice(t *testing.T) {
	r, err := Compile([]byte(`{"and":[{"==":[{"var":"event.type"},"order"]},{">=":[{"var":"counters.resets_per_customer_1d"},1]},{"in":[{"var":"event.email_domain"},["example.com"]]},{"<":[{"var":"event.amount"},{"var":"score"}]}]}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	data := map[string]any{"event": map[string]any{"type": "order", "amount": 9.0, "email_domain": "example.com"},
		"counters": map[string]any{"resets_per_customer_1d": 1.0}, "score": 10.0}
	allocs := testing.AllocsPerRun(100, func() {
		if ok, err := r.Match(data); err != nil || !ok {
			t.Fatal(ok, err)
		}
	})
	if allocs > 3 {
		t.Errorf("a rule of four comparisons allocates %.0f times per evaluation, want at most 3", allocs)
	}
}
