package realtime

import (
	"context"
	"fmt"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// Offline notifications. A message stored while a member other than the
// sender has no live connection anywhere (Hooks.Online) marks its
// conversation pending, in the transaction that stores it:
//
//	send ─(a member offline)─▶ realtime_offline_pending (conversation, last_seq, due_at = now + OfflineDelay)
//	due ─▶ one transaction: claim the row (delete it if last_seq is unchanged)
//	       → for each member who is offline now, has not muted the conversation,
//	         and has messages from others after max(last_read_seq, notified_seq)
//	         that are not deleted: Hooks.Notify (the notifications module's
//	         Enqueue, same transaction) and notified_seq = last_seq
//
// So a message read on another device before the delay ends
// (last_read_seq) is not notified, a burst of messages makes one
// notification per member, a message is notified at most once per member
// (notified_seq), and a crash between send and due loses nothing: the row
// is in the database and any realtime node claims it.

// OfflineNotice tells a member about messages they received while they
// had no live connection: Count messages from others after what they
// read or were last notified of, up to Last.
type OfflineNotice struct {
	TenantID         string
	ConversationID   string
	ConversationKind string
	Title            string
	UserID           string
	Count            int
	// Last is the latest of those messages.
	Last ChatMessage
}

// markOffline records, in the transaction storing message seq, that it
// must be notified to members with no live connection once due.
func (s *Service) markOffline(ctx context.Context, tx *db.Tx, tenant, conv, sender string, members []string, seq int64) error {
	if s.hooks.Notify == nil {
		return nil
	}
	offline := false
	for _, m := range members {
		if m != sender && !s.online(tenant, m) {
			offline = true
			break
		}
	}
	if !offline {
		return nil
	}
	due := s.clock.Now().Add(s.cfg.OfflineDelay)
	_, err := tx.ExecPrepared(ctx, `INSERT INTO realtime_offline_pending (tenant_id, conversation_id, last_seq, due_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, conversation_id) DO UPDATE SET last_seq = excluded.last_seq`,
		tenant, conv, seq, db.TimeOf(due))
	if err != nil {
		return fmt.Errorf("marking offline recipients: %w", err)
	}
	return nil
}

// online reports whether user has a live connection on any node (the
// Online hook), or on this one without it.
func (s *Service) online(tenant, user string) bool {
	if h := s.hooks.Online; h != nil {
		return h(tenant, user)
	}
	return len(s.hub.local(tenant, user)) > 0
}

type pendingConv struct {
	tenant, conv string
	lastSeq      int64
}

// NotifyOffline sends the offline notifications that are due and returns
// how many members were notified. Several nodes may run it at once: each
// pending conversation is claimed by one.
func (s *Service) NotifyOffline(ctx context.Context) (int, error) {
	if s.hooks.Notify == nil {
		return 0, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT tenant_id, conversation_id, last_seq FROM realtime_offline_pending
		WHERE due_at <= $1 ORDER BY due_at LIMIT 200`, db.TimeOf(s.clock.Now()))
	due, err := collect(rows, err, "reading due offline notifications", func(r scanner) (pendingConv, error) {
		var p pendingConv
		return p, r.Scan(&p.tenant, &p.conv, &p.lastSeq)
	})
	if err != nil {
		return 0, err
	}
	total := 0
	for _, p := range due {
		n, err := s.notifyConversation(ctx, p)
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

type offlineMember struct {
	user       string
	lastRead   int64
	notified   int64
	mutedUntil db.NullTime
}

func (s *Service) notifyConversation(ctx context.Context, p pendingConv) (int, error) {
	n := 0
	now := s.clock.Now()
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		n = 0
		res, err := tx.ExecContext(ctx, `DELETE FROM realtime_offline_pending WHERE tenant_id = $1 AND conversation_id = $2 AND last_seq = $3`,
			p.tenant, p.conv, p.lastSeq)
		if err != nil {
			return fmt.Errorf("claiming offline notifications of %s: %w", p.conv, err)
		}
		if k, err := res.RowsAffected(); err != nil || k == 0 {
			return err // a new message moved it, or another node took it
		}
		c, err := getConversationTx(ctx, tx, p.tenant, p.conv, false)
		if err != nil {
			if e, ok := abacus.AsError(err); ok && e.Kind == abacus.KindNotFound {
				return nil // deleted meanwhile
			}
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT user_id, last_read_seq, notified_seq, muted_until FROM conversation_members
			WHERE tenant_id = $1 AND conversation_id = $2 AND last_read_seq < $3 AND notified_seq < $3`, p.tenant, p.conv, p.lastSeq)
		members, err := collect(rows, err, "reading members to notify", func(r scanner) (offlineMember, error) {
			var m offlineMember
			return m, r.Scan(&m.user, &m.lastRead, &m.notified, &m.mutedUntil)
		})
		if err != nil {
			return err
		}
		for _, m := range members {
			if s.online(p.tenant, m.user) {
				continue
			}
			if t := m.mutedUntil.Ptr(); t != nil && t.After(now) {
				continue
			}
			count, last, err := unreadFromOthers(ctx, tx, p.tenant, p.conv, m.user, max(m.lastRead, m.notified), p.lastSeq)
			if err != nil {
				return err
			}
			if count > 0 {
				if err := s.hooks.Notify(ctx, tx, OfflineNotice{TenantID: p.tenant, ConversationID: p.conv, ConversationKind: c.Kind,
					Title: c.Title, UserID: m.user, Count: count, Last: last}); err != nil {
					return fmt.Errorf("notifying %s of %s: %w", m.user, p.conv, err)
				}
				n++
			}
			if _, err := tx.ExecContext(ctx, `UPDATE conversation_members SET notified_seq = $4
				WHERE tenant_id = $1 AND conversation_id = $2 AND user_id = $3 AND notified_seq < $4`, p.tenant, p.conv, m.user, p.lastSeq); err != nil {
				return fmt.Errorf("recording a notification: %w", err)
			}
		}
		return nil
	})
	return n, err
}

