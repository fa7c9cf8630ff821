package graph

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func cus(id string) Entity { return Entity{Customer, id} }
func dev(id string) Entity { return Entity{Device, id} }

func TestRingSharingDevicesCountsTheFraudster(t *testing.T) {
	g := New(Options{})
	// c0 - d0 - c1 - d1 - c2 - d2 - c3 ; c9 elsewhere
	for i := range 3 {
		g.Link(t0, cus(fmt.Sprint("c", i)), dev(fmt.Sprint("d", i)))
		g.Link(t0, cus(fmt.Sprint("c", i+1)), dev(fmt.Sprint("d", i)))
	}
	g.Link(t0, cus("c9"), dev("d9"), Entity{Email, "e9"})
	g.SetLabel("c0", Fraud)

	got := g.Features(cus("c3"), dev("d-new"))
	want := Features{LinkedAccounts: 3, LinkedLabelledFraud: 1, ComponentSize: 8}
	if got != want {
		t.Fatalf("c3: %+v, want %+v", got, want)
	}
	// The fraudster itself: its own label does not count.
	if got := g.Features(cus("c0")); got.LinkedLabelledFraud != 0 || got.LinkedAccounts != 3 {
		t.Fatalf("c0: %+v", got)
	}
	// A new customer on a ring device: linked as if the event were stored,
	// and Features changed nothing.
	if got := g.Features(cus("new"), dev("d2")); got != (Features{LinkedAccounts: 4, LinkedLabelledFraud: 1, ComponentSize: 8}) {
		t.Fatalf("new on d2: %+v", got)
	}
	if got := g.Features(cus("new")); got != (Features{ComponentSize: 1}) {
		t.Fatalf("Features changed the graph: %+v", got)
	}
	// Joining two components through one event counts both.
	if got := g.Features(cus("c9"), dev("d1")); got != (Features{LinkedAccounts: 4, LinkedLabelledFraud: 1, ComponentSize: 10}) {
		t.Fatalf("bridge: %+v", got)
	}
	// Relabelling moves the count.
	g.SetLabel("c0", Legitimate)
	if got := g.Features(cus("c3")); got.LinkedLabelledFraud != 0 {
		t.Fatalf("after legitimate: %+v", got)
	}
	if g.LabelOf("c0") != Legitimate || g.LabelOf("nobody") != Unlabelled {
		t.Fatal("LabelOf")
	}
}

func TestEmptyAndDuplicateEntitiesAreIgnored(t *testing.T) {
	g := New(Options{})
	g.Link(t0, cus("a"), dev(""), cus("a"), Entity{IP, "1.2.3.4"}, Entity{Kind(200), "x"})
	s := g.Stats()
	if s.Nodes != 2 || s.Edges != 1 {
		t.Fatalf("stats %+v", s)
	}
	g.Link(t0.Add(time.Hour), Entity{IP, "1.2.3.4"}, cus("a"))
	if s := g.Stats(); s.Edges != 1 {
		t.Fatalf("a repeated link added an edge: %+v", s)
	}
	n, ok := g.Neighbourhood(cus("a"), 1, 10)
	if !ok || len(n.Edges) != 1 || !n.Edges[0].LastSeen.Equal(t0.Add(time.Hour)) {
		t.Fatalf("last seen not refreshed: %+v", n)
	}
}

// reference is the obvious graph: an edge set, components by BFS.
type reference struct {
	adj    map[Entity]map[Entity]uint32
	labels map[string]Label
}

func (r *reference) link(at uint32, ents []Entity) {
	ents = normalise(ents)
	for _, e := range ents {
		if r.adj[e] == nil {
			r.adj[e] = map[Entity]uint32{}
		}
	}
	for _, e := range ents[1:] {
		a, b := ents[0], e
		r.adj[a][b] = max(r.adj[a][b], at)
		r.adj[b][a] = max(r.adj[b][a], at)
	}
}

