package org

import (
	"context"
	"database/sql"
	"errors"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// addMember inserts the membership and records organization.member_added.
func (s *Service) addMember(ctx context.Context, tx *db.Tx, tenant, org, user, role, reason string, a Actor) error {
	now := s.clock.Now()
	if err := insertMember(ctx, tx, tenant, org, user, role, now); err != nil {
		return err
	}
	_, err := MemberAdded.Record(ctx, tx, tenant, org, now, MemberEvent{OrganizationID: org, UserID: user, Role: role, Reason: reason, By: a.by()})
	return err
}

// Members returns the members of org with their e-mail and name, oldest
// first (members see each other; staff see all). Errors:
// organization_not_found.
func (s *Service) Members(ctx context.Context, a Actor, org string) ([]OrgMember, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.authorize(ctx, s.db, tenant, org, a, RoleMember); err != nil {
		return nil, err
	}
	ms, err := memberRows(ctx, s.db, tenant, org)
	if err != nil {
		return nil, err
	}
	for i := range ms {
		if u, err := s.eu.User(ctx, ms[i].UserID); err == nil {
			ms[i].Email, ms[i].Name = u.Email, u.Name
		}
	}
	return ms, nil
}

// AddMember adds an existing end user to org (staff). Errors:
// invalid_role, end_user_not_found, already_member, organization_not_found.
func (s *Service) AddMember(ctx context.Context, a Actor, org, user, role string) (OrgMember, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return OrgMember{}, err
	}
	if !validRole(role) {
		return OrgMember{}, abacus.Invalid("invalid_role", "unknown role %q; use owner, billing_admin or member", role).WithField("role", "unknown role")
	}
	u, err := s.eu.User(ctx, user)
	if err != nil {
		return OrgMember{}, err
	}
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if _, err := s.authorize(ctx, tx, tenant, org, a, RoleOwner); err != nil {
			return err
		}
		return s.addMember(ctx, tx, tenant, org, user, role, "staff", a)
	})
	return OrgMember{OrganizationID: org, UserID: user, Email: u.Email, Name: u.Name, Role: role, CreatedAt: s.clock.Now()}, err
}

// Remove takes user out of org: an owner (or staff) removes anyone, every
// member may remove themselves (Leave). The last owner stays. Errors:
// last_owner, member_not_found, organization_not_found,
// organization_role_required.
func (s *Service) Remove(ctx context.Context, a Actor, org, user string) error {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *db.Tx) error {
		need, reason := RoleOwner, "removed"
		if !a.Staff && a.UserID == user {
			need, reason = RoleMember, "left"
		}
		if _, err := s.authorize(ctx, tx, tenant, org, a, need); err != nil {
			return err
		}
		role, err := s.memberRole(ctx, tx, tenant, org, user)
		if err != nil {
			return err
		}
		if err := s.keepAnOwner(ctx, tx, tenant, org, role); err != nil {
			return err
		}
		if err := deleteMember(ctx, tx, tenant, org, user); err != nil {
			return err
		}
		_, err = MemberRemoved.Record(ctx, tx, tenant, org, s.clock.Now(), MemberEvent{OrganizationID: org, UserID: user, Role: role, Reason: reason, By: a.by()})
		return err
	})
}

// Leave takes the end user userID out of org. Errors as Remove.
func (s *Service) Leave(ctx context.Context, userID, org string) error {
	return s.Remove(ctx, Actor{UserID: userID}, org, userID)
}

func (s *Service) memberRole(ctx context.Context, q db.Querier, tenant, org, user string) (string, error) {
	role, err := roleOf(ctx, q, tenant, org, user)
	if err == nil && role == "" {
		return "", abacus.NotFound("member", user)
	}
	return role, err
}

