// Package throttle slows down password guessing and caps how often cheap
// endpoints (sign-up, password reset, e-mail verification) can be hit.
//
// Backoff is for sign-in: after a few free failures each further failure
// doubles the wait before the next attempt, up to a cap, and a quiet
// period forgets everything. There is never a permanent lockout, which
// would let anyone lock a victim out by failing on purpose. Rate is a
// plain n-per-window limiter.
//
// Both keep their state in memory, bounded in size, per process: in a
// multi-node deployment each node throttles on its own, so an attacker
// spreading requests over n nodes gets n times the budget. The Limiter
// interface is kept small so a shared implementation (e.g. on NATS KV)
// can replace Backoff later.
package throttle

import (
	"fmt"
	"sync"
	"time"

	"github.com/abacusbilling/abacus"
)

// Limiter is what sign-in needs from a failure throttle.
type Limiter interface {
	// Check reports whether an attempt for key may proceed now, and if not,
	// how long to wait.
	Check(key string) (retryAfter time.Duration, ok bool)
	// Fail records a failed attempt for key.
	Fail(key string)
	// Succeed forgets key's failures.
	Succeed(key string)
}

// BackoffConfig tunes a Backoff. Zero fields take the defaults of
// WithDefaults.
type BackoffConfig struct {
	// Free is how many failures are allowed before any wait. Default 5.
	Free int
	// Base is the wait after the first failure past Free; each further
	// failure doubles it. Default 1 second.
	Base time.Duration
	// Max caps the wait. Default 15 minutes.
	Max time.Duration
	// Forget is the quiet period (no failure) after which a key's failures
	// are forgotten. At least Max, so waiting out the cap does not reset
	// the count. Default 1 hour.
	Forget time.Duration
	// MaxKeys bounds how many keys are remembered; past it the stalest key
	// is forgotten. Default 100,000 (roughly 20 MB).
	MaxKeys int
}

// WithDefaults returns c with zero fields set to their defaults.
func (c BackoffConfig) WithDefaults() BackoffConfig {
	if c.Free == 0 {
		c.Free = 5
	}
	if c.Base == 0 {
		c.Base = time.Second
	}
	if c.Max == 0 {
		c.Max = 15 * time.Minute
	}
	if c.Forget == 0 {
		c.Forget = max(time.Hour, c.Max)
	}
	if c.MaxKeys == 0 {
		c.MaxKeys = 100_000
	}
	return c
}

// Validate returns an error naming the first field out of range.
func (c BackoffConfig) Validate() error {
	switch {
	case c.Free < 0:
		return fmt.Errorf("throttle: BackoffConfig.Free %d is negative", c.Free)
	case c.Base <= 0:
		return fmt.Errorf("throttle: BackoffConfig.Base %s must be positive", c.Base)
	case c.Max < c.Base:
		return fmt.Errorf("throttle: BackoffConfig.Max %s is below Base %s", c.Max, c.Base)
	case c.Forget < c.Max:
		return fmt.Errorf("throttle: BackoffConfig.Forget %s is below Max %s", c.Forget, c.Max)
	case c.MaxKeys < 1:
		return fmt.Errorf("throttle: BackoffConfig.MaxKeys %d must be positive", c.MaxKeys)
	}
	return nil
}

// Backoff is a Limiter that slows failures down progressively. Key it by
// account and, separately, by client IP. It is safe for concurrent use.
//
// Usage on sign-in, for each key (account, IP): Check; if not ok, answer
// 429 with TooManyAttempts. After verifying the password, Fail on failure;
// on success Succeed the account key only (succeeding on the IP key would
// let an attacker reset it by signing in to an account of their own).
type Backoff struct {
	cfg   BackoffConfig
	clock abacus.Clock

	mu   sync.Mutex
	keys *table[failures]
}

type failures struct {
	count int
	last  time.Time // last failure
	until time.Time // no attempt before this
}

// NewBackoff returns a Backoff. It returns an error when cfg is invalid.
func NewBackoff(cfg BackoffConfig, clock abacus.Clock) (*Backoff, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Backoff{cfg: cfg, clock: clock, keys: newTable[failures](cfg.MaxKeys)}, nil
}

var _ Limiter = (*Backoff)(nil)

// wait is the wait imposed after n failures.
func (b *Backoff) wait(n int) time.Duration {
	over := n - b.cfg.Free
	if over <= 0 {
		return 0
	}
	d := b.cfg.Base
	for i := 1; i < over; i++ {
		d *= 2
		if d >= b.cfg.Max {
			return b.cfg.Max
		}
	}
	return min(d, b.cfg.Max)
}

func (b *Backoff) forgotten(f *failures, now time.Time) bool {
	return now.Sub(f.last) >= b.cfg.Forget && !now.Before(f.until)
}

// Check reports whether an attempt for key may proceed now; if not,
// retryAfter is how long until it may.
//
// Once key is past its free failures, an allowed Check also holds the key
// for the wait a failure would bring, so parallel attempts cannot all slip
// through the same opening: only one may. Fail or Succeed settles it.
func (b *Backoff) Check(key string) (retryAfter time.Duration, ok bool) {
	now := b.clock.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.keys.get(key)
	if f == nil {
		return 0, true
	}
	if b.forgotten(f, now) {
		b.keys.remove(key)
		return 0, true
	}
	if now.Before(f.until) {
		return f.until.Sub(now), false
	}
	if f.count >= b.cfg.Free {
		f.until = now.Add(b.wait(f.count + 1))
	}
	return 0, true
}

// Fail records a failed attempt for key: past the free failures, the next
// attempt must wait Base, then 2×Base, 4×Base… up to Max.
func (b *Backoff) Fail(key string) {
	now := b.clock.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.keys.touch(key, func(f *failures) bool { return b.forgotten(f, now) })
	if f.count > 0 && b.forgotten(f, now) {
		*f = failures{}
	}
	f.count++
	f.last = now
	if until := now.Add(b.wait(f.count)); until.After(f.until) {
		f.until = until
	}
}

// Succeed forgets key's failures.
func (b *Backoff) Succeed(key string) {
	b.mu.Lock()
	b.keys.remove(key)
	b.mu.Unlock()
}

// Len returns how many keys are remembered, for a metrics gauge.
func (b *Backoff) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.keys.len()
}

// TooManyAttempts returns the KindRateLimited *abacus.Error (code
// "too_many_attempts") for a refused attempt, with RetryAfter in whole
// seconds rounded up, for the HTTP layer's 429 and Retry-After header.
func TooManyAttempts(retryAfter time.Duration) *abacus.Error {
	secs := RetryAfterSeconds(retryAfter)
	e := abacus.Errorf(abacus.KindRateLimited, "too_many_attempts",
		"too many attempts; wait %d seconds before trying again", secs)
	e.RetryAfter = secs
	return e
}

// RetryAfterSeconds rounds d up to whole seconds, at least 1, as the
// Retry-After header needs.
func RetryAfterSeconds(d time.Duration) int {
	secs := int((d + time.Second - 1) / time.Second)
	return max(secs, 1)
}
