package loadgen

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/abacusbilling/abacus/internal/client"
	"github.com/abacusbilling/abacus/internal/natsbus"
)

// HTTPSender posts bodies to POST /api/v1/events with c.
func HTTPSender(c *client.Client) SendFunc {
	return func(ctx context.Context, single bool, body []byte) error {
		ct := client.ContentTypeBatch
		if single {
			ct = client.ContentTypeEvent
		}
		return c.SendEvents(ctx, ct, body)
	}
}

// BareHTTP is the HTTP baseline: a bare net/http server on 127.0.0.1 that
// reads each body and answers 204, the least any server must do.
type BareHTTP struct {
	URL string
	srv *http.Server
}

// StartBareHTTP starts the baseline server on a free loopback port.
func StartBareHTTP() (*BareHTTP, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting the bare HTTP baseline: %w", err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusNoContent)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          nil,
	}
	go func() { _ = srv.Serve(ln) }()
	return &BareHTTP{URL: "http://" + ln.Addr().String(), srv: srv}, nil
}

// Close stops the server.
func (b *BareHTTP) Close() error { return b.srv.Close() }

// BareJetStream is the bus baseline: an embedded JetStream server like
// the one `abacus serve` runs, with one file-backed stream, storing each
// request body as one message and waiting for the store's ack.
type BareJetStream struct {
	bus     *natsbus.Bus
	subject string
}

// StartBareJetStream starts an embedded server storing in dir. syncAlways
// makes it fsync every write, as --nats-sync-always does for Abacus.
func StartBareJetStream(ctx context.Context, dir string, syncAlways bool) (*BareJetStream, error) {
	bus, err := natsbus.Open(ctx, natsbus.Options{StoreDir: dir, SyncAlways: syncAlways, Name: "bench-baseline", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, fmt.Errorf("starting the bare JetStream baseline: %w", err)
	}
	if _, err := bus.EnsureStream(ctx, jetstream.StreamConfig{
		Name: "BENCH_BASELINE", Subjects: []string{"bench.baseline.>"}, Storage: jetstream.FileStorage,
		MaxMsgSize: 32 << 20,
	}); err != nil {
		bus.Close()
		return nil, fmt.Errorf("creating the baseline stream: %w", err)
	}
	return &BareJetStream{bus: bus, subject: "bench.baseline.events"}, nil
}

// Sender publishes each body as one message and returns after the ack.
func (b *BareJetStream) Sender() SendFunc {
	js := b.bus.JetStream()
	return func(ctx context.Context, _ bool, body []byte) error {
		_, err := js.Publish(ctx, b.subject, body)
		return err
	}
}

// Close stops the server.
func (b *BareJetStream) Close() { b.bus.Close() }
