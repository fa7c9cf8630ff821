package graph

import (
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Kind is an entity's type. The order matters: an event's entities are
// linked to the first of them in this order (its customer, else its end
// user, else its device, …), a star that keeps components exact with one
// edge per extra entity instead of one per pair.
type Kind uint8

const (
	Customer Kind = iota
	EndUser
	Device
	Card
	Email
	Phone
	IP
	Address
	numKinds
)

var kindNames = [numKinds]string{"customer", "end_user", "device", "card", "email", "phone", "ip", "address"}

// String is the kind's name in the API ("customer", "end_user", "device",
// "card", "email", "phone", "ip", "address").
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind reads a kind's name; ok is false for an unknown one.
func ParseKind(s string) (Kind, bool) {
	for i, n := range kindNames {
		if n == s {
			return Kind(i), true
		}
	}
	return 0, false
}

// Kinds lists every kind's name, in linking order.
func Kinds() []string { return kindNames[:] }

// Label is what staff (or a lost dispute) said of a customer.
type Label uint8

const (
	Unlabelled Label = iota
	Fraud
	Legitimate
)

// String is "", "fraud" or "legitimate".
func (l Label) String() string {
	switch l {
	case Fraud:
		return "fraud"
	case Legitimate:
		return "legitimate"
	}
	return ""
}

// Entity is one node's identity: a kind and the tenant's identifier (for
// personal identifiers, the keyed hash the risk module stores).
type Entity struct {
	Kind Kind
	Key  string
}

// Features are an event's graph variables (graph.* in rules).
type Features struct {
	// LinkedAccounts is the number of customers, other than the event's own,
	// in the components of the event's entities (as if the event were
	// already linked).
	LinkedAccounts int `json:"linked_accounts"`
	// LinkedLabelledFraud is how many of those are labelled fraud (a lost
	// dispute labels fraud).
	LinkedLabelledFraud int `json:"linked_labelled_fraud"`
	// ComponentSize is the number of entities, of every kind, in those
	// components, counting the event's own entities once each.
	ComponentSize int `json:"component_size"`
}

// Options shape every tenant's graph.
type Options struct {
	// MaxEdges is a tenant's edge budget (0: 4,000,000). Past it,
	// NeedsRebuild is true and Rebuild keeps the newest MaxEdges*7/8.
	MaxEdges int
	// MaxDegree caps the entities one entity links (0: 1,000). An entity
	// that reaches it is a hub (a shared NAT address, a popular device):
	// it links nothing more, the graph variables count it as a lone node,
	// walks do not go through it, and the next Rebuild drops its edges, so
	// it joins no components at all.
	MaxDegree int
}

func (o Options) withDefaults() Options {
	if o.MaxEdges <= 0 {
		o.MaxEdges = 4_000_000
	}
	if o.MaxDegree <= 0 {
		o.MaxDegree = 1_000
	}
	return o
}

// Graph is one tenant's link graph; safe for concurrent use. Readers run
// in parallel; writers are serialised.
type Graph struct {
	opts Options

	mu         sync.RWMutex
	c          *core
	rebuilding bool
	pending    []func(*core)

	midRebuild func() // tests: runs while a rebuild builds the new graph
}

// New returns an empty graph.
func New(opts Options) *Graph {
	opts = opts.withDefaults()
	c := newCore(0, 0)
	c.maxDeg = int32(opts.MaxDegree)
	return &Graph{opts: opts, c: c}
}

// Link records that entities appeared together at t: each is a node, and
// each is linked to the first of them in Kind order. Empty keys are
// ignored; an entity named twice counts once. Linking again refreshes the
// edges' last-seen time.
func (g *Graph) Link(t time.Time, entities ...Entity) {
	g.LinkAll([]Links{{At: t, Entities: entities}})
}

// Links are entities that appeared together at At (Link's arguments).
type Links struct {
	At       time.Time
	Entities []Entity
}

// LinkAll is Link for each of links, in order, under one hold of the
// write lock: every decision reads the graph under the read lock, and a
// write lock taken per event made them queue behind each event of a
// group commit in turn (the risk benchmark's most contended lock).
func (g *Graph) LinkAll(links []Links) {
	type link struct {
		at   uint32
		ents []Entity
	}
	todo := make([]link, 0, len(links))
	for _, l := range links {
		if ents := normalise(l.Entities); len(ents) > 0 {
			todo = append(todo, link{seconds(l.At), ents})
		}
	}
	if len(todo) == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, l := range todo {
		if g.rebuilding {
			g.pending = append(g.pending, func(c *core) { c.link(l.at, l.ents) })
			continue
		}
		g.c.link(l.at, l.ents)
	}
}

// SetLabel labels a customer (creating its node if no event named it yet).
func (g *Graph) SetLabel(customer string, l Label) {
	if customer == "" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.rebuilding {
		g.pending = append(g.pending, func(c *core) { c.setLabel(customer, l) })
		return
	}
	g.c.setLabel(customer, l)
}

// LabelOf is a customer's label (Unlabelled when unknown).
func (g *Graph) LabelOf(customer string) Label {
	g.mu.RLock()
	defer g.mu.RUnlock()
	n := g.c.lookup(Customer, customer)
	if n < 0 {
		return Unlabelled
	}
	return g.c.node(n).label
}

// Features answers the graph variables for an event naming entities,
// without changing the graph: the union of the entities' components, as
// if the event were linked, minus the event's own customers.
func (g *Graph) Features(entities ...Entity) Features {
	var buf [8]Entity
	ents := normaliseInto(buf[:0], entities)
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.c.features(ents)
}

// NeedsRebuild reports whether the edge budget is exceeded or a hub
// still has edges.
func (g *Graph) NeedsRebuild() bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.c.edgeCount() > g.opts.MaxEdges || g.c.newHubs > 0
}