func (r *reference) component(e Entity) map[Entity]bool {
	comp := map[Entity]bool{e: true}
	queue := []Entity{e}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		for v := range r.adj[u] {
			if !comp[v] {
				comp[v] = true
				queue = append(queue, v)
			}
		}
	}
	return comp
}

func (r *reference) features(ents []Entity) Features {
	ents = normalise(ents)
	all := map[Entity]bool{}
	for _, e := range ents {
		for v := range r.component(e) {
			all[v] = true
		}
	}
	own := map[Entity]bool{}
	for _, e := range ents {
		if e.Kind == Customer {
			own[e] = true
		}
	}
	var f Features
	f.ComponentSize = len(all)
	for v := range all {
		if v.Kind == Customer && !own[v] {
			f.LinkedAccounts++
			if r.labels[v.Key] == Fraud {
				f.LinkedLabelledFraud++
			}
		}
	}
	return f
}

func (r *reference) rebuild(cut uint32) {
	for u, vs := range r.adj {
		for v, at := range vs {
			if at < cut {
				delete(vs, v)
			}
		}
		if len(vs) == 0 && !(u.Kind == Customer && r.labels[u.Key] != Unlabelled) {
			delete(r.adj, u)
		}
	}
	for c, l := range r.labels {
		if l != Unlabelled && r.adj[cus(c)] == nil {
			r.adj[cus(c)] = map[Entity]uint32{}
		}
	}
}

func randomEntity(rng *rand.Rand) Entity {
	k := Kind(rng.IntN(int(numKinds)))
	return Entity{k, fmt.Sprint(k, rng.IntN(60))}
}

// TestAgreesWithAReferenceGraph drives random links, labels and rebuilds
// through Graph and through the reference and compares every answer.
func TestAgreesWithAReferenceGraph(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		g := New(Options{})
		ref := &reference{adj: map[Entity]map[Entity]uint32{}, labels: map[string]Label{}}
		for step := range 600 {
			at := uint32(step)
			switch x := rng.IntN(100); {
			case x < 55:
				ents := make([]Entity, 1+rng.IntN(4))
				for i := range ents {
					ents[i] = randomEntity(rng)
				}
				g.Link(time.Unix(int64(at), 0), ents...)
				ref.link(at, ents)
			case x < 70: // several links at once, in order
				links := make([]Links, 1+rng.IntN(4))
				for i := range links {
					ents := make([]Entity, rng.IntN(5))
					for j := range ents {
						ents[j] = randomEntity(rng)
					}
					links[i] = Links{At: time.Unix(int64(at)+int64(rng.IntN(3)), 0), Entities: ents}
				}
				g.LinkAll(links)
				for _, l := range links {
					if len(l.Entities) > 0 {
						ref.link(uint32(l.At.Unix()), l.Entities)
					}
				}
			case x < 85:
				c := fmt.Sprint(Customer, rng.IntN(60))
				l := Label(rng.IntN(3))
				g.SetLabel(c, l)
				if ref.adj[cus(c)] == nil {
					ref.adj[cus(c)] = map[Entity]uint32{}
				}
				ref.labels[c] = l
			case x < 88:
				cut := uint32(rng.IntN(step + 1))
				g.Rebuild(time.Unix(int64(cut), 0))
				ref.rebuild(cut)
			default:
				ents := make([]Entity, 1+rng.IntN(3))
				for i := range ents {
					ents[i] = randomEntity(rng)
				}
				if got, want := g.Features(ents...), ref.features(ents); got != want {
					t.Fatalf("seed %d step %d: features(%v) = %+v, want %+v", seed, step, ents, got, want)
				}
			}
		}
		edges := 0
		for _, vs := range ref.adj {
			edges += len(vs)
		}
		if s := g.Stats(); s.Edges != edges/2 {
			t.Fatalf("seed %d: %d edges, reference %d", seed, s.Edges, edges/2)
		}
	}
}

