package enduser

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// UserQuery narrows ListUsers. Search is a prefix of the e-mail or the
// name (case-insensitive); Status one of active, disabled.
type UserQuery struct {
	Search string
	Status string
	Limit  int
	Cursor string
}

func clampLimit(n int) int {
	switch {
	case n <= 0:
		return 20
	case n > 100:
		return 100
	}
	return n
}

var likeEscape = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// ListUsers returns a page of the end users of the tenant on ctx, by id.
// Errors: invalid_status (field query.status).
func (s *Service) ListUsers(ctx context.Context, q UserQuery) (abacus.List[User], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[User]{}, err
	}
	sql := `SELECT ` + userColumns + ` FROM end_users u WHERE u.tenant_id = $1 AND u.id > $2 AND u.deleted_at IS NULL`
	args := []any{tenant, q.Cursor}
	if p := strings.ToLower(strings.TrimSpace(q.Search)); p != "" {
		args = append(args, likeEscape.Replace(p)+"%")
		n := strconv.Itoa(len(args))
		sql += ` AND (u.email LIKE $` + n + ` ESCAPE '\' OR lower(u.name) LIKE $` + n + ` ESCAPE '\')`
	}
	switch q.Status {
	case "":
	case StatusActive, StatusDisabled:
		args = append(args, q.Status)
		sql += ` AND u.status = $` + strconv.Itoa(len(args))
	default:
		return abacus.List[User]{}, abacus.Invalid("invalid_status", "status must be active or disabled").WithField("query.status", "active or disabled")
	}
	limit := clampLimit(q.Limit)
	rows, err := s.db.QueryContext(ctx, sql+` ORDER BY u.id LIMIT `+strconv.Itoa(limit+1), args...)
	if err != nil {
		return abacus.List[User]{}, fmt.Errorf("listing end users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return abacus.List[User]{}, err
		}
		out = append(out, u.User)
	}
	if err := rows.Err(); err != nil {
		return abacus.List[User]{}, fmt.Errorf("listing end users: %w", err)
	}
	next := ""
	if len(out) > limit {
		out, next = out[:limit], out[limit-1].ID
	}
	return abacus.ListOf(out, next), nil
}

// UserPatch changes an end user; nil fields stay as they are. Status
// "disabled" signs every session out; "active" enables the user again.
type UserPatch struct {
	Name          *string
	Email         *string
	EmailVerified *bool
	Locale        *string
	TimeZone      *string
	AvatarURL     *string
	Metadata      map[string]any
	Status        *string
}

// UpdateUser applies p to end user id of the tenant on ctx and returns
// the user. A new e-mail is unverified unless EmailVerified says so.
// Errors: end_user_not_found, invalid_end_user, invalid_email,
// end_user_exists.
func (s *Service) UpdateUser(ctx context.Context, id string, p UserPatch) (User, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return User{}, err
	}
	var out User
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		cur, err := s.userIn(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		u, err := applyPatch(cur.User, p)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		if err := s.storeProfile(ctx, tx, u, now); err != nil {
			return err
		}
		if u.Status != cur.Status {
			if err := s.statusChanged(ctx, tx, u, now); err != nil {
				return err
			}
		}
		got, err := s.userIn(ctx, tx, tenant, id)
		out = got.User
		return err
	})
	return out, err
}

func applyPatch(u User, p UserPatch) (User, error) {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&u.Name, p.Name)
	set(&u.Locale, p.Locale)
	set(&u.TimeZone, p.TimeZone)
	set(&u.AvatarURL, p.AvatarURL)
	set(&u.Status, p.Status)
	if p.Metadata != nil {
		u.Metadata = p.Metadata
	}
	var v abacus.Validation
	checkProfile(&v, &u.Name, &u.Locale, &u.TimeZone, &u.AvatarURL, u.Metadata)
	if u.Status != StatusActive && u.Status != StatusDisabled {
		v.Add("status", "active or disabled")
	}
	if err := v.Err("invalid_end_user"); err != nil {
		return u, err
	}
	if p.Email != nil {
		e, err := normalizeEmail(*p.Email)
		if err != nil {
			return u, err
		}
		if e != u.Email {
			u.Email, u.EmailVerified = e, false
		}
	}
	if p.EmailVerified != nil {
		u.EmailVerified = *p.EmailVerified
	}
	return u, nil
}

// storeProfile writes u's editable fields; a verified address keeps
// the time it was first verified.
func (s *Service) storeProfile(ctx context.Context, tx *db.Tx, u User, now time.Time) error {
	meta, err := json.Marshal(u.Metadata)
	if err != nil {
		return abacus.Invalid("invalid_end_user", "metadata must be a JSON object").WithField("metadata", err.Error())
	}
	verified := 0
	if u.EmailVerified {
		verified = 1
	}
	_, err = tx.ExecContext(ctx, `UPDATE end_users SET name = $1, email = $2, email_verified_at = CASE WHEN $3 = 1 THEN COALESCE(email_verified_at, $9) ELSE NULL END, locale = $4, time_zone = $5,
		avatar_url = $6, metadata = $7, status = $8, updated_at = $9 WHERE tenant_id = $10 AND id = $11`,
		u.Name, u.Email, verified, u.Locale, u.TimeZone, u.AvatarURL, string(meta), u.Status, db.TimeOf(now), u.TenantID, u.ID)
	if db.IsUniqueViolation(err) {
		return abacus.Conflict("end_user_exists", "an end user with this e-mail already exists").WithField("email", "already taken")
	}
	if err != nil {
		return fmt.Errorf("updating end user: %w", err)
	}
	return nil
}

