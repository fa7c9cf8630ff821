package realtime

import (
	"encoding/json"
	"time"

	"github.com/coder/websocket"
)

// The WebSocket protocol: JSON text frames, each an object with a "type".
// docs/realtime.md is its reference; the frames here are its Go side.

// clientFrame is any frame a client sends; which fields count depends on
// the type.
type clientFrame struct {
	Type           string              `json:"type"`
	ConversationID string              `json:"conversation_id"`
	ClientID       string              `json:"client_id"`
	Text           *string             `json:"text"`
	Attachments    []MessageAttachment `json:"attachments"`
	ReplyTo        *int64              `json:"reply_to"`
	AfterSeq       *int64              `json:"after_seq"`
	Seq            *int64              `json:"seq"`
	Emoji          string              `json:"emoji"`
	Remove         bool                `json:"remove"`
	Stopped        bool                `json:"stopped"`
	UserID         string              `json:"user_id"`
	Until          *time.Time          `json:"until"`
	Reason         string              `json:"reason"`
}

// Server frames.

type readyFrame struct {
	Type         string `json:"type"` // ready
	ConnectionID string `json:"connection_id"`
	UserID       string `json:"user_id"`
	Node         string `json:"node"`
	PingSeconds  int    `json:"ping_seconds"`
}

type ackFrame struct {
	Type           string `json:"type"` // ack
	ConversationID string `json:"conversation_id"`
	ClientID       string `json:"client_id"`
	Seq            int64  `json:"seq"`
	Duplicate      bool   `json:"duplicate,omitempty"`
}

type messageFrame struct {
	Type string `json:"type"` // message
	ChatMessage
}

type typingFrame struct {
	Type           string `json:"type"` // typing
	ConversationID string `json:"conversation_id"`
	UserID         string `json:"user_id"`
	Stopped        bool   `json:"stopped,omitempty"`
}

type resumedFrame struct {
	Type           string `json:"type"` // resumed
	ConversationID string `json:"conversation_id"`
	Seq            int64  `json:"seq"`
}

type receiptFrame struct {
	Type           string `json:"type"` // receipt
	ConversationID string `json:"conversation_id"`
	UserID         string `json:"user_id"`
	Seq            int64  `json:"seq"`
	Kind           string `json:"kind"` // read or delivered
}

type updatedFrame struct {
	Type    string      `json:"type"` // message_updated
	Message ChatMessage `json:"message"`
}

type membershipFrame struct {
	Type           string   `json:"type"` // membership
	ConversationID string   `json:"conversation_id"`
	Action         string   `json:"action"`
	UserIDs        []string `json:"user_ids"`
	Role           string   `json:"role,omitempty"`
	ActorID        string   `json:"actor_id,omitempty"`
}

type eventFrame struct {
	Type           string          `json:"type"` // event
	ConversationID string          `json:"conversation_id,omitempty"`
	Name           string          `json:"name"`
	Data           json.RawMessage `json:"data,omitempty"`
}

type errorFrame struct {
	Type           string `json:"type"` // error
	Code           string `json:"code"`
	Message        string `json:"message"`
	ClientID       string `json:"client_id,omitempty"`
	ConversationID string `json:"conversation_id,omitempty"`
}

type mutedFrame struct {
	Type           string     `json:"type"` // muted
	ConversationID string     `json:"conversation_id"`
	Until          *time.Time `json:"until,omitempty"` // absent: not muted
}

type blockedFrame struct {
	Type    string `json:"type"` // blocked
	UserID  string `json:"user_id"`
	Blocked bool   `json:"blocked"`
}

type reportedFrame struct {
	Type           string `json:"type"` // reported
	ConversationID string `json:"conversation_id"`
	Seq            int64  `json:"seq"`
	ReportID       string `json:"report_id"`
}

type pongFrame struct {
	Type string `json:"type"` // pong
}

// Close codes beside RFC 6455's (1007 invalid UTF-8, 1009 frame too big,
// 1011 internal error, 1012 service restart): 4000–4999 are this
// protocol's, each telling the client what to do.
const (
	CloseTokenExpired   websocket.StatusCode = 4001 // get a new token, then reconnect
	CloseUnauthorized   websocket.StatusCode = 4003 // the token is not valid: do not retry it
	CloseRateLimited    websocket.StatusCode = 4008 // too many frames: reconnect after a pause, slower
	CloseSlowConsumer   websocket.StatusCode = 4009 // the client did not read fast enough: reconnect and resume
	CloseTooManyConns   websocket.StatusCode = 4010 // the user's plan allows no more live connections
	CloseRemoved        websocket.StatusCode = 4011 // staff disconnected the user
	CloseServiceRestart                      = websocket.StatusServiceRestart
)

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // frames are plain structs: a failure is a bug
	}
	return b
}
