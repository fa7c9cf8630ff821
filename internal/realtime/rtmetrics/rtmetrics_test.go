package rtmetrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetricsCountPerNode(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, "rt-1")
	m.Connected()
	m.Connected()
	m.Disconnected(CloseSlowConsumer)
	m.Received()
	now := time.Now()
	m.Delivered(now.Add(-3*time.Millisecond), now)
	want := `
# HELP abacus_realtime_connections Live WebSocket connections on this node.
# TYPE abacus_realtime_connections gauge
abacus_realtime_connections{node="rt-1"} 1
# HELP abacus_realtime_slow_consumer_disconnects_total Connections closed because their send queue was full (close 4009).
# TYPE abacus_realtime_slow_consumer_disconnects_total counter
abacus_realtime_slow_consumer_disconnects_total{node="rt-1"} 1
# HELP abacus_realtime_disconnects_total WebSocket connections ended, by close code (0: the socket broke with no close frame).
# TYPE abacus_realtime_disconnects_total counter
abacus_realtime_disconnects_total{code="4009",node="rt-1"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "abacus_realtime_connections",
		"abacus_realtime_slow_consumer_disconnects_total", "abacus_realtime_disconnects_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.latency); n != 1 {
		t.Fatalf("latency series %d", n)
	}
	if v := testutil.ToFloat64(m.out); v != 1 {
		t.Fatalf("messages out %v", v)
	}
}
