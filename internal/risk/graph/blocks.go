package graph

// The graph's nodes, edges and key bytes are stored in blocks, not in
// slices grown by append: growing a slice of a million entries copied it
// under the write lock that every decision waits on (BenchmarkLinkGrowth:
// the worst Link 54–97 ms over this session's runs, and copying was half
// of the average Link's time). Past its first block a list allocates one more block and copies
// nothing. The first block grows as a slice, so a small tenant's graph
// stays small.

const (
	blockBits = 16 // 65,536 records a block
	blockLen  = 1 << blockBits
	blockMask = blockLen - 1
)

// blocks is a list of T indexed like a slice (int32 indices).
type blocks[T any] struct {
	b [][]T
	n int
}

func newBlocks[T any](capacity int) blocks[T] {
	return blocks[T]{b: [][]T{make([]T, 0, min(capacity, blockLen))}}
}

func (s *blocks[T]) len() int { return s.n }

// at is the i-th record, to read or change in place.
func (s *blocks[T]) at(i int32) *T { return &s.b[i>>blockBits][i&blockMask] }

// add appends v and returns its index.
func (s *blocks[T]) add(v T) int32 {
	i := s.n
	switch {
	case i < blockLen:
		s.b[0] = append(s.b[0], v)
	case i&blockMask == 0:
		blk := make([]T, blockLen)
		blk[0] = v
		s.b = append(s.b, blk)
	default:
		s.b[i>>blockBits][i&blockMask] = v
	}
	s.n++
	return int32(i)
}

// capacity is the records the blocks hold room for.
func (s *blocks[T]) capacity() int {
	return cap(s.b[0]) + (len(s.b)-1)*blockLen
}

// arenaBlock is the size of a key arena's blocks (and its address unit:
// a key's offset is block<<arenaBits | position, so an arena addresses
// 4,096 blocks, 4 GiB of keys: the edge budget keeps a tenant's graph far
// below that, ~100 MB of keys at the default 4M edges).
const (
	arenaBits  = 20
	arenaBlock = 1 << arenaBits
)

// arena holds the nodes' keys; a key never spans two blocks (a key longer
// than a block gets a block of its own).
type arena struct {
	b [][]byte
}

func newArena(capacity int) arena {
	return arena{b: [][]byte{make([]byte, 0, min(capacity, arenaBlock))}}
}

// add stores key and returns its offset.
func (a *arena) add(key string) uint32 {
	last := len(a.b) - 1
	blk := a.b[last]
	room := arenaBlock // the first block grows as a slice up to a block
	if last > 0 {
		room = cap(blk)
	}
	if len(blk)+len(key) > room {
		a.b = append(a.b, make([]byte, 0, max(arenaBlock, len(key))))
		last++
		blk = a.b[last]
	}
	off := uint32(last)<<arenaBits | uint32(len(blk))
	a.b[last] = append(blk, key...)
	return off
}

// key is the n bytes at off.
func (a *arena) key(off, n uint32) []byte {
	p := off & (arenaBlock - 1)
	return a.b[off>>arenaBits][p : p+n]
}

func (a *arena) bytes() int64 {
	var n int64
	for _, b := range a.b {
		n += int64(cap(b))
	}
	return n
}
