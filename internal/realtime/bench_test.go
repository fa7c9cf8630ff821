package realtime_test

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
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

// BenchmarkConcurrentSends stores b.N messages sent by 512 goroutines at
// once over 5,000 private conversations (the 1:1 load's shape, without
// sockets or bus): group commit, the statements of a send, SQLite's page
// writes. Reports the process's CPU per message beside the time.
//
//	go test -run '^$' -bench ConcurrentSends/sqlite -benchtime 50000x ./internal/realtime
func BenchmarkConcurrentSends(b *testing.B) {
	for _, e := range dbtest.Engines {
		b.Run(string(e), func(b *testing.B) {
			d := dbtest.Open(b, e)
			svc := realtime.New(d, abacus.SystemClock{}, nil, nil, realtime.Config{})
			ctx := tenantCtx()
			convs := make([]string, 5000)
			for i := range convs {
				convs[i] = conversation(b, svc, realtime.KindPrivate, fmt.Sprint("a", i), fmt.Sprint("b", i))
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			cpu0, w0 := cpuTime(), writtenBytes()
			b.ResetTimer()
			for range 512 {
				wg.Go(func() {
					for {
						k := next.Add(1) - 1
						if k >= int64(b.N) {
							return
						}
						p := int(k % int64(len(convs)))
						from := fmt.Sprint("a", p)
						if (k/int64(len(convs)))%2 == 1 {
							from = fmt.Sprint("b", p)
						}
						if _, err := svc.Send(ctx, realtime.MessageInput{ConversationID: convs[p], SenderID: from,
							ClientID: fmt.Sprint(k), Text: "hello there, 32 bytes of text.."}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
			b.ReportMetric(float64(writtenBytes()-w0)/1024/float64(b.N), "written-KiB/msg")
		})
	}
}

// writtenBytes is what the process has written by write system calls
// (SQLite's WAL frames and checkpoints; PostgreSQL's are another
// process's), from /proc/self/io; 0 where that is missing.
func writtenBytes() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "wchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