// Rebuild replaces the graph by one built from the edges last seen at or
// after cutoff (zero: all), at most the newest MaxEdges*7/8 of them when
// the budget is exceeded (MaxEdges otherwise), and the labels. Nodes left
// with no edge and no label are dropped. Readers go on reading the old
// graph meanwhile; writers queue and are applied to the new one. It
// returns how many edges were dropped.
func (g *Graph) Rebuild(cutoff time.Time) int {
	g.mu.Lock()
	if g.rebuilding {
		g.mu.Unlock()
		return 0
	}
	g.rebuilding = true
	old := g.c
	g.mu.Unlock()

	var cut uint32
	if !cutoff.IsZero() {
		cut = seconds(cutoff)
	}
	limit := g.opts.MaxEdges
	if old.edgeCount() > limit {
		limit = limit / 8 * 7
	}
	if g.midRebuild != nil {
		g.midRebuild()
	}
	fresh, dropped := old.rebuild(cut, limit)

	g.mu.Lock()
	for _, f := range g.pending {
		f(fresh)
	}
	g.pending, g.c, g.rebuilding = nil, fresh, false
	g.mu.Unlock()
	return dropped
}

// Stats is a graph's size.
type Stats struct {
	Nodes      int `json:"nodes"`
	Edges      int `json:"edges"`
	Components int `json:"components"`
	Hubs       int `json:"hubs"`
	// Bytes is the memory its slices and tables hold (capacity, not length).
	Bytes int64 `json:"bytes"`
}

// Stats measures the graph.
func (g *Graph) Stats() Stats {
	g.mu.RLock()
	defer g.mu.RUnlock()
	c := g.c
	comps, hubs := 0, 0
	for n := range int32(c.nodeCount()) {
		nd := c.node(n)
		if nd.parent < 0 {
			comps++
		}
		if nd.hub {
			hubs++
		}
	}
	return Stats{Nodes: c.nodeCount(), Edges: c.edgeCount(), Components: comps, Hubs: hubs, Bytes: c.bytes()}
}

// NodeView is one node of a neighbourhood.
type NodeView struct {
	Kind  Kind   `json:"-"`
	Key   string `json:"-"`
	Label Label  `json:"-"`
	// Hops is the distance from the start node.
	Hops int `json:"hops"`
}

// EdgeView links Nodes[From] and Nodes[To] of a neighbourhood.
type EdgeView struct {
	From, To int
	LastSeen time.Time
}

// Neighbourhood is a node's k-hop neighbourhood, breadth first.
type Neighbourhood struct {
	Nodes []NodeView
	Edges []EdgeView
	// Truncated is true when the node cap stopped the walk before k hops.
	Truncated bool
}

