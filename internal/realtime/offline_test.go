package realtime_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/realtime"
)

// notices records the offline notices a node hands to its Notify hook
// (the app turns them into notifications; its end-to-end test is
// internal/app TestOfflineRecipientGetsANotification).
type notices struct {
	mu  sync.Mutex
	got []realtime.OfflineNotice
}

func (n *notices) notify(_ context.Context, _ *db.Tx, x realtime.OfflineNotice) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, x)
	return nil
}

func (n *notices) take() []realtime.OfflineNotice {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := n.got
	n.got = nil
	return out
}

// sendAll sends texts to conv from c and waits for their acks.
func sendAll(t *testing.T, c *client, conv string, texts ...string) {
	t.Helper()
	for _, x := range texts {
		c.send(map[string]any{"type": "send", "conversation_id": conv, "client_id": x, "text": x})
	}
	for acks := 0; acks < len(texts); {
		if f := c.next(); f.typ() == "ack" {
			acks++
		} else if f.typ() == "error" {
			t.Fatalf("send refused: %v", f)
		}
	}
}

// Members with no live connection anywhere get one notice per burst of
// messages once the delay has passed, claimed by any node; a member who
// read the messages on another device before that, one who is online and
// the sender get none; a message is never notified twice.
func TestOfflineMembersAreNotifiedOnce(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		cl := newCluster(t, d)
		clock := abacus.NewFakeClock(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
		cfg := realtime.Config{OfflineDelay: 10 * time.Second}
		a, b := cl.node("rt-a", clock, cfg), cl.node("rt-b", clock, cfg)
		rec := &notices{}
		online := func(_, user string) bool { // cluster-wide presence, as the app wires it
			ca, _ := a.svc.Connections(tenantCtx(), user)
			cb, _ := b.svc.Connections(tenantCtx(), user)
			return len(ca)+len(cb) > 0
		}
		for _, n := range []*node{a, b} {
			n.svc.SetHooks(realtime.Hooks{Online: online, Notify: rec.notify})
		}
		c, _, err := a.svc.CreateConversation(tenantCtx(), realtime.NewConversation{Kind: realtime.KindGroup,
			MemberIDs: []string{"ada", "bob", "cy", "dee"}, Title: "Hike"})
		if err != nil {
			t.Fatal(err)
		}
		ada := dial(t, a, a.token(t, "ada"))
		_ = dial(t, b, b.token(t, "dee")) // online on the other node: never notified
		sendAll(t, ada, c.ID, "m1", "m2", "m3")
		// Cy reads them on another device (through the API) before the delay ends.
		if _, err := a.svc.MarkRead(tenantCtx(), c.ID, "cy", 3); err != nil {
			t.Fatal(err)
		}
		if n, err := b.svc.NotifyOffline(tenantCtx()); err != nil || n != 0 {
			t.Fatalf("before the delay: %d notified, %v", n, err)
		}
		clock.Advance(11 * time.Second)
		// Node b claims what node a marked (a could have died meanwhile).
		if n, err := b.svc.NotifyOffline(tenantCtx()); err != nil || n != 1 {
			t.Fatalf("after the delay: %d notified, %v", n, err)
		}
		got := rec.take()
		if len(got) != 1 || got[0].UserID != "bob" || got[0].Count != 3 || got[0].Last.Seq != 3 || got[0].Last.Text != "m3" ||
			got[0].Title != "Hike" || got[0].ConversationKind != realtime.KindGroup || got[0].TenantID != tenant {
			t.Fatalf("notices %+v, want one to bob of 3 messages up to m3", got)
		}
		for _, n := range []*node{a, b} {
			if k, err := n.svc.NotifyOffline(tenantCtx()); err != nil || k != 0 {
				t.Fatalf("a second round notified %d (%v)", k, err)
			}
		}
		// A new message: bob and cy are told of it alone.
		sendAll(t, ada, c.ID, "m4")
		clock.Advance(11 * time.Second)
		if n, err := a.svc.NotifyOffline(tenantCtx()); err != nil || n != 2 {
			t.Fatalf("m4: %d notified, %v", n, err)
		}
		got = rec.take()
		users := map[string]bool{}
		for _, x := range got {
			if x.Count != 1 || x.Last.Seq != 4 {
				t.Fatalf("notice %+v, want m4 alone", x)
			}
			users[x.UserID] = true
		}
		if len(users) != 2 || !users["bob"] || !users["cy"] {
			t.Fatalf("notified %v, want bob and cy", users)
		}
		// Bob comes online before the next one is due: not notified.
		sendAll(t, ada, c.ID, "m5")
		_ = dial(t, a, a.token(t, "bob"))
		clock.Advance(11 * time.Second)
		if _, err := b.svc.NotifyOffline(tenantCtx()); err != nil {
			t.Fatal(err)
		}
		for _, x := range rec.take() {
			if x.UserID != "cy" {
				t.Fatalf("notice %+v: only cy is offline", x)
			}
		}
	})
}

// A connection the Connect hook admitted ends with Disconnect even when a
// later step fails (here: subscribing on the bus, its connection gone),
// so what Connect counted (presence, metrics) is undone.
func TestDisconnectFollowsEveryAdmittedConnect(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.SQLite)
	cl := newCluster(t, d)
	n := cl.node("rt-a", nil, realtime.Config{})
	var mu sync.Mutex
	live := 0
	ended := make(chan int, 4)
	n.svc.SetHooks(realtime.Hooks{
		Connect: func(context.Context, realtime.ConnInfo) error {
			mu.Lock()
			live++
			mu.Unlock()
			n.nc.Close() // registering fails: the node cannot subscribe
			return nil
		},
		Disconnect: func(_ realtime.ConnInfo, code int) {
			mu.Lock()
			live--
			mu.Unlock()
			ended <- code
		},
	})
	c := dialRaw(t, n, n.token(t, "ada"))
	if code := c.closeCode(); code != realtime.CloseServiceRestart {
		t.Fatalf("close %d, want %d", code, realtime.CloseServiceRestart)
	}
	select {
	case code := <-ended:
		if code != int(websocket.StatusServiceRestart) {
			t.Fatalf("Disconnect with %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Disconnect was not called")
	}
	mu.Lock()
	defer mu.Unlock()
	if live != 0 {
		t.Fatalf("%d connections still counted", live)
	}
}
