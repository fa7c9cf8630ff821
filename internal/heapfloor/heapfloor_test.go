package heapfloor_test

import (
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/abacusbilling/abacus/internal/heapfloor"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tt := range []struct {
		floor, live, roots uint64
		base, want         int
	}{
		{64 * mib, 8 * mib, 0, 100, 700},         // next cycle at 8 + 8·7 = 64 MiB
		{64 * mib, 6 * mib, 2 * mib, 100, 725},   // roots count in the goal: 6 + 8·7.25 = 64 MiB
		{64 * mib, 32 * mib, 0, 100, 100},        // twice the live heap is the floor
		{64 * mib, 48 * mib, 1 * mib, 100, 100},  // above half the floor: as without one
		{64 * mib, 200 * mib, 1 * mib, 100, 100}, // far above it
		{64 * mib, 6 * mib, 0, 300, 966},         // a higher GOGC still applies where it is larger
		{64 * mib, 60 * mib, 0, 300, 300},        //
		{64 * mib, 1024, 0, 100, 1600},           // Go's 4 MiB minimum goal ×16 is the floor
		{64 * mib, 0, 0, 100, 1600},              // nothing scanned yet
		{64 * mib, 8 * mib, 0, -1, -1},           // GOGC=off stays off
		{64 * mib, 64*mib - 1, 0, 100, 100},      // the percentage never drops below the base
		{1 << 40, 1 << 30, 1 << 20, 100, 10_000}, // a terabyte floor is capped too
	} {
		if got := heapfloor.Percent(tt.floor, tt.live, tt.roots, tt.base); got != tt.want {
			t.Errorf("Percent(floor %d, live %d, roots %d, base %d) = %d, want %d", tt.floor, tt.live, tt.roots, tt.base, got, tt.want)
		}
	}
}

// churn allocates n bytes of short-lived garbage in small objects, as a
// server's requests do, and returns how many GC cycles ran meanwhile.
func churn(n int) uint32 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.NumGC
	var keep []byte
	for i := 0; i < n/512; i++ {
		keep = make([]byte, 512)
		keep[0] = byte(i)
	}
	runtime.KeepAlive(keep)
	runtime.ReadMemStats(&ms)
	return ms.NumGC - before
}

// With a small live heap, 256 MiB of garbage takes dozens of cycles under
// GOGC=100 and at most a few under a 128 MiB floor; stop restores GOGC.
// Not parallel: the GC percentage is process wide.
func TestFloorSpacesCycles(t *testing.T) {
	const mib = 1 << 20
	runtime.GC()
	without := churn(256 * mib)

	stop := heapfloor.Start(128 * mib)
	runtime.GC() // the first adjustment after a cycle
	with := churn(256 * mib)
	stop()
	stop() // twice is safe

	if without < 10 {
		t.Fatalf("without a floor 256 MiB of garbage took %d cycles; the test needs a small live heap", without)
	}
	// 256 MiB at up to 128 MiB a cycle: at least 2, and a few more when
	// the heap carried garbage or the test binary's live heap grew.
	if with < 1 || with > 4 {
		t.Fatalf("with a 128 MiB floor 256 MiB of garbage took %d cycles (%d without), want 1 to 4", with, without)
	}
	if p := debug.SetGCPercent(100); p != 100 {
		t.Fatalf("after stop the GC percentage is %d, want the 100 from before Start", p)
	}
	t.Logf("GC cycles for 256 MiB of garbage: %d without a floor, %d with a 128 MiB floor", without, with)

	if f := heapfloor.Start(0); f == nil {
		t.Fatal("Start(0) returned no stop function")
	}
	if p := debug.SetGCPercent(100); p != 100 {
		t.Fatalf("Start(0) changed the GC percentage to %d", p)
	}
}
