package realtime

import (
	"encoding/json"
	"time"

	"github.com/abacusbilling/abacus"
)

// Examples are the values the API reference shows for the realtime
// module's bodies (httpapi.Server.Example).
func Examples() []any {
	at := time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	conv := "cnv_01jbx7k2q9m4r8t6v3w5y0z1ab"
	reply := int64(41)
	title := "Weekend hike"
	limit := 50
	return []any{
		TokenInput{UserID: "user_ada", TTLSeconds: 3600},
		Token{Token: "eyJhbGciOiJIUzI1NiIsImtpZCI6InJ0a18wMWpieDdrMnE5bTRyOHQ2djN3NXkwejFhYiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJhYmFjdXMvcmVhbHRpbWUiLCJzdWIiOiJ1c2VyX2FkYSIsInRpZCI6InRlbl8wMWpieDdrIn0.c2lnbmF0dXJl",
			ExpiresAt: at.Add(time.Hour)},
		NewConversation{Kind: KindGroup, MemberIDs: []string{"user_ada", "user_bob", "user_cy"}, Title: title,
			Metadata: map[string]any{"trip_id": "t_77"}, MemberLimit: limit},
		Conversation{ID: conv, Kind: KindGroup, Title: title, Metadata: map[string]any{"trip_id": "t_77"}, MemberLimit: limit,
			MemberCount: 3, LastSeq: 42, CreatedBy: "user_ada", CreatedAt: at, UpdatedAt: at,
			Membership: &MemberState{Role: RoleMember, LastReadSeq: 40, Unread: 2}},
		ConversationPatch{Title: &title, MemberLimit: &limit},
		ConversationMember{UserID: "user_bob", Role: RoleAdmin, LastReadSeq: 40, LastDeliveredSeq: 42, JoinedAt: at},
		MembersInput{UserIDs: []string{"user_dee"}, Role: RoleMember, ActorID: "user_ada"},
		MemberList{Added: []ConversationMember{{UserID: "user_dee", Role: RoleMember, JoinedAt: at}}},
		RoleInput{Role: RoleAdmin, ActorID: "user_ada"},
		MessageInput{SenderID: "user_ada", ClientID: "c-7f3a", Text: "See you at 9?", ReplyTo: &reply},
		ChatMessage{ConversationID: conv, Seq: 42, SenderID: "user_ada", ClientID: "c-7f3a", Text: "See you at 9?", ReplyTo: &reply,
			SentAt: at, Attachments: []MessageAttachment{{Type: "image", URL: "https://cdn.example.com/p/1.jpg", MediaType: "image/jpeg", Width: 1200, Height: 800}},
			Reactions: []Reaction{{Emoji: "👍", UserIDs: []string{"user_bob"}}}},
		ReadInput{UserID: "user_bob", Seq: 42},
		ReadState{UserID: "user_bob", LastReadSeq: 42},
		ServerEvent{UserIDs: []string{"user_ada"}, Name: "order.shipped", Data: json.RawMessage(`{"order_id":"o_1"}`)},
		Published{Users: 1},
		MessageReportInput{ReporterID: "user_bob", Reason: "spam"},
		DisconnectInput{UserID: "user_eve"},
		PublicKeyInput{Algorithm: "EdDSA", PublicKey: "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA…\n-----END PUBLIC KEY-----\n"},
		PublicKey{Kid: "rtpk_01jbx7k2q9m4r8t6v3w5y0z1ab", Algorithm: "EdDSA", PublicKey: "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA…\n-----END PUBLIC KEY-----\n", CreatedAt: at},
		MessageReport{ID: "rpt_01jbx7k2q9m4r8t6v3w5y0z1ab", ConversationID: conv, Seq: 42, ReporterID: "user_bob", SenderID: "user_eve",
			Text: "cheap watches at …", Reason: "spam", Status: ReportOpen, CreatedAt: at},
		MessageReportResolution{Status: ReportResolved, Resolution: "message removed", DeleteMessage: true},
		abacus.ListOf([]MessageReport{{ID: "rpt_01jbx7k2q9m4r8t6v3w5y0z1ab", ConversationID: conv, Seq: 42, ReporterID: "user_bob",
			SenderID: "user_eve", Text: "cheap watches at …", Reason: "spam", Status: ReportOpen, CreatedAt: at}}, ""),
	}
}