// statusChanged signs a disabled user out everywhere and records the
// change.
func (s *Service) statusChanged(ctx context.Context, tx *db.Tx, u User, now time.Time) error {
	if u.Status == StatusDisabled {
		if _, err := s.RevokeUserSessions(ctx, tx, u.TenantID, u.ID, "", ReasonDisabled); err != nil {
			return err
		}
		return s.recordUser(ctx, tx, Disabled, u, now)
	}
	return s.recordUser(ctx, tx, Enabled, u, now)
}

// DeleteUser erases end user id of the tenant on ctx: every session is
// signed out, personal data (e-mail, name, profile, metadata, password,
// MFA, user agents and IPs of sessions, e-mailed tokens) is removed; the
// id stays so that records pointing at it remain consistent. Errors:
// end_user_not_found.
func (s *Service) DeleteUser(ctx context.Context, id string) error {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *db.Tx) error {
		u, err := s.userIn(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		if _, err := s.RevokeUserSessions(ctx, tx, tenant, id, "", ReasonDeleted); err != nil {
			return err
		}
		now := db.TimeOf(s.clock.Now())
		if _, err := tx.ExecContext(ctx, `UPDATE end_users SET email = NULL, name = '', email_verified_at = NULL, locale = '', time_zone = '',
			avatar_url = '', metadata = '{}', status = 'deleted', password_hash = NULL, updated_at = $3, deleted_at = $3
			WHERE tenant_id = $1 AND id = $2`, tenant, id, now); err != nil {
			return fmt.Errorf("erasing end user: %w", err)
		}
		for _, q := range []string{
			`UPDATE end_user_sessions SET user_agent = '', ip = '', device_name = '' WHERE tenant_id = $1 AND user_id = $2`,
			`DELETE FROM end_user_refresh_tokens WHERE tenant_id = $1 AND session_id IN (SELECT id FROM end_user_sessions WHERE user_id = $2)`,
			`DELETE FROM end_user_email_tokens WHERE tenant_id = $1 AND user_id = $2`,
			`DELETE FROM end_user_mfa WHERE tenant_id = $1 AND user_id = $2`,
			`DELETE FROM end_user_recovery_codes WHERE tenant_id = $1 AND user_id = $2`,
			`DELETE FROM end_user_auth_codes WHERE tenant_id = $1 AND user_id = $2`,
		} {
			if _, err := tx.ExecContext(ctx, q, tenant, id); err != nil {
				return fmt.Errorf("erasing end user: %w", err)
			}
		}
		gone := User{ID: u.ID, TenantID: tenant, Status: StatusDeleted}
		return s.recordUser(ctx, tx, Deleted, gone, now.Time)
	})
}

// Export is everything Abacus keeps about an end user, for a data
// subject access request.
type Export struct {
	User     User      `json:"user"`
	Sessions []Session `json:"sessions"`
	Settings struct {
		MFAEnabled bool `json:"mfa_enabled"`
	} `json:"security"`
	ExportedAt time.Time `json:"exported_at"`
}

// ExportUser returns end user id's data: profile and every session
// (signed out ones too). Errors: end_user_not_found.
func (s *Service) ExportUser(ctx context.Context, id string) (Export, error) {
	u, err := s.User(ctx, id)
	if err != nil {
		return Export{}, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+sessionColumns+` FROM end_user_sessions WHERE tenant_id = $1 AND user_id = $2 ORDER BY id`, u.TenantID, u.ID)
	if err != nil {
		return Export{}, fmt.Errorf("exporting sessions: %w", err)
	}
	defer rows.Close()
	out := Export{User: u, Sessions: []Session{}, ExportedAt: s.clock.Now()}
	out.Settings.MFAEnabled = u.MFAEnabled
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return Export{}, err
		}
		out.Sessions = append(out.Sessions, sess)
	}
	return out, rows.Err()
}

// RevokeUserSession signs out session sid of end user id of the tenant on
// ctx. Errors: session_not_found (also when it is another user's).
func (s *Service) RevokeUserSession(ctx context.Context, id, sid string) error {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *db.Tx) error {
		sess, err := s.sessionIn(ctx, tx, tenant, sid)
		if err != nil {
			return err
		}
		if sess.UserID != id {
			return abacus.NotFound("session", sid)
		}
		return s.revokeSessions(ctx, tx, tenant, []string{sid}, ReasonRevoked)
	})
}
