package usage

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/metering"
)

// Rollup resolutions in seconds. Rows of every resolution start at
// UTC-aligned boundaries.
const (
	resMinute int64 = 60
	resHour   int64 = 3600
	resDay    int64 = 86400
)

var resolutions = [...]int64{resMinute, resHour, resDay}

// chunk sizes keep statements under both engines' parameter limits
// (SQLite 32766, PostgreSQL 65535); statements take power-of-two sizes up
// to these (chunkLen).
const (
	rollupChunk = 512
	keyChunk    = 256
)

var (
	upsertRollupsSQL = &valuesSQL{
		head: `INSERT INTO usage_rollups (tenant_id, meter_id, res, subject, start, group_key, count, sum, min, max, latest, latest_at, latest_source, latest_id) VALUES `,
		row:  `(#,#,#,#,#,#,#,#,#,#,#,#,#,#)`,
		tail: ` ON CONFLICT (tenant_id, meter_id, res, subject, start, group_key) DO UPDATE SET count = excluded.count,
			sum = excluded.sum, min = excluded.min, max = excluded.max, latest = excluded.latest,
			latest_at = excluded.latest_at, latest_source = excluded.latest_source, latest_id = excluded.latest_id`,
	}
	// New rows: nothing to conflict with. OR IGNORE, not a plain INSERT,
	// spares SQLite a statement journal (as for event keys); a row that was
	// there after all shows in the count of rows inserted.
	insertRollupsSQLite = &valuesSQL{
		head: `INSERT OR IGNORE INTO usage_rollups (tenant_id, meter_id, res, subject, start, group_key, count, sum, min, max, latest, latest_at, latest_source, latest_id) VALUES `,
		row:  `(#,#,#,#,#,#,#,#,#,#,#,#,#,#)`,
	}
	insertRollupsPostgres = &valuesSQL{
		head: `INSERT INTO usage_rollups (tenant_id, meter_id, res, subject, start, group_key, count, sum, min, max, latest, latest_at, latest_source, latest_id) VALUES `,
		row:  `(#,#,#,#,#,#,#,#,#,#,#,#,#,#)`,
	}
	insertValuesSQL = &valuesSQL{
		head: `INSERT INTO usage_rollup_values (tenant_id, meter_id, res, subject, start, group_key, value) VALUES `,
		row:  `(#,#,#,#,#,#,#)`,
		tail: ` ON CONFLICT DO NOTHING`,
	}
	readRollupsSQL = &valuesSQL{
		head: `WITH k (t, m, r, s, st, g) AS (VALUES `,
		row:  `(#,#,CAST(# AS INTEGER),#,CAST(# AS BIGINT),#)`,
		// CROSS JOIN keeps k the outer loop on SQLite: with a plain JOIN
		// its planner scanned the whole rollup table against an automatic
		// index on k (~20 µs per key read, growing with the table).
		tail: `) SELECT u.tenant_id, u.meter_id, u.res, u.subject, u.start, u.group_key, u.count, u.sum, u.min, u.max,
			u.latest, u.latest_at, u.latest_source, u.latest_id FROM k CROSS JOIN usage_rollups u
			WHERE u.tenant_id = k.t AND u.meter_id = k.m AND u.res = k.r AND u.subject = k.s AND u.start = k.st AND u.group_key = k.g`,
	}
)

// readFrontsSQL reads, per (tenant, meter, res, subject), the latest start
// stored: one index seek each.
var readFrontsSQL = &valuesSQL{
	head: `WITH k (t, m, r, s) AS (VALUES `,
	row:  `(#,#,CAST(# AS INTEGER),#)`,
	tail: `) SELECT k.t, k.m, k.r, k.s, (SELECT MAX(u.start) FROM usage_rollups u
		WHERE u.tenant_id = k.t AND u.meter_id = k.m AND u.res = k.r AND u.subject = k.s) FROM k`,
}

