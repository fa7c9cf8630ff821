// Package heapfloor keeps the Go garbage collector from running while the
// heap is small. With Go's default (GOGC=100) a cycle starts when the heap
// reaches twice what the last cycle left live. A server whose live heap is
// a few MiB but which allocates tens of MiB per second under load (request
// structs, headers, contexts) then runs ten or more cycles a second, and
// each cycle's mark phase slows every request running beside it: on a
// 2-core machine that is most of the tail latency of a cheap request.
//
// Start sets the GC percentage after every cycle so the next one starts
// at the floor or at twice the live heap, whichever is larger: the floor
// bounds the garbage a small heap may carry, and above the floor the
// collector behaves as with GOGC=100. A memory limit (GOMEMLIMIT) still
// applies on top.
package heapfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// MaxPercent caps the GC percentage Start sets: with a live heap under
// floor/100 the next cycle starts below the floor rather than never.
const MaxPercent = 10_000

// minHeap is the runtime's minimum heap goal at GOGC=100.
const minHeap = 4 << 20

var mu sync.Mutex // one floor per process: Start and stop may race

// Start keeps the next GC cycle from starting below floor bytes of heap
// until the returned stop is called, which restores the percentage that
// was set before. floor <= 0 does nothing. The GC percentage is process
// wide: call Start once per process (abacus serve), not per component.
func Start(floor int64) (stop func()) {
	if floor <= 0 {
		return func() {}
	}
	mu.Lock()
	defer mu.Unlock()
	t := &tuner{floor: uint64(floor), base: debug.SetGCPercent(100)}
	debug.SetGCPercent(t.base)
	t.sample = []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	t.adjust()
	t.arm()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		if !t.stopped {
			t.stopped = true
			debug.SetGCPercent(t.base)
		}
	}
}

type tuner struct {
	floor   uint64
	base    int // the percentage set before Start (GOGC's, usually 100)
	sample  []metrics.Sample
	percent int
	stopped bool // under mu
}

type sentinel struct{ _ *tuner }

// arm runs adjust after the next GC cycle: the cleanup of an object
// nothing references runs once a cycle has found it unreachable.
func (t *tuner) arm() {
	sentinel := &sentinel{} // holds a pointer, so never tiny-allocated beside other objects
	runtime.AddCleanup(sentinel, func(t *tuner) {
		mu.Lock()
		defer mu.Unlock()
		if t.stopped {
			return
		}
		t.adjust()
		t.arm()
	}, t)
}

// adjust sets the percentage from the live heap the last cycle left.
func (t *tuner) adjust() {
	metrics.Read(t.sample)
	var v [3]uint64
	for i, s := range t.sample {
		if s.Value.Kind() == metrics.KindUint64 {
			v[i] = s.Value.Uint64()
		}
	}
	p := Percent(t.floor, v[0], v[1]+v[2], t.base)
	if p != t.percent {
		t.percent = p
		debug.SetGCPercent(p)
	}
}

// Percent is the GC percentage that starts the next cycle at floor bytes
// of heap when live bytes of heap are live and roots bytes of stacks and
// globals are scanned, but never below base (the percentage the process
// would use without a floor) nor above MaxPercent. Go starts the next
// cycle at live + (live + roots)·percent/100.
func Percent(floor, live, roots uint64, base int) int {
	if base < 0 { // GC turned off (GOGC=off): leave it off
		return base
	}
	if live >= floor {
		return base
	}
	// Go's minimum heap goal, 4 MiB at GOGC=100, scales with the
	// percentage: above floor·100/4 MiB it alone would pass the floor.
	p := min(floor*100/minHeap, MaxPercent)
	if scanned := live + roots; scanned > 0 {
		p = min(p, (floor-live)*100/scanned)
	}
	return max(base, int(p))
}