func TestNeighbourhoodHopsAndCap(t *testing.T) {
	g := New(Options{})
	// a chain c0 - d0 - c1 - d1 - c2 - d2 - c3, and a star of 10 cards on c0
	for i := range 3 {
		g.Link(t0, cus(fmt.Sprint("c", i)), dev(fmt.Sprint("d", i)))
		g.Link(t0, cus(fmt.Sprint("c", i+1)), dev(fmt.Sprint("d", i)))
	}
	for i := range 10 {
		g.Link(t0, cus("c0"), Entity{Card, fmt.Sprint("k", i)})
	}
	g.SetLabel("c1", Fraud)
	n, ok := g.Neighbourhood(cus("c1"), 2, 100)
	if !ok || n.Truncated {
		t.Fatal(ok, n.Truncated)
	}
	hops := map[string]int{}
	for _, v := range n.Nodes {
		hops[v.Key] = v.Hops
	}
	want := map[string]int{"c1": 0, "d0": 1, "d1": 1, "c0": 2, "c2": 2}
	if fmt.Sprint(hops) != fmt.Sprint(want) {
		t.Fatalf("2 hops from c1: %v, want %v", hops, want)
	}
	if n.Nodes[0].Label != Fraud || n.Nodes[0].Kind != Customer {
		t.Fatalf("start node %+v", n.Nodes[0])
	}
	if len(n.Edges) != 4 {
		t.Fatalf("edges %+v", n.Edges)
	}
	for _, e := range n.Edges {
		a, b := n.Nodes[e.From], n.Nodes[e.To]
		if a.Kind == b.Kind || (a.Hops-b.Hops)*(a.Hops-b.Hops) != 1 {
			t.Fatalf("edge %s-%s", a.Key, b.Key)
		}
	}
	n, _ = g.Neighbourhood(cus("c0"), 5, 6)
	if !n.Truncated || len(n.Nodes) != 6 {
		t.Fatalf("cap: %d nodes, truncated %v", len(n.Nodes), n.Truncated)
	}
	if _, ok := g.Neighbourhood(cus("nobody"), 2, 10); ok {
		t.Fatal("unknown node found")
	}
}

func TestBudgetDropsTheOldestEdgesAtRebuild(t *testing.T) {
	g := New(Options{MaxEdges: 80})
	for i := range 100 { // 100 edges, one per second
		g.Link(t0.Add(time.Duration(i)*time.Second), cus(fmt.Sprint("c", i)), dev(fmt.Sprint("d", i/2)))
	}
	g.SetLabel("c0", Fraud)
	if !g.NeedsRebuild() {
		t.Fatal("budget exceeded but no rebuild needed")
	}
	if dropped := g.Rebuild(time.Time{}); dropped != 30 {
		t.Fatalf("dropped %d, want 30 (kept 80*7/8)", dropped)
	}
	s := g.Stats()
	// kept: the edges of c30..c99; c0 stays, alone, for its label.
	if s.Edges != 70 || s.Nodes != 70+35+1 || g.NeedsRebuild() {
		t.Fatalf("after rebuild %+v", s)
	}
	if g.Features(cus("c29")).ComponentSize != 1 || g.Features(cus("c31")).ComponentSize != 3 {
		t.Fatal("wrong edges kept")
	}
	if g.LabelOf("c0") != Fraud {
		t.Fatal("label lost in rebuild")
	}
	// Expiry by cut-off.
	g.Rebuild(t0.Add(90 * time.Second))
	if s := g.Stats(); s.Edges != 10 {
		t.Fatalf("after cut-off %+v", s)
	}
}

func TestWritesDuringARebuildAreKept(t *testing.T) {
	g := New(Options{})
	g.Link(t0, cus("a"), dev("d"))
	g.midRebuild = func() {
		// readers see the old graph; writers queue
		g.LinkAll([]Links{{At: t0, Entities: []Entity{cus("b"), dev("d")}}, {At: t0, Entities: []Entity{cus("c"), dev("e")}}})
		g.SetLabel("a", Fraud)
		if f := g.Features(cus("b")); f.LinkedAccounts != 0 {
			t.Errorf("queued link visible before the swap: %+v", f)
		}
	}
	g.Rebuild(time.Time{})
	if f := g.Features(cus("b")); f != (Features{LinkedAccounts: 1, LinkedLabelledFraud: 1, ComponentSize: 3}) {
		t.Fatalf("after rebuild %+v", f)
	}
	if f := g.Features(cus("c")); f != (Features{ComponentSize: 2}) {
		t.Fatalf("the second queued link, after rebuild: %+v", f)
	}
}

