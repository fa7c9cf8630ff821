package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// ChatMessage is one message of a conversation, identified by its
// conversation and its seq.
type ChatMessage struct {
	ConversationID string              `json:"conversation_id" example:"cnv_01jd6z8q4m7x2v3b9n5k1c0abc"`
	Seq            int64               `json:"seq" example:"42" doc:"1, 2, 3… per conversation, without gaps"`
	SenderID       string              `json:"sender_id" example:"user_ada"`
	ClientID       string              `json:"client_id" example:"c-7f3a" doc:"the sender's id for the message: a retried send is stored once"`
	Text           string              `json:"text" example:"See you at 9?"`
	Attachments    []MessageAttachment `json:"attachments,omitempty"`
	ReplyTo        *int64              `json:"reply_to,omitempty" doc:"seq of the message this one answers"`
	SentAt         time.Time           `json:"sent_at"`
	EditedAt       *time.Time          `json:"edited_at,omitempty"`
	// Deleted marks a tombstone: text and attachments are gone, the seq
	// stays so that histories have no gap.
	Deleted   bool       `json:"deleted,omitempty"`
	Reactions []Reaction `json:"reactions,omitempty"`
}

// MessageAttachment is structured content sent with a message: a link, an image
// or file by URL (media uploads come with the media issue), or the
// tenant's own JSON.
type MessageAttachment struct {
	Type      string         `json:"type" maxLength:"32" example:"image" doc:"image, file, link, location, or the tenant's own kind"`
	URL       string         `json:"url,omitempty" maxLength:"2048" example:"https://cdn.example.com/p/1.jpg"`
	Name      string         `json:"name,omitempty" maxLength:"256"`
	MediaType string         `json:"media_type,omitempty" maxLength:"128" example:"image/jpeg"`
	Size      int64          `json:"size,omitempty" minimum:"0"`
	Width     int            `json:"width,omitempty" minimum:"0"`
	Height    int            `json:"height,omitempty" minimum:"0"`
	Data      map[string]any `json:"data,omitempty"`
}

// Reaction is one emoji on a message and who reacted with it.
type Reaction struct {
	Emoji   string   `json:"emoji" example:"👍"`
	UserIDs []string `json:"user_ids"`
}

// MessageInput is a message to send.
type MessageInput struct {
	ConversationID string              `json:"-"`
	SenderID       string              `json:"sender_id" example:"user_ada"`
	ClientID       string              `json:"client_id" example:"c-7f3a" doc:"1 to 64 bytes, unique per sender and conversation"`
	Text           string              `json:"text" example:"See you at 9?"`
	Attachments    []MessageAttachment `json:"attachments,omitempty" maxItems:"10"`
	ReplyTo        *int64              `json:"reply_to,omitempty" minimum:"1"`
}

// Sent is the outcome of a send: the stored message, the members it goes
// to, and whether it had been stored before (a retry).
type Sent struct {
	Message   ChatMessage
	Members   []string
	Duplicate bool
}

const (
	maxClientIDLen  = 64
	maxAttachments  = 10
	maxAttachBytes  = 16 << 10
	maxHistoryLimit = 500
)

// validate checks a send; field paths start at prefix ("body." for the
// API, "" for a frame).
func (s *Service) validateSend(in MessageInput, prefix string) error {
	var v abacus.Validation
	if in.ClientID == "" || len(in.ClientID) > maxClientIDLen || !utf8.ValidString(in.ClientID) {
		v.Add(prefix+"client_id", "must be 1 to 64 bytes of UTF-8")
	}
	if len(in.Text) > s.cfg.MaxTextBytes {
		v.Add(prefix+"text", "is longer than %d bytes", s.cfg.MaxTextBytes)
	} else if !utf8.ValidString(in.Text) {
		v.Add(prefix+"text", "is not valid UTF-8")
	}
	if in.Text == "" && len(in.Attachments) == 0 {
		v.Add(prefix+"text", "a message needs text or attachments")
	}
	if len(in.Attachments) > maxAttachments {
		v.Add(prefix+"attachments", "at most %d attachments", maxAttachments)
	}
	for i, a := range in.Attachments {
		if a.Type == "" || len(a.Type) > 32 {
			v.Add(prefix+"attachments["+strconv.Itoa(i)+"].type", "must be 1 to 32 bytes")
		}
	}
	if b, _ := json.Marshal(in.Attachments); len(b) > maxAttachBytes {
		v.Add(prefix+"attachments", "are larger than 16 KiB")
	}
	if in.ReplyTo != nil && *in.ReplyTo < 1 {
		v.Add(prefix+"reply_to", "must be the seq of a message (1 or more)")
	}
	return v.Err("invalid_message")
}

