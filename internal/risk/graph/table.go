package graph

// The hash tables grow without stopping the graph: a table past its load
// keeps the slots it grows from beside new ones twice the size and moves
// a few of them (moveStride) on each insert, so lookups read the new
// slots and then, until every old one is moved, the old. Moving every
// entry at once held the write lock, and so every decision, for 205 ms
// at 1M entities and 677 ms at 2M (BenchmarkLinkGrowth; the records and
// keys grow by blocks, blocks.go). Entries never change or
// go (a rebuild starts a new graph), so one moved is the same in both and
// the old slots stay valid to read as they are.

// moveStride is how many old slots an insert moves while a table grows.
// The new slots are twice the old: the move ends after len(old)/4
// inserts, when the new table is at most 3/8 full.
const moveStride = 4

// nodeTable maps a node key to its index: open addressing with linear
// probing over int32 slots holding index+1 (0 empty, so new slots need no
// filling: the allocation's pages are touched as entries move in), keys
// compared in the arena (core hashes and compares them; a node's hash is
// recomputed from its key).
type nodeTable struct {
	slots []int32
	mask  uint64
	n     int // entries, old and new

	old     []int32 // while growing: the slots grown from
	oldMask uint64
	moved   int // old slots moved so far
}

func newNodeTable(capacity int) nodeTable {
	size := 16
	for size < capacity*2 {
		size <<= 1
	}
	return nodeTable{slots: make([]int32, size), mask: uint64(size - 1)}
}

// place puts node n, whose hash is h, in the first free slot of its probe.
func (t *nodeTable) place(h uint64, n int32) {
	i := h & t.mask
	for t.slots[i] != 0 {
		i = (i + 1) & t.mask
	}
	t.slots[i] = n + 1
}

// edgeTable maps an ordered node pair (a<<32|b, a<b) to an edge index,
// open addressing with linear probing; the zero key is free because a<b
// means b>0.
type edgeTable struct {
	keys []uint64
	vals []int32
	mask uint64
	n    int // entries, old and new

	old   *edgeTable // while growing: the table grown from
	moved int        // old slots moved so far
}

func newEdgeTable(capacity int) edgeTable {
	size := 16
	for size < capacity*2 {
		size <<= 1
	}
	return edgeTable{keys: make([]uint64, size), vals: make([]int32, size), mask: uint64(size - 1)}
}

func mix(k uint64) uint64 {
	// splitmix64 finaliser
	k ^= k >> 30
	k *= 0xbf58476d1ce4e5b9
	k ^= k >> 27
	k *= 0x94d049bb133111eb
	k ^= k >> 31
	return k
}

func (t *edgeTable) get(key uint64) (int32, bool) {
	if v, ok := t.probe(key); ok {
		return v, true
	}
	if t.old != nil {
		return t.old.probe(key)
	}
	return 0, false
}

func (t *edgeTable) probe(key uint64) (int32, bool) {
	for i := mix(key) & t.mask; ; i = (i + 1) & t.mask {
		switch t.keys[i] {
		case key:
			return t.vals[i], true
		case 0:
			return 0, false
		}
	}
}

// put stores key → v; the key must be absent.
func (t *edgeTable) put(key uint64, v int32) {
	if t.old == nil && (t.n+1)*4 > len(t.keys)*3 {
		old := *t
		*t = newEdgeTable(len(old.keys))
		t.n, t.old = old.n, &old
	}
	t.place(key, v)
	t.n++
	if t.old != nil {
		t.moveSome()
	}
}

func (t *edgeTable) place(key uint64, v int32) {
	i := mix(key) & t.mask
	for t.keys[i] != 0 {
		i = (i + 1) & t.mask
	}
	t.keys[i], t.vals[i] = key, v
}

// moveSome moves the next moveStride old slots into the new ones.
func (t *edgeTable) moveSome() {
	old := t.old
	for end := min(t.moved+moveStride, len(old.keys)); t.moved < end; t.moved++ {
		if k := old.keys[t.moved]; k != 0 {
			t.place(k, old.vals[t.moved])
		}
	}
	if t.moved == len(old.keys) {
		t.old, t.moved = nil, 0
	}
}

// slotBytes is what the slots take, old ones included.
func (t *edgeTable) slotBytes() int64 {
	n := 12 * int64(len(t.keys))
	if t.old != nil {
		n += 12 * int64(len(t.old.keys))
	}
	return n
}
