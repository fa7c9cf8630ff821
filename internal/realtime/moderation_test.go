package realtime_test

import (
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/realtime"
)

// Moderation over real WebSockets on two nodes: a block stops messages
// between two users both ways (error blocked) and unblocking restores
// them; a muted conversation is not notified while the member is
// offline; a report reaches staff's list and resolving it with
// delete_message makes the message a tombstone for the members; staff
// disconnect a user on every node with 4011.
func TestModeration(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		cl := newCluster(t, d)
		clock := abacus.NewFakeClock(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
		a, b := cl.node("rt-a", clock, realtime.Config{}), cl.node("rt-b", clock, realtime.Config{})
		rec := &notices{}
		online := func(_, user string) bool {
			ca, _ := a.svc.Connections(tenantCtx(), user)
			cb, _ := b.svc.Connections(tenantCtx(), user)
			return len(ca)+len(cb) > 0
		}
		for _, n := range []*node{a, b} {
			n.svc.SetHooks(realtime.Hooks{Online: online, Notify: rec.notify})
		}
		private := conversation(t, a.svc, realtime.KindPrivate, "ada", "eve")
		group := conversation(t, a.svc, realtime.KindGroup, "ada", "eve", "cy")
		ada := dial(t, a, a.token(t, "ada"))
		eve := dial(t, b, b.token(t, "eve"))

		ada.send(map[string]any{"type": "block", "user_id": "eve"})
		if f := ada.expect("blocked"); f.str("user_id") != "eve" || f["blocked"] != true {
			t.Fatalf("blocked frame %v", f)
		}
		eve.send(map[string]any{"type": "send", "conversation_id": private, "client_id": "e1", "text": "hi"})
		if f := eve.expect("error"); f.str("code") != "blocked" || f.str("client_id") != "e1" {
			t.Fatalf("eve's send to ada: %v", f)
		}
		ada.send(map[string]any{"type": "send", "conversation_id": private, "client_id": "a1", "text": "hi"})
		if f := ada.expect("error"); f.str("code") != "blocked" {
			t.Fatalf("ada's send to eve: %v", f)
		}
		ada.send(map[string]any{"type": "unblock", "user_id": "eve"})
		ada.expect("blocked")
		ada.send(map[string]any{"type": "send", "conversation_id": private, "client_id": "a2", "text": "ok now"})
		ada.expect("ack")
		ada.messages(private, 1)
		eve.messages(private, 1)

		// Cy mutes the group: no notice while offline; then reports.
		cy := dial(t, a, a.token(t, "cy"))
		cy.send(map[string]any{"type": "mute", "conversation_id": group})
		if f := cy.expect("muted"); f.str("until") == "" {
			t.Fatalf("muted frame %v", f)
		}
		eve.send(map[string]any{"type": "send", "conversation_id": group, "client_id": "spam-1", "text": "cheap watches"})
		eve.expect("ack")
		eve.messages(group, 1)
		ada.messages(group, 1)
		cy.messages(group, 1)
		cy.send(map[string]any{"type": "report", "conversation_id": group, "seq": 1, "reason": "spam"})
		rep := cy.expect("reported")
		if rep.str("report_id") == "" || rep.num("seq") != 1 {
			t.Fatalf("reported frame %v", rep)
		}
		_ = cy.ws.CloseNow()
		for online("", "cy") { // the node notices the closed socket
			time.Sleep(10 * time.Millisecond)
		}
		eve.send(map[string]any{"type": "send", "conversation_id": group, "client_id": "spam-2", "text": "more watches"})
		eve.expect("ack")
		clock.Advance(time.Minute)
		if _, err := a.svc.NotifyOffline(tenantCtx()); err != nil {
			t.Fatal(err)
		}
		if got := rec.take(); len(got) != 0 {
			t.Fatalf("notices %+v: cy muted the group", got)
		}

		list, err := a.svc.ListReports(tenantCtx(), realtime.ReportOpen, 10, "")
		if err != nil || len(list.Data) != 1 || list.Data[0].SenderID != "eve" || list.Data[0].Text != "cheap watches" ||
			list.Data[0].ID != rep.str("report_id") {
			t.Fatalf("open reports %+v, %v", list, err)
		}
		r, err := b.svc.ResolveReport(tenantCtx(), list.Data[0].ID, realtime.MessageReportResolution{Status: realtime.ReportResolved,
			Resolution: "spam removed", DeleteMessage: true})
		if err != nil || r.Status != realtime.ReportResolved || r.ResolvedAt == nil {
			t.Fatalf("resolve: %+v %v", r, err)
		}
		for {
			f := ada.next()
			if f.typ() == "message_updated" {
				if m := f["message"].(map[string]any); m["seq"] != 1.0 || m["deleted"] != true {
					t.Fatalf("update %v", f)
				}
				break
			}
		}
		if open, _ := a.svc.ListReports(tenantCtx(), realtime.ReportOpen, 10, ""); len(open.Data) != 0 {
			t.Fatalf("still open: %+v", open.Data)
		}

		// Staff disconnect eve, connected to node b, from node a.
		if err := a.svc.DisconnectUser(tenantCtx(), "eve"); err != nil {
			t.Fatal(err)
		}
		if code := eve.closeCode(); code != realtime.CloseRemoved {
			t.Fatalf("eve closed with %d, want 4011", code)
		}
	})
}