// Send stores a message from a member and returns it with the members it
// goes to. A send with a client_id the sender already used in the
// conversation returns the stored message (Duplicate) and stores nothing.
// Errors: invalid_message, conversation_not_found, not_a_member,
// reply_not_found.
func (s *Service) Send(ctx context.Context, in MessageInput) (Sent, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Sent{}, err
	}
	if why := validUserID(in.SenderID); why != "" {
		return Sent{}, abacus.Invalid("invalid_message", "sender_id %s", why).WithField("body.sender_id", why)
	}
	if err := s.validateSend(in, "body."); err != nil {
		return Sent{}, err
	}
	accepted := time.Now()
	out, err := s.send(ctx, tenant, in)
	if err != nil {
		return out, err
	}
	// A duplicate is published again: if the first attempt's process died
	// between commit and publish, live members get it now; connections
	// drop what they already have.
	s.hub.publish(tenant, out.Members, envelope{kind: kindMessage, conv: in.ConversationID, seq: out.Message.Seq,
		accepted: accepted.UnixNano()}, mustJSON(messageFrame{Type: "message", ChatMessage: out.Message}))
	if h := s.hooks.Sent; h != nil && !out.Duplicate {
		h(ctx, tenant, out)
	}
	return out, err
}

// send stores a validated message, in a batch with the concurrent sends
// of this node (commit.go).
func (s *Service) send(ctx context.Context, tenant string, in MessageInput) (Sent, error) {
	att := "[]"
	if len(in.Attachments) > 0 {
		b, _ := json.Marshal(in.Attachments)
		att = string(b)
	}
	return s.commit.store(ctx, tenant, in, att)
}

// sendAlone stores a validated message in a transaction of its own.
func (s *Service) sendAlone(ctx context.Context, tenant string, in MessageInput, att string) (Sent, error) {
	for attempt := 0; ; attempt++ {
		var out Sent
		err := s.db.InTx(ctx, func(tx *db.Tx) error {
			var err error
			out, err = s.storeOne(ctx, tx, tenant, in, att, nil)
			return err
		})
		if db.IsUniqueViolation(err) && attempt < 3 {
			continue // the same client_id raced in: read it on the next turn
		}
		return out, err
	}
}

