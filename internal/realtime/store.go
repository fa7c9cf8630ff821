package realtime

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

type scanner interface{ Scan(dest ...any) error }

// prepared runs a transaction's QueryContext and ExecContext through
// statements kept prepared on the SQLite writer across transactions (the
// send path: modernc parses every statement anew otherwise, which was
// about half of what storing a message cost). QueryRowContext is the
// transaction's own.
type prepared struct{ *db.Tx }

func (p prepared) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return p.Tx.QueryPrepared(ctx, q, args...)
}

func (p prepared) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return p.Tx.ExecPrepared(ctx, q, args...)
}

// batchContext is the context a batch of sends runs its statements in.
// On PostgreSQL a deadline bounds a batch stuck on the network. On SQLite
// none: its statements run in this process on a local file (the busy
// timeout bounds the only wait), and modernc starts a goroutine per
// statement to watch a context that can end, a cost on every send.
func batchContext(d *db.DB) (context.Context, context.CancelFunc) {
	if d.Engine() == db.SQLite {
		return context.Background(), func() {}
	}
	return context.WithTimeout(context.Background(), 30*time.Second)
}

func collect[T any](rows *sql.Rows, err error, what string, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

const conversationCols = `id, kind, title, metadata, member_limit, member_count, last_seq, created_by, created_at, updated_at`

func scanConversation(r scanner, extra ...any) (Conversation, error) {
	var c Conversation
	var meta string
	var created, updated db.Time
	if err := r.Scan(append([]any{&c.ID, &c.Kind, &c.Title, &meta, &c.MemberLimit, &c.MemberCount, &c.LastSeq, &c.CreatedBy,
		&created, &updated}, extra...)...); err != nil {
		return c, err
	}
	c.CreatedAt, c.UpdatedAt = created.UTC(), updated.UTC()
	if err := json.Unmarshal([]byte(meta), &c.Metadata); err != nil {
		return c, fmt.Errorf("reading metadata of %s: %w", c.ID, err)
	}
	if c.Metadata == nil {
		c.Metadata = map[string]any{}
	}
	return c, nil
}

func insertConversation(ctx context.Context, tx *db.Tx, tenant string, c Conversation, pair *string, meta string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO conversations (id, tenant_id, kind, pair_key, title, metadata, member_limit, member_count,
		last_seq, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $11)`,
		c.ID, tenant, c.Kind, pair, c.Title, meta, c.MemberLimit, c.MemberCount, c.CreatedBy, db.TimeOf(c.CreatedAt), db.TimeOf(c.UpdatedAt))
	if err != nil && !db.IsUniqueViolation(err) {
		return fmt.Errorf("inserting conversation: %w", err)
	}
	return err
}

func insertMembers(ctx context.Context, tx *db.Tx, tenant, conv string, users, roles []string, at time.Time) error {
	rows := make([][]any, len(users))
	for i, u := range users {
		rows[i] = []any{tenant, conv, u, roles[i], int64(0), db.TimeOf(at)}
	}
	if err := tx.InsertRows(ctx, `INSERT INTO conversation_members (tenant_id, conversation_id, user_id, role, last_read_seq, joined_at)`, "", rows); err != nil {
		return fmt.Errorf("inserting members: %w", err)
	}
	return nil
}

func findPrivate(ctx context.Context, q db.Querier, tenant, pair string) (Conversation, error) {
	c, err := scanConversation(q.QueryRowContext(ctx, `SELECT `+conversationCols+` FROM conversations WHERE tenant_id = $1 AND pair_key = $2`, tenant, pair))
	if err != nil {
		return c, fmt.Errorf("reading private conversation: %w", err)
	}
	return c, nil
}

func getConversation(ctx context.Context, q db.Querier, tenant, id string) (Conversation, error) {
	c, err := scanConversation(q.QueryRowContext(ctx, `SELECT `+conversationCols+` FROM conversations WHERE tenant_id = $1 AND id = $2`, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, abacus.NotFound("conversation", id)
	}
	if err != nil {
		return c, fmt.Errorf("reading conversation %s: %w", id, err)
	}
	return c, nil
}

// getConversationTx reads a conversation in tx, locking its row on
// PostgreSQL when lock is set (membership changes serialize on it).
func getConversationTx(ctx context.Context, tx *db.Tx, tenant, id string, lock bool) (Conversation, error) {
	clause := ""
	if lock {
		clause = tx.LockClause(" FOR UPDATE")
	}
	c, err := scanConversation(tx.QueryRowContext(ctx, `SELECT `+conversationCols+` FROM conversations WHERE tenant_id = $1 AND id = $2`+clause, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, abacus.NotFound("conversation", id)
	}
	if err != nil {
		return c, fmt.Errorf("reading conversation %s: %w", id, err)
	}
	return c, nil
}

func listConversations(ctx context.Context, q db.Querier, tenant string, f ConversationFilter, after string) ([]Conversation, error) {
	if f.MemberID == "" {
		rows, err := q.QueryContext(ctx, `SELECT `+conversationCols+` FROM conversations
			WHERE tenant_id = $1 AND id > $2 AND ($3 = '' OR kind = $3) ORDER BY id LIMIT $4`, tenant, after, f.Kind, f.Limit+1)
		return collect(rows, err, "listing conversations", func(r scanner) (Conversation, error) { return scanConversation(r) })
	}
	rows, err := q.QueryContext(ctx, `SELECT c.id, c.kind, c.title, c.metadata, c.member_limit, c.member_count, c.last_seq, c.created_by,
			c.created_at, c.updated_at, m.role, m.last_read_seq,
			(SELECT COUNT(*) FROM conversation_messages x WHERE x.tenant_id = m.tenant_id AND x.conversation_id = m.conversation_id
				AND x.seq > m.last_read_seq AND x.sender_id <> m.user_id AND x.deleted_at IS NULL)
		FROM conversation_members m JOIN conversations c ON c.tenant_id = m.tenant_id AND c.id = m.conversation_id
		WHERE m.tenant_id = $1 AND m.user_id = $2 AND m.conversation_id > $3 AND ($4 = '' OR c.kind = $4)
		ORDER BY m.conversation_id LIMIT $5`, tenant, f.MemberID, after, f.Kind, f.Limit+1)
	return collect(rows, err, "listing conversations", func(r scanner) (Conversation, error) {
		var ms MemberState
		c, err := scanConversation(r, &ms.Role, &ms.LastReadSeq, &ms.Unread)
		c.Membership = &ms
		return c, err
	})
}

func updateConversation(ctx context.Context, tx *db.Tx, tenant string, c Conversation, meta string) error {
	_, err := tx.ExecContext(ctx, `UPDATE conversations SET title = $3, metadata = $4, member_limit = $5, updated_at = $6
		WHERE tenant_id = $1 AND id = $2`, tenant, c.ID, c.Title, meta, c.MemberLimit, db.TimeOf(c.UpdatedAt))
	if err != nil {
		return fmt.Errorf("updating conversation %s: %w", c.ID, err)
	}
	return nil
}

func addMemberCount(ctx context.Context, tx *db.Tx, tenant, conv string, n int, at time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE conversations SET member_count = member_count + $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2`,
		tenant, conv, n, db.TimeOf(at))
	if err != nil {
		return fmt.Errorf("counting members of %s: %w", conv, err)
	}
	return nil
}

