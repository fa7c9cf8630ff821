package risk

import (
	"testing"
	"time"
)

// TestRuleDataIsFreshPerDecision: the maps rules read are reused from
// decision to decision, and a decision never sees the one before's event
// fields, counters or lists.
func TestRuleDataIsFreshPerDecision(t *testing.T) {
	at := time.Date(2026, 12, 7, 9, 30, 0, 0, time.UTC)
	first := &Event{ID: "rev_1", Type: TypeOrder, Time: at, CustomerID: "c1", Email: "h1_x", Amount: "12.50", Properties: map[string]any{"plan": "pro"}}
	first.finish()
	d := newRuleData(first, &Features{Counters: map[string]float64{"a": 3}, Lists: map[string]bool{"vip": true}, Graph: GraphValues{ComponentSize: 4}}, 42)
	if got := lookupPath(d.root, "event.email"); got != "h1_x" {
		t.Fatalf("event.email = %v", got)
	}
	if got := lookupPath(d.root, "event.amount"); got != 12.5 {
		t.Fatalf("event.amount = %v", got)
	}
	d.release()
	second := &Event{ID: "rev_2", Type: TypeLogin, Time: at, EndUserID: "u1"}
	second.finish()
	d = newRuleData(second, &Features{Counters: map[string]float64{"b": 1}, Lists: map[string]bool{}}, 0)
	defer d.release()
	want := map[string]any{"event.email": nil, "event.amount": nil, "event.type": TypeLogin, "event.end_user_id": "u1",
		"event.properties.plan": nil, "counters.a": nil, "counters.b": 1.0, "lists.vip": nil, "graph.component_size": 0.0,
		"score": 0.0, "event.time": "2026-12-07T09:30:00Z"}
	for name, w := range want {
		if got := lookupPath(d.root, name); got != w {
			t.Errorf("%s = %v, want %v", name, got, w)
		}
	}
}

// TestDecideAllocations holds a decision's allocations (10 counters, 20
// rules, no graph, lists or score): the maps rules read are reused, not
// made per decision (83 allocations with five maps made each time, 70
// with them reused).
func TestDecideAllocations(t *testing.T) {
	svc, ctx := benchService(t)
	tc, err := svc.config(ctx, "ten_bench")
	if err != nil {
		t.Fatal(err)
	}
	var evs []*Event
	for i := range 200 {
		e, _, err := svc.parse.Parse("ten_bench", benchEvent(i), nil)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e[0])
	}
	i := 0
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := svc.decide(ctx, tc, evs[i%len(evs)], false); err != nil {
			t.Fatal(err)
		}
		i++
	})
	t.Logf("%.1f allocations per decision", allocs)
	if allocs > 75 {
		t.Errorf("a decision allocates %.0f times, want at most 75", allocs)
	}
}
