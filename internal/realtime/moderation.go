package realtime

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// Moderation: what users do for themselves (block a user, mute a
// conversation, report a message; frames of docs/realtime.md) and what
// the tenant's staff do (handle reports, remove messages and members,
// disconnect a user; routes). The per-user send limit is in package
// moderation.

// forever is the muted_until of a conversation muted without an end.
var forever = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// SetBlock records that user blocks other (on) or no longer does. In a
// conversation of the two of them (or any of two members) neither can
// send while one blocks the other, and the blocked user's messages are
// never notified to the blocker.
func (s *Service) SetBlock(ctx context.Context, user, other string, on bool) error {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return err
	}
	if why := validUserID(other); why != "" || other == user {
		if why == "" {
			why = "is the user itself"
		}
		return abacus.Invalid("invalid_user", "user_id %s", why).WithField("user_id", why)
	}
	if on {
		_, err = s.db.ExecContext(ctx, `INSERT INTO realtime_blocks (tenant_id, user_id, blocked_id, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT DO NOTHING`, tenant, user, other, db.TimeOf(s.clock.Now()))
	} else {
		_, err = s.db.ExecContext(ctx, `DELETE FROM realtime_blocks WHERE tenant_id = $1 AND user_id = $2 AND blocked_id = $3`, tenant, user, other)
	}
	if err != nil {
		return fmt.Errorf("recording a block: %w", err)
	}
	return nil
}

// checkBlocked refuses a send between the two members of a conversation
// of two when one blocks the other.
func checkBlocked(ctx context.Context, tx *db.Tx, tenant, sender string, members []string) error {
	if len(members) != 2 {
		return nil
	}
	other := members[0]
	if other == sender {
		other = members[1]
	}
	var n int
	rows, err := tx.QueryPrepared(ctx, `SELECT COUNT(*) FROM realtime_blocks WHERE tenant_id = $1
		AND ((user_id = $2 AND blocked_id = $3) OR (user_id = $3 AND blocked_id = $2))`, tenant, sender, other)
	if err := db.ScanFirst(rows, err, &n); err != nil {
		return fmt.Errorf("reading blocks: %w", err)
	}
	if n > 0 {
		return abacus.Errorf(abacus.KindForbidden, "blocked", "messages between %s and %s are blocked", sender, other)
	}
	return nil
}

