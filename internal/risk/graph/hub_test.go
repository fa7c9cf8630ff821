package graph

import (
	"fmt"
	"testing"
)

// A device shared by 100,000 customers (a carrier-grade NAT's address
// would do the same) becomes a hub at MaxDegree: it links nothing more,
// the graph variables count it as one lone node, a walk shows it without
// going through it, and the rebuild drops its edges, so the customers
// behind it are not one component. A fraudster sharing a second, ordinary
// device is still found.
func TestHubStopsLinking(t *testing.T) {
	g := New(Options{MaxDegree: 100})
	for i := range 100_000 {
		g.Link(t0, cus(fmt.Sprint("c", i)), Entity{IP, "nat"})
	}
	g.Link(t0, cus("c1"), dev("shared"))
	g.Link(t0, cus("f"), dev("shared"))
	g.SetLabel("f", Fraud)
	if s := g.Stats(); s.Hubs != 1 || s.Edges != 100+2 {
		t.Fatalf("stats %+v: want 1 hub and only its first 100 edges (plus 2)", s)
	}
	if !g.NeedsRebuild() {
		t.Fatal("a hub with edges should ask for a rebuild")
	}
	// Before the rebuild, c1 is still linked through the hub's first 100
	// edges; the hub itself never widens an event's component.
	if got := g.Features(cus("new"), Entity{IP, "nat"}); got != (Features{ComponentSize: 2}) {
		t.Fatalf("an event on the hub: %+v", got)
	}
	n, ok := g.Neighbourhood(cus("c5"), 4, 500)
	if !ok || len(n.Nodes) != 2 {
		t.Fatalf("walk from c5 went through the hub: %d nodes", len(n.Nodes))
	}
	g.Rebuild(t0.Add(-1))
	if g.NeedsRebuild() {
		t.Fatal("still needs a rebuild")
	}
	if s := g.Stats(); s.Hubs != 1 || s.Edges != 2 {
		t.Fatalf("after the rebuild: %+v", s)
	}
	if got := g.Features(cus("c5")); got != (Features{ComponentSize: 1}) {
		t.Fatalf("c5 after the rebuild: %+v (want alone: the hub joins nothing)", got)
	}
	if got := g.Features(cus("c1")); got != (Features{LinkedAccounts: 1, LinkedLabelledFraud: 1, ComponentSize: 3}) {
		t.Fatalf("c1 after the rebuild: %+v (want linked to f through the shared device)", got)
	}
	// It stays a hub.
	g.Link(t0, cus("c2"), Entity{IP, "nat"})
	if s := g.Stats(); s.Edges != 2 {
		t.Fatalf("the hub linked again: %+v", s)
	}
}
