package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// SQLite's WAL must be copied back into the database file now and then (a
// checkpoint). By default the connection whose commit pushes the WAL past
// 1,000 pages does it inside that commit, fsyncs included: 5–30 ms during
// which the one writer, and every request queued behind it, waits (the
// risk decisions' p99 came mostly from these stalls). So the writer never
// checkpoints (wal_autocheckpoint(0) in the DSN) and a connection of its
// own checkpoints in the background, PASSIVE: it copies what no reader
// still needs while the writer keeps committing.
//
// A WAL is only rewound to its start by a write that begins after a
// checkpoint copied all of it. Under a steady stream of commits a
// background pass nearly always ends a few frames short (a commit lands
// while it copies), so the WAL would only grow. Once it is longer than
// restartFrames, the checkpoint is run once through the writer, between
// its transactions, where it always completes and the next write rewinds
// the WAL. That pass copies only what arrived since the last background
// pass, so the writer waits for a small copy and two fsyncs every few
// seconds instead of a whole checkpoint every 1,000 pages. Durability is
// unchanged: a commit is in the WAL before it returns (synchronous=NORMAL,
// which survives a killed process), and checkpoints fsync as before.
//
// The writer's pass waits for its two fsyncs, and an fsync costs what the
// kernel still has to write of the file. At 5,000 risk decisions a second
// (~40 MB of WAL a second) the writer's pass took 45–99 ms when it came
// right after a background pass: it flushed every frame appended during
// that pass. So before the writer's pass the WAL is fsynced from here (off
// the writer) and a second background pass copies what arrived meanwhile;
// the writer's pass then finds a few milliseconds of frames and took
// 7–20 ms. Most of that was its fsync of the database file: a background
// pass that ends short never fsyncs it, so the one complete pass fsynced
// every page the background passes had copied since the last one. On
// Linux the file system the database is on is now synced from here first
// (syncfs through the directory; the writer's pass took 2–4 ms, one
// 9.7 ms, at 5,000 decisions a second). The database file itself is
// never opened from here: closing a descriptor of it would drop SQLite's
// POSIX locks on it. Elsewhere only the -wal file is synced, on which
// SQLite holds no lock.

// defaultCheckpointEvery is how often the WAL is checkpointed.
const defaultCheckpointEvery = 250 * time.Millisecond

// restartFrames is the WAL length (pages; 64 MiB of 4 KiB pages) past
// which the writer checkpoints once itself.
const restartFrames = 16384

type checkpointer struct {
	path  string  // the database file
	conn  *sql.DB // one connection, not query_only
	write *sql.DB
	every time.Duration
	quit  chan struct{}
	done  chan struct{}
	once  sync.Once

	mu            sync.Mutex
	restartFrames int // restartFrames; lowered by tests
	passes        int // completed background passes (tests)
}

func startCheckpointer(ctx context.Context, path, dsn string, write *sql.DB, every time.Duration) (*checkpointer, error) {
	if every <= 0 {
		every = defaultCheckpointEvery
	}
	conn, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	conn.SetMaxOpenConns(1)
	if err := conn.PingContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	c := &checkpointer{path: path, conn: conn, write: write, every: every, quit: make(chan struct{}), done: make(chan struct{}), restartFrames: restartFrames}
	go c.run()
	return c, nil
}

func (c *checkpointer) run() {
	defer close(c.done)
	t := time.NewTicker(c.every)
	defer t.Stop()
	for {
		select {
		case <-c.quit:
			return
		case <-t.C:
		}
		// An error (the file gone in a test's cleanup, a full disk) is
		// left to the next pass and to the writes that meet it themselves.
		frames, err := c.pass(c.conn)
		c.mu.Lock()
		long := err == nil && frames >= c.restartFrames
		c.mu.Unlock()
		if long {
			c.syncFiles()
			_, _ = c.pass(c.conn)
			_, _ = c.pass(c.write)
		}
		c.mu.Lock()
		c.passes++
		c.mu.Unlock()
	}
}

// syncFiles flushes to disk what the WAL and the background passes
// wrote: the database's whole file system where the platform can (see
// syncFileSystem), else the WAL file.
func (c *checkpointer) syncFiles() {
	if c.path == "" || syncFileSystem(filepath.Dir(c.path)) == nil {
		return
	}
	f, err := os.OpenFile(c.path+"-wal", os.O_RDWR, 0)
	if err != nil {
		return
	}
	_ = f.Sync()
	_ = f.Close()
}

// pass runs a PASSIVE checkpoint on db and returns the WAL's length in
// frames (-1 when the database is not in WAL mode).
func (c *checkpointer) pass(db *sql.DB) (int, error) {
	var busy, log, done int
	if err := db.QueryRowContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &done); err != nil {
		return 0, fmt.Errorf("checkpointing the WAL: %w", err)
	}
	return log, nil
}

// stop ends the loop and closes its connection; safe twice and on nil.
func (c *checkpointer) stop() error {
	if c == nil {
		return nil
	}
	var err error
	c.once.Do(func() {
		close(c.quit)
		<-c.done
		err = c.conn.Close()
	})
	return err
}

// checkpointPasses reports the background passes completed (tests).
func (d *DB) checkpointPasses() (int, error) {
	if d.ckpt == nil {
		return 0, errors.New("no checkpointer: not SQLite")
	}
	d.ckpt.mu.Lock()
	defer d.ckpt.mu.Unlock()
	return d.ckpt.passes, nil
}
