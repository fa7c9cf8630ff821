package realtime_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/realtime"
)

// messages reads n frames that must all be message frames of conv and
// returns their seqs, failing on any other frame.
func (c *client) messages(conv string, n int) []frame {
	c.t.Helper()
	out := make([]frame, 0, n)
	for len(out) < n {
		f := c.next()
		if f.typ() != "message" || f.str("conversation_id") != conv {
			c.t.Fatalf("frame %v, want a message of %s (%d of %d received)", f, conv, len(out), n)
		}
		out = append(out, f)
	}
	return out
}

// inOrder checks that frames carry seqs from, from+1, … with no gap or
// duplicate.
func inOrder(t *testing.T, fs []frame, from int64) {
	t.Helper()
	for i, f := range fs {
		if f.num("seq") != from+int64(i) {
			seqs := make([]int64, len(fs))
			for j, g := range fs {
				seqs[j] = g.num("seq")
			}
			t.Fatalf("seqs %v, want %d, %d, … in order", seqs, from, from+1)
		}
	}
}

// Two users on two nodes exchange private and group messages: every
// message reaches every connection of every member once, in seq order,
// the sender gets an ack with the seq, a retried send is stored once, read
// receipts reach the members, and typing reaches the others only.
func TestTwoNodesExchangeMessages(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		cl := newCluster(t, d)
		a := cl.node("rt-a", nil, realtime.Config{})
		b := cl.node("rt-b", nil, realtime.Config{})
		private := conversation(t, a.svc, realtime.KindPrivate, "ada", "bob")
		group := conversation(t, a.svc, realtime.KindGroup, "ada", "bob", "cy")

		ada1 := dial(t, a, a.token(t, "ada")) // Ada's phone on node a
		ada2 := dial(t, b, b.token(t, "ada")) // and her laptop on node b
		bob := dial(t, b, a.token(t, "bob"))  // any node verifies any node's token
		cy := dial(t, a, b.token(t, "cy"))
		if ada1.ready.str("node") != "rt-a" || ada2.ready.str("node") != "rt-b" || bob.ready.str("user_id") != "bob" {
			t.Fatalf("ready frames %v %v %v", ada1.ready, ada2.ready, bob.ready)
		}

		// Private: pipelined sends, acked in order with seqs 1…n.
		const n = 20
		for i := range n {
			ada1.send(map[string]any{"type": "send", "conversation_id": private, "client_id": fmt.Sprintf("p%d", i), "text": fmt.Sprintf("hi %d", i)})
		}
		acks, echoed := 0, []frame{}
		for acks < n || len(echoed) < n {
			f := ada1.next()
			switch f.typ() {
			case "ack":
				acks++
				if f.str("client_id") != fmt.Sprintf("p%d", acks-1) || f.num("seq") != int64(acks) || f.str("conversation_id") != private {
					t.Fatalf("ack %v, want p%d seq %d", f, acks-1, acks)
				}
			case "message":
				echoed = append(echoed, f)
			default:
				t.Fatalf("unexpected %v", f)
			}
		}
		inOrder(t, echoed, 1)
		got := bob.messages(private, n)
		inOrder(t, got, 1)
		if got[3].str("sender_id") != "ada" || got[3].str("client_id") != "p3" || got[3].str("text") != "hi 3" {
			t.Fatalf("message frame %v", got[3])
		}
		inOrder(t, ada2.messages(private, n), 1) // her other device

		// A retried send is acked with the same seq and stored once.
		ada1.send(map[string]any{"type": "send", "conversation_id": private, "client_id": "p5", "text": "hi 5"})
		if f := ada1.expect("ack"); f.num("seq") != 6 || f["duplicate"] != true {
			t.Fatalf("retry ack %v", f)
		}
		bob.send(map[string]any{"type": "send", "conversation_id": private, "client_id": "b1", "text": "hello"})
		if f := bob.expect("ack"); f.num("seq") != n+1 {
			t.Fatalf("bob's ack %v, want seq %d", f, n+1)
		}
		if f := bob.expect("message"); f.num("seq") != n+1 {
			t.Fatalf("bob's own message %v", f)
		}
		// Ada's connections may get the retried seq 6 again on the bus;
		// the connection drops it: the next message is n+1.
		for _, c := range []*client{ada1, ada2} {
			if f := c.expect("message"); f.num("seq") != n+1 || f.str("sender_id") != "bob" {
				t.Fatalf("after the retry: %v, want bob's seq %d", f, n+1)
			}
		}
		hist, err := a.svc.History(tenantCtx(), private, realtime.HistoryQuery{})
		if err != nil || len(hist.Data) != n+1 || hist.Data[0].Seq != n+1 {
			t.Fatalf("history %d messages, err %v", len(hist.Data), err)
		}

		// Group: Ada on node a and Bob on node b send at once; every
		// member's connection sees 1…2m once, in order.
		const m = 15
		var wg sync.WaitGroup
		for _, c := range []*client{ada1, bob} {
			wg.Go(func() {
				for i := range m {
					c.send(map[string]any{"type": "send", "conversation_id": group, "client_id": fmt.Sprintf("g%d", i), "text": "x"})
				}
			})
		}
		wg.Wait()
		for _, c := range []*client{ada2, cy} {
			inOrder(t, c.messages(group, 2*m), 1)
		}
		for _, c := range []*client{ada1, bob} {
			var msgs []frame
			for acks := 0; acks < m || len(msgs) < 2*m; {
				f := c.next()
				switch f.typ() {
				case "ack":
					acks++
				case "message":
					msgs = append(msgs, f)
				default:
					t.Fatalf("unexpected %v", f)
				}
			}
			inOrder(t, msgs, 1)
		}

		// Read receipts: Bob read the group up to 2m.
		bob.send(map[string]any{"type": "read", "conversation_id": group, "seq": 2 * m})
		for _, c := range []*client{ada1, ada2, bob, cy} {
			if f := c.expect("receipt"); f.str("user_id") != "bob" || f.num("seq") != 2*m || f.str("conversation_id") != group {
				t.Fatalf("receipt %v", f)
			}
		}
		list, err := a.svc.ListConversations(tenantCtx(), realtime.ConversationFilter{MemberID: "bob", Kind: realtime.KindGroup})
		if err != nil || len(list.Data) != 1 || list.Data[0].Membership.LastReadSeq != 2*m || list.Data[0].Membership.Unread != 0 {
			t.Fatalf("bob's groups %+v, err %v", list.Data, err)
		}
		list, _ = a.svc.ListConversations(tenantCtx(), realtime.ConversationFilter{MemberID: "cy"})
		if len(list.Data) != 1 || list.Data[0].Membership.Unread != 2*m {
			t.Fatalf("cy's conversations %+v", list.Data)
		}

		// Typing reaches the other members, not the typist's devices.
		ada1.send(map[string]any{"type": "typing", "conversation_id": group})
		for _, c := range []*client{bob, cy} {
			if f := c.expect("typing"); f.str("user_id") != "ada" || f.str("conversation_id") != group {
				t.Fatalf("typing %v", f)
			}
		}
		ada1.quiet()
		ada2.quiet()
		// In a private conversation, only the other one.
		bob.send(map[string]any{"type": "typing", "conversation_id": private})
		ada2.expect("typing")
		ada1.expect("typing")
		cy.quiet()
		bob.quiet()
	})
}

