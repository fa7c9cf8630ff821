package natsbus

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// MinFreeBytes is the space the embedded store's disk must have for the
// bus to call itself ready and to restart JetStream after a write failure:
// room for a few full batches and the stream's index files.
const MinFreeBytes = 4 << 20

// recoverEvery is how often a failed store is looked at again;
// restartGap keeps a store that fails for another reason than space (EIO)
// from being restarted in a tight loop.
const (
	recoverEvery = 500 * time.Millisecond
	restartGap   = 5 * time.Second
)

// storeHealth watches the embedded server's ability to write. A stream
// that fails a write (ENOSPC, EIO) keeps the error for good: nats-server
// answers none of its publishes again until JetStream reopens its files.
// So once the disk has space again, storeHealth restarts JetStream in
// process (the server and its connections stay up; streams and consumers
// are recovered from disk). Unacknowledged publishes were answered 503 and
// are retried by clients with the same ids, which dedup makes harmless.
type storeHealth struct {
	dir  string
	log  *slog.Logger
	srv  *server.Server
	opts *server.Options
	quit chan struct{}
	done chan struct{}
	once sync.Once // stop closes quit once

	lastRestart time.Time // only run touches it

	mu        sync.Mutex
	err       string        // the write failure not yet recovered; "" when none
	restarted chan struct{} // closed when JetStream restarts, then replaced
}

func newStoreHealth(dir string, log *slog.Logger) *storeHealth {
	return &storeHealth{dir: dir, log: log, quit: make(chan struct{}), done: make(chan struct{}), restarted: make(chan struct{})}
}

func (h *storeHealth) restarts() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.restarted
}

// isWriteFailure tells the server's log lines that mean a stream stopped
// writing (standalone: "critical write error"; permissions: "disabling
// JetStream"; clustered: "out of … resources").
func isWriteFailure(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "critical write error") || strings.Contains(m, "disabling jetstream") ||
		strings.Contains(m, "jetstream out of")
}

// failed records a write failure reported by the server.
func (h *storeHealth) failed(msg string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == "" {
		h.err = msg
	}
}

func (h *storeHealth) writeErr() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == "" {
		return nil
	}
	return fmt.Errorf("JetStream cannot write to %s (%s); it restarts by itself once the disk has %d MiB free", h.dir, h.err, MinFreeBytes>>20)
}

// check is the readiness of the store: no unrecovered write failure and
// enough free space.
func (h *storeHealth) check() error {
	if err := h.writeErr(); err != nil {
		return err
	}
	if free, err := freeBytes(h.dir); err == nil && free < MinFreeBytes {
		return fmt.Errorf("the NATS store %s has %d KiB of disk space free; writes need at least %d MiB", h.dir, free>>10, MinFreeBytes>>20)
	}
	return nil
}

func (h *storeHealth) start(srv *server.Server, opts *server.Options) {
	h.srv, h.opts = srv, opts
	go h.run()
}

// stop ends the recovery loop; safe to call twice or before start.
func (h *storeHealth) stop() {
	if h.srv == nil {
		return
	}
	h.once.Do(func() { close(h.quit) })
	<-h.done
}

func (h *storeHealth) run() {
	defer close(h.done)
	t := time.NewTicker(recoverEvery)
	defer t.Stop()
	for {
		select {
		case <-h.quit:
			return
		case <-t.C:
		}
		if h.writeErr() != nil || !h.srv.JetStreamEnabled() {
			h.recover()
		}
	}
}

// recover restarts JetStream once the disk has space again, and forgets
// the failure when that worked.
func (h *storeHealth) recover() {
	free, err := freeBytes(h.dir)
	if err != nil || free < MinFreeBytes || time.Since(h.lastRestart) < restartGap {
		return
	}
	h.lastRestart = time.Now()
	h.log.Warn("restarting JetStream after a write failure", "store", h.dir, "free_bytes", free)
	if err := h.restart(); err != nil {
		h.log.Error("restarting JetStream", "store", h.dir, "err", err)
		return
	}
	h.mu.Lock()
	h.err = ""
	close(h.restarted)
	h.restarted = make(chan struct{})
	h.mu.Unlock()
	h.log.Info("JetStream restarted; writes resume", "store", h.dir)
}

// restart closes and reopens JetStream's files, as nats-server does when
// a configuration reload enables JetStream again.
func (h *storeHealth) restart() error {
	if h.srv.JetStreamEnabled() {
		if err := h.srv.ShutdownJetStream(); err != nil {
			return fmt.Errorf("stopping JetStream: %w", err)
		}
	}
	opts := h.opts
	err := h.srv.EnableJetStream(&server.JetStreamConfig{
		StoreDir: opts.StoreDir, SyncInterval: opts.SyncInterval, SyncAlways: opts.SyncAlways,
		MaxMemory: opts.JetStreamMaxMemory, MaxStore: opts.JetStreamMaxStore, Strict: !opts.NoJetStreamStrict,
	})
	if err != nil {
		return fmt.Errorf("starting JetStream: %w", err)
	}
	if !h.srv.JetStreamEnabled() {
		return errors.New("JetStream did not start")
	}
	return nil
}

// freeBytes is the space unprivileged writers have left on dir's disk.
func freeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("reading free space of %s: %w", dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}
