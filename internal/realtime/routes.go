package realtime

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// ConvPath is the {id} path parameter.
type ConvPath struct {
	ID string `path:"id" maxLength:"64" doc:"conversation id"`
}

// ListQuery is the cursor pagination of list routes.
type ListQuery struct {
	Limit  int    `query:"limit" minimum:"0" maximum:"100" doc:"page size (default 20)"`
	Cursor string `query:"cursor" doc:"next_cursor of the previous page"`
}

// MemberPath names a member of a conversation.
type MemberPath struct {
	ConvPath
	UserID string `path:"user_id" maxLength:"128" doc:"member's user id"`
}

// MessagePath names a message of a conversation.
type MessagePath struct {
	ConvPath
	Seq int64 `path:"seq" minimum:"1" doc:"the message's seq"`
}

// created answers 201 for a new conversation, 200 for the existing
// private one.
type created struct {
	Status int
	Body   Conversation
}

// MemberList is the answer of adding members: those who were added.
type MemberList struct {
	Added []ConversationMember `json:"added"`
}

// RegisterRoutes adds the realtime routes: tokens, the WebSocket,
// conversations, members, messages and server events.
func RegisterRoutes(s *httpapi.Server, svc *Service) {
	s.Example(Examples()...)
	tags := []string{"Realtime"}
	httpapi.Register(s, huma.Operation{OperationID: "create-realtime-token", Method: http.MethodPost, Path: "/api/v1/realtime/tokens",
		Summary: "Mint a connection token", Tags: tags, DefaultStatus: http.StatusCreated,
		Description: "A short-lived token for GET /api/v1/realtime/ws that acts as user_id (the tenant's own user id or an end-user id). Mint it in your backend for a signed-in user and hand it to the app."},
		abacus.ScopeWrite, func(ctx context.Context, in *httpapi.Body[TokenInput]) (*httpapi.Body[Token], error) {
			return httpapi.Reply(svc.MintToken(ctx, in.Body))
		})
	httpapi.HandleOp[struct{}](s, huma.Operation{OperationID: "connect-realtime", Method: http.MethodGet, Path: "/api/v1/realtime/ws",
		Summary: "Connect (WebSocket)", Tags: tags, DefaultStatus: http.StatusSwitchingProtocols,
		Description: "Upgrades to a WebSocket speaking the JSON protocol of docs/realtime.md. Authenticate with ?token= (a connection token, or an end user's access token). A bad or expired token is refused after the upgrade, with close code 4003 or 4001, so that browsers see why.",
		Parameters: []*huma.Param{
			{Name: "token", In: "query", Description: "a connection token or an end user's access token", Schema: &huma.Schema{Type: "string"}},
			{Name: "resume", In: "query", Description: "conversations to resume before any live frame: <conversation_id>:<after_seq>, comma-separated (at most 100)", Schema: &huma.Schema{Type: "string"}},
		},
	}, httpapi.ScopePublic, http.HandlerFunc(svc.ServeWS))

	base := "/api/v1/conversations"
	httpapi.Register(s, huma.Operation{OperationID: "create-conversation", Method: http.MethodPost, Path: base,
		Summary: "Create a conversation", Tags: tags, DefaultStatus: http.StatusCreated,
		Description: "A private conversation exists once per pair of users: creating it again answers 200 with the existing one. A group gets an owner (owner_id, default the first member)."},
		abacus.ScopeWrite, func(ctx context.Context, in *httpapi.Body[NewConversation]) (*created, error) {
			c, isNew, err := svc.CreateConversation(ctx, in.Body)
			if err != nil {
				return nil, err
			}
			status := http.StatusCreated
			if !isNew {
				status = http.StatusOK
			}
			return &created{Status: status, Body: c}, nil
		})
	httpapi.Register(s, huma.Operation{OperationID: "list-conversations", Method: http.MethodGet, Path: base,
		Summary: "List conversations", Tags: tags, Description: "By id; with member_id, a user's conversations with their read state and unread count."},
		abacus.ScopeRead, func(ctx context.Context, in *struct {
			ListQuery
			MemberID string `query:"member_id" maxLength:"128" doc:"only this user's conversations"`
			Kind     string `query:"kind" enum:"private,group" doc:"only this kind"`
		}) (*httpapi.Body[abacus.List[Conversation]], error) {
			return httpapi.Reply(svc.ListConversations(ctx, ConversationFilter{MemberID: in.MemberID, Kind: in.Kind, Limit: in.Limit, Cursor: in.Cursor}))
		})
	httpapi.Register(s, huma.Operation{OperationID: "get-conversation", Method: http.MethodGet, Path: base + "/{id}",
		Summary: "Get a conversation", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *ConvPath) (*httpapi.Body[Conversation], error) {
			return httpapi.Reply(svc.GetConversation(ctx, in.ID))
		})
	httpapi.Register(s, huma.Operation{OperationID: "update-conversation", Method: http.MethodPatch, Path: base + "/{id}",
		Summary: "Update a group", Tags: tags, Description: "Title, metadata, member limit. With actor_id the change is made as that member (owner or admin only)."},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			ConvPath
			Body ConversationPatch
		}) (*httpapi.Body[Conversation], error) {
			return httpapi.Reply(svc.UpdateConversation(ctx, in.ID, in.Body))
		})
	registerMemberRoutes(s, svc, tags, base)
	registerModerationRoutes(s, svc, tags, base)
	registerKeyRoutes(s, svc, tags)
	registerMessageRoutes(s, svc, tags, base)
	httpapi.Register(s, huma.Operation{OperationID: "search-messages", Method: http.MethodGet, Path: "/api/v1/messages",
		Summary: "Search messages", Tags: tags,
		Description: "The tenant's messages whose text contains q (case-insensitive; deleted messages excluded), newest first. A scan of the tenant's messages (no text index): narrow it with conversation_id or sender_id on large histories."},
		abacus.ScopeRead, func(ctx context.Context, in *struct {
			Q              string `query:"q" maxLength:"200" doc:"text to find (2 to 200 bytes)"`
			ConversationID string `query:"conversation_id" maxLength:"64" doc:"only in this conversation"`
			SenderID       string `query:"sender_id" maxLength:"128" doc:"only from this user"`
			ListQuery
		}) (*httpapi.Body[abacus.List[ChatMessage]], error) {
			return httpapi.Reply(svc.Search(ctx, SearchQuery{Text: in.Q, ConversationID: in.ConversationID, SenderID: in.SenderID, Limit: in.Limit, Cursor: in.Cursor}))
		})
	httpapi.Register(s, huma.Operation{OperationID: "publish-realtime-event", Method: http.MethodPost, Path: "/api/v1/realtime/events",
		Summary: "Publish a server event", Tags: tags, DefaultStatus: http.StatusAccepted,
		Description: "Sends an `event` frame to every live connection of the users, or of a conversation's members. Live only: it is not stored, and users who are offline do not get it."},
		abacus.ScopeWrite, func(ctx context.Context, in *httpapi.Body[ServerEvent]) (*httpapi.Body[Published], error) {
			return httpapi.Reply(svc.PublishEvent(ctx, in.Body))
		})
}