// A client that disconnects mid-conversation and reconnects (to another
// node) resumes from the last seq it saw: it gets what it missed, in
// order, then live messages, with no gap and no duplicate.
func TestReconnectResumes(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		cl := newCluster(t, d)
		a := cl.node("rt-a", nil, realtime.Config{ResumePage: 4}) // several pages
		b := cl.node("rt-b", nil, realtime.Config{ResumePage: 4})
		conv := conversation(t, a.svc, realtime.KindGroup, "ada", "bob")
		ada := dial(t, a, a.token(t, "ada"))
		bob := dial(t, b, b.token(t, "bob"))
		send := func(from, to int) {
			for i := from; i < to; i++ {
				ada.send(map[string]any{"type": "send", "conversation_id": conv, "client_id": fmt.Sprint(i), "text": fmt.Sprint(i)})
				ada.expect("ack")
				ada.expect("message")
			}
		}
		send(1, 4)
		inOrder(t, bob.messages(conv, 3), 1)
		_ = bob.ws.CloseNow() // mid-conversation
		send(4, 15)

		// Back, on the other node, resuming in the URL: the missed
		// messages come first, in order, then live ones.
		bob = dialURL(t, a, "token="+a.token(t, "bob")+"&resume="+conv+":3")
		if bob.next().typ() != "ready" {
			t.Fatal("no ready frame")
		}
		send(15, 18)
		var got []frame
		for resumed := false; !resumed || len(got) < 14; {
			f := bob.next()
			switch {
			case f.typ() == "resumed" && f.num("seq") >= 14:
				resumed = true
			case f.typ() == "message":
				got = append(got, f)
			default:
				t.Fatalf("unexpected %v", f)
			}
		}
		inOrder(t, got, 4)
		bob.quiet()

		// Resuming with a frame while messages keep coming: each seq
		// arrives once (a live one may come before the resume's).
		_ = bob.ws.CloseNow()
		send(18, 21)
		bob = dial(t, b, b.token(t, "bob"))
		var wg sync.WaitGroup
		wg.Go(func() { send(21, 26) })
		bob.send(map[string]any{"type": "resume", "conversation_id": conv, "after_seq": 17})
		wg.Wait()
		seen := map[int64]int{}
		for resumed := false; !resumed || len(seen) < 8; {
			f := bob.next()
			switch f.typ() {
			case "resumed":
				resumed = true
			case "message":
				seen[f.num("seq")]++
			default:
				t.Fatalf("unexpected %v", f)
			}
		}
		for s := int64(18); s <= 25; s++ {
			if seen[s] != 1 {
				t.Fatalf("seq %d arrived %d times (%v)", s, seen[s], seen)
			}
		}
		bob.quiet()

		// Resuming from 0 on a fresh connection replays the whole history.
		again := dial(t, b, b.token(t, "bob"))
		again.send(map[string]any{"type": "resume", "conversation_id": conv, "after_seq": 0})
		inOrder(t, again.messages(conv, 25), 1)
		if f := again.expect("resumed"); f.num("seq") != 25 {
			t.Fatalf("resumed %v", f)
		}
	})
}