// memberIDs returns the user ids of a conversation's members.
func memberIDs(ctx context.Context, q db.Querier, tenant, conv string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT user_id FROM conversation_members WHERE tenant_id = $1 AND conversation_id = $2`, tenant, conv)
	return collect(rows, err, "reading members", func(r scanner) (string, error) {
		var id string
		return id, r.Scan(&id)
	})
}

func scanMember(r scanner) (ConversationMember, error) {
	var m ConversationMember
	var joined db.Time
	err := r.Scan(&m.UserID, &m.Role, &m.LastReadSeq, &m.LastDeliveredSeq, &joined)
	m.JoinedAt = joined.UTC()
	return m, err
}

func listMembers(ctx context.Context, q db.Querier, tenant, conv, after string, limit int) ([]ConversationMember, error) {
	rows, err := q.QueryContext(ctx, `SELECT user_id, role, last_read_seq, last_delivered_seq, joined_at FROM conversation_members
		WHERE tenant_id = $1 AND conversation_id = $2 AND user_id > $3 ORDER BY user_id LIMIT $4`, tenant, conv, after, limit)
	return collect(rows, err, "listing members", scanMember)
}

func getMember(ctx context.Context, q db.Querier, tenant, conv, user string) (ConversationMember, error) {
	m, err := scanMember(q.QueryRowContext(ctx, `SELECT user_id, role, last_read_seq, last_delivered_seq, joined_at FROM conversation_members
		WHERE tenant_id = $1 AND conversation_id = $2 AND user_id = $3`, tenant, conv, user))
	if errors.Is(err, sql.ErrNoRows) {
		return m, abacus.NotFound("member", user)
	}
	if err != nil {
		return m, fmt.Errorf("reading member: %w", err)
	}
	return m, nil
}

func memberRole(ctx context.Context, q db.Querier, tenant, conv, user string) (string, bool, error) {
	m, err := getMember(ctx, q, tenant, conv, user)
	if e, ok := abacus.AsError(err); ok && e.Kind == abacus.KindNotFound {
		return "", false, nil
	}
	return m.Role, err == nil, err
}

func deleteMember(ctx context.Context, tx *db.Tx, tenant, conv, user string) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM conversation_members WHERE tenant_id = $1 AND conversation_id = $2 AND user_id = $3`, tenant, conv, user)
	if err != nil {
		return fmt.Errorf("removing member: %w", err)
	}
	return nil
}

