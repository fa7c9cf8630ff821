package presence

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/abacusbilling/abacus/internal/natsbus"
)

// changes records a node's OnChange calls.
type changes struct {
	mu  sync.Mutex
	got []string
}

func (c *changes) on(tenant, user string, online bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, fmt.Sprintf("%s/%s %v", tenant, user, online))
}

func (c *changes) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...)
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	end := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPresenceAcrossNodesAndANodeThatDies(t *testing.T) {
	t.Parallel()
	bus, err := natsbus.Open(context.Background(), natsbus.Options{StoreDir: t.TempDir(), Name: "presence-test", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	node := func(id string, ch *changes) (*Tracker, *nats.Conn) {
		nc, err := nats.Connect(bus.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		tr, err := New(nc, Config{Node: id, Heartbeat: 50 * time.Millisecond, OnChange: ch.on}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tr.Close)
		return tr, nc
	}
	var ca, cb changes
	a, _ := node("a", &ca)
	b, ncB := node("b", &cb)

	// Two devices of alice on a: online once, everywhere; offline only
	// when the second closes.
	a.Connected("t1", "alice")
	a.Connected("t1", "alice")
	eventually(t, "b sees alice's two devices", func() bool { return b.Devices("t1", []string{"alice", "bob"}) == 2 })
	if !b.Online("t1", "alice") {
		t.Fatal("two devices, not online")
	}
	if b.Online("t2", "alice") || b.OnlineHere("t1", "alice") || !a.OnlineHere("t1", "alice") {
		t.Fatal("presence leaked across tenants or nodes")
	}
	a.Disconnected("t1", "alice")
	time.Sleep(150 * time.Millisecond) // three heartbeats: nothing may change
	if !b.Online("t1", "alice") {
		t.Fatal("alice went offline with a device still connected")
	}
	a.Disconnected("t1", "alice")
	eventually(t, "b sees alice offline", func() bool { return !b.Online("t1", "alice") })

	// A node that joins late learns the others' users from a snapshot.
	b.Connected("t1", "bob")
	var cc changes
	c, _ := node("c", &cc)
	eventually(t, "c sees bob", func() bool { return c.Online("t1", "bob") })

	// bob on b and on c: b dies without a word (its connection to NATS
	// drops, no heartbeat); bob stays online through c.
	c.Connected("t1", "bob")
	b.Connected("t1", "carol")
	eventually(t, "a sees carol", func() bool { return a.Online("t1", "carol") })
	ncB.Close()
	died := time.Now()
	eventually(t, "a sees carol offline after b died", func() bool { return !a.Online("t1", "carol") })
	if el := time.Since(died); el > 2*time.Second {
		t.Fatalf("carol went offline %s after her node died", el)
	}
	if !a.Online("t1", "bob") || !c.Online("t1", "bob") || a.Devices("t1", []string{"bob"}) != 1 {
		t.Fatal("bob went offline with a device still connected on c")
	}
	// The listing of bob's connections gathers every live node's.
	for _, tr := range []*Tracker{a, c} {
		id := tr.cfg.Node
		if err := tr.ServeConnections(func(tenant, user string) []json.RawMessage {
			if tenant == "t1" && user == "bob" && id == "c" {
				return []json.RawMessage{json.RawMessage(`{"node":"c"}`)}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := a.GatherConnections(context.Background(), "t1", "bob")
	if err != nil || len(got) != 1 || string(got[0]) != `{"node":"c"}` {
		t.Fatalf("bob's connections: %s, %v", got, err)
	}
	// Each change is announced once: by the node where it happened, and
	// for the dead node's users by the live node with the smallest id.
	eventually(t, "a announces carol offline", func() bool { return len(ca.list()) == 3 })
	if got, want := ca.list(), []string{"t1/alice true", "t1/alice false", "t1/carol false"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("a announced %v, want %v", got, want)
	}
	if got, want := cb.list(), []string{"t1/bob true", "t1/carol true"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("b announced %v, want %v", got, want)
	}
	if got := cc.list(); len(got) != 0 {
		t.Fatalf("c announced %v (bob was online through b already)", got)
	}
}
