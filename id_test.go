package abacus

import (
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// TestNewIDIsAPrefixedLowercaseULID: the suffix parses back as the ULID
// of now, is lower case, and ids made one after another sort in order.
func TestNewIDIsAPrefixedLowercaseULID(t *testing.T) {
	before := time.Now().Add(-time.Millisecond)
	prev := ""
	for range 1000 {
		id := NewID("cus")
		suffix, ok := strings.CutPrefix(id, "cus_")
		if !ok || len(suffix) != ulid.EncodedSize {
			t.Fatalf("NewID = %q: want cus_ and %d characters", id, ulid.EncodedSize)
		}
		if suffix != strings.ToLower(suffix) {
			t.Fatalf("NewID = %q: not lower case", id)
		}
		u, err := ulid.ParseStrict(strings.ToUpper(suffix))
		if err != nil {
			t.Fatalf("NewID = %q: %v", id, err)
		}
		if at := ulid.Time(u.Time()); at.Before(before) || at.After(time.Now().Add(time.Millisecond)) {
			t.Fatalf("NewID = %q: time %v, not now", id, at)
		}
		if id <= prev {
			t.Fatalf("NewID = %q after %q: not increasing", id, prev)
		}
		prev = id
	}
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = NewID("rev")
	}
}
