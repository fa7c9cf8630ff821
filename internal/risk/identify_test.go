package risk

import (
	"bytes"
	"strings"
	"testing"
)

// TestHashAllocatesOnce: an identifier's hash costs one allocation, the
// string itself (five identifiers per event; prefix and encoding were two
// more), and keeps its form: h1_ and 24 characters of base64url.
func TestHashAllocatesOnce(t *testing.T) {
	h := newHasher(bytes.Repeat([]byte{1}, 32))
	first := h.Hash("ten_1", "email", "ada@example.com")
	if !strings.HasPrefix(first, HashPrefix) || len(first) != len(HashPrefix)+24 || strings.ContainsAny(first[3:], "+/=") {
		t.Fatalf("hash %q: want h1_ and 24 base64url characters", first)
	}
	if again := h.Hash("ten_1", "email", "ada@example.com"); again != first {
		t.Fatalf("the same identifier hashed to %q, then %q", first, again)
	}
	if other := h.Hash("ten_2", "email", "ada@example.com"); other == first {
		t.Fatal("two tenants' hashes of one identifier are equal")
	}
	allocs := testing.AllocsPerRun(100, func() { h.Hash("ten_1", "email", "ada@example.com") })
	if allocs > 1 {
		t.Errorf("hashing an identifier allocates %.0f times, want 1", allocs)
	}
}