// storeOne stores one message in tx. b, when set, is the state of the
// batch tx belongs to. A refusal (an *abacus.Error) comes before any
// write, so the rest of the batch may still commit.
func (s *Service) storeOne(ctx context.Context, tx *db.Tx, tenant string, in MessageInput, att string, b *batchState) (Sent, error) {
	var out Sent
	members, err := s.membersIn(ctx, tx, tenant, in.ConversationID, b)
	if err != nil {
		return out, err
	}
	out.Members = members
	if !contains(members, in.SenderID) {
		if _, err := getConversationTx(ctx, tx, tenant, in.ConversationID, false); err != nil {
			return out, err
		}
		return out, abacus.Errorf(abacus.KindForbidden, "not_a_member", "%s is not a member of conversation %s", in.SenderID, in.ConversationID)
	}
	if err := checkBlocked(ctx, tx, tenant, in.SenderID, members); err != nil {
		return out, err
	}
	key := sendKey{tenant, in.ConversationID, in.SenderID, in.ClientID}
	if m, ok := b.storedBefore(key); ok {
		out.Message, out.Duplicate = m, true
		return out, nil
	}
	if m, ok, err := messageByClientID(ctx, prepared{tx}, tenant, in.ConversationID, in.SenderID, in.ClientID); err != nil || ok {
		out.Message, out.Duplicate = m, ok
		return out, err
	}
	if in.ReplyTo != nil {
		// Checked before the seq is taken: a refusal writes nothing.
		c, err := getConversationTx(ctx, tx, tenant, in.ConversationID, false)
		if err != nil {
			return out, err
		}
		if *in.ReplyTo > c.LastSeq {
			return out, abacus.Invalid("reply_not_found", "reply_to %d is not a message of this conversation", *in.ReplyTo).
				WithField("reply_to", "not an earlier message")
		}
	}
	now := s.clock.Now()
	seq, err := nextSeq(ctx, tx, tenant, in.ConversationID, now)
	if err != nil {
		return out, err
	}
	out.Message = ChatMessage{ConversationID: in.ConversationID, Seq: seq, SenderID: in.SenderID, ClientID: in.ClientID,
		Text: in.Text, Attachments: in.Attachments, ReplyTo: in.ReplyTo, SentAt: now}
	if err := insertMessage(ctx, tx, tenant, out.Message, att); err != nil {
		return out, err
	}
	b.remember(key, out.Message)
	return out, s.markOffline(ctx, tx, tenant, in.ConversationID, in.SenderID, members, seq)
}

// membersIn reads a conversation's members once per batch.
func (s *Service) membersIn(ctx context.Context, tx *db.Tx, tenant, conv string, b *batchState) ([]string, error) {
	if b != nil {
		if m, ok := b.members[[2]string{tenant, conv}]; ok {
			return m, nil
		}
	}
	m, err := memberIDs(ctx, prepared{tx}, tenant, conv)
	if err == nil && b != nil {
		b.members[[2]string{tenant, conv}] = m
	}
	return m, err
}

func contains(ids []string, id string) bool {
	for _, v := range ids {
		if v == id {
			return true
		}
	}
	return false
}

// HistoryQuery selects a page of messages: after a seq (ascending), before
// a seq (descending), or the latest (descending).
type HistoryQuery struct {
	After  *int64
	Before *int64
	Limit  int
}

// History returns a page of a conversation's messages with their
// reactions. next_cursor continues in the same direction.
func (s *Service) History(ctx context.Context, conv string, q HistoryQuery) (abacus.List[ChatMessage], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[ChatMessage]{}, err
	}
	if q.After != nil && q.Before != nil {
		return abacus.List[ChatMessage]{}, abacus.Invalid("invalid_query", "give after or before, not both").WithField("query.before", "not with after")
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	q.Limit = min(q.Limit, maxHistoryLimit)
	if _, err := getConversation(ctx, s.db, tenant, conv); err != nil {
		return abacus.List[ChatMessage]{}, err
	}
	var items []ChatMessage
	if q.After != nil {
		items, err = messagesAfter(ctx, s.db, tenant, conv, *q.After, q.Limit+1)
	} else {
		before := int64(1) << 62
		if q.Before != nil {
			before = *q.Before
		}
		items, err = messagesBefore(ctx, s.db, tenant, conv, before, q.Limit+1)
	}
	if err != nil {
		return abacus.List[ChatMessage]{}, err
	}
	next := ""
	if len(items) > q.Limit {
		items = items[:q.Limit]
		next = strconv.FormatInt(items[len(items)-1].Seq, 10)
	}
	if err := withReactions(ctx, s.db, tenant, conv, items); err != nil {
		return abacus.List[ChatMessage]{}, err
	}
	return abacus.ListOf(items, next), nil
}

// MarkRead moves user's last_read_seq (and last_delivered_seq) forward
// to seq (never back, never past the last message) and tells the
// conversation's members (a receipt frame). It returns the member's read
// position after the call.
func (s *Service) MarkRead(ctx context.Context, conv, user string, seq int64) (int64, error) {
	return s.receipt(ctx, conv, user, seq, true)
}

// MarkDelivered moves user's last_delivered_seq forward to seq and tells
// the members (a receipt frame of kind delivered).
func (s *Service) MarkDelivered(ctx context.Context, conv, user string, seq int64) (int64, error) {
	return s.receipt(ctx, conv, user, seq, false)
}

