package subscription

import (
	"testing"
	"time"
)

// The state cache serves a fresh state, then an expired one for a while
// (a background load replaces it), and never one older than twice the ttl.
func TestStateCacheFreshStaleGone(t *testing.T) {
	c := newStateCache(2 * time.Second)
	t0 := time.Now()
	c.put("ten", "cus", &customerState{loaded: t0}, c.generation())
	for _, tc := range []struct {
		after        time.Duration
		found, fresh bool
	}{
		{0, true, true},
		{2 * time.Second, true, true},
		{3 * time.Second, true, false},
		{4 * time.Second, true, false},
		{4*time.Second + time.Millisecond, false, false},
		{-time.Millisecond, false, false}, // from the future: the wall clock stepped back
	} {
		st, fresh := c.get("ten", "cus", t0.Add(tc.after))
		if (st != nil) != tc.found || fresh != tc.fresh {
			t.Errorf("after %v: found %v fresh %v, want %v %v", tc.after, st != nil, fresh, tc.found, tc.fresh)
		}
	}
}

// A load that began before an invalidation is not cached: it may have
// read the state before the change that invalidated it.
func TestStateCacheDropsLoadsOlderThanAnInvalidation(t *testing.T) {
	c := newStateCache(time.Minute)
	now := time.Now()
	gen := c.generation() // a load begins
	c.invalidate("ten", "cus")
	c.put("ten", "cus", &customerState{loaded: now}, gen)
	if st, _ := c.get("ten", "cus", now); st != nil {
		t.Fatal("a state loaded before the invalidation was cached")
	}
	c.put("ten", "cus", &customerState{loaded: now}, c.generation())
	if st, fresh := c.get("ten", "cus", now); st == nil || !fresh {
		t.Fatal("a state loaded after the invalidation was not cached")
	}
}
