package graph

// nodeTable maps a node key to its index: open addressing with linear
// probing over int32 slots (-1 empty), keys compared in the arena. It never
// deletes (a rebuild starts a new graph).
type nodeTable struct {
	slots []int32
	mask  uint64
	n     int
}

func newNodeTable(capacity int) nodeTable {
	size := 16
	for size < capacity*2 {
		size <<= 1
	}
	t := nodeTable{slots: make([]int32, size), mask: uint64(size - 1)}
	for i := range t.slots {
		t.slots[i] = -1
	}
	return t
}

// edgeTable maps an ordered node pair (a<<32|b, a<b) to an edge index,
// open addressing with linear probing; the zero key is free because a<b
// means b>0.
type edgeTable struct {
	keys []uint64
	vals []int32
	mask uint64
	n    int
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
	if (t.n+1)*4 > len(t.keys)*3 {
		t.grow()
	}
	i := mix(key) & t.mask
	for t.keys[i] != 0 {
		i = (i + 1) & t.mask
	}
	t.keys[i], t.vals[i] = key, v
	t.n++
}

func (t *edgeTable) grow() {
	old := *t
	*t = newEdgeTable(len(old.keys))
	for i, k := range old.keys {
		if k != 0 {
			t.put(k, old.vals[i])
		}
	}
}