func setMemberRole(ctx context.Context, tx *db.Tx, tenant, conv, user, role string) error {
	_, err := tx.ExecContext(ctx, `UPDATE conversation_members SET role = $4 WHERE tenant_id = $1 AND conversation_id = $2 AND user_id = $3`,
		tenant, conv, user, role)
	if err != nil {
		return fmt.Errorf("setting role: %w", err)
	}
	return nil
}

func ownerOf(ctx context.Context, q db.Querier, tenant, conv string) (string, error) {
	var id string
	err := q.QueryRowContext(ctx, `SELECT user_id FROM conversation_members WHERE tenant_id = $1 AND conversation_id = $2 AND role = 'owner'`,
		tenant, conv).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading owner: %w", err)
	}
	return id, nil
}

// promoteSuccessor makes the longest-standing admin, else member, the
// owner, and returns who (none when the group is empty).
func promoteSuccessor(ctx context.Context, tx *db.Tx, tenant, conv string) (string, error) {
	var id string
	err := tx.QueryRowContext(ctx, `SELECT user_id FROM conversation_members WHERE tenant_id = $1 AND conversation_id = $2
		ORDER BY CASE role WHEN 'admin' THEN 0 ELSE 1 END, joined_at, user_id LIMIT 1`, tenant, conv).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("choosing a new owner: %w", err)
	}
	return id, setMemberRole(ctx, tx, tenant, conv, id, RoleOwner)
}

// setReceipt moves a member's last_read_seq (read, which implies
// delivered) or last_delivered_seq forward to seq, never back.
func setReceipt(ctx context.Context, tx *db.Tx, tenant, conv, user string, seq int64, read bool) error {
	q := `UPDATE conversation_members SET last_delivered_seq = $4
		WHERE tenant_id = $1 AND conversation_id = $2 AND user_id = $3 AND last_delivered_seq < $4`
	_, err := tx.ExecContext(ctx, q, tenant, conv, user, seq)
	if err == nil && read {
		_, err = tx.ExecContext(ctx, `UPDATE conversation_members SET last_read_seq = $4
			WHERE tenant_id = $1 AND conversation_id = $2 AND user_id = $3 AND last_read_seq < $4`, tenant, conv, user, seq)
	}
	if err != nil {
		return fmt.Errorf("recording a receipt: %w", err)
	}
	return nil
}

// nextSeq allocates the conversation's next sequence number. The update
// locks the conversation's row until the transaction ends, so sends to
// one conversation take numbers one after the other, without gaps.
func nextSeq(ctx context.Context, tx *db.Tx, tenant, conv string, at time.Time) (int64, error) {
	var seq int64
	rows, err := tx.QueryPrepared(ctx, `UPDATE conversations SET last_seq = last_seq + 1, updated_at = $3
		WHERE tenant_id = $1 AND id = $2 RETURNING last_seq`, tenant, conv, db.TimeOf(at))
	err = db.ScanFirst(rows, err, &seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, abacus.NotFound("conversation", conv)
	}
	if err != nil {
		return 0, fmt.Errorf("allocating a sequence number: %w", err)
	}
	return seq, nil
}

