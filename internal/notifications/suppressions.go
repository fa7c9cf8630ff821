package notifications

import (
	"context"
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// Suppression reasons.
const (
	ReasonManual     = "manual"
	ReasonHardBounce = "hard_bounce"
	ReasonComplaint  = "complaint"
)

// Suppression is an address the tenant's mail is no longer sent to.
type Suppression struct {
	Email     string    `json:"email" example:"gone@example.com"`
	Reason    string    `json:"reason" enum:"manual,hard_bounce,complaint" example:"hard_bounce"`
	Detail    string    `json:"detail,omitempty" example:"550 5.1.1 mailbox unavailable"`
	CreatedAt time.Time `json:"created_at"`
}

// SuppressionInput adds an address by hand.
type SuppressionInput struct {
	Email  string `json:"email" example:"gone@example.com"`
	Detail string `json:"detail,omitempty" maxLength:"500" example:"asked not to be mailed"`
}

// HardBounceError marks a send the receiving server refused because the
// address does not exist: the address is suppressed.
type HardBounceError struct{ Err error }

func (e *HardBounceError) Error() string { return e.Err.Error() }
func (e *HardBounceError) Unwrap() error { return e.Err }

// HardBounce wraps err as a permanent failure that suppresses the address.
func HardBounce(err error) error { return Permanent(&HardBounceError{Err: err}) }

func normalizeEmail(field, s string) (string, error) {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != strings.TrimSpace(s) {
		return "", abacus.Invalid("invalid_email", "%q is not an e-mail address", s).WithField(field, "must be an e-mail address such as ada@example.com")
	}
	return strings.ToLower(a.Address), nil
}

// Suppress adds an address to the tenant's suppression list (an address
// already there keeps its first reason).
func (s *Service) Suppress(ctx context.Context, in SuppressionInput) (Suppression, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Suppression{}, err
	}
	email, err := normalizeEmail("email", in.Email)
	if err != nil {
		return Suppression{}, err
	}
	sp := Suppression{Email: email, Reason: ReasonManual, Detail: in.Detail, CreatedAt: s.clock.Now()}
	return sp, suppress(ctx, s.db, tenant, sp)
}

