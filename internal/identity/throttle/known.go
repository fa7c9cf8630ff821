package throttle

import (
	"sync"
	"time"

	"github.com/abacusbilling/abacus"
)

// Known remembers keys for a while, e.g. the (account, IP) pairs that
// signed in successfully, so a limit meant for strangers can spare them.
// It is bounded like the limiters and safe for concurrent use.
type Known struct {
	ttl   time.Duration
	clock abacus.Clock

	mu   sync.Mutex
	keys *table[time.Time] // when the key was last remembered
}

// NewKnown remembers each key for ttl after its last Remember, and at
// most maxKeys keys (the stalest are forgotten first).
func NewKnown(ttl time.Duration, maxKeys int, clock abacus.Clock) *Known {
	return &Known{ttl: ttl, clock: clock, keys: newTable[time.Time](max(1, maxKeys))}
}

// Remember records key as known from now.
func (k *Known) Remember(key string) {
	now := k.clock.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	*k.keys.touch(key, func(t *time.Time) bool { return now.Sub(*t) >= k.ttl }) = now
}

// Has reports whether key was remembered less than ttl ago.
func (k *Known) Has(key string) bool {
	now := k.clock.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	t := k.keys.get(key)
	return t != nil && now.Sub(*t) < k.ttl
}