func registerMemberRoutes(s *httpapi.Server, svc *Service, tags []string, base string) {
	httpapi.Register(s, huma.Operation{OperationID: "list-conversation-members", Method: http.MethodGet, Path: base + "/{id}/members",
		Summary: "List a conversation's members", Tags: tags, Description: "By user id, each with role and last_read_seq (read receipts)."},
		abacus.ScopeRead, func(ctx context.Context, in *struct {
			ConvPath
			ListQuery
		}) (*httpapi.Body[abacus.List[ConversationMember]], error) {
			return httpapi.Reply(svc.ListMembers(ctx, in.ID, in.Limit, in.Cursor))
		})
	httpapi.Register(s, huma.Operation{OperationID: "add-conversation-members", Method: http.MethodPost, Path: base + "/{id}/members",
		Summary: "Add members to a group", Tags: tags,
		Description: "Users already members are left as they are. Refused past the member limit (member_limit_reached). Members get a membership frame."},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			ConvPath
			Body MembersInput
		}) (*httpapi.Body[MemberList], error) {
			added, err := svc.AddMembers(ctx, in.ID, in.Body)
			if added == nil {
				added = []ConversationMember{}
			}
			return httpapi.Reply(MemberList{Added: added}, err)
		})
	httpapi.Register(s, huma.Operation{OperationID: "remove-conversation-member", Method: http.MethodDelete, Path: base + "/{id}/members/{user_id}",
		Summary: "Remove a member from a group", Tags: tags, DefaultStatus: http.StatusNoContent,
		Description: "actor_id = user_id is leaving. With another actor_id, an admin may remove members and only the owner may remove an admin; the owner leaves rather than being removed (the longest-standing admin, else member, becomes owner)."},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			MemberPath
			ActorID string `query:"actor_id" maxLength:"128" doc:"the member removing (empty: the tenant's backend)"`
		}) (*struct{}, error) {
			return nil, svc.RemoveMember(ctx, in.ID, in.UserID, in.ActorID)
		})
	httpapi.Register(s, huma.Operation{OperationID: "update-conversation-member", Method: http.MethodPatch, Path: base + "/{id}/members/{user_id}",
		Summary: "Change a member's role", Tags: tags},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			MemberPath
			Body RoleInput
		}) (*httpapi.Body[ConversationMember], error) {
			return httpapi.Reply(svc.SetRole(ctx, in.ID, in.UserID, in.Body))
		})
}