func (s *Service) receipt(ctx context.Context, conv, user string, seq int64, read bool) (int64, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return 0, err
	}
	var at int64
	var members []string
	moved := false
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		c, err := getConversationTx(ctx, tx, tenant, conv, false)
		if err != nil {
			return err
		}
		m, err := getMember(ctx, tx, tenant, conv, user)
		if e, ok := abacus.AsError(err); ok && e.Kind == abacus.KindNotFound {
			return abacus.Errorf(abacus.KindForbidden, "not_a_member", "%s is not a member of conversation %s", user, conv)
		}
		if err != nil {
			return err
		}
		at = m.LastDeliveredSeq
		if read {
			at = m.LastReadSeq
		}
		seq = min(seq, c.LastSeq)
		if seq <= at {
			return nil
		}
		if err := setReceipt(ctx, tx, tenant, conv, user, seq, read); err != nil {
			return err
		}
		at, moved = seq, true
		members, err = memberIDs(ctx, tx, tenant, conv)
		return err
	})
	if err == nil && moved {
		kind := "read"
		if !read {
			kind = "delivered"
		}
		s.hub.publishFrame(tenant, members, receiptFrame{Type: "receipt", ConversationID: conv, UserID: user, Seq: at, Kind: kind})
	}
	return at, err
}

// EditInput changes a message's text (its sender only).
type EditInput struct {
	UserID string `json:"user_id" doc:"the sender"`
	Text   string `json:"text"`
}

// EditMessage replaces the text of user's message and sets edited_at.
func (s *Service) EditMessage(ctx context.Context, conv string, seq int64, in EditInput) (ChatMessage, error) {
	if len(in.Text) > s.cfg.MaxTextBytes || !utf8.ValidString(in.Text) || in.Text == "" {
		return ChatMessage{}, abacus.Invalid("invalid_message", "text must be 1 to %d bytes of UTF-8", s.cfg.MaxTextBytes).WithField("text", "1 to "+strconv.Itoa(s.cfg.MaxTextBytes)+" bytes of UTF-8")
	}
	return s.changeMessage(ctx, conv, seq, in.UserID, func(ctx context.Context, tx *db.Tx, tenant string, m *ChatMessage) error {
		if m.Deleted {
			return abacus.Conflict("message_deleted", "message %d was deleted", seq)
		}
		now := s.clock.Now()
		m.Text, m.EditedAt = in.Text, &now
		return editMessage(ctx, tx, tenant, conv, seq, in.Text, now)
	}, true)
}

// DeleteMessage makes a message a tombstone and records message.deleted
// with its attachments. user is its sender; empty, the tenant's staff
// removes it (moderation).
func (s *Service) DeleteMessage(ctx context.Context, conv string, seq int64, user string) (ChatMessage, error) {
	return s.changeMessage(ctx, conv, seq, user, func(ctx context.Context, tx *db.Tx, tenant string, m *ChatMessage) error {
		if m.Deleted {
			return nil
		}
		now := s.clock.Now()
		if _, err := MessageDeleted.Record(ctx, tx, tenant, conv, now, MessageDeletedEvent{ConversationID: conv, Seq: seq,
			SenderID: m.SenderID, Attachments: m.Attachments, ByStaff: user == "", DeletedAt: now.UTC()}); err != nil {
			return err
		}
		m.Text, m.Attachments, m.Deleted, m.ReplyTo = "", nil, true, nil
		return deleteMessage(ctx, tx, tenant, conv, seq, now)
	}, user != "")
}

// React adds (or with remove, takes back) user's emoji on a message.
func (s *Service) React(ctx context.Context, conv string, seq int64, user, emoji string, remove bool) (ChatMessage, error) {
	if emoji == "" || len(emoji) > 32 || !utf8.ValidString(emoji) {
		return ChatMessage{}, abacus.Invalid("invalid_reaction", "emoji must be 1 to 32 bytes of UTF-8").WithField("emoji", "1 to 32 bytes")
	}
	return s.changeMessage(ctx, conv, seq, user, func(ctx context.Context, tx *db.Tx, tenant string, m *ChatMessage) error {
		if m.Deleted {
			return abacus.Conflict("message_deleted", "message %d was deleted", seq)
		}
		return setReaction(ctx, tx, tenant, conv, seq, user, emoji, !remove, s.clock.Now())
	}, false)
}

