// Package natsbus connects Abacus to NATS JetStream: an embedded
// nats-server running in-process (the default, data in the data dir, no TCP
// listener unless asked), or an external server or cluster by URL. Above
// this package nothing can tell the two apart: both give a *nats.Conn and
// a jetstream.JetStream.
package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options for Open.
type Options struct {
	// URL of an external server or cluster (comma-separated). Empty runs
	// an embedded server.
	URL string
	// StoreDir is the embedded server's JetStream directory.
	StoreDir string
	// Listen is host:port for the embedded server to accept TCP clients
	// on; empty means in-process connections only.
	Listen string
	// SyncAlways makes the embedded server fsync every write.
	SyncAlways bool
	// Replicas is the replication factor EnsureStream gives a stream that
	// asks for one replica (0 or 1): 3 on a three-node JetStream cluster.
	Replicas int
	// Name identifies this process's connection to the server.
	Name   string
	Logger *slog.Logger
}

// Bus is a connection to JetStream, and the embedded server when there is
// one.
type Bus struct {
	srv       *server.Server
	nc        *nats.Conn
	js        jetstream.JetStream
	log       *slog.Logger
	closeOnce sync.Once
	store     *storeHealth // embedded only
	replicas  int
}

// Open starts the embedded server or connects to the external one, and
// waits until JetStream answers.
func Open(ctx context.Context, o Options) (*Bus, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Name == "" {
		o.Name = "abacus"
	}
	b := &Bus{log: o.Logger, replicas: o.Replicas}
	connOpts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		// No reconnect buffer: a publish while disconnected fails at once
		// (ingestion answers 503 and the client retries) instead of being
		// queued and sent later, after its caller was already told it
		// failed — a message nobody waits for is a duplicate in the making.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				o.Logger.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { o.Logger.Info("nats reconnected", "url", c.ConnectedUrl()) }),
		// Errors no call returns, such as a slow consumer whose messages the
		// client dropped; without a handler they pass silently.
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			o.Logger.Warn("nats asynchronous error", "subject", subject, "err", err)
		}),
	}
	if o.URL == "" {
		b.store = newStoreHealth(o.StoreDir, o.Logger)
		srv, opts, err := startEmbedded(o, b.store.failed)
		if err != nil {
			return nil, err
		}
		b.srv = srv
		b.store.start(srv, opts)
		connOpts = append(connOpts, nats.InProcessServer(srv))
	}
	url := o.URL
	if url == "" {
		url = "nats://in-process"
	}
	nc, err := nats.Connect(url, connOpts...)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("connecting to NATS at %s: %w (is nats-server running with -js?)", url, err)
	}
	b.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("opening JetStream: %w", err)
	}
	b.js = js
	if err := awaitJetStream(ctx, js, jetStreamWait); err != nil {
		b.Close()
		return nil, fmt.Errorf("JetStream is not available at %s: %w (start nats-server with -js)", url, err)
	}
	return b, nil
}

// jetStreamWait is how long Open waits for JetStream to answer: a
// cluster whose servers were just restarted one by one elects its
// JetStream leader within seconds, and a node started meanwhile waits
// for it rather than exit.
const jetStreamWait = 30 * time.Second

// awaitJetStream asks js for its account until it answers or wait ends,
// each question allowed 5 s.
func awaitJetStream(ctx context.Context, js jetstream.JetStream, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := js.AccountInfo(actx)
		cancel()
		if err == nil || ctx.Err() != nil || time.Now().Add(time.Second).After(deadline) ||
			errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return err // a server without JetStream says so at once
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}

