package db

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// openChecked opens a SQLite file checkpointed every so often.
func openChecked(t *testing.T, every time.Duration) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.db")
	d, err := Open(context.Background(), Options{SQLitePath: path, CheckpointEvery: every})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, path
}

// writeWAL writes n transactions of ~50 pages each into a fresh table of d
// and returns the WAL file's length in 4 KiB pages after each of them,
// calling between(i) before transaction i.
func writeWAL(t *testing.T, d *DB, path string, n int, between func(i int)) []int64 {
	t.Helper()
	ctx := context.Background()
	if _, err := d.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS ckpt (id INTEGER PRIMARY KEY, body TEXT)`); err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("x", 1000)
	var sizes []int64
	for i := range n {
		between(i)
		err := d.InTx(ctx, func(tx *Tx) error {
			for range 200 {
				if _, err := tx.ExecContext(ctx, `INSERT INTO ckpt (body) VALUES ($1)`, body); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, fi.Size()/4096)
	}
	return sizes
}

// TestCommitsDoNotCheckpoint: with the background checkpoints held off, 40
// commits of ~50 pages leave a WAL of ~2,000 pages. SQLite's default would
// have checkpointed inside the commit that passed 1,000 pages and then
// rewound the WAL, keeping it near 1,000.
func TestCommitsDoNotCheckpoint(t *testing.T) {
	t.Parallel()
	d, path := openChecked(t, time.Hour)
	sizes := writeWAL(t, d, path, 40, func(int) {})
	if last := sizes[len(sizes)-1]; last < 1500 {
		t.Fatalf("the WAL holds %d pages after 40 commits of ~50 pages: a commit checkpointed it", last)
	}
}

// TestBackgroundCheckpointKeepsTheWALShort: with the background
// checkpoints on, the same writes (with a checkpoint pass every 10 commits)
// keep the WAL short: each pass copies it all, and the next write rewinds
// it.
func TestBackgroundCheckpointKeepsTheWALShort(t *testing.T) {
	t.Parallel()
	d, path := openChecked(t, 5*time.Millisecond)
	waitPass := func(i int) {
		if i == 0 || i%10 != 0 {
			return
		}
		n0, err := d.checkpointPasses()
		if err != nil {
			t.Fatal(err)
		}
		// Two passes: the first may have begun before the last commit.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			if n, _ := d.checkpointPasses(); n >= n0+2 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("no background checkpoint pass within 10 s")
			}
		}
	}
	sizes := writeWAL(t, d, path, 40, waitPass)
	for i, n := range sizes {
		if n > 1000 {
			t.Fatalf("the WAL holds %d pages after commit %d: the background checkpoints did not keep it short (sizes %v)", n, i, sizes)
		}
	}
	var rows int
	if err := d.QueryRowContext(context.Background(), `SELECT count(*) FROM ckpt`).Scan(&rows); err != nil || rows != 8000 {
		t.Fatalf("read %d rows (%v), want 8000", rows, err)
	}
}

// TestLongWALIsRewoundThroughTheWriter: commits back to back leave no
// moment when a background pass has copied the whole WAL, so the WAL only
// grows until, past restartFrames (lowered to 300 pages here), the
// writer checkpoints between two transactions and the next one rewinds it.
func TestLongWALIsRewoundThroughTheWriter(t *testing.T) {
	t.Parallel()
	d, path := openChecked(t, 2*time.Millisecond)
	d.ckpt.mu.Lock()
	d.ckpt.restartFrames = 300
	d.ckpt.mu.Unlock()
	sizes := writeWAL(t, d, path, 60, func(int) {})
	// The file keeps its longest length; a commit that leaves it as it
	// was wrote from the start of a rewound WAL.
	for i := 1; i < len(sizes); i++ {
		if sizes[i] == sizes[i-1] {
			return
		}
	}
	t.Fatalf("every one of 60 commits back to back grew the WAL: it was never rewound (sizes %v)", sizes)
}

// The writer's pass is only short if the file system sync before it works
// where the project runs (Linux); elsewhere it reports itself unsupported.
func TestSyncFileSystem(t *testing.T) {
	err := syncFileSystem(t.TempDir())
	if runtime.GOOS == "linux" && err != nil {
		t.Fatalf("syncfs: %v", err)
	}
	if runtime.GOOS != "linux" && !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("got %v, want errors.ErrUnsupported", err)
	}
	if runtime.GOOS == "linux" && syncFileSystem(filepath.Join(t.TempDir(), "gone")) == nil {
		t.Fatal("a missing directory synced")
	}
}
