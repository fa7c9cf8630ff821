package enduser

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/identity"
)

// userColumns are read by scanUser, in order.
const userColumns = `u.id, u.tenant_id, u.email, u.name, u.email_verified_at, u.locale, u.time_zone, u.avatar_url,
	u.metadata, u.status, u.password_hash, u.created_at, u.updated_at, u.last_seen_at,
	EXISTS (SELECT 1 FROM end_user_mfa m WHERE m.user_id = u.id AND m.confirmed_at IS NOT NULL)`

type rowScanner interface{ Scan(dest ...any) error }

// userRow is a user as stored, with its password hash.
type userRow struct {
	User
	hash string
}

func scanUser(r rowScanner) (userRow, error) {
	var u userRow
	var email, hash sql.NullString
	var verified, seen db.NullTime
	var created, updated db.Time
	var meta string
	err := r.Scan(&u.ID, &u.TenantID, &email, &u.Name, &verified, &u.Locale, &u.TimeZone, &u.AvatarURL,
		&meta, &u.Status, &hash, &created, &updated, &seen, &u.MFAEnabled)
	if err != nil {
		return userRow{}, err
	}
	u.Email, u.hash = email.String, hash.String
	u.EmailVerified, u.HasPassword = verified.Valid, hash.String != ""
	u.CreatedAt, u.UpdatedAt, u.LastSeenAt = created.Time, updated.Time, seen.Ptr()
	if err := json.Unmarshal([]byte(meta), &u.Metadata); err != nil || u.Metadata == nil {
		u.Metadata = map[string]any{}
	}
	return u, nil
}

// CreateUser adds an end user to the tenant on ctx, hashing the password
// (when given) with the production parameters, and runs the OnSignUp
// hooks in the same transaction. Errors: invalid_email, the password
// policy's codes, invalid_end_user (fields), end_user_exists (409).
func (s *Service) CreateUser(ctx context.Context, in NewUser) (User, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return User{}, err
	}
	p, err := s.prepareUser(ctx, in)
	if err != nil {
		return User{}, err
	}
	var u User
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		u, err = s.createUser(ctx, tx, tenant, p)
		return err
	})
	return u, err
}

// preparedUser is a new user checked and with its password hashed.
type preparedUser struct {
	NewUser
	hash sql.NullString
}

// prepareUser checks in and hashes its password. It runs before the
// transaction that inserts the user: a hash takes tens of milliseconds, and
// on SQLite a transaction holds the only writer for every module.
func (s *Service) prepareUser(ctx context.Context, in NewUser) (preparedUser, error) {
	in, err := s.checkNewUser(in)
	if err != nil {
		return preparedUser{}, err
	}
	p := preparedUser{NewUser: in}
	if in.Password != "" {
		h, err := s.hashPassword(ctx, in.Password)
		if err != nil {
			return preparedUser{}, err
		}
		p.hash = sql.NullString{String: h, Valid: true}
	}
	return p, nil
}

// createUser inserts p, then runs the sign-up hooks.
func (s *Service) createUser(ctx context.Context, tx *db.Tx, tenant string, p preparedUser) (User, error) {
	in, hash := p.NewUser, p.hash
	now := s.clock.Now()
	var verified db.NullTime
	if in.EmailVerified {
		verified = db.NullTime{Time: now, Valid: true}
	}
	meta, err := json.Marshal(in.Metadata)
	if err != nil {
		return User{}, abacus.Invalid("invalid_end_user", "metadata must be a JSON object").WithField("metadata", err.Error())
	}
	id := abacus.NewID("eu")
	_, err = tx.ExecContext(ctx, `INSERT INTO end_users (id, tenant_id, email, name, email_verified_at, locale, time_zone, avatar_url,
		metadata, status, password_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)`,
		id, tenant, in.Email, in.Name, verified, in.Locale, in.TimeZone, in.AvatarURL, string(meta), StatusActive, hash, db.TimeOf(now))
	if db.IsUniqueViolation(err) {
		return User{}, abacus.Conflict("end_user_exists", "an end user with this e-mail already exists").WithField("email", "already taken")
	}
	if err != nil {
		return User{}, fmt.Errorf("creating end user: %w", err)
	}
	u, err := s.userIn(ctx, tx, tenant, id)
	if err != nil {
		return User{}, err
	}
	s.hookMu.RLock()
	hooks := s.onSignUp
	s.hookMu.RUnlock()
	for _, h := range hooks {
		if err := h(ctx, tx, u.User); err != nil {
			return User{}, err
		}
	}
	return u.User, s.recordUser(ctx, tx, SignedUp, u.User, now)
}

func normalizeEmail(raw string) (string, error) { return identity.NormalizeEmail("email", raw) }

func (s *Service) checkNewUser(in NewUser) (NewUser, error) {
	email, err := normalizeEmail(in.Email)
	if err != nil {
		return in, err
	}
	in.Email = email
	var v abacus.Validation
	checkProfile(&v, &in.Name, &in.Locale, &in.TimeZone, &in.AvatarURL, in.Metadata)
	if err := v.Err("invalid_end_user"); err != nil {
		return in, err
	}
	if in.Password != "" {
		if err := checkPassword(in.Password, email); err != nil {
			return in, err
		}
	}
	if in.Metadata == nil {
		in.Metadata = map[string]any{}
	}
	return in, nil
}

// User returns the end user id of the tenant on ctx. Errors:
// end_user_not_found (also for another tenant's user and erased ones).
func (s *Service) User(ctx context.Context, id string) (User, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return User{}, err
	}
	u, err := s.userIn(ctx, s.db, tenant, id)
	return u.User, err
}

// UserByEmail returns the end user of the tenant on ctx with this e-mail
// (compared case-insensitively). Errors: end_user_not_found.
func (s *Service) UserByEmail(ctx context.Context, email string) (User, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return User{}, err
	}
	u, err := s.userByEmail(ctx, s.db, tenant, email)
	return u.User, err
}

func (s *Service) userIn(ctx context.Context, q db.Querier, tenant, id string) (userRow, error) {
	u, err := scanUser(q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM end_users u
		WHERE u.tenant_id = $1 AND u.id = $2 AND u.deleted_at IS NULL`, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return userRow{}, abacus.NotFound("end_user", id)
	}
	if err != nil {
		return userRow{}, fmt.Errorf("reading end user %s: %w", id, err)
	}
	return u, nil
}

func (s *Service) userByEmail(ctx context.Context, q db.Querier, tenant, email string) (userRow, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	u, err := scanUser(q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM end_users u
		WHERE u.tenant_id = $1 AND u.email = $2 AND u.deleted_at IS NULL`, tenant, e))
	if errors.Is(err, sql.ErrNoRows) {
		return userRow{}, abacus.NotFound("end_user", e)
	}
	if err != nil {
		return userRow{}, fmt.Errorf("reading end user by e-mail: %w", err)
	}
	return u, nil
}