// unreadFromOthers counts the messages of conv in (after, upTo] that
// others (not blocked by user) sent and are not deleted, and returns the
// latest.
func unreadFromOthers(ctx context.Context, tx *db.Tx, tenant, conv, user string, after, upTo int64) (int, ChatMessage, error) {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM conversation_messages WHERE tenant_id = $1 AND conversation_id = $2
		AND seq > $3 AND seq <= $4 AND sender_id <> $5 AND deleted_at IS NULL
		AND sender_id NOT IN (SELECT blocked_id FROM realtime_blocks WHERE tenant_id = $1 AND user_id = $5)`, tenant, conv, after, upTo, user).Scan(&n); err != nil {
		return 0, ChatMessage{}, fmt.Errorf("counting unread messages: %w", err)
	}
	if n == 0 {
		return 0, ChatMessage{}, nil
	}
	m, err := scanMessage(tx.QueryRowContext(ctx, `SELECT `+messageCols+` FROM conversation_messages WHERE tenant_id = $1
		AND conversation_id = $2 AND seq > $3 AND seq <= $4 AND sender_id <> $5 AND deleted_at IS NULL
		AND sender_id NOT IN (SELECT blocked_id FROM realtime_blocks WHERE tenant_id = $1 AND user_id = $5) ORDER BY seq DESC LIMIT 1`,
		tenant, conv, after, upTo, user))
	if err != nil {
		return 0, ChatMessage{}, fmt.Errorf("reading the latest unread message: %w", err)
	}
	return n, m, nil
}

// runOffline sends due offline notifications every OfflinePoll until ctx
// ends.
func (s *Service) runOffline(ctx context.Context) {
	t := time.NewTicker(s.cfg.OfflinePoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.NotifyOffline(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("realtime: offline notifications failed; retried at the next poll", "err", err)
		}
	}
}