func startEmbedded(o Options, writeFailed func(string)) (*server.Server, *server.Options, error) {
	opts := &server.Options{
		ServerName:         "abacus-embedded",
		JetStream:          true,
		StoreDir:           o.StoreDir,
		DontListen:         o.Listen == "",
		NoSigs:             true,
		SyncAlways:         o.SyncAlways,
		MaxPayload:         8 << 20,
		JetStreamMaxMemory: 256 << 20,
	}
	if o.Listen != "" {
		host, port, err := net.SplitHostPort(o.Listen)
		if err != nil {
			return nil, nil, fmt.Errorf("nats.listen %q: %w", o.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, nil, fmt.Errorf("nats.listen %q: port is not a number", o.Listen)
		}
		opts.Host, opts.Port = host, p
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("starting embedded NATS: %w", err)
	}
	srv.SetLoggerV2(&serverLog{log: o.Logger, writeFailed: writeFailed}, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		if o.Listen != "" {
			return nil, nil, fmt.Errorf("embedded NATS did not start listening on %s (is the port in use?)", o.Listen)
		}
		return nil, nil, errors.New("embedded NATS did not start within 10s")
	}
	return srv, opts, nil
}

// Conn returns the NATS connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// JetStream returns the JetStream context.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Embedded reports whether the bus runs an in-process server.
func (b *Bus) Embedded() bool { return b.srv != nil }

// ClientURL is the URL other processes can use to reach the embedded
// server (empty when it has no listener or the bus is external).
func (b *Bus) ClientURL() string {
	if b.srv == nil || b.srv.Addr() == nil {
		return ""
	}
	return b.srv.ClientURL()
}

// Check reports, for /readyz, whether the connection is up and the
// embedded server can write: an error says why not (a write failed, or the
// store's disk has too little space).
func (b *Bus) Check(context.Context) error {
	if b.nc == nil || !b.nc.IsConnected() {
		return errors.New("not connected to NATS")
	}
	if b.store != nil {
		return b.store.check()
	}
	return nil
}

// WriteErr is the embedded server's last write failure while it is not
// recovered (nil otherwise, and always for an external server): a publish
// now would wait for an answer that never comes.
func (b *Bus) WriteErr() error {
	if b.store == nil {
		return nil
	}
	return b.store.writeErr()
}

// Restarted is closed when the embedded server restarts JetStream after a
// write failure (never for an external server). Consumers made before it
// hear nothing more and must be made again; take the channel before
// making them.
func (b *Bus) Restarted() <-chan struct{} {
	if b.store == nil {
		return nil
	}
	return b.store.restarts()
}

// EnsureStream creates the stream or updates it to cfg. It is idempotent,
// so every process provisions what it uses at start. A stream asking for
// one replica gets the bus's Options.Replicas.
func (b *Bus) EnsureStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	if cfg.Replicas <= 1 && b.replicas > 1 {
		cfg.Replicas = b.replicas
	}
	// On a cluster the stream may not answer for a while (servers
	// starting, a meta leader or the stream's leader being elected after a
	// server died; its servers still joining, so a stream of three
	// replicas finds no peers to place it on): these are retried for up to
	// a minute, so a role does not end (and stop its process) over them.
	deadline := time.Now().Add(time.Minute)
	for {
		s, err := b.js.CreateOrUpdateStream(ctx, cfg)
		if err == nil {
			return s, nil
		}
		transient := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
			noPeersYet(err)
		if !transient || ctx.Err() != nil || time.Now().After(deadline) {
			return nil, fmt.Errorf("provisioning stream %s: %w", cfg.Name, err)
		}
		b.log.Warn("provisioning a stream failed for now; retrying", "stream", cfg.Name, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("provisioning stream %s: %w", cfg.Name, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// jsErrCodeClusterNoPeers is JetStream's "no suitable peers for
// placement" (NATS server error 10005).
const jsErrCodeClusterNoPeers jetstream.ErrorCode = 10005

// noPeersYet reports JetStream refusing a stream for lack of peers,
// which a cluster whose servers are still joining answers for a moment.
func noPeersYet(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrCodeClusterNoPeers
}

// Close drains the connection (pending publishes are flushed) and stops
// the embedded server. Safe to call twice.
func (b *Bus) Close() {
	b.closeOnce.Do(func() {
		if b.nc != nil {
			_ = b.nc.Drain()
			for i := 0; i < 100 && !b.nc.IsClosed(); i++ {
				time.Sleep(10 * time.Millisecond)
			}
			b.nc.Close()
		}
		if b.store != nil {
			b.store.stop()
		}
		if b.srv != nil {
			b.srv.Shutdown()
			b.srv.WaitForShutdown()
		}
	})
}

// serverLog routes the embedded server's log lines to slog, and tells
// writeFailed about errors that stop a stream from writing.
type serverLog struct {
	log         *slog.Logger
	writeFailed func(msg string)
}

func (l *serverLog) Noticef(format string, v ...any) {
	l.log.Debug("nats: " + fmt.Sprintf(format, v...))
}
func (l *serverLog) Warnf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Warn("nats: " + msg)
	if isWriteFailure(msg) {
		l.writeFailed(msg)
	}
}
func (l *serverLog) Fatalf(format string, v ...any) {
	l.log.Error("nats: " + fmt.Sprintf(format, v...))
}
func (l *serverLog) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error("nats: " + msg)
	if isWriteFailure(msg) {
		l.writeFailed(msg)
	}
}
func (l *serverLog) Debugf(format string, v ...any) {
	l.log.Debug("nats: " + fmt.Sprintf(format, v...))
}
func (l *serverLog) Tracef(format string, v ...any) {}
