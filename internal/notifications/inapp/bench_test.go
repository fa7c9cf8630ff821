package inapp_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/enduser"
	"github.com/abacusbilling/abacus/internal/natsbus"
	"github.com/abacusbilling/abacus/internal/notifications"
	"github.com/abacusbilling/abacus/internal/notifications/inapp"
)

// BenchmarkLiveDelivery measures one in-app delivery from the channel's
// Deliver on one node (store the item, publish on NATS) to the event read
// by an SSE client of another node, one at a time; it reports the p50 and
// p99 of that latency.
//
//	go test -run - -bench LiveDelivery -benchtime 2000x ./internal/notifications/inapp/
func BenchmarkLiveDelivery(b *testing.B) {
	for _, e := range dbtest.Engines {
		b.Run(string(e), func(b *testing.B) {
			d := dbtest.Open(b, e)
			bus, err := natsbus.Open(context.Background(), natsbus.Options{StoreDir: filepath.Join(b.TempDir(), "nats"), Listen: "127.0.0.1:-1"})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(bus.Close)
			other, err := nats.Connect(bus.ClientURL())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(other.Close)
			eu := enduser.NewService(d, abacus.SystemClock{}, nil, enduser.WithBaseURL("https://abacus.test"))
			userID, token := endUser(b, d, eu)
			a := newNode(b, d, abacus.SystemClock{}, eu, bus.Conn(), inapp.Config{})
			n := newNode(b, d, abacus.SystemClock{}, eu, other, inapp.Config{})
			events := open(b, n.url, token, "")
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				err := a.inbox.Deliver(context.Background(), notifications.Delivery{ID: fmt.Sprintf("dlv_%d", i), NotificationID: "ntf_x",
					TenantID: tenant, Channel: notifications.ChannelInApp, Template: "t.x", Category: "general",
					To: notifications.Recipient{Kind: notifications.RecipientEndUser, ID: userID}, Subject: "hello", Text: "body"})
				if err != nil {
					b.Fatal(err)
				}
				select {
				case <-events:
				case <-time.After(30 * time.Second):
					b.Fatal("no event")
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
