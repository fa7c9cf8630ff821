package usage

import (
	"strconv"
	"strings"
	"sync"

	"github.com/abacusbilling/abacus/internal/db"
)

// valuesSQL builds (and caches) "head (p1,…,pk),(…)… tail" for n rows of
// the given per-row template, where each '#' in row is the next
// placeholder. Placeholders are written in the engine's own syntax so the
// long statement need not be rewritten on every call.
type valuesSQL struct {
	head, row, tail string
	cache           [2]sync.Map // by engine: n → string
}

// sql is get for the transaction's engine.
func (v *valuesSQL) sql(tx *db.Tx, n int) string { return v.get(tx.Engine(), n) }

func (v *valuesSQL) get(e db.Engine, n int) string {
	ei := 0
	if e == db.Postgres {
		ei = 1
	}
	if s, ok := v.cache[ei].Load(n); ok {
		return s.(string)
	}
	var b strings.Builder
	b.Grow(len(v.head) + n*(len(v.row)+4*strings.Count(v.row, "#")) + len(v.tail))
	b.WriteString(v.head)
	p := 1
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		for j := 0; j < len(v.row); j++ {
			if v.row[j] != '#' {
				b.WriteByte(v.row[j])
				continue
			}
			// SQLite gets anonymous '?': the driver looks up every
			// numbered parameter's name, which is quadratic in their count.
			if ei == 1 {
				b.WriteByte('$')
				b.WriteString(strconv.Itoa(p))
			} else {
				b.WriteByte('?')
			}
			p++
		}
	}
	b.WriteString(v.tail)
	s := b.String()
	v.cache[ei].Store(n, s)
	return s
}

// chunkLen is how many of n rows the next statement takes: the largest
// power of two at most min(n, limit) (limit a power of two). A few fixed
// sizes keep the statement texts few, so they stay prepared on SQLite
// (db.Tx.ExecPrepared) instead of being parsed anew each round.
func chunkLen(n, limit int) int {
	c := limit
	for c > n {
		c >>= 1
	}
	return c
}