// changeMessage runs change on a message user may see (own: user must be
// its sender) and tells the members (a message_updated frame).
func (s *Service) changeMessage(ctx context.Context, conv string, seq int64, user string,
	change func(context.Context, *db.Tx, string, *ChatMessage) error, own bool) (ChatMessage, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return ChatMessage{}, err
	}
	var m ChatMessage
	var members []string
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		members, err = memberIDs(ctx, tx, tenant, conv)
		if err != nil {
			return err
		}
		if user != "" && !contains(members, user) {
			if _, err := getConversationTx(ctx, tx, tenant, conv, false); err != nil {
				return err
			}
			return abacus.Errorf(abacus.KindForbidden, "not_a_member", "%s is not a member of conversation %s", user, conv)
		}
		m, err = getMessage(ctx, tx, tenant, conv, seq)
		if err != nil {
			return err
		}
		if own && m.SenderID != user {
			return abacus.Errorf(abacus.KindForbidden, "not_the_sender", "only the sender of message %d may change it", seq)
		}
		if err := change(ctx, tx, tenant, &m); err != nil {
			return err
		}
		ms := []ChatMessage{m}
		if err := withReactions(ctx, tx, tenant, conv, ms); err != nil {
			return err
		}
		m = ms[0]
		return nil
	})
	if err != nil {
		return ChatMessage{}, err
	}
	s.hub.publishFrame(tenant, members, updatedFrame{Type: "message_updated", Message: m})
	return m, nil
}

// SearchQuery searches a tenant's messages.
type SearchQuery struct {
	Text           string
	ConversationID string
	SenderID       string
	Limit          int
	Cursor         string
}

type searchCursor struct {
	at   int64 // unix micros
	conv string
	seq  int64
}

// Search returns the tenant's messages whose text contains q (case
// insensitive; deleted messages excluded), newest first. It scans the
// tenant's messages (narrowed by conversation or sender when given).
func (s *Service) Search(ctx context.Context, q SearchQuery) (abacus.List[ChatMessage], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[ChatMessage]{}, err
	}
	if len(q.Text) < 2 || len(q.Text) > 200 || !utf8.ValidString(q.Text) {
		return abacus.List[ChatMessage]{}, abacus.Invalid("invalid_query", "q must be 2 to 200 bytes of UTF-8").WithField("query.q", "2 to 200 bytes")
	}
	if q.Limit <= 0 {
		q.Limit = 20
	}
	cur := searchCursor{at: 1 << 62}
	if q.Cursor != "" {
		raw, err := decodeCursor(q.Cursor)
		if err == nil {
			var parts []json.RawMessage
			err = json.Unmarshal([]byte(raw), &parts)
			if err == nil && len(parts) == 3 {
				err = errors.Join(json.Unmarshal(parts[0], &cur.at), json.Unmarshal(parts[1], &cur.conv), json.Unmarshal(parts[2], &cur.seq))
			} else if err == nil {
				err = errors.New("bad cursor")
			}
		}
		if err != nil {
			return abacus.List[ChatMessage]{}, abacus.Invalid("invalid_cursor", "cursor is not one this API returned").WithField("query.cursor", "not a cursor this API returned")
		}
	}
	items, err := searchMessages(ctx, s.db, tenant, q.Text, q.ConversationID, q.SenderID, cur, q.Limit+1)
	if err != nil {
		return abacus.List[ChatMessage]{}, err
	}
	next := ""
	if len(items) > q.Limit {
		items = items[:q.Limit]
		last := items[len(items)-1]
		b, _ := json.Marshal([]any{last.SentAt.UnixMicro(), last.ConversationID, last.Seq})
		next = encodeCursor(string(b))
	}
	return abacus.ListOf(items, next), nil
}
