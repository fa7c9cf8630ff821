package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSNode is one nats-server of a JetStream cluster on this machine.
type NATSNode struct {
	Name     string   // server name, unique in the cluster
	Client   string   // host:port for clients
	Cluster  string   // host:port for the other servers (routes)
	Routes   []string // the other servers' Cluster addresses
	StoreDir string   // JetStream's directory
}

// ClientURL is the node's nats:// URL.
func (n NATSNode) ClientURL() string { return "nats://" + n.Client }

// RunNATS runs the node in this process until ctx ends, then stops it in
// lame-duck mode (about 2 s). It is what
// `abacus dev nats` runs, so a cluster needs no nats-server binary; the
// server is the one go.mod pins.
func RunNATS(ctx context.Context, n NATSNode, logf func(format string, args ...any)) error {
	host, port, err := splitHostPort(n.Client)
	if err != nil {
		return fmt.Errorf("client address: %w", err)
	}
	chost, cport, err := splitHostPort(n.Cluster)
	if err != nil {
		return fmt.Errorf("cluster address: %w", err)
	}
	var routes []string
	for _, r := range n.Routes {
		routes = append(routes, "nats://"+r)
	}
	opts := &server.Options{
		ServerName: n.Name, Host: host, Port: port,
		JetStream: true, StoreDir: n.StoreDir,
		MaxPayload: 8 << 20, JetStreamMaxMemory: 256 << 20, JetStreamMaxStore: 8 << 30,
		NoSigs: true,
		// Stopping goes through lame-duck mode: stream and consumer
		// leaders move to the other servers first, then clients are
		// closed over a few seconds and reconnect elsewhere.
		LameDuckDuration: 2 * time.Second, LameDuckGracePeriod: 500 * time.Millisecond,
		Cluster: server.ClusterOpts{Name: "abacus", Host: chost, Port: cport},
		Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("nats-server %s: %w", n.Name, err)
	}
	if logf != nil {
		srv.SetLoggerV2(printfLogger(logf), false, false, false)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return errors.New("nats-server " + n.Name + " did not start listening within 30s (is a port in use?)")
	}
	<-ctx.Done()
	srv.LameDuckShutdown()
	srv.WaitForShutdown()
	return nil
}

func splitHostPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("port %q is not a number", p)
	}
	return h, n, nil
}

type printfLogger func(format string, args ...any)

func (l printfLogger) Noticef(f string, v ...any) { l("[INF] "+f, v...) }
func (l printfLogger) Warnf(f string, v ...any)   { l("[WRN] "+f, v...) }
func (l printfLogger) Fatalf(f string, v ...any)  { l("[FTL] "+f, v...) }
func (l printfLogger) Errorf(f string, v ...any)  { l("[ERR] "+f, v...) }
func (l printfLogger) Debugf(string, ...any)      {}
func (l printfLogger) Tracef(string, ...any)      {}
