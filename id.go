package abacus

import (
	"crypto/rand"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// NewID returns a new identifier with a type prefix, e.g. NewID("cus")
// gives "cus_01JD…". The suffix is a lowercase ULID: time-ordered, so rows
// keyed by it land at the right edge of an index.
func NewID(prefix string) string {
	var text [ulid.EncodedSize]byte
	_ = newULID(time.Now()).MarshalTextTo(text[:]) // cannot fail: text is EncodedSize long
	// Crockford's alphabet is digits and upper-case letters: setting the
	// ASCII case bit on the letters lowers them, without a second string.
	for i, c := range text {
		if c >= 'A' {
			text[i] = c | 0x20
		}
	}
	var b strings.Builder
	b.Grow(len(prefix) + 1 + len(text))
	b.WriteString(prefix)
	b.WriteByte('_')
	b.Write(text[:])
	return b.String()
}

var (
	entropyMu sync.Mutex
	entropy   = ulid.Monotonic(rand.Reader, 0)
)

func newULID(t time.Time) ulid.ULID {
	entropyMu.Lock()
	defer entropyMu.Unlock()
	return ulid.MustNew(ulid.Timestamp(t), entropy)
}
