package natsbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// A server without JetStream is refused at once with the hint, not
// after the wait meant for a cluster electing its JetStream leader.
func TestOpenRefusesAServerWithoutJetStreamAtOnce(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	start := time.Now()
	b, err := Open(context.Background(), Options{URL: srv.ClientURL()})
	if err == nil {
		b.Close()
		t.Fatal("opened a bus on a server without JetStream")
	}
	if !strings.Contains(err.Error(), "start nats-server with -js") {
		t.Errorf("error %q does not say how to fix it", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("refused after %s, want at once", took)
	}
}

// JetStream's "no suitable peers for placement" is retried by
// EnsureStream; other API errors are not.
func TestNoPeersYetIsTransient(t *testing.T) {
	noPeers := fmt.Errorf("creating: %w", &jetstream.APIError{Code: 400, ErrorCode: 10005, Description: "no suitable peers for placement"})
	if !noPeersYet(noPeers) {
		t.Error("no suitable peers: not taken for transient")
	}
	if noPeersYet(&jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeBadRequest}) || noPeersYet(errors.New("other")) {
		t.Error("another error taken for transient")
	}
}