func insertMessage(ctx context.Context, tx *db.Tx, tenant string, m ChatMessage, attachments string) error {
	_, err := tx.ExecPrepared(ctx, `INSERT INTO conversation_messages (tenant_id, conversation_id, seq, sender_id, client_id, text,
		attachments, reply_to, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		tenant, m.ConversationID, m.Seq, m.SenderID, m.ClientID, m.Text, attachments, m.ReplyTo, db.TimeOf(m.SentAt))
	if err != nil && !db.IsUniqueViolation(err) {
		return fmt.Errorf("inserting message: %w", err)
	}
	return err
}

const messageCols = `conversation_id, seq, sender_id, client_id, text, attachments, reply_to, created_at, edited_at, deleted_at`

func scanMessage(r scanner) (ChatMessage, error) {
	var m ChatMessage
	var att string
	var reply sql.NullInt64
	var sent db.Time
	var edited, deleted db.NullTime
	if err := r.Scan(&m.ConversationID, &m.Seq, &m.SenderID, &m.ClientID, &m.Text, &att, &reply, &sent, &edited, &deleted); err != nil {
		return m, err
	}
	m.SentAt = sent.UTC()
	if t := edited.Ptr(); t != nil {
		u := t.UTC()
		m.EditedAt = &u
	}
	m.Deleted = deleted.Valid
	if reply.Valid {
		m.ReplyTo = &reply.Int64
	}
	if att != "[]" && att != "" {
		if err := json.Unmarshal([]byte(att), &m.Attachments); err != nil {
			return m, fmt.Errorf("reading attachments: %w", err)
		}
	}
	return m, nil
}

func messageByClientID(ctx context.Context, q db.Querier, tenant, conv, sender, client string) (ChatMessage, bool, error) {
	// QueryContext, not QueryRowContext, so that prepared{tx} prepares it.
	rows, err := q.QueryContext(ctx, `SELECT `+messageCols+` FROM conversation_messages
		WHERE tenant_id = $1 AND conversation_id = $2 AND sender_id = $3 AND client_id = $4`, tenant, conv, sender, client)
	ms, err := collect(rows, err, "reading message by client id", scanMessage)
	if err != nil || len(ms) == 0 {
		return ChatMessage{}, false, err
	}
	return ms[0], true, nil
}

func getMessage(ctx context.Context, q db.Querier, tenant, conv string, seq int64) (ChatMessage, error) {
	m, err := scanMessage(q.QueryRowContext(ctx, `SELECT `+messageCols+` FROM conversation_messages
		WHERE tenant_id = $1 AND conversation_id = $2 AND seq = $3`, tenant, conv, seq))
	if errors.Is(err, sql.ErrNoRows) {
		return m, abacus.NotFound("message", fmt.Sprint(seq))
	}
	if err != nil {
		return m, fmt.Errorf("reading message: %w", err)
	}
	return m, nil
}

// messagesAfter returns up to limit messages with seq > after, ascending.
func messagesAfter(ctx context.Context, q db.Querier, tenant, conv string, after int64, limit int) ([]ChatMessage, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+messageCols+` FROM conversation_messages
		WHERE tenant_id = $1 AND conversation_id = $2 AND seq > $3 ORDER BY seq LIMIT $4`, tenant, conv, after, limit)
	return collect(rows, err, "reading messages", scanMessage)
}

// messagesSince returns up to limit messages stored at or after since
// with seq < before, ascending.
func messagesSince(ctx context.Context, q db.Querier, tenant, conv string, since time.Time, before int64, limit int) ([]ChatMessage, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+messageCols+` FROM conversation_messages
		WHERE tenant_id = $1 AND conversation_id = $2 AND seq < $3 AND created_at >= $4 ORDER BY seq LIMIT $5`,
		tenant, conv, before, db.TimeOf(since), limit)
	return collect(rows, err, "reading messages", scanMessage)
}

// searchMessages returns up to limit messages of the tenant whose text
// contains q (case-insensitive), newest first, before the cursor
// (created_at, conversation_id, seq), optionally in one conversation or
// from one sender. A scan of the tenant's messages: no text index.
func searchMessages(ctx context.Context, q db.Querier, tenant, text, conv, sender string, cur searchCursor, limit int) ([]ChatMessage, error) {
	pattern := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(strings.ToLower(text)) + "%"
	rows, err := q.QueryContext(ctx, `SELECT `+messageCols+` FROM conversation_messages
		WHERE tenant_id = $1 AND deleted_at IS NULL AND LOWER(text) LIKE $2 ESCAPE '\'
		AND ($3 = '' OR conversation_id = $3) AND ($4 = '' OR sender_id = $4)
		AND (created_at < $5 OR (created_at = $5 AND (conversation_id < $6 OR (conversation_id = $6 AND seq < $7))))
		ORDER BY created_at DESC, conversation_id DESC, seq DESC LIMIT $8`,
		tenant, pattern, conv, sender, cur.at, cur.conv, cur.seq, limit)
	return collect(rows, err, "searching messages", scanMessage)
}

// messagesBefore returns up to limit messages with seq < before, descending.
func messagesBefore(ctx context.Context, q db.Querier, tenant, conv string, before int64, limit int) ([]ChatMessage, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+messageCols+` FROM conversation_messages
		WHERE tenant_id = $1 AND conversation_id = $2 AND seq < $3 ORDER BY seq DESC LIMIT $4`, tenant, conv, before, limit)
	return collect(rows, err, "reading messages", scanMessage)
}

func editMessage(ctx context.Context, tx *db.Tx, tenant, conv string, seq int64, text string, at time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE conversation_messages SET text = $4, edited_at = $5
		WHERE tenant_id = $1 AND conversation_id = $2 AND seq = $3`, tenant, conv, seq, text, db.TimeOf(at))
	if err != nil {
		return fmt.Errorf("editing message: %w", err)
	}
	return nil
}

