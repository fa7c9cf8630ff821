package realtime_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/natsbus"
	"github.com/abacusbilling/abacus/internal/realtime"
)

const tenant = "ten_a"

func tenantCtx() context.Context {
	return abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: tenant, Kind: "api_key", ID: "key_test",
		Scopes: []abacus.Scope{abacus.ScopeAdmin}})
}

// node is one Abacus process as far as realtime goes: the realtime
// routes on a real HTTP server, its own NATS connection.
type node struct {
	url string
	svc *realtime.Service
	nc  *nats.Conn
}

// cluster is a bus (an embedded NATS server listening on TCP) and a
// database that nodes share.
type cluster struct {
	t   testing.TB
	d   *db.DB
	bus *natsbus.Bus
}

func newCluster(t testing.TB, d *db.DB) *cluster {
	t.Helper()
	bus, err := natsbus.Open(context.Background(), natsbus.Options{StoreDir: filepath.Join(t.TempDir(), "nats"), Listen: "127.0.0.1:-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	return &cluster{t: t, d: d, bus: bus}
}

// node starts a node with its own NATS connection (another process's, as
// far as NATS can tell).
func (cl *cluster) node(name string, clock abacus.Clock, cfg realtime.Config) *node {
	t := cl.t
	t.Helper()
	nc, err := nats.Connect(cl.bus.ClientURL(), nats.Name(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := httpapi.New(httpapi.Config{}, cl.d, log, prometheus.NewRegistry())
	s.SetAuthenticator(func(ctx context.Context, tok string) (*abacus.Principal, error) {
		if tok == "key" {
			return &abacus.Principal{TenantID: tenant, Kind: "api_key", ID: "key_test", Scopes: []abacus.Scope{abacus.ScopeAdmin}}, nil
		}
		return nil, abacus.Errorf(abacus.KindUnauthorized, "invalid_credentials", "bad key")
	})
	if clock == nil {
		clock = abacus.SystemClock{}
	}
	cfg.Node = name
	svc := realtime.New(cl.d, clock, log, nc, cfg)
	realtime.RegisterRoutes(s, svc)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(svc.Drain)
	return &node{url: srv.URL, svc: svc, nc: nc}
}

func (n *node) token(t testing.TB, user string) string {
	t.Helper()
	tok, err := n.svc.MintToken(tenantCtx(), realtime.TokenInput{UserID: user})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Token
}

func conversation(t testing.TB, svc *realtime.Service, kind string, members ...string) string {
	t.Helper()
	c, _, err := svc.CreateConversation(tenantCtx(), realtime.NewConversation{Kind: kind, MemberIDs: members})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// frame is a server frame, decoded loosely.
type frame map[string]any

func (f frame) typ() string { s, _ := f["type"].(string); return s }
func (f frame) str(k string) string {
	s, _ := f[k].(string)
	return s
}
func (f frame) num(k string) int64 { n, _ := f[k].(float64); return int64(n) }

// client is a WebSocket client reading every frame into a channel.
type client struct {
	t      testing.TB
	ws     *websocket.Conn
	frames chan frame
	closed chan websocket.StatusCode
	ready  frame
}

// dial connects with token and waits for the ready frame.
func dial(t testing.TB, n *node, token string) *client {
	t.Helper()
	c := dialRaw(t, n, token)
	f := c.next()
	if f.typ() != "ready" {
		t.Fatalf("first frame %v, want ready", f)
	}
	c.ready = f
	return c
}

func dialRaw(t testing.TB, n *node, token string) *client {
	t.Helper()
	return dialURL(t, n, "token="+token)
}

func dialURL(t testing.TB, n *node, query string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := strings.Replace(n.url, "http://", "ws://", 1) + "/api/v1/realtime/ws?" + query
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(1 << 20)
	c := &client{t: t, ws: ws, frames: make(chan frame, 4096), closed: make(chan websocket.StatusCode, 1)}
	go func() {
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				c.closed <- websocket.CloseStatus(err)
				close(c.frames)
				return
			}
			var f frame
			if err := json.Unmarshal(b, &f); err != nil {
				t.Errorf("server sent a frame that is not JSON: %q", b)
			}
			c.frames <- f
		}
	}()
	t.Cleanup(func() { _ = ws.CloseNow() })
	return c
}

func (c *client) send(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	c.sendRaw(websocket.MessageText, b)
}

func (c *client) sendRaw(typ websocket.MessageType, b []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, typ, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// next returns the next frame (failing after 10 s).
func (c *client) next() frame {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("connection closed (%d) while a frame was expected", <-c.closed)
		}
		return f
	case <-time.After(10 * time.Second):
		c.t.Fatal("no frame within 10s")
	}
	return nil
}

// expect returns the next frame, which must be of type typ.
func (c *client) expect(typ string) frame {
	c.t.Helper()
	f := c.next()
	if f.typ() != typ {
		c.t.Fatalf("frame %v, want type %s", f, typ)
	}
	return f
}

// closeCode waits for the server to close the connection and returns the
// code, after any frames still unread.
func (c *client) closeCode() websocket.StatusCode {
	c.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-c.frames:
			if !ok {
				return <-c.closed
			}
		case <-timeout:
			c.t.Fatal("the server did not close the connection within 10s")
		}
	}
}

// quiet checks that no frame arrives until a marker frame round-trips:
// the connection sends ping and the next frame must be the pong.
func (c *client) quiet() {
	c.t.Helper()
	c.send(map[string]any{"type": "ping"})
	c.expect("pong")
}
