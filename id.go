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
	return prefix + "_" + strings.ToLower(newULID(time.Now()).String())
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
