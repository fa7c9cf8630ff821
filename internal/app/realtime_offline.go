package app

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/notifications"
	"github.com/abacusbilling/abacus/internal/realtime"
)

// offlineTemplate is the built-in template of messages to members who had
// no live connection (docs/realtime.md, Offline notifications).
const offlineTemplate = "conversation.new_messages"

// notifyOffline turns realtime's offline notice into a notification to
// the member, an end user (their inbox, their devices' Web Push, their
// e-mail when configured), inside the transaction that claims the notice.
// The member's preferences for category "messages" apply when it is
// delivered; the dedupe key makes one notification per member and last
// message, whoever enqueues it.
func (a *App) notifyOffline(ctx context.Context, tx *db.Tx, n realtime.OfflineNotice) error {
	channels := a.Config.Realtime.OfflineChannels
	if len(channels) == 0 {
		channels = []string{notifications.ChannelInApp, notifications.ChannelPush}
	}
	to := notifications.Recipient{Kind: notifications.RecipientEndUser, ID: n.UserID}
	// An end user's address, name and zone (quiet hours); the tenant's own
	// user ids have none, and get what needs no address (their inbox).
	if u, err := a.EndUsers().User(tenantCtx(ctx, n.TenantID), n.UserID); err == nil {
		to.Email, to.Name, to.TimeZone = u.Email, u.Name, u.TimeZone
	}
	text := n.Last.Text
	if len(text) > 280 {
		text = text[:280]
		for !utf8.ValidString(text) {
			text = text[:len(text)-1]
		}
		text += "…"
	}
	if text == "" && len(n.Last.Attachments) > 0 {
		text = "[" + n.Last.Attachments[0].Type + "]"
	}
	_, err := a.modules().notify.Enqueue(ctx, tx, notifications.Message{
		TenantID: n.TenantID, Template: offlineTemplate, To: to, Channels: channels,
		Category: notifications.CategoryMessages,
		Data: map[string]any{
			"conversation": map[string]any{"id": n.ConversationID, "kind": n.ConversationKind, "title": n.Title},
			"sender":       map[string]any{"id": n.Last.SenderID},
			"text":         text, "count": n.Count, "seq": n.Last.Seq,
		},
		DedupeKey: fmt.Sprintf("rt:%s:%s:%d", n.ConversationID, n.UserID, n.Last.Seq),
		Source:    "realtime", SubjectType: "conversation", SubjectID: n.ConversationID,
	})
	return err
}
