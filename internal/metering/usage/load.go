package usage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/metering"
)

// LoadConfig shapes a bulk load (`abacus bench load-usage`).
type LoadConfig struct {
	Events int64
	// Event fills event i (0 ≤ i < Events) of the tenant; Load sets its
	// TenantID and ReceivedAt. Events must come in time order for the load
	// to run at speed (rollup rows are then written once, never read back).
	Event func(i int64, e *metering.Event)
	// RoundEvents per transaction; default 20,000 as the meter role.
	RoundEvents int
	// Partitions the meter role runs with (PostgreSQL: Load takes their
	// locks, so no meter process writes rollups beside it); default 4.
	Partitions int
	// Progress, if set, is called after each round with the events stored.
	Progress func(stored int64)
}

// LoadPartition is the partition number blocks written by Load carry: not
// a bus partition, so they never collide with the meter role's.
const LoadPartition = -1

// Load stores cfg.Events events of tenant as the meter role would — keys,
// blocks and rollups, exactly once, through the same code — without the
// bus. It is a benchmark tool: no meter role may run on the database
// meanwhile (the meter role caches rollups of the subjects it owns). On
// PostgreSQL Load holds the meter role's partition locks; on SQLite the
// caller holds the data-dir lock. It returns how many events were new.
func Load(ctx context.Context, d *db.DB, tenant string, cfg LoadConfig, log *slog.Logger) (int64, error) {
	if cfg.RoundEvents <= 0 {
		cfg.RoundEvents = 20_000
	}
	ws := NewWorkers(d, nil, WorkerConfig{Partitions: cfg.Partitions}, abacus.SystemClock{}, log, nil)
	if err := ws.tuneSQLite(ctx); err != nil {
		return 0, err
	}
	if err := ws.tuneSQLiteForLoad(ctx); err != nil {
		return 0, err
	}
	release, err := ws.ownPartitions(ctx)
	if err != nil {
		return 0, err
	}
	defer release()
	w := &worker{ws: ws, p: LoadPartition, agg: metering.NewAggregator(), cache: map[rkey]metering.State{},
		deltas: map[rkey]*metering.State{}, aggs: map[string]metering.Aggregation{}}
	// One goroutine fills the next round while the worker stores this one.
	type round struct{ evs []metering.Event }
	todo, free := make(chan round, 1), make(chan round, 2)
	free <- round{}
	free <- round{}
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(todo)
		for lo := int64(0); lo < cfg.Events; {
			var r round
			select {
			case r = <-free:
			case <-gctx.Done():
				return
			}
			n := min(int64(cfg.RoundEvents), cfg.Events-lo)
			r.evs = r.evs[:0]
			now := time.Now()
			for i := lo; i < lo+n; i++ {
				r.evs = append(r.evs, metering.Event{})
				e := &r.evs[len(r.evs)-1]
				cfg.Event(i, e)
				e.TenantID, e.ReceivedAt, e.Time = tenant, now, e.Time.Truncate(time.Microsecond)
			}
			lo += n
			select {
			case todo <- r:
			case <-gctx.Done():
				return
			}
		}
	}()
	// Block keys are (tenant, max_time, partition, stream_seq, part): a
	// sequence from the clock keeps a second load's blocks apart.
	seq := uint64(time.Now().UnixMicro())
	var stored int64
	for r := range todo {
		w.events = r.evs
		w.frames = append(w.frames[:0], frame{lo: 0, hi: len(r.evs), seq: seq})
		if err := w.apply(ctx, seq, false); err != nil {
			return stored, fmt.Errorf("loading events: %w", err)
		}
		stored += int64(len(w.fresh))
		seq++
		if cfg.Progress != nil {
			cfg.Progress(stored)
		}
		free <- r
	}
	if err := ctx.Err(); err != nil {
		return stored, err
	}
	if stored == 0 && cfg.Events > 0 {
		return 0, errors.New("loading events: none was new (loaded before?)")
	}
	return stored, nil
}