func suppress(ctx context.Context, q db.Querier, tenant string, sp Suppression) error {
	_, err := q.ExecContext(ctx, `INSERT INTO notification_suppressions (tenant_id, email, reason, detail, created_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, email) DO NOTHING`,
		tenant, strings.ToLower(sp.Email), sp.Reason, truncate(sp.Detail, 500), db.TimeOf(sp.CreatedAt))
	if err != nil {
		return fmt.Errorf("suppressing an address: %w", err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Unsuppress removes an address from the list.
func (s *Service) Unsuppress(ctx context.Context, email string) error {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM notification_suppressions WHERE tenant_id = $1 AND email = $2`, tenant, strings.ToLower(email))
	if err != nil {
		return fmt.Errorf("removing a suppression: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return abacus.NotFound("suppression", email)
	}
	return nil
}

// ListSuppressions lists the tenant's suppressed addresses by address.
func (s *Service) ListSuppressions(ctx context.Context, limit int, cursor string) ([]Suppression, string, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, "", err
	}
	limit = clampLimit(limit)
	if cursor != "" {
		if _, err := normalizeEmail("query.cursor", cursor); err != nil {
			return nil, "", abacus.Invalid("invalid_cursor", "cursor is not one this API returned; pass next_cursor of the previous page, or start again without it").
				WithField("query.cursor", "malformed")
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT email, reason, detail, created_at FROM notification_suppressions
		WHERE tenant_id = $1 AND email > $2 ORDER BY email LIMIT $3`, tenant, cursor, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("listing suppressions: %w", err)
	}
	defer rows.Close()
	out := []Suppression{}
	for rows.Next() {
		var sp Suppression
		var at db.Time
		if err := rows.Scan(&sp.Email, &sp.Reason, &sp.Detail, &at); err != nil {
			return nil, "", err
		}
		sp.CreatedAt = at.Time
		out = append(out, sp)
	}
	if len(out) > limit {
		return out[:limit], out[limit-1].Email, rows.Err()
	}
	return out, "", rows.Err()
}

// BounceEvent is one report of a mail provider, in the generic shape the
// bounce webhook accepts (docs/notifications.md).
type BounceEvent struct {
	Type       string    `json:"type" enum:"bounce,complaint,delivered" example:"bounce"`
	BounceType string    `json:"bounce_type,omitempty" enum:"hard,soft" example:"hard" doc:"for a bounce: hard (the address does not exist) or soft (temporary)"`
	Email      string    `json:"email" example:"gone@example.com"`
	MessageID  string    `json:"message_id,omitempty" example:"<dlv_01jbx7t7d9f1h3k5m7p9r1t3vx@abacus>" doc:"the Message-ID Abacus sent, when the provider reports it"`
	Detail     string    `json:"detail,omitempty" maxLength:"1000" example:"550 5.1.1 user unknown"`
	OccurredAt time.Time `json:"occurred_at,omitzero"`
}

// BounceReport is the body of the bounce webhook.
type BounceReport struct {
	Events []BounceEvent `json:"events" minItems:"1" maxItems:"1000"`
}

// BounceResult says what a report changed.
type BounceResult struct {
	Received   int `json:"received" example:"2"`
	Suppressed int `json:"suppressed" example:"1"`
}

// ErrBadSignature is a bounce report whose signature does not verify.
var ErrBadSignature = errors.New("bad signature")

// maxSkew is how far a bounce report's timestamp may be from now.
const maxSkew = 5 * time.Minute

// VerifyBounce checks header (t=…,v1=…) over body for tenant.
func (s *Service) VerifyBounce(ctx context.Context, tenant, header string, body []byte) error {
	var stored string
	err := s.db.QueryRowContext(ctx, `SELECT bounce_secret FROM notification_settings WHERE tenant_id = $1`, tenant).Scan(&stored)
	if err != nil && !isNoRows(err) {
		return err
	}
	key, _ := hex.DecodeString(stored)
	ts, sigs := parseSignature(header)
	t, perr := strconv.ParseInt(ts, 10, 64)
	if len(key) == 0 || perr != nil || s.clock.Now().Sub(time.Unix(t, 0)).Abs() > maxSkew {
		return ErrBadSignature
	}
	want := mac(key, ts, body)
	for _, sig := range sigs {
		if got, err := hex.DecodeString(sig); err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrBadSignature
}

func parseSignature(h string) (ts string, sigs []string) {
	for _, part := range strings.Split(h, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	return ts, sigs
}

// ApplyBounces records a verified report: hard bounces and complaints
// suppress the address; each event naming one of the tenant's mails
// notes it on the delivery.
func (s *Service) ApplyBounces(ctx context.Context, tenant string, r BounceReport) (BounceResult, error) {
	res := BounceResult{Received: len(r.Events)}
	var v abacus.Validation
	for i, e := range r.Events {
		if _, err := normalizeEmail("email", e.Email); err != nil {
			v.AddAt(i, "email", "must be an e-mail address")
		}
	}
	if err := v.Err("invalid_bounce_report"); err != nil {
		return res, err
	}
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		for _, e := range r.Events {
			n, err := s.applyBounce(ctx, tx, tenant, e)
			if err != nil {
				return err
			}
			res.Suppressed += n
		}
		return nil
	})
	return res, err
}

func (s *Service) applyBounce(ctx context.Context, tx *db.Tx, tenant string, e BounceEvent) (int, error) {
	reason := ""
	switch {
	case e.Type == "complaint":
		reason = ReasonComplaint
	case e.Type == "bounce" && e.BounceType != "soft":
		reason = ReasonHardBounce
	}
	if id := strings.TrimSuffix(strings.TrimPrefix(e.MessageID, "<"), "@abacus>"); id != e.MessageID && e.Type != "delivered" {
		if _, err := tx.ExecContext(ctx, `UPDATE notification_deliveries SET last_error = $1, updated_at = $2
			WHERE tenant_id = $3 AND id = $4`, truncate(e.Type+": "+e.Detail, 500), db.TimeOf(s.clock.Now()), tenant, id); err != nil {
			return 0, err
		}
	}
	if reason == "" {
		return 0, nil
	}
	at := e.OccurredAt
	if at.IsZero() {
		at = s.clock.Now()
	}
	return 1, suppress(ctx, tx, tenant, Suppression{Email: e.Email, Reason: reason, Detail: e.Detail, CreatedAt: at})
}
