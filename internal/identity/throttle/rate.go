package throttle

import (
	"fmt"
	"sync"
	"time"

	"github.com/abacusbilling/abacus"
)

// RateConfig tunes a Rate.
type RateConfig struct {
	// Limit requests are allowed per Window and key; a key that has been
	// quiet may spend them all at once.
	Limit  int
	Window time.Duration
	// MaxKeys bounds how many keys are remembered. Default 100,000.
	MaxKeys int
}

// Validate returns an error naming the first field out of range.
func (c RateConfig) Validate() error {
	switch {
	case c.Limit < 1:
		return fmt.Errorf("throttle: RateConfig.Limit %d must be positive", c.Limit)
	case c.Window < time.Duration(c.Limit):
		return fmt.Errorf("throttle: RateConfig.Window %s is too short for Limit %d", c.Window, c.Limit)
	case c.MaxKeys < 0:
		return fmt.Errorf("throttle: RateConfig.MaxKeys %d is negative", c.MaxKeys)
	}
	return nil
}

// Rate allows Limit requests per Window for each key — a token bucket
// that refills evenly, one request every Window/Limit — for sign-up,
// password reset and verification endpoints. It is safe for concurrent
// use. Implemented as GCRA: one timestamp per key, no floats.
type Rate struct {
	cfg      RateConfig
	clock    abacus.Clock
	interval time.Duration // Window/Limit: the refill time of one request

	mu   sync.Mutex
	keys *table[time.Time] // theoretical arrival time: when the bucket is full again
}

// NewRate returns a Rate. It returns an error when cfg is invalid.
func NewRate(cfg RateConfig, clock abacus.Clock) (*Rate, error) {
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = 100_000
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Rate{
		cfg: cfg, clock: clock,
		interval: cfg.Window / time.Duration(cfg.Limit),
		keys:     newTable[time.Time](cfg.MaxKeys),
	}, nil
}

// Allow takes one request from key's budget. When the budget is spent it
// returns ok false and how long until one request is available again.
func (r *Rate) Allow(key string) (retryAfter time.Duration, ok bool) {
	now := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	next, wait := r.next(key, now)
	if wait > 0 {
		return wait, false
	}
	// A full bucket is the same as no entry, so full ones are stale.
	*r.keys.touch(key, func(t *time.Time) bool { return !t.After(now) }) = next
	return 0, true
}

// Peek reports what Allow would answer without taking from the budget,
// for limits that spend only on failures: Peek before the attempt, Allow
// after a failed one.
func (r *Rate) Peek(key string) (retryAfter time.Duration, ok bool) {
	now := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, wait := r.next(key, now); wait > 0 {
		return wait, false
	}
	return 0, true
}

// next is key's theoretical arrival time after one more request, and how
// long that request would have to wait (0 or less: none).
func (r *Rate) next(key string, now time.Time) (time.Time, time.Duration) {
	next := now.Add(r.interval)
	tat := r.keys.get(key)
	if tat == nil {
		return next, 0
	}
	if tat.After(now) {
		next = tat.Add(r.interval)
	}
	return next, next.Sub(now) - r.cfg.Window
}

// Len returns how many keys are remembered, for a metrics gauge.
func (r *Rate) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.keys.len()
}