func registerMessageRoutes(s *httpapi.Server, svc *Service, tags []string, base string) {
	httpapi.Register(s, huma.Operation{OperationID: "list-conversation-messages", Method: http.MethodGet, Path: base + "/{id}/messages",
		Summary: "Read a conversation's history", Tags: tags,
		Description: "after=N: messages after seq N, oldest first; before=N: messages before seq N, newest first; neither: the latest, newest first. next_cursor is the seq to pass again as after or before."},
		abacus.ScopeRead, func(ctx context.Context, in *struct {
			ConvPath
			After  string `query:"after" doc:"seq: messages after it, ascending"`
			Before string `query:"before" doc:"seq: messages before it, descending"`
			Limit  int    `query:"limit" minimum:"0" maximum:"500" doc:"page size (default 50)"`
		}) (*httpapi.Body[abacus.List[ChatMessage]], error) {
			q := HistoryQuery{Limit: in.Limit}
			var err error
			if q.After, err = seqParam("after", in.After); err != nil {
				return nil, err
			}
			if q.Before, err = seqParam("before", in.Before); err != nil {
				return nil, err
			}
			return httpapi.Reply(svc.History(ctx, in.ID, q))
		})
	httpapi.Register(s, huma.Operation{OperationID: "send-conversation-message", Method: http.MethodPost, Path: base + "/{id}/messages",
		Summary: "Send a message as a member", Tags: tags, DefaultStatus: http.StatusCreated,
		Description: "The tenant's backend sends as sender_id (a member): stored, numbered and delivered like a message sent on the WebSocket. A client_id already used by the sender in the conversation returns the stored message."},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			ConvPath
			Body MessageInput
		}) (*httpapi.Body[ChatMessage], error) {
			in.Body.ConversationID = in.ID
			out, err := svc.Send(ctx, in.Body)
			return httpapi.Reply(out.Message, err)
		})
	httpapi.Register(s, huma.Operation{OperationID: "delete-conversation-message", Method: http.MethodDelete, Path: base + "/{id}/messages/{seq}",
		Summary: "Remove a message", Tags: tags,
		Description: "Makes the message a tombstone (moderation): text, attachments and reactions are gone, the seq stays. Members get a message_updated frame."},
		abacus.ScopeWrite, func(ctx context.Context, in *MessagePath) (*httpapi.Body[ChatMessage], error) {
			return httpapi.Reply(svc.DeleteMessage(ctx, in.ID, in.Seq, ""))
		})
	httpapi.Register(s, huma.Operation{OperationID: "mark-conversation-read", Method: http.MethodPost, Path: base + "/{id}/read",
		Summary: "Mark read for a member", Tags: tags,
		Description: "Moves the member's last_read_seq forward (never back); members get a receipt frame."},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			ConvPath
			Body ReadInput
		}) (*httpapi.Body[ReadState], error) {
			seq, err := svc.MarkRead(ctx, in.ID, in.Body.UserID, in.Body.Seq)
			return httpapi.Reply(ReadState{UserID: in.Body.UserID, LastReadSeq: seq}, err)
		})
}

// ReadInput marks messages read for a member.
type ReadInput struct {
	UserID string `json:"user_id" minLength:"1" maxLength:"128"`
	Seq    int64  `json:"seq" minimum:"0" doc:"the latest message read"`
}

// ReadState is a member's read position.
type ReadState struct {
	UserID      string `json:"user_id"`
	LastReadSeq int64  `json:"last_read_seq"`
}

func seqParam(name, v string) (*int64, error) {
	if v == "" {
		return nil, nil
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' || n > 1<<50 {
			return nil, abacus.Invalid("invalid_query", "%s must be a message seq (0 or more)", name).WithField("query."+name, "must be a seq (0 or more)")
		}
		n = n*10 + int64(c-'0')
	}
	return &n, nil
}