// Neighbourhood walks from e up to hops hops, keeping at most maxNodes
// nodes (nearest first), with every edge between the nodes kept. ok is
// false when e is not in the graph.
func (g *Graph) Neighbourhood(e Entity, hops, maxNodes int) (n Neighbourhood, ok bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	c := g.c
	start := c.lookup(e.Kind, e.Key)
	if start < 0 {
		return Neighbourhood{}, false
	}
	if maxNodes < 1 {
		maxNodes = 1
	}
	pos := map[int32]int{start: 0}
	order := []int32{start}
	dist := []int{0}
walk:
	for i := 0; i < len(order); i++ {
		u := order[i]
		if dist[i] >= hops || i > 0 && c.node(u).hub {
			continue // a hub is shown, not walked through
		}
		for h := c.node(u).head; h >= 0; h = c.next(h) {
			v := c.to(h)
			if _, seen := pos[v]; seen {
				continue
			}
			if len(order) == maxNodes {
				n.Truncated = true
				break walk
			}
			pos[v] = len(order)
			order = append(order, v)
			dist = append(dist, dist[i]+1)
		}
	}
	n.Nodes = make([]NodeView, len(order))
	for i, u := range order {
		nd := c.node(u)
		n.Nodes[i] = NodeView{Kind: nd.kind, Key: c.key(u), Label: nd.label, Hops: dist[i]}
		for h := nd.head; h >= 0; h = c.next(h) {
			j, in := pos[c.to(h)]
			if in && i < j {
				n.Edges = append(n.Edges, EdgeView{From: i, To: j, LastSeen: time.Unix(int64(c.edge(h>>1).seen), 0).UTC()})
			}
		}
	}
	return n, true
}

// normalise drops empty keys and duplicates and sorts by kind (the first
// is the star's centre), keeping the caller's order within a kind.
func normalise(in []Entity) []Entity {
	return normaliseInto(make([]Entity, 0, len(in)), in)
}

func normaliseInto(out []Entity, in []Entity) []Entity {
	for _, e := range in {
		if e.Key == "" || e.Kind >= numKinds || slices.Contains(out, e) {
			continue
		}
		out = append(out, e)
	}
	// insertion sort by kind, stable (a handful of entities)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Kind < out[j-1].Kind; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func seconds(t time.Time) uint32 {
	s := t.Unix()
	if s < 0 {
		return 0
	}
	if s > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(s)
}

// core is the graph's state; see the package doc for the layout.
type core struct {
	seed  maphash.Seed
	keys  arena // the nodes' keys
	index nodeTable
	nodes blocks[node]
	edges blocks[edge]
	pairs edgeTable // ordered node pair → edge

	maxDeg int32
	// newHubs counts hubs that became hubs since the last rebuild (they
	// still have their edges).
	newHubs int
}

// node is one entity: its key, its place in the union-find and its
// adjacency list.
type node struct {
	parent int32  // parent, or -size at a root
	cust   int32  // customers in the component (at its root)
	fraud  int32  // of which labelled fraud (at its root)
	head   int32  // first half-edge, -1 none
	deg    int32  // distinct linked entities
	key    uint32 // the key's offset in the arena
	keyLen uint32
	// hash is the low 32 bits of the key's hash: a growing node table
	// places a node by it (a table has at most 2^32 slots) without
	// reading the key, and a probe reads a key only when it matches.
	hash  uint32
	kind  Kind
	label Label
	hub   bool // reached maxDeg: links nothing more
}

// edge links two nodes; half-edge 2e+s is its side s.
type edge struct {
	to   [2]int32 // half-edge 2e+s: target node
	next [2]int32 // half-edge 2e+s: next half-edge from the same node
	seen uint32   // last seen, unix seconds
}

func newCore(nodes, edges int) *core {
	return &core{
		seed:   maphash.MakeSeed(),
		keys:   newArena(nodes * 24),
		index:  newNodeTable(nodes),
		nodes:  newBlocks[node](nodes),
		edges:  newBlocks[edge](edges),
		pairs:  newEdgeTable(edges),
		maxDeg: 1_000,
	}
}

func (c *core) node(n int32) *node { return c.nodes.at(n) }
func (c *core) edge(e int32) *edge { return c.edges.at(e) }

// to and next read half-edge h.
func (c *core) to(h int32) int32   { return c.edges.at(h >> 1).to[h&1] }
func (c *core) next(h int32) int32 { return c.edges.at(h >> 1).next[h&1] }

