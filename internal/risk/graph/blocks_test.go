package graph

import (
	"fmt"
	"strings"
	"testing"
)

// Records and keys stay where they were put while the lists grow past
// their first block, the arena past its blocks (a key longer than a block
// included), and every index reads its own record.
func TestBlocksAndArenaKeepEverything(t *testing.T) {
	t.Parallel()
	s := newBlocks[edge](10)
	a := newArena(10)
	const n = 3*blockLen + 17
	offs := make([]uint32, n)
	keyOf := func(i int) string {
		if i == 2*blockLen {
			return strings.Repeat("x", arenaBlock+5) // longer than a block
		}
		return fmt.Sprint("key-", i, strings.Repeat("k", i%61))
	}
	for i := range n {
		if got := s.add(edge{seen: uint32(i)}); got != int32(i) {
			t.Fatalf("add %d returned %d", i, got)
		}
		offs[i] = a.add(keyOf(i))
		s.at(int32(i)).to[1] = int32(i) // changed in place
	}
	if s.len() != n || s.capacity() < n || len(a.b) < 3 {
		t.Fatalf("len %d capacity %d arena blocks %d", s.len(), s.capacity(), len(a.b))
	}
	for i := range n {
		if e := s.at(int32(i)); e.seen != uint32(i) || e.to[1] != int32(i) {
			t.Fatalf("record %d reads %+v", i, *e)
		}
		k := keyOf(i)
		if got := string(a.key(offs[i], uint32(len(k)))); got != k {
			t.Fatalf("key %d reads %.40q, want %.40q", i, got, k)
		}
	}
}