// frontKey names the rollup rows of one subject at one resolution.
type frontKey struct {
	tenant, meter string
	res           int64
	subject       string
}

func frontOf(k rkey) frontKey { return frontKey{k.tenant, k.meter, k.res, k.subject} }

// noFront is the front of rows none of which is stored.
const noFront = -1 << 63

// readFronts reads the fronts of keys into into (noFront where no row is
// stored).
func readFronts(ctx context.Context, tx *db.Tx, keys []frontKey, args []any, into map[frontKey]int64) ([]any, error) {
	for lo, n := 0, 0; lo < len(keys); lo += n {
		n = chunkLen(len(keys)-lo, keyChunk)
		args = args[:0]
		for _, k := range keys[lo : lo+n] {
			args = append(args, k.tenant, k.meter, k.res, k.subject)
		}
		rows, err := tx.QueryPrepared(ctx, readFrontsSQL.get(tx.Engine(), n), args...)
		if err != nil {
			return args, fmt.Errorf("reading rollup fronts: %w", err)
		}
		for rows.Next() {
			var k frontKey
			var front sql.NullInt64
			if err := rows.Scan(&k.tenant, &k.meter, &k.res, &k.subject, &front); err != nil {
				rows.Close()
				return args, fmt.Errorf("reading rollup fronts: %w", err)
			}
			if front.Valid {
				into[k] = front.Int64
			} else {
				into[k] = noFront
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return args, fmt.Errorf("reading rollup fronts: %w", err)
		}
	}
	clear(args)
	return args, nil
}

const stateCols = `count, sum, min, max, latest, latest_at, latest_source, latest_id`

// rkey identifies one rollup row.
type rkey struct {
	tenant, meter string
	res           int64
	subject       string
	start         int64
	group         string
}

// stateRow is how a State is stored.
type stateRow struct {
	count                  int64
	sum, min, max, latest  string
	latestAt               int64
	latestSource, latestID string
}

func rowOf(s *metering.State) stateRow {
	return stateRow{
		count: s.Count, sum: s.Sum.String(), min: s.Min.String(), max: s.Max.String(),
		latest: s.Latest.String(), latestAt: s.LatestAt.UnixMicro(), latestSource: s.LatestSource, latestID: s.LatestID,
	}
}

func (r *stateRow) state(agg metering.Aggregation) (metering.State, error) {
	s := metering.State{Agg: agg, Count: r.count, LatestSource: r.latestSource, LatestID: r.latestID}
	var err error
	for _, f := range []struct {
		dst *decimal.Decimal
		src string
	}{{&s.Sum, r.sum}, {&s.Min, r.min}, {&s.Max, r.max}, {&s.Latest, r.latest}} {
		if f.src == "" || f.src == "0" {
			continue
		}
		if *f.dst, err = decimal.NewFromString(f.src); err != nil {
			return s, fmt.Errorf("parsing stored rollup value %q: %w", f.src, err)
		}
	}
	s.LatestAt = time.UnixMicro(r.latestAt).UTC()
	return s, nil
}

// readRollups reads the stored states of keys (those that exist).
func readRollups(ctx context.Context, tx *db.Tx, keys []rkey, aggOf func(meter string) metering.Aggregation, args []any, into map[rkey]metering.State) ([]any, error) {
	for lo, n := 0, 0; lo < len(keys); lo += n {
		n = chunkLen(len(keys)-lo, keyChunk)
		part := keys[lo : lo+n]
		args = args[:0]
		for _, k := range part {
			args = append(args, k.tenant, k.meter, k.res, k.subject, k.start, k.group)
		}
		rows, err := tx.QueryPrepared(ctx, readRollupsSQL.get(tx.Engine(), len(part)), args...)
		if err != nil {
			return args, fmt.Errorf("reading rollups: %w", err)
		}
		for rows.Next() {
			var k rkey
			var r stateRow
			if err := rows.Scan(&k.tenant, &k.meter, &k.res, &k.subject, &k.start, &k.group,
				&r.count, &r.sum, &r.min, &r.max, &r.latest, &r.latestAt, &r.latestSource, &r.latestID); err != nil {
				rows.Close()
				return args, fmt.Errorf("reading rollups: %w", err)
			}
			st, err := r.state(aggOf(k.meter))
			if err != nil {
				rows.Close()
				return args, err
			}
			into[k] = st
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return args, fmt.Errorf("reading rollups: %w", err)
		}
	}
	return args, nil
}

type upsert struct {
	k rkey
	s metering.State
}

// writeRollups upserts full states.
func writeRollups(ctx context.Context, tx *db.Tx, ups []upsert, args []any) ([]any, error) {
	for lo, n := 0, 0; lo < len(ups); lo += n {
		n = chunkLen(len(ups)-lo, rollupChunk)
		part := ups[lo : lo+n]
		args = args[:0]
		for i := range part {
			k, r := &part[i].k, rowOf(&part[i].s)
			args = append(args, k.tenant, k.meter, k.res, k.subject, k.start, k.group,
				r.count, r.sum, r.min, r.max, r.latest, r.latestAt, r.latestSource, r.latestID)
		}
		if _, err := tx.ExecPrepared(ctx, upsertRollupsSQL.get(tx.Engine(), len(part)), args...); err != nil {
			return args, fmt.Errorf("writing rollups: %w", err)
		}
	}
	clear(args)
	return args, nil
}

// insertRollups inserts rows the caller knows are not stored (past their
// front, or not found). Finding one stored is an error: the round is
// rolled back and redone from the stored offset with empty caches.
func insertRollups(ctx context.Context, tx *db.Tx, ups []upsert, args []any) ([]any, error) {
	q := insertRollupsSQLite
	if tx.Engine() == db.Postgres {
		q = insertRollupsPostgres
	}
	for lo, n := 0, 0; lo < len(ups); lo += n {
		n = chunkLen(len(ups)-lo, rollupChunk)
		part := ups[lo : lo+n]
		args = args[:0]
		for i := range part {
			k, r := &part[i].k, rowOf(&part[i].s)
			args = append(args, k.tenant, k.meter, k.res, k.subject, k.start, k.group,
				r.count, r.sum, r.min, r.max, r.latest, r.latestAt, r.latestSource, r.latestID)
		}
		res, err := tx.ExecPrepared(ctx, q.get(tx.Engine(), n), args...)
		if err != nil {
			return args, fmt.Errorf("inserting rollups: %w", err)
		}
		if got, err := res.RowsAffected(); err != nil || got != int64(n) {
			return args, fmt.Errorf("inserting rollups: %d of %d rows were new (err %v); redoing the round", got, n, err)
		}
	}
	clear(args)
	return args, nil
}

func compareKeys(x, y rkey) int {
	return cmp.Or(strings.Compare(x.tenant, y.tenant), strings.Compare(x.meter, y.meter), cmp.Compare(x.res, y.res),
		strings.Compare(x.subject, y.subject), cmp.Compare(x.start, y.start), strings.Compare(x.group, y.group))
}

type uvalue struct {
	k rkey
	v string
}

// writeValues adds UNIQUE_COUNT values (present ones are kept).
func writeValues(ctx context.Context, tx *db.Tx, vals []uvalue, args []any) ([]any, error) {
	for lo, n := 0, 0; lo < len(vals); lo += n {
		n = chunkLen(len(vals)-lo, rollupChunk)
		part := vals[lo : lo+n]
		args = args[:0]
		for _, v := range part {
			args = append(args, v.k.tenant, v.k.meter, v.k.res, v.k.subject, v.k.start, v.k.group, v.v)
		}
		if _, err := tx.ExecPrepared(ctx, insertValuesSQL.get(tx.Engine(), len(part)), args...); err != nil {
			return args, fmt.Errorf("writing unique values: %w", err)
		}
	}
	clear(args)
	return args, nil
}

var errNoRows = sql.ErrNoRows