func (c *core) nodeCount() int { return c.nodes.len() }
func (c *core) edgeCount() int { return c.edges.len() }

func (c *core) bytes() int64 {
	return c.keys.bytes() + 4*int64(len(c.index.slots)+len(c.index.old)) +
		int64(unsafe.Sizeof(node{}))*int64(c.nodes.capacity()) + int64(unsafe.Sizeof(edge{}))*int64(c.edges.capacity()) +
		c.pairs.slotBytes()
}

func (c *core) hash(k Kind, key string) uint64 {
	return mix(maphash.String(c.seed, key) + uint64(k))
}

func (c *core) keyBytes(n int32) []byte {
	nd := c.node(n)
	return c.keys.key(nd.key, nd.keyLen)
}

func (c *core) key(n int32) string { return string(c.keyBytes(n)) }

// matches reports whether node n has the key k, key whose hash is h
// (its low 32 bits: another key's rarely match, and then the key's bytes
// are not read).
func (c *core) matches(n int32, h uint32, k Kind, key string) bool {
	nd := c.node(n)
	return nd.hash == h && nd.kind == k && int(nd.keyLen) == len(key) && string(c.keys.key(nd.key, nd.keyLen)) == key
}

// lookup finds a node, -1 when absent.
func (c *core) lookup(k Kind, key string) int32 {
	return c.lookupHashed(c.hash(k, key), k, key)
}

// lookupHashed is lookup with the key's hash h.
func (c *core) lookupHashed(h uint64, k Kind, key string) int32 {
	if n := c.probe(c.index.slots, c.index.mask, h, k, key); n >= 0 || c.index.old == nil {
		return n
	}
	return c.probe(c.index.old, c.index.oldMask, h, k, key)
}

// probe finds a node in slots, -1 when absent.
func (c *core) probe(slots []int32, mask, h uint64, k Kind, key string) int32 {
	for i := h & mask; ; i = (i + 1) & mask {
		n := slots[i] - 1
		if n < 0 || c.matches(n, uint32(h), k, key) {
			return n
		}
	}
}

// intern finds or adds a node.
func (c *core) intern(k Kind, key string) int32 {
	h := c.hash(k, key)
	if n := c.lookupHashed(h, k, key); n >= 0 {
		return n
	}
	var isCust int32
	if k == Customer {
		isCust = 1
	}
	n := c.nodes.add(node{parent: -1, cust: isCust, head: -1, key: c.keys.add(key), keyLen: uint32(len(key)), hash: uint32(h), kind: k})
	t := &c.index
	if t.old == nil && (t.n+1)*2 > len(t.slots) {
		grown := newNodeTable(len(t.slots))
		grown.n, grown.old, grown.oldMask = t.n, t.slots, t.mask
		*t = grown
	}
	t.place(h, n)
	t.n++
	if t.old != nil {
		c.moveSomeNodes()
	}
	return n
}

// moveSomeNodes moves the next moveStride old slots of the node table
// into the new ones (table.go).
func (c *core) moveSomeNodes() {
	t := &c.index
	for end := min(t.moved+moveStride, len(t.old)); t.moved < end; t.moved++ {
		if n := t.old[t.moved] - 1; n >= 0 {
			t.place(uint64(c.node(n).hash), n)
		}
	}
	if t.moved == len(t.old) {
		t.old, t.moved = nil, 0
	}
}

// find is the root of n for readers, who hold only the read lock: it
// halves the path as it goes with atomic loads and stores. That is safe
// among readers because a node's parent only ever moves to one of its own
// ancestors, which is a correct parent too; writers, who change roots, hold
// the write lock and so never run beside it. Without it a component grown by
// many unions and read many times would pay its full depth on every read.
func (c *core) find(n int32) int32 {
	for {
		p := atomic.LoadInt32(&c.node(n).parent)
		if p < 0 {
			return n
		}
		gp := atomic.LoadInt32(&c.node(p).parent)
		if gp < 0 {
			return p
		}
		atomic.StoreInt32(&c.node(n).parent, gp)
		n = gp
	}
}

// findW is find with path halving (writers only).
func (c *core) findW(n int32) int32 {
	for nd := c.node(n); nd.parent >= 0; nd = c.node(n) {
		if gp := c.node(nd.parent).parent; gp >= 0 {
			nd.parent = gp
		}
		n = nd.parent
	}
	return n
}

