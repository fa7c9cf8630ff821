package usage

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/metering"
)

// How raw events are stored (migration 0201). The hot path writes, per new
// event, one usage_event_keys entry of two integers — (event time, 64-bit
// hash of tenant, source and id) — and, per tenant and round, a few
// usage_event_blocks rows holding the new events encoded with
// metering.EncodeBatch. A wide row per event behind a text key ran at
// ~50–110k rows/s on SQLite here; two-integer keys plus blocks at ~330–390k.
//
// The hash is the first 8 bytes of SHA-256 over the length-prefixed
// (tenant, source, id): a different event is taken for a retry only if it
// has the same time to the microsecond and the same 64-bit hash, which no
// client can arrange on purpose and chance makes negligible (~k²/2⁶⁵ for k
// events sharing one microsecond). Events whose time the server assigned
// are still claimed exactly in usage_event_ids (tenant, source, id).

// blockEvents caps the events of one block, so listing decodes little.
const blockEvents = 4096

// eventHash is the dedup hash of (tenant, source, id).
func eventHash(e *metering.Event) int64 {
	var buf [192]byte
	b := binary.AppendUvarint(buf[:0], uint64(len(e.TenantID)))
	b = append(b, e.TenantID...)
	b = binary.AppendUvarint(b, uint64(len(e.Source)))
	b = append(b, e.Source...)
	b = binary.AppendUvarint(b, uint64(len(e.ID)))
	b = append(b, e.ID...)
	sum := sha256.Sum256(b)
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

type timeHash struct{ t, h int64 }

type idKey struct{ tenant, source, id string }

// eventWriter stores raw events and learns which are new. It keeps its
// buffers between rounds.
type eventWriter struct {
	args   []any
	times  []int64
	hashes []int64
	keys   []timeHash // the chunk's keys, parallel to its indexes
	order  []int32
	blocks []block
	enc    []byte
}

// errRetryCareful asks the caller to roll back and redo the round with
// careful set: a fast-path insert met keys stored before.
var errRetryCareful = errors.New("round holds events stored before; redoing it carefully")

// claimKeys inserts the (time, hash) keys keyOf[idx] and appends to out
// the indexes of the events stored for the first time. A repeat within idx
// counts once.
//
// Without careful, each chunk is one plain multi-row insert, the cheapest
// statement there is (SQLite: INSERT OR IGNORE; PostgreSQL: an INSERT that
// fails on a conflict). If it stores fewer keys than it got, the round has
// duplicates (a client retry) and claimKeys returns errRetryCareful: the
// caller rolls back and redoes the round with careful, which learns which
// keys are new (ON CONFLICT DO NOTHING / OR IGNORE … RETURNING). Savepoints
// would avoid the redo but make SQLite journal every page the insert
// touches (it cost ~9% of CPU), and rounds with retries are rare.
func (w *eventWriter) claimKeys(ctx context.Context, tx *db.Tx, keyOf []timeHash, idx []int32, careful bool, out []int32) ([]int32, error) {
	for len(idx) > 0 {
		n := keysChunkLen(tx, len(idx))
		part := idx[:n]
		idx = idx[n:]
		w.keys = w.keys[:0]
		for _, i := range part {
			w.keys = append(w.keys, keyOf[i])
		}
		if !careful {
			got, err := w.insertKeys(ctx, tx, w.keys)
			if err != nil {
				return out, err // errRetryCareful on PostgreSQL
			}
			if got != int64(len(part)) {
				return out, errRetryCareful
			}
			out = append(out, part...)
			continue
		}
		stored, err := w.insertKeysReturning(ctx, tx, w.keys)
		if err != nil {
			return out, err
		}
		// stored holds the keys this statement inserted; the first event
		// carrying each is the new one.
		for j, i := range part {
			if k := w.keys[j]; stored[k] {
				delete(stored, k)
				out = append(out, i)
			}
		}
	}
	return out, nil
}

// claimIDs inserts (tenant, source, id) of events[idx] (events whose time
// the server assigned) and appends to out the indexes of those claimed for
// the first time.
func (w *eventWriter) claimIDs(ctx context.Context, tx *db.Tx, evs []metering.Event, idx []int32, out []int32) ([]int32, error) {
	for lo := 0; lo < len(idx); lo += keyChunk {
		part := idx[lo:min(lo+keyChunk, len(idx))]
		// Rare path: look first, then insert what is new.
		args := w.args[:0]
		for _, i := range part {
			e := &evs[i]
			args = append(args, e.TenantID, e.Source, e.ID)
		}
		rows, err := tx.QueryContext(ctx, existingIDsSQL.sql(tx, len(part)), args...)
		if err != nil {
			return out, fmt.Errorf("finding claimed event ids: %w", err)
		}
		stored := map[idKey]bool{}
		for rows.Next() {
			var k idKey
			if err := rows.Scan(&k.tenant, &k.source, &k.id); err != nil {
				rows.Close()
				return out, fmt.Errorf("finding claimed event ids: %w", err)
			}
			stored[k] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return out, fmt.Errorf("finding claimed event ids: %w", err)
		}
		args = args[:0]
		n := 0
		for _, i := range part {
			e := &evs[i]
			k := idKey{e.TenantID, e.Source, e.ID}
			if stored[k] {
				continue
			}
			stored[k] = true // a repeat later in the chunk is a duplicate
			args = append(args, e.TenantID, e.Source, e.ID)
			out = append(out, i)
			n++
		}
		w.args = args
		if n > 0 {
			if _, err := tx.ExecContext(ctx, insertIDsSQL.sql(tx, n), args...); err != nil {
				return out, fmt.Errorf("claiming event ids: %w", err)
			}
		}
		clear(args)
	}
	return out, nil
}

var (
	insertIDsSQL = &valuesSQL{
		head: `INSERT INTO usage_event_ids (tenant_id, source, id) VALUES `,
		row:  `(#,#,#)`,
		// Another partition may claim the same id (same tenant and id, other
		// subject) at the same time; the first wins there.
		tail: ` ON CONFLICT DO NOTHING`,
	}
	existingIDsSQL = &valuesSQL{
		head: `WITH k (t, s, i) AS (VALUES `,
		row:  `(#,#,#)`,
		// CROSS JOIN: k stays the outer loop (see readRollupsSQL).
		tail: `) SELECT e.tenant_id, e.source, e.id FROM k CROSS JOIN usage_event_ids e WHERE e.tenant_id = k.t AND e.source = k.s AND e.id = k.i`,
	}
)

// block is one encoded usage_event_blocks row.
type block struct {
	tenant     string
	minT, maxT int64
	events     int
	off, end   int // the encoding in eventWriter.enc
}

// encodeBlocks encodes events[idx] as blocks, one tenant per block, into
// w.blocks (replacing what it held).
func (w *eventWriter) encodeBlocks(evs []metering.Event, idx []int32) {
	w.blocks, w.enc = w.blocks[:0], w.enc[:0]
	// Group by tenant, keeping event order within a tenant. Frames hold
	// one tenant each, so this is nearly always sorted already.
	order := append(w.order[:0], idx...)
	w.order = order
	slices.SortStableFunc(order, func(a, b int32) int { return strings.Compare(evs[a].TenantID, evs[b].TenantID) })
	for lo := 0; lo < len(order); {
		tenant := evs[order[lo]].TenantID
		hi := lo
		for hi < len(order) && hi-lo < blockEvents && evs[order[hi]].TenantID == tenant {
			hi++
		}
		b := block{tenant: tenant, minT: 1<<63 - 1, maxT: -1 << 63, events: hi - lo, off: len(w.enc)}
		for _, i := range order[lo:hi] {
			t := evs[i].Time.UnixMicro()
			b.minT, b.maxT = min(b.minT, t), max(b.maxT, t)
		}
		w.enc = metering.AppendBatchAt(w.enc, evs, order[lo:hi])
		b.end = len(w.enc)
		w.blocks = append(w.blocks, b)
		lo = hi
	}
}

// writeBlocks stores the encoded blocks, keyed by the round's partition
// and last stream sequence.
func (w *eventWriter) writeBlocks(ctx context.Context, tx *db.Tx, partition int, seq uint64) error {
	for part, b := range w.blocks {
		if _, err := tx.ExecPrepared(ctx, `INSERT INTO usage_event_blocks (tenant_id, max_time, partition, stream_seq, part, min_time, events, data)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, b.tenant, b.maxT, partition, int64(seq), part, b.minT, b.events, w.enc[b.off:b.end]); err != nil {
			return fmt.Errorf("storing event block: %w", err)
		}
	}
	return nil
}
