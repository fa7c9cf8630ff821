package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/identity/password"
)

// Member is a user's membership in the caller's tenant.
type Member struct {
	UserID    string    `json:"user_id"`
	Email     string    `json:"email"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// ListMembers lists the tenant's members, ordered by user id.
func (s *Service) ListMembers(ctx context.Context) ([]Member, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT m.user_id, u.email, m.role, m.created_at FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE m.tenant_id = $1 ORDER BY m.user_id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("listing members: %w", err)
	}
	defer rows.Close()
	out := []Member{}
	for rows.Next() {
		var m Member
		var at db.Time
		if err := rows.Scan(&m.UserID, &m.Email, &m.Role, &at); err != nil {
			return nil, err
		}
		m.CreatedAt = at.Time
		out = append(out, m)
	}
	return out, rows.Err()
}

// callerRole is the role the caller acts with: a user's membership role;
// API keys and clients with the admin scope act as owners (they were
// created by an admin of the tenant).
func (s *Service) callerRole(ctx context.Context, q db.Querier, tenant string) (Role, error) {
	p := abacus.PrincipalFrom(ctx)
	if p == nil {
		return "", abacus.Errorf(abacus.KindUnauthorized, "unauthenticated", "sign in first")
	}
	if p.Kind != "user" {
		if p.Has(abacus.ScopeAdmin) {
			return RoleOwner, nil
		}
		return RoleViewer, nil
	}
	var role string
	if err := q.QueryRowContext(ctx, `SELECT role FROM memberships WHERE tenant_id = $1 AND user_id = $2`, tenant, p.ID).Scan(&role); err != nil {
		return "", fmt.Errorf("reading caller's role: %w", err)
	}
	return Role(role), nil
}

var errOwnerOnly = abacus.Errorf(abacus.KindForbidden, "owner_required", "only an owner can grant the owner role or change an owner; ask an owner")

// UpdateMemberRole changes a member's role. Errors: invalid_role,
// member_not_found, owner_required (an admin touching owners),
// last_owner (409: the tenant would have no owner).
func (s *Service) UpdateMemberRole(ctx context.Context, userID string, role Role) (Member, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Member{}, err
	}
	if !ValidRole(role) {
		return Member{}, abacus.Invalid("invalid_role", "role must be owner, admin, member, viewer or billing").WithField("role", "unknown role")
	}
	var m Member
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		cur, err := s.member(ctx, tx, tenant, userID)
		if err != nil {
			return err
		}
		caller, err := s.callerRole(ctx, tx, tenant)
		if err != nil {
			return err
		}
		if (role == RoleOwner || cur.Role == RoleOwner) && caller != RoleOwner {
			return errOwnerOnly
		}
		if cur.Role == RoleOwner && role != RoleOwner {
			if err := s.keepAnOwner(ctx, tx, tenant); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE memberships SET role = $1 WHERE tenant_id = $2 AND user_id = $3`, role, tenant, userID); err != nil {
			return fmt.Errorf("changing role: %w", err)
		}
		m = cur
		m.Role = role
		return s.audit(ctx, tx, tenant, "member.role_changed", "user", userID, map[string]any{"from": cur.Role, "to": role})
	})
	s.forgetAuth()
	return m, err
}

// RemoveMember removes a user from the tenant and ends their sessions in
// it. Errors: member_not_found, owner_required, last_owner (409).
func (s *Service) RemoveMember(ctx context.Context, userID string) error {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return err
	}
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		cur, err := s.member(ctx, tx, tenant, userID)
		if err != nil {
			return err
		}
		if cur.Role == RoleOwner {
			caller, err := s.callerRole(ctx, tx, tenant)
			if err != nil {
				return err
			}
			if caller != RoleOwner {
				return errOwnerOnly
			}
			if err := s.keepAnOwner(ctx, tx, tenant); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2`, tenant, userID); err != nil {
			return fmt.Errorf("removing member: %w", err)
		}
		if err := s.revokeUserSessions(ctx, tx, userID, tenant, "membership_removed"); err != nil {
			return err
		}
		return s.audit(ctx, tx, tenant, "member.removed", "user", userID, map[string]any{"role": cur.Role})
	})
	s.forgetAuth()
	return err
}

func (s *Service) member(ctx context.Context, q db.Querier, tenant, userID string) (Member, error) {
	var m Member
	var at db.Time
	err := q.QueryRowContext(ctx, `SELECT m.user_id, u.email, m.role, m.created_at FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE m.tenant_id = $1 AND m.user_id = $2`, tenant, userID).Scan(&m.UserID, &m.Email, &m.Role, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return m, abacus.NotFound("member", userID)
	}
	if err != nil {
		return m, fmt.Errorf("reading member: %w", err)
	}
	m.CreatedAt = at.Time
	return m, nil
}

// keepAnOwner refuses a change that would leave the tenant without owner.
func (s *Service) keepAnOwner(ctx context.Context, tx *db.Tx, tenant string) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM memberships WHERE tenant_id = $1 AND role = 'owner'`, tenant).Scan(&n); err != nil {
		return fmt.Errorf("counting owners: %w", err)
	}
	if n <= 1 {
		return abacus.Conflict("last_owner", "this is the tenant's last owner; make another member owner first")
	}
	return nil
}