// Mute stops the offline notifications of a conversation for a member
// until then (zero: until unmuted); Unmute with until nil.
func (s *Service) Mute(ctx context.Context, conv, user string, until *time.Time) (*time.Time, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	var v any
	if until != nil {
		t := *until
		if t.IsZero() {
			t = forever
		}
		until = &t
		v = db.TimeOf(t)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE conversation_members SET muted_until = $4 WHERE tenant_id = $1 AND conversation_id = $2 AND user_id = $3`,
		tenant, conv, user, v)
	if err != nil {
		return nil, fmt.Errorf("muting: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		if _, err := getConversation(ctx, s.db, tenant, conv); err != nil {
			return nil, err
		}
		return nil, abacus.Errorf(abacus.KindForbidden, "not_a_member", "%s is not a member of conversation %s", user, conv)
	}
	return until, nil
}

// Report states.
const (
	ReportOpen      = "open"
	ReportResolved  = "resolved"
	ReportDismissed = "dismissed"
)

// MessageReport is a message a member reported to the tenant's staff.
type MessageReport struct {
	ID             string     `json:"id" example:"rpt_01jd6z8q4m7x2v3b9n5k1c0abc"`
	ConversationID string     `json:"conversation_id" example:"cnv_01jd6z8q4m7x2v3b9n5k1c0abc"`
	Seq            int64      `json:"seq" example:"42"`
	ReporterID     string     `json:"reporter_id" example:"user_bob"`
	SenderID       string     `json:"sender_id" example:"user_eve"`
	Text           string     `json:"text" doc:"the message's text when it was reported"`
	Reason         string     `json:"reason" example:"spam"`
	Status         string     `json:"status" enum:"open,resolved,dismissed"`
	Resolution     string     `json:"resolution,omitempty" doc:"what staff did, in their words"`
	CreatedAt      time.Time  `json:"created_at"`
	ResolvedAt     *time.Time `json:"resolved_at,omitempty"`
}

// MessageReportInput reports a message as a member.
type MessageReportInput struct {
	ReporterID string `json:"reporter_id" example:"user_bob" doc:"the member reporting"`
	Reason     string `json:"reason" maxLength:"500" example:"spam" doc:"why (at most 500 bytes)"`
}

// MessageReportResolution is staff's decision on a report.
type MessageReportResolution struct {
	Status     string `json:"status" enum:"resolved,dismissed"`
	Resolution string `json:"resolution,omitempty" maxLength:"500"`
	// DeleteMessage makes the reported message a tombstone; RemoveSender
	// removes its sender from the (group) conversation.
	DeleteMessage bool `json:"delete_message,omitempty"`
	RemoveSender  bool `json:"remove_sender,omitempty"`
}

// ReportEvent is the payload of message.reported.
type ReportEvent struct {
	ReportID       string    `json:"report_id"`
	ConversationID string    `json:"conversation_id"`
	Seq            int64     `json:"seq"`
	ReporterID     string    `json:"reporter_id"`
	SenderID       string    `json:"sender_id"`
	Reason         string    `json:"reason"`
	At             time.Time `json:"at"`
}

const reportCols = `id, conversation_id, seq, reporter_id, sender_id, text, reason, status, resolution, created_at, resolved_at`

func scanReport(r scanner) (MessageReport, error) {
	var x MessageReport
	var created db.Time
	var resolved db.NullTime
	err := r.Scan(&x.ID, &x.ConversationID, &x.Seq, &x.ReporterID, &x.SenderID, &x.Text, &x.Reason, &x.Status, &x.Resolution, &created, &resolved)
	x.CreatedAt = created.UTC()
	if t := resolved.Ptr(); t != nil {
		u := t.UTC()
		x.ResolvedAt = &u
	}
	return x, err
}

// ReportMessage records a member's report of a message (once per member
// and message: a repeat returns the first) and announces it
// (message.reported). Errors: not_a_member, message_not_found,
// invalid_report.
func (s *Service) ReportMessage(ctx context.Context, conv string, seq int64, in MessageReportInput) (MessageReport, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return MessageReport{}, err
	}
	if len(in.Reason) > 500 || !utf8.ValidString(in.Reason) {
		return MessageReport{}, abacus.Invalid("invalid_report", "reason must be at most 500 bytes of UTF-8").WithField("body.reason", "at most 500 bytes")
	}
	if why := validUserID(in.ReporterID); why != "" {
		return MessageReport{}, abacus.Invalid("invalid_report", "reporter_id %s", why).WithField("body.reporter_id", why)
	}
	now := s.clock.Now()
	var out MessageReport
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if _, ok, err := memberRole(ctx, tx, tenant, conv, in.ReporterID); err != nil || !ok {
			if err == nil {
				if _, err = getConversationTx(ctx, tx, tenant, conv, false); err == nil {
					err = abacus.Errorf(abacus.KindForbidden, "not_a_member", "%s is not a member of conversation %s", in.ReporterID, conv)
				}
			}
			return err
		}
		m, err := getMessage(ctx, tx, tenant, conv, seq)
		if err != nil {
			return err
		}
		x, err := scanReport(tx.QueryRowContext(ctx, `SELECT `+reportCols+` FROM realtime_reports WHERE tenant_id = $1 AND conversation_id = $2
			AND seq = $3 AND reporter_id = $4`, tenant, conv, seq, in.ReporterID))
		if err == nil {
			out = x
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("reading a report: %w", err)
		}
		out = MessageReport{ID: abacus.NewID("rpt"), ConversationID: conv, Seq: seq, ReporterID: in.ReporterID, SenderID: m.SenderID,
			Text: m.Text, Reason: in.Reason, Status: ReportOpen, CreatedAt: now}
		if _, err := tx.ExecContext(ctx, `INSERT INTO realtime_reports (id, tenant_id, conversation_id, seq, reporter_id, sender_id, text, reason,
			status, resolution, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, '', $10)`,
			out.ID, tenant, conv, seq, in.ReporterID, m.SenderID, m.Text, in.Reason, ReportOpen, db.TimeOf(now)); err != nil {
			return fmt.Errorf("storing a report: %w", err)
		}
		_, err = MessageReported.Record(ctx, tx, tenant, conv, now, ReportEvent{ReportID: out.ID, ConversationID: conv, Seq: seq,
			ReporterID: in.ReporterID, SenderID: m.SenderID, Reason: in.Reason, At: now})
		return err
	})
	return out, err
}

// ListReports lists the tenant's reports, newest first, optionally of
// one status.
func (s *Service) ListReports(ctx context.Context, status string, limit int, cursor string) (abacus.List[MessageReport], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[MessageReport]{}, err
	}
	if limit <= 0 {
		limit = 20
	}
	before, err := decodeCursor(cursor)
	if err != nil {
		return abacus.List[MessageReport]{}, err
	}
	if before == "" {
		before = "~"
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+reportCols+` FROM realtime_reports WHERE tenant_id = $1 AND ($2 = '' OR status = $2)
		AND id < $3 ORDER BY id DESC LIMIT $4`, tenant, status, before, limit+1)
	items, err := collect(rows, err, "listing reports", scanReport)
	if err != nil {
		return abacus.List[MessageReport]{}, err
	}
	next := ""
	if len(items) > limit {
		items = items[:limit]
		next = encodeCursor(items[len(items)-1].ID)
	}
	return abacus.ListOf(items, next), nil
}

// ResolveReport records staff's decision on a report, and deletes the
// message or removes its sender when asked. Errors: report_not_found,
// invalid_resolution.
func (s *Service) ResolveReport(ctx context.Context, id string, in MessageReportResolution) (MessageReport, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return MessageReport{}, err
	}
	if in.Status != ReportResolved && in.Status != ReportDismissed {
		return MessageReport{}, abacus.Invalid("invalid_resolution", "status must be resolved or dismissed").WithField("body.status", "resolved or dismissed")
	}
	x, err := scanReport(s.db.QueryRowContext(ctx, `SELECT `+reportCols+` FROM realtime_reports WHERE tenant_id = $1 AND id = $2`, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return MessageReport{}, abacus.NotFound("report", id)
	}
	if err != nil {
		return MessageReport{}, fmt.Errorf("reading report %s: %w", id, err)
	}
	if in.DeleteMessage {
		if _, err := s.DeleteMessage(ctx, x.ConversationID, x.Seq, ""); err != nil && !isNotFound(err) {
			return MessageReport{}, err
		}
	}
	if in.RemoveSender {
		if err := s.RemoveMember(ctx, x.ConversationID, x.SenderID, ""); err != nil && !isNotFound(err) {
			return MessageReport{}, err
		}
	}
	now := s.clock.Now()
	if _, err := s.db.ExecContext(ctx, `UPDATE realtime_reports SET status = $3, resolution = $4, resolved_at = $5 WHERE tenant_id = $1 AND id = $2`,
		tenant, id, in.Status, in.Resolution, db.TimeOf(now)); err != nil {
		return MessageReport{}, fmt.Errorf("resolving report %s: %w", id, err)
	}
	x.Status, x.Resolution, x.ResolvedAt = in.Status, in.Resolution, &now
	return x, nil
}

func isNotFound(err error) bool {
	e, ok := abacus.AsError(err)
	return ok && e.Kind == abacus.KindNotFound
}

// DisconnectUser closes every live connection of a user, on every node,
// with close code 4011 (staff disconnected the user).
func (s *Service) DisconnectUser(ctx context.Context, user string) error {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return err
	}
	if why := validUserID(user); why != "" {
		return abacus.Invalid("invalid_user", "user_id %s", why).WithField("body.user_id", why)
	}
	s.hub.publish(tenant, []string{user}, envelope{kind: kindKick}, nil)
	return nil
}