func (c *core) union(a, b int32) {
	ra, rb := c.findW(a), c.findW(b)
	if ra == rb {
		return
	}
	big, small := c.node(ra), c.node(rb)
	if big.parent > small.parent { // ra smaller (sizes are negative)
		ra, big, small = rb, small, big
	}
	big.parent += small.parent
	small.parent = ra
	big.cust += small.cust
	big.fraud += small.fraud
}

func (c *core) addEdge(a, b int32, at uint32) {
	if a == b {
		return
	}
	if a > b {
		a, b = b, a
	}
	key := uint64(a)<<32 | uint64(b)
	if e, ok := c.pairs.get(key); ok {
		if ed := c.edge(e); at > ed.seen {
			ed.seen = at
		}
		return
	}
	na, nb := c.node(a), c.node(b)
	if na.hub || nb.hub {
		return
	}
	for _, nd := range [2]*node{na, nb} {
		if nd.deg++; nd.deg >= c.maxDeg {
			nd.hub = true
			c.newHubs++
		}
	}
	e := c.edges.add(edge{to: [2]int32{b, a}, next: [2]int32{na.head, nb.head}, seen: at})
	na.head, nb.head = 2*e, 2*e+1
	c.pairs.put(key, e)
	c.union(a, b)
}

func (c *core) link(at uint32, ents []Entity) {
	centre := c.intern(ents[0].Kind, ents[0].Key)
	for _, e := range ents[1:] {
		c.addEdge(centre, c.intern(e.Kind, e.Key), at)
	}
}

func (c *core) setLabel(customer string, l Label) {
	n := c.intern(Customer, customer)
	was := c.node(n).label
	if was == l {
		return
	}
	c.node(n).label = l
	root := c.node(c.findW(n))
	if was == Fraud {
		root.fraud--
	}
	if l == Fraud {
		root.fraud++
	}
}

func (c *core) features(ents []Entity) Features {
	var f Features
	var roots [16]int32
	seen := roots[:0]
	for _, e := range ents {
		n := c.lookup(e.Kind, e.Key)
		if n < 0 || c.node(n).hub {
			f.ComponentSize++ // a new node, alone until linked; or a hub, which links nothing
			continue
		}
		r := c.find(n)
		if e.Kind == Customer {
			f.LinkedAccounts--
			if c.node(n).label == Fraud {
				f.LinkedLabelledFraud--
			}
		}
		if slices.Contains(seen, r) {
			continue
		}
		seen = append(seen, r)
		root := c.node(r)
		f.ComponentSize += int(-root.parent)
		f.LinkedAccounts += int(root.cust)
		f.LinkedLabelledFraud += int(root.fraud)
	}
	return f
}

// rebuild builds a new core from the edges seen at or after cut, the
// newest limit of them, and the labels; it reads c only.
func (c *core) rebuild(cut uint32, limit int) (*core, int) {
	keep := make([]int32, 0, c.edgeCount())
	for e := range int32(c.edgeCount()) {
		if ed := c.edge(e); ed.seen >= cut && !c.node(ed.to[0]).hub && !c.node(ed.to[1]).hub {
			keep = append(keep, e)
		}
	}
	if len(keep) > limit {
		slices.SortStableFunc(keep, func(a, b int32) int {
			sa, sb := c.edge(a).seen, c.edge(b).seen
			switch {
			case sa > sb:
				return -1
			case sa < sb:
				return 1
			}
			return 0
		})
		keep = keep[:limit]
		slices.Sort(keep)
	}
	dropped := c.edgeCount() - len(keep)
	fresh := newCore(min(c.nodeCount(), 2*len(keep)+16), len(keep))
	fresh.maxDeg = c.maxDeg
	for n := range int32(c.nodeCount()) {
		if nd := c.node(n); nd.hub {
			fresh.node(fresh.intern(nd.kind, c.key(n))).hub = true // stays a hub, with no edge
		}
	}
	same := func(n int32) int32 { return fresh.intern(c.node(n).kind, c.key(n)) }
	for _, e := range keep {
		ed := c.edge(e)
		fresh.addEdge(same(ed.to[1]), same(ed.to[0]), ed.seen)
	}
	for n := range int32(c.nodeCount()) {
		if l := c.node(n).label; l != Unlabelled {
			fresh.setLabel(c.key(n), l)
		}
	}
	return fresh, dropped
}
