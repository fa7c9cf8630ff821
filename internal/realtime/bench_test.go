package realtime_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/realtime"
)

// BenchmarkCrossNodeRoundTrip measures one message at a time from a
// sender on node a to a recipient on node b (two gateways sharing the
// database and an embedded NATS server, real WebSockets on 127.0.0.1):
// send frame written → message frame read by the recipient, which
// includes the transaction that stores it. Reports the median and p99,
// and as a baseline a ping/pong on one gateway measured in the same run.
//
//	go test -run '^$' -bench CrossNodeRoundTrip -benchtime 2000x ./internal/realtime
func BenchmarkCrossNodeRoundTrip(b *testing.B) {
	for _, e := range dbtest.Engines {
		b.Run(string(e), func(b *testing.B) {
			d := dbtest.Open(b, e)
			cl := newCluster(b, d)
			na := cl.node("rt-a", nil, realtime.Config{RatePerSecond: 1e6, RateBurst: 1e6})
			nb := cl.node("rt-b", nil, realtime.Config{RatePerSecond: 1e6, RateBurst: 1e6})
			conv := conversation(b, na.svc, realtime.KindPrivate, "ada", "bob")
			ada := dial(b, na, na.token(b, "ada"))
			bob := dial(b, nb, nb.token(b, "bob"))
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				ada.send(map[string]any{"type": "send", "conversation_id": conv, "client_id": fmt.Sprint(i), "text": "hello there"})
				if f := bob.next(); f.typ() != "message" {
					b.Fatalf("frame %v", f)
				}
				lat = append(lat, time.Since(start))
				ada.next() // ack
				ada.next() // own message
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			// Baseline in the same run: a ping frame answered by the same
			// gateway (socket, frame handling and scheduling; no database,
			// no bus).
			base := make([]time.Duration, 0, b.N)
			for range b.N {
				start := time.Now()
				bob.send(map[string]any{"type": "ping"})
				if f := bob.next(); f.typ() != "pong" {
					b.Fatalf("frame %v", f)
				}
				base = append(base, time.Since(start))
			}
			slices.Sort(base)
			b.ReportMetric(float64(base[len(base)/2].Microseconds()), "ping-p50-µs")
			b.ReportMetric(float64(base[len(base)*99/100].Microseconds()), "ping-p99-µs")
		})
	}
}
