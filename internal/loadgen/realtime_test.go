package loadgen

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// startContractServer serves the bare realtime baseline (an independent
// WebSocket implementation for the generator's own client) for a test.
func startContractServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(NewBareRealtime("key"))
	t.Cleanup(srv.Close)
	return srv
}

func TestRealtimeDirectDeliversEveryMessageOnce(t *testing.T) {
	t.Parallel()
	srv := startContractServer(t)
	var log bytes.Buffer
	res, err := RunRealtime(context.Background(), RealtimeConfig{
		Scenario: ScenarioDirect, URLs: []string{srv.URL, srv.URL}, APIKey: "key", Conns: 40, Sources: 2,
		Rate: 1000, Duration: time.Second, Warmup: 200 * time.Millisecond, Log: &log,
	})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, &log)
	}
	if want := int64(800); res.Sent != want || res.SendErrs != 0 {
		t.Fatalf("sent %d (%d failed), want %d counted", res.Sent, res.SendErrs, want)
	}
	if res.Delivered != res.Sent || res.Duplicates != 0 || res.Acked != res.Sent || res.Latency.N != int(res.Sent) {
		t.Fatalf("delivered %d, duplicates %d, acked %d, latencies %d of %d sent", res.Delivered, res.Duplicates, res.Acked, res.Latency.N, res.Sent)
	}
	if res.Conns != 40 || res.Closed != 0 || res.Errors != 0 {
		t.Fatalf("conns %d, closed %d, errors %d (%s)", res.Conns, res.Closed, res.Errors, res.FirstError)
	}
	if res.Latency.P50 <= 0 || res.Latency.Max < res.Latency.P99 {
		t.Fatalf("latency %s", res.Latency.Detail())
	}
}

func TestRealtimeGroupReachesEveryMember(t *testing.T) {
	t.Parallel()
	srv := startContractServer(t)
	res, err := RunRealtime(context.Background(), RealtimeConfig{
		Scenario: ScenarioGroup, URLs: []string{srv.URL}, APIKey: "key", GroupSize: 60, Messages: 10,
		Interval: 20 * time.Millisecond, Duration: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 10 || res.Want != 10*59 || res.Delivered != res.Want || res.Duplicates != 0 || res.Acked != 10 {
		t.Fatalf("sent %d, want %d deliveries, delivered %d, duplicates %d, acked %d", res.Sent, res.Want, res.Delivered, res.Duplicates, res.Acked)
	}
	if res.FanoutLast.N != 10 || res.FanoutLast.Max < res.Latency.P50 {
		t.Fatalf("fan-out %s, latency %s", res.FanoutLast, res.Latency)
	}
}

func TestRealtimeIdleAndStormReadTheServer(t *testing.T) {
	t.Parallel()
	srv := startContractServer(t)
	res, err := RunRealtime(context.Background(), RealtimeConfig{
		Scenario: ScenarioIdle, URLs: []string{srv.URL}, APIKey: "key", Conns: 300, Hold: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The test server runs in this process: the listener's pid is ours.
	if res.Conns != 300 || res.ConnectErrs != 0 || res.ServerPID != os.Getpid() || res.ServerRSSAfter <= 0 {
		t.Fatalf("conns %d (%d failed), server pid %d (want %d), rss %d", res.Conns, res.ConnectErrs, res.ServerPID, os.Getpid(), res.ServerRSSAfter)
	}
	res, err = RunRealtime(context.Background(), RealtimeConfig{
		Scenario: ScenarioStorm, URLs: []string{srv.URL}, APIKey: "key", Conns: 300, ConnectConcurrency: 32,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Conns != 300 || res.ConnectRate <= 0 || res.Handshake.N != 300 {
		t.Fatalf("storm: %d conns at %.0f/s, handshakes %d", res.Conns, res.ConnectRate, res.Handshake.N)
	}
	// A refused token is a connect error carrying the server's answer.
	r := &rtRun{cfg: RealtimeConfig{URLs: []string{srv.URL}}, tokens: []string{"bad"}}
	_, err = DialWS(context.Background(), &net.Dialer{}, r.wsURL(0))
	var he *HandshakeError
	if !errors.As(err, &he) || he.Status != 401 || !strings.Contains(he.Body, "unauthorized") {
		t.Fatalf("bad token: %v", err)
	}
}

// TestWSClientFraming checks the generator's client against coder/websocket:
// long frames (16- and 64-bit lengths), pings and close codes.
func TestWSClientFraming(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{})
		if err != nil {
			return
		}
		c.SetReadLimit(1 << 20)
		ctx := r.Context()
		for {
			_, p, err := c.Read(ctx)
			if err != nil {
				return
			}
			switch string(p) {
			case "ping":
				go func() { // Ping returns when the loop's Read saw our pong
					if c.Ping(ctx) == nil {
						_ = c.Write(ctx, websocket.MessageText, []byte("ponged"))
					}
				}()
			case "close":
				_ = c.Close(4001, "token expired")
				return
			default:
				_ = c.Write(ctx, websocket.MessageText, p) // echo
			}
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, err := DialWS(ctx, &net.Dialer{}, "ws"+strings.TrimPrefix(srv.URL, "http"))
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Drop()
	_ = ws.c.SetDeadline(time.Now().Add(10 * time.Second))
	roundTrip := func(send string) string {
		t.Helper()
		if err := ws.WriteText([]byte(send)); err != nil {
			t.Fatal(err)
		}
		op, p, err := ws.ReadMessage()
		if err != nil || op != OpText {
			t.Fatalf("after %.20q: op %d, %v", send, op, err)
		}
		return string(p)
	}
	for _, n := range []int{0, 125, 126, 70_000} {
		s := strings.Repeat("x", n)
		if got := roundTrip(s); got != s {
			t.Fatalf("echo of %d bytes came back as %d bytes", n, len(got))
		}
	}
	if got := roundTrip("ping"); got != "ponged" {
		t.Fatalf("ping: %q", got)
	}
	_ = ws.WriteText([]byte("close"))
	_, _, err = ws.ReadMessage()
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "token expired" {
		t.Fatalf("close: %v", err)
	}
}

func TestClientIDCarriesTheDueTime(t *testing.T) {
	due := time.Unix(1_800_000_000, 123456789)
	k, got, ok := parseClientID(string(appendClientID(nil, 4711, due)))
	if !ok || k != 4711 || !got.Equal(due) {
		t.Fatalf("got %d %v %v", k, got, ok)
	}
	if _, _, ok := parseClientID("someone-else"); ok {
		t.Fatal("a foreign client id parsed")
	}
}