// keepAnOwner refuses to take away role (owner) from the last owner.
func (s *Service) keepAnOwner(ctx context.Context, tx *db.Tx, tenant, org, role string) error {
	if role != RoleOwner {
		return nil
	}
	n, err := countOwners(ctx, tx, tenant, org)
	if err != nil {
		return err
	}
	if n <= 1 {
		return errLastOwner
	}
	return nil
}

// SetRole changes user's role in org (owners and staff). Demoting the
// last owner is refused. Errors: invalid_role, last_owner,
// member_not_found, organization_not_found, organization_role_required.
func (s *Service) SetRole(ctx context.Context, a Actor, org, user, role string) (OrgMember, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return OrgMember{}, err
	}
	if !validRole(role) {
		return OrgMember{}, abacus.Invalid("invalid_role", "unknown role %q; use owner, billing_admin or member", role).WithField("role", "unknown role")
	}
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if _, err := s.authorize(ctx, tx, tenant, org, a, RoleOwner); err != nil {
			return err
		}
		prev, err := s.memberRole(ctx, tx, tenant, org, user)
		if err != nil || prev == role {
			return err
		}
		if err := s.keepAnOwner(ctx, tx, tenant, org, prev); err != nil {
			return err
		}
		now := s.clock.Now()
		if err := setRole(ctx, tx, tenant, org, user, role, now); err != nil {
			return err
		}
		_, err = MemberRoleChanged.Record(ctx, tx, tenant, org, now, MemberEvent{OrganizationID: org, UserID: user, Role: role, PreviousRole: prev, By: a.by()})
		return err
	})
	return OrgMember{OrganizationID: org, UserID: user, Role: role}, err
}

// Transfer hands ownership of org from the end user from (an owner) to
// another member, who becomes owner; from becomes billing_admin. Errors:
// member_not_found, organization_not_found, organization_role_required,
// invalid_transfer (to oneself).
func (s *Service) Transfer(ctx context.Context, from, org, to string) error {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return err
	}
	if from == to {
		return abacus.Invalid("invalid_transfer", "pick another member to hand ownership to").WithField("user_id", "is you")
	}
	a := Actor{UserID: from}
	return s.db.InTx(ctx, func(tx *db.Tx) error {
		if _, err := s.authorize(ctx, tx, tenant, org, a, RoleOwner); err != nil {
			return err
		}
		prev, err := s.memberRole(ctx, tx, tenant, org, to)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		if err := setRole(ctx, tx, tenant, org, to, RoleOwner, now); err != nil {
			return err
		}
		if err := setRole(ctx, tx, tenant, org, from, RoleBillingAdmin, now); err != nil {
			return err
		}
		for _, ev := range []MemberEvent{
			{OrganizationID: org, UserID: to, Role: RoleOwner, PreviousRole: prev, By: from},
			{OrganizationID: org, UserID: from, Role: RoleBillingAdmin, PreviousRole: RoleOwner, By: from},
		} {
			if ev.Role != ev.PreviousRole {
				if _, err := MemberRoleChanged.Record(ctx, tx, tenant, org, now, ev); err != nil {
					return err
				}
			}
		}
		_, err = OwnershipTransferred.Record(ctx, tx, tenant, org, now,
			OwnershipEvent{OrganizationID: org, FromUserID: from, ToUserID: to, FromRole: RoleBillingAdmin, By: from})
		return err
	})
}

// Select makes org the one the end user's next tokens name in org and
// org_role (at the next sign-in or refresh). Errors: organization_not_found.
func (s *Service) Select(ctx context.Context, userID, org string) (OrgMembership, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return OrgMembership{}, err
	}
	var m OrgMembership
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		role, err := s.authorize(ctx, tx, tenant, org, Actor{UserID: userID}, RoleMember)
		if err != nil {
			return err
		}
		if err := selectMembership(ctx, tx, tenant, org, userID, s.clock.Now()); err != nil {
			return err
		}
		m.Role = role
		m.Organization, err = loadOrg(ctx, tx, tenant, org)
		return err
	})
	return m, err
}
