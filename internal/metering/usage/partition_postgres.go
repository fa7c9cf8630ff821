package usage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// errPartitionLost ends a worker whose partition another process took.
var errPartitionLost = errors.New("the partition belongs to another meter process now")

// maxMeterProcesses bounds the member slots: more meter processes than
// this stand by.
const maxMeterProcesses = 64

// coordinate shares the partitions among the meter processes on one
// PostgreSQL database, until ctx ends.
//
// Membership and ownership are session advisory locks on one connection
// per process: a member slot (":meter-member:<i>") and one lock per owned
// partition (":meter:<p>", the keys Load and earlier versions take). When
// a process dies its connection closes and PostgreSQL releases them all
// at once. Every LockPollPeriod a process counts the held member slots
// (pg_locks), ranks itself among them, and wants the partitions p with
// p mod members = rank: it hands over those it holds and no longer wants
// (stops the worker, then unlocks) and tries to lock those it wants. So a
// dead process's partitions move to the survivors within a period or two,
// and move back when it returns.
//
// A lock proves ownership only while the session lives; a worker that
// has not noticed its loss yet could still commit a round. So a new owner
// writes its token into metering_offsets.owner (under the row lock, after
// any in-flight round of the old owner), and every round locks that row
// and checks the token before writing: the old owner's next round fails
// with errPartitionLost instead of counting beside the new one.
func (ws *Workers) coordinate(ctx context.Context) error {
	for ctx.Err() == nil {
		err := ws.coordinateSession(ctx)
		if ctx.Err() != nil {
			return nil
		}
		ws.log.Error("meter partition coordination failed; its partitions are released, retrying", "err", err)
		for p := 0; p < ws.cfg.Partitions; p++ {
			ws.metrics.owned.WithLabelValues(strconv.Itoa(p)).Set(0)
		}
		select {
		case <-ctx.Done():
		case <-time.After(ws.cfg.LockPollPeriod):
		}
	}
	return nil
}

type runningWorker struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (ws *Workers) coordinateSession(ctx context.Context) error {
	pc, err := ws.db.Pool().Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquiring a connection for partition locks: %w", err)
	}
	// The connection leaves the pool and is closed at the end, which
	// releases every lock it holds whatever happened to it.
	conn := pc.Hijack()
	defer conn.Close(context.Background())

	names := make([]string, 0, maxMeterProcesses+ws.cfg.Partitions)
	for i := range maxMeterProcesses {
		names = append(names, ":meter-member:"+strconv.Itoa(i))
	}
	for p := 0; p < ws.cfg.Partitions; p++ {
		names = append(names, ":meter:"+strconv.Itoa(p))
	}
	var keys []int64
	if err := conn.QueryRow(ctx, `SELECT array_agg(hashtextextended(current_schema() || n, 0) ORDER BY o)
		FROM unnest($1::text[]) WITH ORDINALITY AS t(n, o)`, names).Scan(&keys); err != nil {
		return fmt.Errorf("computing lock keys: %w", err)
	}
	memberKeys, partKeys := keys[:maxMeterProcesses], keys[maxMeterProcesses:]
	try := func(k int64) (bool, error) {
		var ok bool
		err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, k).Scan(&ok)
		return ok, err
	}
	slot := -1
	for slot < 0 {
		for i, k := range memberKeys {
			ok, err := try(k)
			if err != nil {
				return fmt.Errorf("taking a member slot: %w", err)
			}
			if ok {
				slot = i
				break
			}
		}
		if slot < 0 {
			ws.log.Info("every meter member slot is taken; standing by", "slots", maxMeterProcesses)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(ws.cfg.LockPollPeriod):
			}
		}
	}
	token := ownerToken()
	ws.log.Info("meter process joined", "slot", slot, "token", token)

	running := map[int]*runningWorker{}
	stop := func(p int) {
		r := running[p]
		r.cancel()
		<-r.done
		delete(running, p)
		ws.metrics.owned.WithLabelValues(strconv.Itoa(p)).Set(0)
	}
	defer func() {
		for p := range running {
			stop(p)
		}
	}()
	tick := time.NewTicker(ws.cfg.LockPollPeriod)
	defer tick.Stop()
	for {
		members, err := heldSlots(ctx, conn, memberKeys)
		if err != nil {
			return err
		}
		rank := slices.Index(members, slot)
		if rank < 0 {
			return errors.New("this process's member slot is no longer held")
		}
		ws.metrics.members.Set(float64(len(members)))
		for p := 0; p < ws.cfg.Partitions; p++ {
			r, has := running[p]
			if has {
				select {
				case <-r.done: // lost it (errPartitionLost) or gave up
					stop(p)
					has = false
					if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, partKeys[p]); err != nil {
						return fmt.Errorf("releasing partition %d: %w", p, err)
					}
				default:
				}
			}
			want := p%len(members) == rank
			switch {
			case has && !want:
				stop(p)
				if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, partKeys[p]); err != nil {
					return fmt.Errorf("releasing partition %d: %w", p, err)
				}
				ws.log.Info("handed a usage partition over", "partition", p, "members", len(members))
			case !has && want:
				ok, err := try(partKeys[p])
				if err != nil {
					return fmt.Errorf("locking partition %d: %w", p, err)
				}
				if !ok {
					continue // its owner hands it over at its next look
				}
				// Waits for an in-flight round of a previous owner.
				if _, err := ws.db.ExecContext(ctx, `INSERT INTO metering_offsets (partition, stream_seq, stream_time, owner)
					VALUES ($1, 0, 0, $2) ON CONFLICT (partition) DO UPDATE SET owner = excluded.owner`, p, token); err != nil {
					_, _ = conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, partKeys[p])
					return fmt.Errorf("marking partition %d as owned: %w", p, err)
				}
				wctx, cancel := context.WithCancel(ctx)
				r := &runningWorker{cancel: cancel, done: make(chan struct{})}
				running[p] = r
				go func() {
					defer close(r.done)
					ws.newWorker(p, token).loop(wctx)
				}()
				ws.metrics.owned.WithLabelValues(strconv.Itoa(p)).Set(1)
				ws.log.Info("took a usage partition", "partition", p, "members", len(members))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// heldSlots returns the member slots some session holds, in order. An
// advisory lock on a bigint key shows in pg_locks as classid (high 32
// bits) and objid (low 32 bits) with objsubid 1.
func heldSlots(ctx context.Context, conn *pgx.Conn, keys []int64) ([]int, error) {
	rows, err := conn.Query(ctx, `SELECT DISTINCT k FROM (
		SELECT (classid::bigint << 32) | objid::bigint AS k FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objsubid = 1
		  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) l
		WHERE k = ANY($1)`, keys)
	if err != nil {
		return nil, fmt.Errorf("listing meter processes: %w", err)
	}
	held, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("listing meter processes: %w", err)
	}
	var out []int
	for i, k := range keys {
		if slices.Contains(held, k) {
			out = append(out, i)
		}
	}
	return out, nil
}

func ownerToken() string {
	host, _ := os.Hostname()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}
