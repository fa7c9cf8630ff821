package usage

import (
	"context"
	"fmt"
	"strconv"

	"github.com/abacusbilling/abacus/internal/db"
)

// The metering pipeline's engine differences outside single statements.

// tuneSQLite sizes the SQLite writer for rounds. A round writes a few MB
// of pages; SQLite's default 2 MB page cache spills them mid-transaction
// and re-reads tree pages, and statement journals (multi-row upserts)
// spill to a temp file. The writer is one connection, so this sets it for
// every writer (best effort: a reopened connection gets the defaults
// again).
func (ws *Workers) tuneSQLite(ctx context.Context) error {
	if ws.db.Engine() != db.SQLite {
		return nil
	}
	for _, p := range []string{`PRAGMA cache_size = -65536`, `PRAGMA temp_store = MEMORY`} {
		if _, err := ws.db.ExecContext(ctx, p); err != nil {
			return fmt.Errorf("tuning the SQLite writer (%s): %w", p, err)
		}
	}
	return nil
}

// tuneSQLiteForLoad gives a bulk load a larger page cache: its rounds
// touch rollup pages all over a large tree (one insertion point per
// subject, meter and resolution).
func (ws *Workers) tuneSQLiteForLoad(ctx context.Context) error {
	if ws.db.Engine() != db.SQLite {
		return nil
	}
	if _, err := ws.db.ExecContext(ctx, `PRAGMA cache_size = -1048576`); err != nil {
		return fmt.Errorf("sizing the SQLite page cache: %w", err)
	}
	return nil
}

// ownPartitions makes this process the only writer of its partitions until
// release is called: several processes may share a PostgreSQL database,
// while a SQLite database belongs to the one process holding the
// data-dir lock, so there is nothing to take.
func (ws *Workers) ownPartitions(ctx context.Context) (release func(), err error) {
	if ws.db.Engine() != db.Postgres {
		return func() {}, nil
	}
	return ws.lockPartitions(ctx)
}

// runPartitions runs the partitions this process may work: every one on
// SQLite, its share on PostgreSQL (coordinate).
func (ws *Workers) runPartitions(ctx context.Context) error {
	if ws.db.Engine() != db.Postgres {
		for p := 0; p < ws.cfg.Partitions; p++ {
			ws.metrics.owned.WithLabelValues(strconv.Itoa(p)).Set(1)
		}
		ws.metrics.members.Set(1)
		ws.runAll(ctx)
		return nil
	}
	return ws.coordinate(ctx)
}
