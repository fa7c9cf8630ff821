package natsbus

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A write failure makes the bus not ready and refuses ingestion at once;
// restarting JetStream clears it, keeps what the stream held, tells
// consumers, and is not repeated within restartGap.
func TestStoreRecoversFromAWriteFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, err := Open(ctx, Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	b.store.stop() // the test drives recovery itself
	if _, err := b.EnsureStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.JetStream().Publish(ctx, "s", []byte("before")); err != nil {
		t.Fatal(err)
	}

	b.store.failed("Filestore [S] Critical write error: write …: no space left on device")
	if err := b.Check(ctx); err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("Check after a write failure: %v", err)
	}
	if b.WriteErr() == nil {
		t.Fatal("WriteErr after a write failure: nil")
	}
	restarted := b.Restarted()
	b.store.lastRestart = time.Now() // restarted a moment ago: not again yet
	b.store.recover()
	if b.WriteErr() == nil {
		t.Fatal("restarted again within restartGap")
	}

	b.store.lastRestart = time.Now().Add(-restartGap)
	b.store.recover()
	if err := b.Check(ctx); err != nil {
		t.Fatalf("Check after the restart: %v", err)
	}
	select {
	case <-restarted:
	default:
		t.Fatal("consumers were not told of the restart")
	}
	if _, err := b.JetStream().Publish(ctx, "s", []byte("after")); err != nil {
		t.Fatalf("publishing after the restart: %v", err)
	}
	s, err := b.JetStream().Stream(ctx, "S")
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 2 {
		t.Fatalf("the stream holds %d messages after the restart, want 2", n)
	}
}