// Invitation is a pending invitation to join the tenant.
type Invitation struct {
	ID         string     `json:"id"`
	Email      string     `json:"email"`
	Role       Role       `json:"role"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	AcceptedAt *time.Time `json:"accepted_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// InvitationInput names whom to invite and with which role.
type InvitationInput struct {
	Email string `json:"email" maxLength:"254"`
	Role  Role   `json:"role" enum:"owner,admin,member,viewer,billing"`
}

// CreateInvitation mails a single-use link, valid for 7 days, that adds
// the invitee to the tenant with role. Errors: invalid_email,
// invalid_role, owner_required (inviting an owner), already_member.
func (s *Service) CreateInvitation(ctx context.Context, in InvitationInput) (Invitation, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Invitation{}, err
	}
	email, err := NormalizeEmail("email", in.Email)
	if err != nil {
		return Invitation{}, err
	}
	if !ValidRole(in.Role) {
		return Invitation{}, abacus.Invalid("invalid_role", "role must be owner, admin, member, viewer or billing").WithField("role", "unknown role")
	}
	now := s.clock.Now()
	inv := Invitation{ID: abacus.NewID("inv"), Email: email, Role: in.Role, CreatedAt: now, ExpiresAt: now.Add(InviteTokenTTL)}
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if in.Role == RoleOwner {
			if caller, err := s.callerRole(ctx, tx, tenant); err != nil {
				return err
			} else if caller != RoleOwner {
				return errOwnerOnly
			}
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.tenant_id = $1 AND u.email = $2`,
			tenant, email).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return abacus.Conflict("already_member", "%s is already a member; change their role instead", email)
		}
		var name string
		if err := tx.QueryRowContext(ctx, `SELECT name FROM tenants WHERE id = $1`, tenant).Scan(&name); err != nil {
			return fmt.Errorf("reading tenant: %w", err)
		}
		by := ""
		if p := abacus.PrincipalFrom(ctx); p != nil {
			by = p.ID
		}
		tok, err := s.newEmailToken(ctx, tx, emailToken{ID: inv.ID, Kind: "invite", TenantID: tenant, Email: email, Role: in.Role, CreatedBy: by}, InviteTokenTTL)
		if err != nil {
			return err
		}
		if err := s.audit(ctx, tx, tenant, "invitation.created", "invitation", inv.ID, map[string]any{"email": email, "role": in.Role}); err != nil {
			return err
		}
		return s.queueMail(ctx, tx, tenant, "invite", email, mailData{Email: email, Tenant: name, Role: string(in.Role),
			Link: s.link("/accept-invitation", tok), Expires: humanDuration(InviteTokenTTL)})
	})
	if err != nil {
		return Invitation{}, err
	}
	return inv, nil
}

// ListInvitations lists the tenant's invitations, newest first.
func (s *Service) ListInvitations(ctx context.Context) ([]Invitation, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, email, role, created_at, expires_at, used_at, revoked_at FROM email_tokens
		WHERE tenant_id = $1 AND kind = 'invite' ORDER BY id DESC`, tenant)
	if err != nil {
		return nil, fmt.Errorf("listing invitations: %w", err)
	}
	defer rows.Close()
	out := []Invitation{}
	for rows.Next() {
		inv, err := scanInvitation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, inv)
	}
	return out, rows.Err()
}

func scanInvitation(r scanner) (Invitation, error) {
	var inv Invitation
	var c, e db.Time
	var u, rv db.NullTime
	var role *string
	if err := r.Scan(&inv.ID, &inv.Email, &role, &c, &e, &u, &rv); err != nil {
		return inv, err
	}
	if role != nil {
		inv.Role = Role(*role)
	}
	inv.CreatedAt, inv.ExpiresAt, inv.AcceptedAt, inv.RevokedAt = c.Time, e.Time, u.Ptr(), rv.Ptr()
	return inv, nil
}

