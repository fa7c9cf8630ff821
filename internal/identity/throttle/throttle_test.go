package throttle_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/identity/throttle"
)

var t0 = time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)

func newBackoff(t *testing.T, cfg throttle.BackoffConfig) (*throttle.Backoff, *abacus.FakeClock) {
	t.Helper()
	clock := abacus.NewFakeClock(t0)
	b, err := throttle.NewBackoff(cfg, clock)
	if err != nil {
		t.Fatal(err)
	}
	return b, clock
}

func TestBackoffDoublesAfterFreeFailures(t *testing.T) {
	t.Parallel()
	b, _ := newBackoff(t, throttle.BackoffConfig{}) // 5 free, 1 s base, 15 m cap
	// Wait required after the n-th consecutive failure (failures close together).
	want := []time.Duration{
		0, 0, 0, 0, 0, // free
		1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
		32 * time.Second, 64 * time.Second, 128 * time.Second, 256 * time.Second, 512 * time.Second,
		15 * time.Minute, 15 * time.Minute, 15 * time.Minute, // capped, never a lockout
	}
	for n, w := range want {
		b.Fail("acct")
		got, ok := b.Check("acct")
		if w == 0 {
			if !ok {
				t.Fatalf("after failure %d: refused for %s, want allowed", n+1, got)
			}
			continue
		}
		if ok || got != w {
			t.Fatalf("after failure %d: Check = %s, %v; want %s, false", n+1, got, ok, w)
		}
	}
}

func TestBackoffWaitElapsesWithClock(t *testing.T) {
	t.Parallel()
	b, clock := newBackoff(t, throttle.BackoffConfig{Free: 1, Base: time.Second, Max: time.Minute})
	b.Fail("k")
	b.Fail("k") // 1 s wait
	if d, ok := b.Check("k"); ok || d != time.Second {
		t.Fatalf("Check = %s, %v; want 1s, false", d, ok)
	}
	clock.Advance(600 * time.Millisecond)
	if d, ok := b.Check("k"); ok || d != 400*time.Millisecond {
		t.Fatalf("Check = %s, %v; want 400ms, false", d, ok)
	}
	clock.Advance(400 * time.Millisecond)
	if _, ok := b.Check("k"); !ok {
		t.Fatal("still refused after the wait")
	}
	// That Check holds the opening: a parallel attempt must wait the 2 s a
	// failure would bring.
	if d, ok := b.Check("k"); ok || d != 2*time.Second {
		t.Fatalf("second Check in the same opening = %s, %v; want 2s, false", d, ok)
	}
	b.Fail("k")
	if d, ok := b.Check("k"); ok || d != 2*time.Second {
		t.Fatalf("after third failure Check = %s, %v; want 2s, false", d, ok)
	}
}

func TestBackoffSucceedAndForget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		settle  func(b *throttle.Backoff, c *abacus.FakeClock)
		allowed bool
	}{
		{"succeed resets", func(b *throttle.Backoff, _ *abacus.FakeClock) { b.Succeed("k") }, true},
		{"quiet period forgets", func(_ *throttle.Backoff, c *abacus.FakeClock) { c.Advance(time.Hour) }, true},
		{"short quiet keeps count", func(_ *throttle.Backoff, c *abacus.FakeClock) { c.Advance(30 * time.Minute) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, clock := newBackoff(t, throttle.BackoffConfig{}) // Forget defaults to 1 h
			for range 12 {
				b.Fail("k")
			}
			tt.settle(b, clock)
			// Wait out any pending wait, then fail once: a reset count is
			// still free, a kept count is not.
			clock.Advance(15 * time.Minute)
			b.Fail("k")
			_, ok := b.Check("k")
			if ok != tt.allowed {
				t.Fatalf("after one more failure ok = %v, want %v", ok, tt.allowed)
			}
		})
	}
}

func TestBackoffKeysAreIndependent(t *testing.T) {
	t.Parallel()
	b, _ := newBackoff(t, throttle.BackoffConfig{Free: 1})
	b.Fail("acct:a")
	b.Fail("acct:a")
	if _, ok := b.Check("acct:a"); ok {
		t.Fatal("acct:a allowed after 2 failures with 1 free")
	}
	if _, ok := b.Check("acct:b"); !ok {
		t.Fatal("acct:b refused though it never failed")
	}
}

func TestBackoffBoundedMemory(t *testing.T) {
	t.Parallel()
	b, clock := newBackoff(t, throttle.BackoffConfig{Free: 1, MaxKeys: 100})
	for i := range 10_000 {
		b.Fail(fmt.Sprintf("ip:%d", i))
		if i%1000 == 0 {
			clock.Advance(time.Second)
		}
	}
	if n := b.Len(); n != 100 {
		t.Fatalf("Len = %d after spraying 10,000 keys, want the 100 bound", n)
	}
	// The newest keys are the ones remembered.
	b.Fail("ip:9999")
	if _, ok := b.Check("ip:9999"); ok {
		t.Fatal("most recent key forgotten")
	}
	// Forgotten keys are dropped as new ones arrive, freeing the room.
	clock.Advance(2 * time.Hour)
	b.Fail("victim")
	if n := b.Len(); n != 1 {
		t.Fatalf("Len = %d after the quiet period, want 1: stale keys not dropped", n)
	}
}

func TestBackoffConcurrent(t *testing.T) {
	t.Parallel()
	b, _ := newBackoff(t, throttle.BackoffConfig{Free: 3})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				key := fmt.Sprintf("k%d", i%5)
				if _, ok := b.Check(key); ok {
					b.Fail(key)
				}
				if g == 0 && i%50 == 0 {
					b.Succeed(key)
				}
			}
		})
	}
	wg.Wait()
	if n := b.Len(); n > 5 {
		t.Fatalf("Len = %d, want at most the 5 keys used", n)
	}
}

