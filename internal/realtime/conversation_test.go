package realtime_test

import (
	"fmt"
	"testing"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/realtime"
)

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	e, ok := abacus.AsError(err)
	if !ok || e.Code != code {
		t.Fatalf("error %v, want %s", err, code)
	}
}

// Private conversations exist once per pair; groups have dynamic
// membership with roles and a member limit, and members hear of every
// change; edits, deletes and reactions reach the members; another tenant
// sees none of it.
func TestConversationsAndMembership(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		cl := newCluster(t, d)
		n := cl.node("rt-a", nil, realtime.Config{})
		svc, ctx := n.svc, tenantCtx()

		p1, created, err := svc.CreateConversation(ctx, realtime.NewConversation{Kind: realtime.KindPrivate, MemberIDs: []string{"a.b@x", "zed"}})
		if err != nil || !created {
			t.Fatal(err)
		}
		p2, created, err := svc.CreateConversation(ctx, realtime.NewConversation{Kind: realtime.KindPrivate, MemberIDs: []string{"zed", "a.b@x"}})
		if err != nil || created || p2.ID != p1.ID {
			t.Fatalf("second create: %v %v %v", p2.ID, created, err)
		}
		_, _, err = svc.CreateConversation(ctx, realtime.NewConversation{Kind: realtime.KindPrivate, MemberIDs: []string{"zed", "zed"}})
		wantCode(t, err, "invalid_conversation")
		_, err = svc.AddMembers(ctx, p1.ID, realtime.MembersInput{UserIDs: []string{"third"}})
		wantCode(t, err, "private_conversation")

		g, _, err := svc.CreateConversation(ctx, realtime.NewConversation{Kind: realtime.KindGroup, MemberIDs: []string{"own", "adm", "mem"},
			Title: "G", MemberLimit: 4, Metadata: map[string]any{"k": "v"}})
		if err != nil || g.CreatedBy != "own" || g.MemberCount != 3 {
			t.Fatalf("group %+v %v", g, err)
		}
		if _, err := svc.SetRole(ctx, g.ID, "adm", realtime.RoleInput{Role: realtime.RoleAdmin, ActorID: "own"}); err != nil {
			t.Fatal(err)
		}
		mem := dial(t, n, n.token(t, "mem"))
		_, err = svc.SetRole(ctx, g.ID, "mem", realtime.RoleInput{Role: realtime.RoleAdmin, ActorID: "adm"})
		wantCode(t, err, "insufficient_role")
		_, err = svc.AddMembers(ctx, g.ID, realtime.MembersInput{UserIDs: []string{"new"}, ActorID: "mem"})
		wantCode(t, err, "insufficient_role")
		if _, err := svc.AddMembers(ctx, g.ID, realtime.MembersInput{UserIDs: []string{"new", "mem"}, ActorID: "adm"}); err != nil {
			t.Fatal(err)
		}
		if f := mem.expect("membership"); f.str("action") != "added" || f.str("actor_id") != "adm" {
			t.Fatalf("membership %v", f)
		}
		_, err = svc.AddMembers(ctx, g.ID, realtime.MembersInput{UserIDs: []string{"fifth"}})
		wantCode(t, err, "member_limit_reached")
		wantCode(t, svc.RemoveMember(ctx, g.ID, "own", "adm"), "insufficient_role")
		wantCode(t, svc.RemoveMember(ctx, g.ID, "adm", "mem"), "insufficient_role")
		if err := svc.RemoveMember(ctx, g.ID, "new", "adm"); err != nil {
			t.Fatal(err)
		}
		mem.expect("membership")
		// The owner leaves: the admin becomes owner.
		if err := svc.RemoveMember(ctx, g.ID, "own", "own"); err != nil {
			t.Fatal(err)
		}
		if f := mem.expect("membership"); f.str("action") != "left" {
			t.Fatalf("membership %v", f)
		}
		if f := mem.expect("membership"); f.str("action") != "role_changed" || f.str("role") != "owner" {
			t.Fatalf("membership %v", f)
		}
		members, err := svc.ListMembers(ctx, g.ID, 0, "")
		if err != nil || len(members.Data) != 2 || members.Data[0].UserID != "adm" || members.Data[0].Role != realtime.RoleOwner {
			t.Fatalf("members %+v %v", members.Data, err)
		}
		// A removed member's sends are refused.
		leaver := dial(t, n, n.token(t, "own"))
		leaver.send(map[string]any{"type": "send", "conversation_id": g.ID, "client_id": "x", "text": "still here?"})
		leaver.expect("error")

		// Edits, deletes and reactions over the socket.
		mem.send(map[string]any{"type": "send", "conversation_id": g.ID, "client_id": "m1", "text": "tpyo"})
		mem.expect("ack")
		mem.expect("message")
		mem.send(map[string]any{"type": "edit", "conversation_id": g.ID, "seq": 1, "text": "typo"})
		if f := mem.expect("message_updated"); f["message"].(map[string]any)["text"] != "typo" || f["message"].(map[string]any)["edited_at"] == nil {
			t.Fatalf("edit %v", f)
		}
		mem.send(map[string]any{"type": "react", "conversation_id": g.ID, "seq": 1, "emoji": "👍"})
		if f := mem.expect("message_updated"); len(f["message"].(map[string]any)["reactions"].([]any)) != 1 {
			t.Fatalf("react %v", f)
		}
		adm := dial(t, n, n.token(t, "adm"))
		adm.send(map[string]any{"type": "edit", "conversation_id": g.ID, "seq": 1, "text": "mine now"})
		adm.expect("error")
		mem.send(map[string]any{"type": "delete", "conversation_id": g.ID, "seq": 1})
		if f := mem.expect("message_updated"); f["message"].(map[string]any)["deleted"] != true || f["message"].(map[string]any)["text"] != "" {
			t.Fatalf("delete %v", f)
		}
		hist, err := svc.History(ctx, g.ID, realtime.HistoryQuery{})
		if err != nil || len(hist.Data) != 1 || !hist.Data[0].Deleted || hist.Data[0].Reactions != nil {
			t.Fatalf("history %+v %v", hist.Data, err)
		}

		// Search: case-insensitive, newest first, paged; % and _ are text.
		for i, text := range []string{"Hello World", "say HELLO again", "100% sure", "snake_case"} {
			if _, err := svc.Send(ctx, realtime.MessageInput{ConversationID: p1.ID, SenderID: "zed", ClientID: fmt.Sprint("s", i), Text: text}); err != nil {
				t.Fatal(err)
			}
		}
		page, err := svc.Search(ctx, realtime.SearchQuery{Text: "hello", Limit: 1})
		if err != nil || len(page.Data) != 1 || page.Data[0].Text != "say HELLO again" || page.NextCursor == "" {
			t.Fatalf("search page 1: %+v %v", page, err)
		}
		page, err = svc.Search(ctx, realtime.SearchQuery{Text: "hello", Limit: 1, Cursor: page.NextCursor})
		if err != nil || len(page.Data) != 1 || page.Data[0].Text != "Hello World" {
			t.Fatalf("search page 2: %+v %v", page, err)
		}
		for q, want := range map[string]int{"0% s": 1, "e_c": 1, "o%": 0, "x_": 0, "typo": 0 /* deleted */} {
			page, err := svc.Search(ctx, realtime.SearchQuery{Text: q})
			if err != nil || len(page.Data) != want {
				t.Fatalf("search %q: %d results, want %d (%v)", q, len(page.Data), want, err)
			}
		}

		// Another tenant sees nothing.
		other := abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: "ten_b", Kind: "api_key", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
		_, err = svc.GetConversation(other, g.ID)
		wantCode(t, err, "conversation_not_found")
		_, err = svc.Send(other, realtime.MessageInput{ConversationID: g.ID, SenderID: "mem", ClientID: "z", Text: "x"})
		wantCode(t, err, "conversation_not_found")
		list, err := svc.ListConversations(other, realtime.ConversationFilter{})
		if err != nil || len(list.Data) != 0 {
			t.Fatalf("other tenant lists %v %v", list.Data, err)
		}
		if found, err := svc.Search(other, realtime.SearchQuery{Text: "hello"}); err != nil || len(found.Data) != 0 {
			t.Fatalf("other tenant finds %v %v", found.Data, err)
		}
	})
}