// ReportPath names a report.
type ReportPath struct {
	ID string `path:"report_id" maxLength:"64" doc:"report id"`
}

// DisconnectInput names the user to disconnect.
type DisconnectInput struct {
	UserID string `json:"user_id" maxLength:"128" example:"user_eve" doc:"the user's id"`
}

func registerModerationRoutes(s *httpapi.Server, svc *Service, tags []string, base string) {
	httpapi.Register(s, huma.Operation{OperationID: "report-conversation-message", Method: http.MethodPost, Path: base + "/{id}/messages/{seq}/reports",
		Summary: "Report a message as a member", Tags: tags, DefaultStatus: http.StatusCreated,
		Description: "Records a member's report of a message for the tenant's staff (once per member and message: a repeat answers the first) and announces it (message.reported)."},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			MessagePath
			Body MessageReportInput
		}) (*httpapi.Body[MessageReport], error) {
			return httpapi.Reply(svc.ReportMessage(ctx, in.ID, in.Seq, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "list-realtime-reports", Method: http.MethodGet, Path: "/api/v1/realtime/reports",
		Summary: "List reported messages", Tags: tags, Description: "Newest first; status narrows to open, resolved or dismissed ones."},
		abacus.ScopeRead, func(ctx context.Context, in *struct {
			Status string `query:"status" enum:"open,resolved,dismissed" doc:"only reports in this state"`
			ListQuery
		}) (*httpapi.Body[abacus.List[MessageReport]], error) {
			return httpapi.Reply(svc.ListReports(ctx, in.Status, in.Limit, in.Cursor))
		})
	httpapi.Register(s, huma.Operation{OperationID: "resolve-realtime-report", Method: http.MethodPatch, Path: "/api/v1/realtime/reports/{report_id}",
		Summary: "Resolve a report", Tags: tags,
		Description: "Resolved or dismissed, with what staff did; delete_message makes the message a tombstone, remove_sender removes its sender from the group."},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			ReportPath
			Body MessageReportResolution
		}) (*httpapi.Body[MessageReport], error) {
			return httpapi.Reply(svc.ResolveReport(ctx, in.ID, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "disconnect-realtime-user", Method: http.MethodPost, Path: "/api/v1/realtime/disconnect",
		Summary: "Disconnect a user", Tags: tags, DefaultStatus: http.StatusNoContent,
		Description: "Closes every live connection of the user, on every node, with close code 4011. The user may connect again with a valid token: stop minting tokens for them (or block them) to keep them out."},
		abacus.ScopeWrite, func(ctx context.Context, in *httpapi.Body[DisconnectInput]) (*struct{}, error) {
			return nil, svc.DisconnectUser(ctx, in.Body.UserID)
		})
}

func registerKeyRoutes(s *httpapi.Server, svc *Service, tags []string) {
	httpapi.Register(s, huma.Operation{OperationID: "register-realtime-public-key", Method: http.MethodPost, Path: "/api/v1/realtime/keys",
		Summary: "Register a token signing key", Tags: tags, DefaultStatus: http.StatusCreated,
		Description: "A public key (RS256, ES256 or EdDSA) your backend signs connection tokens with, instead of calling POST /api/v1/realtime/tokens: a JWT with the answered kid in its header, sub = user id, exp, optional grants."},
		abacus.ScopeAdmin, func(ctx context.Context, in *httpapi.Body[PublicKeyInput]) (*httpapi.Body[PublicKey], error) {
			return httpapi.Reply(svc.RegisterPublicKey(ctx, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "list-realtime-public-keys", Method: http.MethodGet, Path: "/api/v1/realtime/keys",
		Summary: "List token signing keys", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, _ *struct{}) (*httpapi.Body[abacus.List[PublicKey]], error) {
			return httpapi.Reply(svc.ListPublicKeys(ctx))
		})
	httpapi.Register(s, huma.Operation{OperationID: "delete-realtime-public-key", Method: http.MethodDelete, Path: "/api/v1/realtime/keys/{kid}",
		Summary: "Delete a token signing key", Tags: tags, DefaultStatus: http.StatusNoContent,
		Description: "Tokens it signed no longer connect; connections already open stay."},
		abacus.ScopeAdmin, func(ctx context.Context, in *struct {
			Kid string `path:"kid" maxLength:"64"`
		}) (*struct{}, error) {
			return nil, svc.DeletePublicKey(ctx, in.Kid)
		})
}
