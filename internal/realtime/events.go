package realtime

import (
	"time"

	"github.com/abacusbilling/abacus/internal/outbox"
)

// ConversationEvent is the payload of conversation.created.
type ConversationEvent struct {
	ConversationID string    `json:"conversation_id"`
	Kind           string    `json:"kind" enum:"private,group"`
	Title          string    `json:"title"`
	MemberIDs      []string  `json:"member_ids"`
	CreatedAt      time.Time `json:"created_at"`
}

// MembershipEvent is the payload of conversation.members_changed.
type MembershipEvent struct {
	ConversationID string   `json:"conversation_id"`
	Action         string   `json:"action" enum:"added,removed,left,role_changed"`
	UserIDs        []string `json:"user_ids"`
	Role           string   `json:"role,omitempty" enum:"owner,admin,member"`
	// ActorID is the member who made the change; empty when the tenant's
	// backend made it through the API.
	ActorID string    `json:"actor_id,omitempty"`
	At      time.Time `json:"at"`
}

// MessageDeletedEvent is the payload of message.deleted.
type MessageDeletedEvent struct {
	ConversationID string `json:"conversation_id"`
	Seq            int64  `json:"seq"`
	SenderID       string `json:"sender_id"`
	// Attachments are the message's attachments as they were, so a
	// module that stored them (media) can delete them too.
	Attachments []MessageAttachment `json:"attachments,omitempty"`
	// ByStaff: the tenant's staff removed the message (moderation), not
	// its sender.
	ByStaff   bool      `json:"by_staff"`
	DeletedAt time.Time `json:"deleted_at"`
}

// Domain events of the messaging module. Messages themselves are not
// domain events: they travel on the real-time subjects (see hub.go); a
// deletion is one, because other modules keep what a message carried.
var (
	ConversationCreated = outbox.Define[ConversationEvent]("conversation.created", 1, "conversation",
		"A conversation was created: a private one between two users (once per pair), or a group.")
	MembersChanged = outbox.Define[MembershipEvent]("conversation.members_changed", 1, "conversation",
		"Members were added to or removed from a group conversation, one left, or a member's role changed.")
	MessageReported = outbox.Define[ReportEvent]("message.reported", 1, "conversation",
		"A member reported a message to the tenant's staff (moderation): GET /api/v1/realtime/reports lists the open ones.")
	MessageDeleted = outbox.Define[MessageDeletedEvent]("message.deleted", 1, "conversation",
		"A message was deleted (it is a tombstone now) by its sender or the tenant's staff; its attachments are listed so that stored images go too.")
)