func TestConcurrentReadersAndWriters(t *testing.T) {
	gs := NewGraphs(Options{MaxEdges: 500})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			g := gs.Tenant(fmt.Sprint("ten", w%2))
			for i := range 2000 {
				g.Link(t0.Add(time.Duration(i)*time.Second), cus(fmt.Sprint("c", i%300)), dev(fmt.Sprint("d", (i*7)%200)))
				g.Features(cus(fmt.Sprint("c", i%50)))
				if i%500 == 0 {
					gs.RebuildDue(time.Time{}, false)
				}
			}
		})
	}
	wg.Wait()
	if got := gs.Tenants(); len(got) != 2 {
		t.Fatal(got)
	}
	for _, ten := range gs.Tenants() {
		g := gs.Lookup(ten)
		g.Rebuild(time.Time{})
		if s := g.Stats(); s.Edges > 500 {
			t.Fatalf("%s over budget after rebuild: %+v", ten, s)
		}
	}
	if gs.Lookup("other") != nil {
		t.Fatal("Lookup created a graph")
	}
}

// The node and edge tables grow on a few slots per insert: every node
// and edge is found while a table grows (old and new slots both read)
// and after, and absent ones are not, over several growths of each.
func TestTablesFindEverythingWhileGrowing(t *testing.T) {
	t.Parallel()
	c := newCore(0, 0)
	rng := rand.New(rand.NewPCG(5, 6))
	sawGrowing := [2]bool{}
	var nodes []int32
	for i := range 40_000 {
		a := c.intern(Device, fmt.Sprint("d", i))
		b := c.intern(Card, fmt.Sprint("k", i/2)) // every card twice: found, not added
		nodes = append(nodes, a)
		key := uint64(min(a, b))<<32 | uint64(max(a, b))
		if _, ok := c.pairs.get(key); !ok {
			c.pairs.put(key, int32(i))
		}
		sawGrowing[0] = sawGrowing[0] || c.index.old != nil
		sawGrowing[1] = sawGrowing[1] || c.pairs.old != nil
		for range 3 { // spot checks, now and then of everything below
			j := rng.IntN(i + 1)
			if n := c.lookup(Device, fmt.Sprint("d", j)); n != nodes[j] {
				t.Fatalf("after %d inserts device %d is node %d, want %d (growing: %v)", i, j, n, nodes[j], c.index.old != nil)
			}
			if n := c.lookup(Card, fmt.Sprint("k", j/2)); n < 0 {
				t.Fatalf("after %d inserts card %d is missing", i, j/2)
			}
		}
		if c.lookup(Device, fmt.Sprint("d", i+1)) != -1 || c.lookup(Phone, fmt.Sprint("d", i)) != -1 {
			t.Fatalf("after %d inserts an absent node is found", i)
		}
	}
	if !sawGrowing[0] || !sawGrowing[1] {
		t.Fatalf("the tables never grew on the way (nodes %v, edges %v)", sawGrowing[0], sawGrowing[1])
	}
	for j, want := range nodes {
		if n := c.lookup(Device, fmt.Sprint("d", j)); n != want {
			t.Fatalf("device %d is node %d, want %d", j, n, want)
		}
		b := c.lookup(Card, fmt.Sprint("k", j/2))
		key := uint64(min(want, b))<<32 | uint64(max(want, b))
		if v, ok := c.pairs.get(key); !ok || v != int32(j) {
			t.Fatalf("edge of device %d: %d, %v", j, v, ok)
		}
	}
	if c.pairs.n != len(nodes) || c.index.n != c.nodeCount() {
		t.Fatalf("counts: %d edges for %d devices, %d index entries for %d nodes", c.pairs.n, len(nodes), c.index.n, c.nodeCount())
	}
}
