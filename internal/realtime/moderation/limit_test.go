package moderation

import (
	"testing"
	"time"
)

func TestUserLimiter(t *testing.T) {
	l := NewUserLimiter(10, 3)
	now := time.Unix(1_800_000_000, 0)
	for i := range 3 {
		if !l.Allow("t", "ada", now) {
			t.Fatalf("message %d of the burst refused", i)
		}
	}
	if l.Allow("t", "ada", now) {
		t.Fatal("a fourth message at once allowed")
	}
	if !l.Allow("t", "bob", now) || !l.Allow("t2", "ada", now) {
		t.Fatal("another user, or the same id in another tenant, was limited by ada")
	}
	now = now.Add(100 * time.Millisecond) // one token back at 10/s
	if !l.Allow("t", "ada", now) || l.Allow("t", "ada", now) {
		t.Fatal("refill is not 10 a second")
	}
	now = now.Add(2 * time.Minute)
	l.Allow("t", "cy", now) // sweeps: ada, bob and t2's ada are full again
	if len(l.buckets) != 1 {
		t.Fatalf("%d buckets kept after the sweep, want 1", len(l.buckets))
	}
}