func TestBackoffParallelAttemptsGetOneOpening(t *testing.T) {
	t.Parallel()
	b, _ := newBackoff(t, throttle.BackoffConfig{Free: 2})
	b.Fail("k")
	b.Fail("k") // free failures used up; no wait yet
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, ok := b.Check("k"); ok {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 1 {
		t.Fatalf("%d parallel attempts allowed, want 1", n)
	}
}

func TestBackoffConfigValidate(t *testing.T) {
	t.Parallel()
	for _, c := range []throttle.BackoffConfig{
		{Free: -1},
		{Base: time.Minute, Max: time.Second},
		{Max: time.Hour, Forget: time.Minute},
		{MaxKeys: -1},
	} {
		if _, err := throttle.NewBackoff(c, abacus.NewFakeClock(t0)); err == nil {
			t.Errorf("NewBackoff(%+v) = nil error", c)
		}
	}
}

func TestRate(t *testing.T) {
	t.Parallel()
	clock := abacus.NewFakeClock(t0)
	r, err := throttle.NewRate(throttle.RateConfig{Limit: 5, Window: time.Hour}, clock)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, ok := r.Allow("signup:1.2.3.4"); !ok {
			t.Fatalf("request %d refused, want a burst of 5", i+1)
		}
	}
	d, ok := r.Allow("signup:1.2.3.4")
	if ok || d != 12*time.Minute {
		t.Fatalf("6th request = %s, %v; want 12m (one refill), false", d, ok)
	}
	if _, ok := r.Allow("signup:5.6.7.8"); !ok {
		t.Fatal("another key refused")
	}
	clock.Advance(11 * time.Minute)
	if d, ok := r.Allow("signup:1.2.3.4"); ok || d != time.Minute {
		t.Fatalf("after 11m = %s, %v; want 1m, false", d, ok)
	}
	clock.Advance(time.Minute)
	if _, ok := r.Allow("signup:1.2.3.4"); !ok {
		t.Fatal("refused after one refill")
	}
	if _, ok := r.Allow("signup:1.2.3.4"); ok {
		t.Fatal("refill gave more than one request")
	}
	clock.Advance(time.Hour)
	for i := range 5 {
		if _, ok := r.Allow("signup:1.2.3.4"); !ok {
			t.Fatalf("after a quiet hour request %d refused", i+1)
		}
	}
}

func TestRateBoundedMemory(t *testing.T) {
	t.Parallel()
	clock := abacus.NewFakeClock(t0)
	r, _ := throttle.NewRate(throttle.RateConfig{Limit: 1, Window: time.Minute, MaxKeys: 50}, clock)
	for i := range 5000 {
		r.Allow(fmt.Sprintf("k%d", i))
	}
	if n := r.Len(); n != 50 {
		t.Fatalf("Len = %d, want the 50 bound", n)
	}
	if _, ok := r.Allow("k4999"); ok {
		t.Fatal("most recent key forgotten")
	}
}

func TestRateConcurrentExact(t *testing.T) {
	t.Parallel()
	r, _ := throttle.NewRate(throttle.RateConfig{Limit: 100, Window: time.Minute}, abacus.NewFakeClock(t0))
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if _, ok := r.Allow("k"); ok {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 100 {
		t.Fatalf("%d of 400 concurrent requests allowed, want exactly 100", n)
	}
}

func TestTooManyAttempts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want int
	}{
		{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {1001 * time.Millisecond, 2}, {15 * time.Minute, 900},
	}
	for _, tt := range tests {
		e := throttle.TooManyAttempts(tt.d)
		if e.Kind != abacus.KindRateLimited || e.Code != "too_many_attempts" || e.RetryAfter != tt.want {
			t.Errorf("TooManyAttempts(%s) = %s/%s retry %d; want rate_limited/too_many_attempts retry %d",
				tt.d, e.Kind, e.Code, e.RetryAfter, tt.want)
		}
	}
}

func TestRatePeekDoesNotSpend(t *testing.T) {
	t.Parallel()
	clock := abacus.NewFakeClock(t0)
	r, _ := throttle.NewRate(throttle.RateConfig{Limit: 2, Window: time.Minute}, clock)
	for range 10 {
		if _, ok := r.Peek("k"); !ok {
			t.Fatal("Peek refused an unspent budget")
		}
	}
	r.Allow("k")
	r.Allow("k")
	if d, ok := r.Peek("k"); ok || d != 30*time.Second {
		t.Fatalf("Peek after the budget is spent = %s, %v; want 30s, false", d, ok)
	}
	clock.Advance(30 * time.Second)
	if _, ok := r.Peek("k"); !ok {
		t.Fatal("Peek refused after a refill")
	}
}

func TestKnown(t *testing.T) {
	t.Parallel()
	clock := abacus.NewFakeClock(t0)
	k := throttle.NewKnown(time.Hour, 2, clock)
	if k.Has("a") {
		t.Fatal("unknown key known")
	}
	k.Remember("a")
	clock.Advance(59 * time.Minute)
	if !k.Has("a") {
		t.Fatal("key forgotten before its ttl")
	}
	k.Remember("a") // remembering again restarts the ttl
	clock.Advance(59 * time.Minute)
	if !k.Has("a") {
		t.Fatal("Remember did not restart the ttl")
	}
	clock.Advance(time.Minute)
	if k.Has("a") {
		t.Fatal("key known after its ttl")
	}
	k.Remember("b")
	k.Remember("c")
	k.Remember("d") // bound of 2: the stalest goes
	if k.Has("b") || !k.Has("c") || !k.Has("d") {
		t.Fatal("bound not kept by forgetting the stalest key")
	}
}