func deleteMessage(ctx context.Context, tx *db.Tx, tenant, conv string, seq int64, at time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE conversation_messages SET text = '', attachments = '[]', reply_to = NULL, deleted_at = $4
		WHERE tenant_id = $1 AND conversation_id = $2 AND seq = $3`, tenant, conv, seq, db.TimeOf(at))
	if err == nil {
		_, err = tx.ExecContext(ctx, `DELETE FROM message_reactions WHERE tenant_id = $1 AND conversation_id = $2 AND seq = $3`, tenant, conv, seq)
	}
	if err != nil {
		return fmt.Errorf("deleting message: %w", err)
	}
	return nil
}

func setReaction(ctx context.Context, tx *db.Tx, tenant, conv string, seq int64, user, emoji string, on bool, at time.Time) error {
	var err error
	if on {
		_, err = tx.ExecContext(ctx, `INSERT INTO message_reactions (tenant_id, conversation_id, seq, user_id, emoji, created_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, tenant, conv, seq, user, emoji, db.TimeOf(at))
	} else {
		_, err = tx.ExecContext(ctx, `DELETE FROM message_reactions WHERE tenant_id = $1 AND conversation_id = $2 AND seq = $3
			AND user_id = $4 AND emoji = $5`, tenant, conv, seq, user, emoji)
	}
	if err != nil {
		return fmt.Errorf("setting reaction: %w", err)
	}
	return nil
}

// withReactions fills the reactions of ms (messages of conv).
func withReactions(ctx context.Context, q db.Querier, tenant, conv string, ms []ChatMessage) error {
	if len(ms) == 0 {
		return nil
	}
	lo, hi := ms[0].Seq, ms[0].Seq
	for _, m := range ms {
		lo, hi = min(lo, m.Seq), max(hi, m.Seq)
	}
	type row struct {
		seq         int64
		user, emoji string
	}
	rows, err := q.QueryContext(ctx, `SELECT seq, user_id, emoji FROM message_reactions
		WHERE tenant_id = $1 AND conversation_id = $2 AND seq BETWEEN $3 AND $4 ORDER BY seq, created_at, user_id`, tenant, conv, lo, hi)
	rs, err := collect(rows, err, "reading reactions", func(r scanner) (row, error) {
		var x row
		return x, r.Scan(&x.seq, &x.user, &x.emoji)
	})
	if err != nil {
		return err
	}
	idx := map[int64]int{}
	for i, m := range ms {
		idx[m.Seq] = i
	}
	for _, x := range rs {
		i, ok := idx[x.seq]
		if !ok {
			continue
		}
		m := &ms[i]
		found := false
		for j := range m.Reactions {
			if m.Reactions[j].Emoji == x.emoji {
				m.Reactions[j].UserIDs = append(m.Reactions[j].UserIDs, x.user)
				found = true
			}
		}
		if !found {
			m.Reactions = append(m.Reactions, Reaction{Emoji: x.emoji, UserIDs: []string{x.user}})
		}
	}
	return nil
}

// tenantKey returns the tenant's token signing key, creating it on first
// use (concurrent creators agree on the first one stored).
func tenantKey(ctx context.Context, d *db.DB, tenant string, fresh func() (kid, secret string), at time.Time) (string, string, error) {
	var kid, secret string
	err := d.QueryRowContext(ctx, `SELECT kid, secret FROM realtime_keys WHERE tenant_id = $1`, tenant).Scan(&kid, &secret)
	if err == nil {
		return kid, secret, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", "", fmt.Errorf("reading the realtime key: %w", err)
	}
	if fresh == nil {
		return "", "", errTokenInvalid
	}
	k, s := fresh()
	if _, err := d.ExecContext(ctx, `INSERT INTO realtime_keys (tenant_id, kid, secret, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT DO NOTHING`, tenant, k, s, db.TimeOf(at)); err != nil {
		return "", "", fmt.Errorf("storing the realtime key: %w", err)
	}
	if err := d.QueryRowContext(ctx, `SELECT kid, secret FROM realtime_keys WHERE tenant_id = $1`, tenant).Scan(&kid, &secret); err != nil {
		return "", "", fmt.Errorf("reading the realtime key: %w", err)
	}
	return kid, secret, nil
}
