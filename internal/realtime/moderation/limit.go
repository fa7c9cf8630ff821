// Package moderation holds the realtime gateway's safety rules that need
// no table: the per-user send rate limit.
package moderation

import (
	"sync"
	"time"
)

// UserLimiter limits the messages one user sends, across all of the
// user's connections on this node, with a token bucket: Rate messages a
// second on average, Burst at once. The gateway's per-connection limit
// (docs/realtime.md) bounds one socket; this bounds a user who opens
// many. It is per node: a user connected to n nodes may send n times as
// much. Safe for concurrent use.
type UserLimiter struct {
	rate, burst float64
	mu          sync.Mutex
	buckets     map[userKey]*bucket
	lastSweep   time.Time
}

type userKey struct{ tenant, user string }

type bucket struct {
	tokens float64
	at     time.Time
}

// NewUserLimiter returns a limiter of rate messages a second, burst at
// once.
func NewUserLimiter(rate float64, burst int) *UserLimiter {
	return &UserLimiter{rate: rate, burst: float64(burst), buckets: map[userKey]*bucket{}}
}

// Allow takes one message from the user's bucket at now and reports
// whether there was one.
func (l *UserLimiter) Allow(tenant, user string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > time.Minute {
		l.sweep(now)
	}
	k := userKey{tenant, user}
	b := l.buckets[k]
	if b == nil {
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[k] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sweep forgets the buckets that have filled up again (l.mu held), so
// the map holds only users who sent recently.
func (l *UserLimiter) sweep(now time.Time) {
	l.lastSweep = now
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
}