// RevokeInvitation makes an invitation's link stop working. Revoking
// twice is not an error. Error: invitation_not_found.
func (s *Service) RevokeInvitation(ctx context.Context, id string) (Invitation, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Invitation{}, err
	}
	var inv Invitation
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		inv, err = scanInvitation(tx.QueryRowContext(ctx, `SELECT id, email, role, created_at, expires_at, used_at, revoked_at FROM email_tokens
			WHERE tenant_id = $1 AND kind = 'invite' AND id = $2`, tenant, id))
		if errors.Is(err, sql.ErrNoRows) {
			return abacus.NotFound("invitation", id)
		}
		if err != nil || inv.RevokedAt != nil {
			return err
		}
		now := s.clock.Now()
		if _, err := tx.ExecContext(ctx, `UPDATE email_tokens SET revoked_at = $1 WHERE id = $2`, db.TimeOf(now), id); err != nil {
			return fmt.Errorf("revoking invitation: %w", err)
		}
		inv.RevokedAt = &now
		return s.audit(ctx, tx, tenant, "invitation.revoked", "invitation", id, nil)
	})
	return inv, err
}

// AcceptInput accepts an invitation. Password is needed only when the
// invitee has no account yet; it becomes the new account's password.
type AcceptInput struct {
	Token    string `json:"token" maxLength:"200"`
	Password string `json:"password,omitempty" maxLength:"1024"`
}

// Accepted is the membership an accepted invitation created.
type Accepted struct {
	TenantID    string `json:"tenant_id"`
	UserID      string `json:"user_id"`
	Role        Role   `json:"role"`
	UserCreated bool   `json:"user_created"`
}

// AcceptInvitation consumes an invitation token and creates the
// membership, creating the account (e-mail verified by the link) when the
// invitee has none. Errors: email_token_*, password_required, password_*,
// too_many_attempts.
func (s *Service) AcceptInvitation(ctx context.Context, in AcceptInput) (Accepted, error) {
	if err := s.limit("accept", s.clientIP(ctx)); err != nil {
		return Accepted{}, err
	}
	return s.acceptInvitation(ctx, in, "")
}

// acceptInvitation accepts in. A non-empty signupEmail is sign-up by
// invitation: the invitation must be for that address and the account
// must be new (email_taken otherwise: sign in and accept instead).
func (s *Service) acceptInvitation(ctx context.Context, in AcceptInput, signupEmail string) (Accepted, error) {
	var out Accepted
	var newHash string
	for attempt := 0; attempt < 2; attempt++ {
		err := s.db.InTx(ctx, func(tx *db.Tx) error {
			et, err := s.useEmailToken(ctx, tx, "invite", in.Token)
			if err != nil {
				return err
			}
			if signupEmail != "" && et.Email != signupEmail {
				return abacus.Invalid("invitation_email_mismatch", "this invitation was sent to another address; sign up with that address").
					WithField("email", "not the invited address")
			}
			out = Accepted{TenantID: et.TenantID, Role: et.Role}
			now := db.TimeOf(s.clock.Now())
			err = tx.QueryRowContext(ctx, `SELECT id FROM users WHERE email = $1`, et.Email).Scan(&out.UserID)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				if in.Password == "" {
					return abacus.Invalid("password_required", "you have no account yet: send a password to create one").WithField("password", "required")
				}
				if err := password.DefaultPolicy.Check(in.Password, et.Email); err != nil {
					return err
				}
				if newHash == "" {
					return errNeedHash // hash outside the transaction, then retry
				}
				out.UserID, out.UserCreated = abacus.NewID("usr"), true
				if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, email, password_hash, email_verified_at, created_at, updated_at)
					VALUES ($1, $2, $3, $4, $4, $4)`, out.UserID, et.Email, newHash, now); err != nil {
					return fmt.Errorf("creating user: %w", err)
				}
			case err != nil:
				return fmt.Errorf("reading user: %w", err)
			case signupEmail != "":
				return abacus.Conflict("email_taken", "an account with this e-mail already exists; sign in and accept the invitation").
					WithField("email", "already registered")
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)
				ON CONFLICT (tenant_id, user_id) DO NOTHING`, et.TenantID, out.UserID, et.Role, now); err != nil {
				return fmt.Errorf("creating membership: %w", err)
			}
			return s.audit(withActor(ctx, "user", out.UserID), tx, et.TenantID, "member.added", "user", out.UserID,
				map[string]any{"role": et.Role, "invitation_id": et.ID})
		})
		if errors.Is(err, errNeedHash) {
			if newHash, err = s.hashPassword(ctx, in.Password); err != nil {
				return Accepted{}, err
			}
			continue
		}
		return out, err
	}
	return Accepted{}, errors.New("accepting invitation: retry limit")
}

var errNeedHash = errors.New("password hash needed")
