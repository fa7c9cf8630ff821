package loadgen

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// BenchmarkWSClientMemory compares the memory per open, idle connection
// of the generator's client with coder/websocket's, both with a reader
// goroutine per connection (as the generator runs them), against the
// same in-process coder/websocket server: the server's share is the same
// in both, so the difference is the clients'. The figures are heap and
// stack in use (runtime.MemStats) after a GC, per connection.
//
//	go test ./internal/loadgen -run '^$' -bench WSClientMemory -benchtime 1x
func BenchmarkWSClientMemory(b *testing.B) {
	const n = 2000
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		_, _, _ = c.Read(r.Context())
	}))
	defer srv.Close()
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http")
	inUse := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse + m.StackInuse
	}
	measure := func(b *testing.B, open func() (closeFn func())) {
		for range b.N {
			before := inUse()
			closers := make([]func(), 0, n)
			for range n {
				closers = append(closers, open())
			}
			time.Sleep(200 * time.Millisecond) // let the server's handlers park in Read
			after := inUse()
			b.ReportMetric(float64(after-before)/n/1024, "KiB/conn")
			for _, c := range closers {
				c()
			}
		}
	}
	ctx := context.Background()
	b.Run("raw", func(b *testing.B) {
		measure(b, func() func() {
			ws, err := DialWS(ctx, &net.Dialer{}, wsURL)
			if err != nil {
				b.Fatal(err)
			}
			go func() { _, _, _ = ws.ReadMessage() }()
			return func() { _ = ws.Drop() }
		})
	})
	b.Run("coder", func(b *testing.B) {
		measure(b, func() func() {
			c, _, err := websocket.Dial(ctx, wsURL, nil)
			if err != nil {
				b.Fatal(err)
			}
			go func() { _, _, _ = c.Read(ctx) }()
			return func() { _ = c.CloseNow() }
		})
	})
}
