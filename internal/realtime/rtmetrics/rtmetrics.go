// Package rtmetrics holds the realtime gateway's Prometheus metrics, one
// set per node (the node name is a constant label, so a scrape of each
// node, or of every node behind one Prometheus, tells them apart).
package rtmetrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// CloseSlowConsumer is the close code of a connection dropped because it
// let its send queue fill (docs/realtime.md).
const CloseSlowConsumer = 4009

// Metrics are the gateway's counters of one node.
type Metrics struct {
	live        prometheus.Gauge
	connects    prometheus.Counter
	disconnects *prometheus.CounterVec
	in, out     prometheus.Counter
	latency     prometheus.Histogram
	slow        prometheus.Counter
}

// New registers the metrics on reg.
func New(reg prometheus.Registerer, node string) *Metrics {
	l := prometheus.Labels{"node": node}
	m := &Metrics{
		live: prometheus.NewGauge(prometheus.GaugeOpts{Name: "abacus_realtime_connections", ConstLabels: l,
			Help: "Live WebSocket connections on this node."}),
		connects: prometheus.NewCounter(prometheus.CounterOpts{Name: "abacus_realtime_connects_total", ConstLabels: l,
			Help: "WebSocket connections accepted (authenticated and registered)."}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "abacus_realtime_disconnects_total", ConstLabels: l,
			Help: "WebSocket connections ended, by close code (0: the socket broke with no close frame)."}, []string{"code"}),
		in: prometheus.NewCounter(prometheus.CounterOpts{Name: "abacus_realtime_messages_in_total", ConstLabels: l,
			Help: "Messages accepted and stored by this node (retries of a stored message not counted)."}),
		out: prometheus.NewCounter(prometheus.CounterOpts{Name: "abacus_realtime_messages_out_total", ConstLabels: l,
			Help: "Message frames written to this node's sockets."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "abacus_realtime_delivery_seconds", ConstLabels: l,
			Help:    "From a message's acceptance (on any node) to its frame written to a recipient's socket on this node.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}),
		slow: prometheus.NewCounter(prometheus.CounterOpts{Name: "abacus_realtime_slow_consumer_disconnects_total", ConstLabels: l,
			Help: "Connections closed because their send queue was full (close 4009)."}),
	}
	reg.MustRegister(m.live, m.connects, m.disconnects, m.in, m.out, m.latency, m.slow)
	return m
}

// Connected counts a registered connection.
func (m *Metrics) Connected() {
	m.connects.Inc()
	m.live.Inc()
}

// Disconnected counts a registered connection that ended with code.
func (m *Metrics) Disconnected(code int) {
	m.live.Dec()
	m.disconnects.WithLabelValues(strconv.Itoa(code)).Inc()
	if code == CloseSlowConsumer {
		m.slow.Inc()
	}
}

// Received counts a message stored by this node.
func (m *Metrics) Received() { m.in.Inc() }

// Delivered counts a message frame written at now, accepted at accepted.
func (m *Metrics) Delivered(accepted, now time.Time) {
	m.out.Inc()
	m.latency.Observe(max(now.Sub(accepted), 0).Seconds())
}
