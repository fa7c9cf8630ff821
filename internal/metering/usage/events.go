package usage

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"

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
	block  []metering.Event
	enc    []byte
}

// claimKeys inserts the (time, hash) keys of events[idx] and appends to out
// the indexes of the events stored for the first time. A repeat within idx
// counts once.
func (w *eventWriter) claimKeys(ctx context.Context, tx *db.Tx, evs []metering.Event, idx []int32, out []int32) ([]int32, error) {
	chunk := keysChunkSQLite
	if tx.Engine() == db.Postgres {
		chunk = keysChunkPostgres
	}
	for len(idx) > 0 {
		n := min(len(idx), chunk)
		part := idx[:n]
		idx = idx[n:]
		w.keys = w.keys[:0]
		for _, i := range part {
			e := &evs[i]
			w.keys = append(w.keys, timeHash{e.Time.UnixMicro(), eventHash(e)})
		}
		// Optimistically insert the whole chunk: in the common case every
		// event is new and one statement does it. Otherwise undo, find the
		// stored ones and insert the rest.
		if _, err := tx.ExecContext(ctx, `SAVEPOINT ins`); err != nil {
			return out, fmt.Errorf("savepoint: %w", err)
		}
		got, err := w.insertKeys(ctx, tx, w.keys)
		if err != nil {
			return out, err
		}
		if got == int64(len(part)) {
			if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT ins`); err != nil {
				return out, fmt.Errorf("release savepoint: %w", err)
			}
			out = append(out, part...)
			continue
		}
		if _, err := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT ins`); err != nil {
			return out, fmt.Errorf("rollback to savepoint: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT ins`); err != nil {
			return out, fmt.Errorf("release savepoint: %w", err)
		}
		stored, err := w.storedKeys(ctx, tx, w.keys)
		if err != nil {
			return out, err
		}
		seen := make(map[timeHash]bool, len(part))
		var fresh []timeHash
		for j, i := range part {
			k := w.keys[j]
			if seen[k] || stored[k] {
				continue
			}
			seen[k] = true
			fresh = append(fresh, k)
			out = append(out, i)
		}
		if len(fresh) > 0 {
			got, err := w.insertKeys(ctx, tx, fresh)
			if err != nil {
				return out, err
			}
			if got != int64(len(fresh)) {
				return out, fmt.Errorf("inserting event keys: %d of %d stored; another writer owns this partition", got, len(fresh))
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
		rows, err := tx.QueryContext(ctx, existingIDsSQL.get(tx.Engine(), len(part)), args...)
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
			if _, err := tx.ExecContext(ctx, insertIDsSQL.get(tx.Engine(), n), args...); err != nil {
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
		tail: `) SELECT e.tenant_id, e.source, e.id FROM k JOIN usage_event_ids e ON e.tenant_id = k.t AND e.source = k.s AND e.id = k.i`,
	}
)

// writeBlocks stores events[fresh] as blocks, one tenant per block, keyed
// by the round's partition and last stream sequence.
func (w *eventWriter) writeBlocks(ctx context.Context, tx *db.Tx, partition int, seq uint64, evs []metering.Event, fresh []int32) error {
	if len(fresh) == 0 {
		return nil
	}
	// Group by tenant, keeping event order within a tenant.
	order := slices.Clone(fresh)
	slices.SortStableFunc(order, func(a, b int32) int {
		switch ta, tb := evs[a].TenantID, evs[b].TenantID; {
		case ta < tb:
			return -1
		case ta > tb:
			return 1
		}
		return 0
	})
	part := 0
	for lo := 0; lo < len(order); {
		tenant := evs[order[lo]].TenantID
		hi := lo
		for hi < len(order) && hi-lo < blockEvents && evs[order[hi]].TenantID == tenant {
			hi++
		}
		w.block = w.block[:0]
		minT, maxT := int64(1<<63-1), int64(-1<<63)
		for _, i := range order[lo:hi] {
			e := &evs[i]
			w.block = append(w.block, *e)
			t := e.Time.UnixMicro()
			minT, maxT = min(minT, t), max(maxT, t)
		}
		w.enc = metering.AppendBatch(w.enc[:0], w.block)
		clear(w.block)
		if _, err := tx.ExecContext(ctx, `INSERT INTO usage_event_blocks (tenant_id, max_time, partition, stream_seq, part, min_time, events, data)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, tenant, maxT, partition, int64(seq), part, minT, hi-lo, w.enc); err != nil {
			return fmt.Errorf("storing event block: %w", err)
		}
		part++
		lo = hi
	}
	return nil
}
