package org

import (
	"context"
	"net/url"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/enduser"
	"github.com/abacusbilling/abacus/internal/identity"
	"github.com/abacusbilling/abacus/internal/identity/token"
)

var (
	errInvitationInvalid = abacus.Errorf(abacus.KindNotFound, "invitation_invalid",
		"this invitation link is unknown, used, revoked or expired; ask for a new invitation")
	errInvitationEmail = &abacus.Error{Kind: abacus.KindForbidden, Code: "invitation_email_mismatch",
		Message: "this invitation was sent to another e-mail address; sign in as that address to accept it"}
	errDomain = &abacus.Error{Kind: abacus.KindForbidden, Code: "domain_not_allowed",
		Message: "joining needs a verified e-mail address at the domain the organization claims; verify your address or ask for an invitation"}
)

// Invite creates an invitation of email to org with role and mails it
// (template end_user.invitation) in the same transaction. Owners and
// billing admins invite; only owners (and staff) invite owners. Errors:
// invalid_email, invalid_role, organization_not_found,
// organization_role_required, already_member.
func (s *Service) Invite(ctx context.Context, a Actor, org, email, role string) (OrgInvitation, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return OrgInvitation{}, err
	}
	email, err = identity.NormalizeEmail("email", email)
	if err != nil {
		return OrgInvitation{}, err
	}
	if role == "" {
		role = RoleMember
	}
	if !validRole(role) {
		return OrgInvitation{}, abacus.Invalid("invalid_role", "unknown role %q; use owner, billing_admin or member", role).WithField("role", "unknown role")
	}
	need := RoleBillingAdmin
	if role == RoleOwner {
		need = RoleOwner
	}
	now := s.clock.Now()
	inv := OrgInvitation{ID: abacus.NewID("oinv"), OrganizationID: org, Email: email, Role: role, InvitedBy: a.by(),
		CreatedAt: now, ExpiresAt: now.Add(s.inviteTTL)}
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if _, err := s.authorize(ctx, tx, tenant, org, a, need); err != nil {
			return err
		}
		o, err := loadOrg(ctx, tx, tenant, org)
		if err != nil {
			return err
		}
		if u, err := s.eu.UserByEmail(ctx, email); err == nil {
			if r, err := roleOf(ctx, tx, tenant, org, u.ID); err != nil || r != "" {
				return firstErr(err, abacus.Conflict("already_member", "%s is already a member of the organization", email).WithField("email", "is a member"))
			}
		}
		plain, hash := token.NewOpaque("oit")
		if err := insertInvitation(ctx, tx, tenant, inv, hash); err != nil {
			return err
		}
		if err := s.mailInvitation(ctx, tx, tenant, o, inv, a, plain); err != nil {
			return err
		}
		_, err = InvitationSent.Record(ctx, tx, tenant, org, now, InvitationEvent{InvitationID: inv.ID, OrganizationID: org,
			Email: email, Role: role, InvitedBy: inv.InvitedBy})
		return err
	})
	return inv, err
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// mailInvitation sends the invitation's link: {app_url or issuer}/accept-invitation?token=….
func (s *Service) mailInvitation(ctx context.Context, tx *db.Tx, tenant string, o Organization, inv OrgInvitation, a Actor, plain string) error {
	mailer := s.getMailer()
	if mailer == nil {
		s.log.WarnContext(ctx, "no mailer configured; organization invitation not mailed", "tenant_id", tenant, "invitation_id", inv.ID)
		return nil
	}
	set, err := s.eu.Settings(ctx)
	if err != nil {
		return err
	}
	base := strings.TrimRight(set.AppURL, "/")
	if base == "" {
		base = s.eu.Issuer(tenant)
	}
	inviter := map[string]any{"name": "", "email": ""}
	if !a.Staff {
		if u, err := s.eu.User(ctx, a.UserID); err == nil {
			inviter = map[string]any{"name": u.Name, "email": u.Email}
		}
	}
	return mailer.Send(ctx, tx, enduser.Mail{TenantID: tenant, To: inv.Email, Template: MailInvitation, Data: map[string]any{
		"organization": map[string]any{"id": o.ID, "name": o.Name}, "inviter": inviter, "role": inv.Role,
		"link": base + "/accept-invitation?token=" + url.QueryEscape(plain), "expires_at": inv.ExpiresAt.UTC().Format(time.RFC3339),
	}})
}

// Invitations returns org's invitations, newest first (owners, billing
// admins, staff). Errors: organization_not_found, organization_role_required.
func (s *Service) Invitations(ctx context.Context, a Actor, org string) ([]OrgInvitation, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.authorize(ctx, s.db, tenant, org, a, RoleBillingAdmin); err != nil {
		return nil, err
	}
	return listInvitations(ctx, s.db, tenant, org)
}

// RevokeInvitation withdraws a pending invitation (revoking twice is not an
// error). Errors: invitation_not_found, organization_not_found.
func (s *Service) RevokeInvitation(ctx context.Context, a Actor, org, id string) (OrgInvitation, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return OrgInvitation{}, err
	}
	var inv OrgInvitation
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if _, err := s.authorize(ctx, tx, tenant, org, a, RoleBillingAdmin); err != nil {
			return err
		}
		if _, err := loadInvitation(ctx, tx, tenant, org, id); err != nil {
			return err
		}
		if _, err := markInvitation(ctx, tx, id, "revoked_at", "", s.clock.Now()); err != nil {
			return err
		}
		inv, err = loadInvitation(ctx, tx, tenant, org, id)
		return err
	})
	return inv, err
}

// OrgInvitationAccepted is what accepting an invitation gives: the membership and
// the end user (new when the invitee had no account).
type OrgInvitationAccepted struct {
	Membership OrgMembership `json:"membership"`
	UserID     string        `json:"user_id"`
	Email      string        `json:"email"`
	NewUser    bool          `json:"new_user" doc:"an account was created for the invited address"`
}

// Accept uses an invitation token. With userID (a signed-in end user),
// that user joins and their e-mail must be the invited one. Without, an
// account is made for the invited address, verified (the invitation
// reached it), with password (empty: magic link or reset later), whatever
// the sign-up policy; an address that has an account must sign in first,
// so a link alone never acts for an existing account. tenantHint, when
// set, must be the invitation's tenant. Errors: invitation_invalid (404),
// invitation_email_mismatch (403), end_user_exists (409), the password
// policy's codes.
func (s *Service) Accept(ctx context.Context, tenantHint, userID, plain, password, name string) (OrgInvitationAccepted, error) {
	hash := token.Hash(strings.TrimSpace(plain))
	inv, tenant, err := s.peekInvitation(ctx, hash)
	if err != nil {
		return OrgInvitationAccepted{}, err
	}
	if tenantHint != "" && tenantHint != tenant {
		return OrgInvitationAccepted{}, errInvitationInvalid
	}
	ctx = enduser.SystemContext(ctx, tenant)
	var out OrgInvitationAccepted
	if userID == "" {
		u, err := s.eu.CreateUser(ctx, enduser.NewUser{Email: inv.Email, Password: password, Name: name, EmailVerified: true})
		if err != nil {
			return OrgInvitationAccepted{}, err
		}
		userID, out.NewUser = u.ID, true
	}
	u, err := s.eu.User(ctx, userID)
	if err != nil {
		return OrgInvitationAccepted{}, err
	}
	if !strings.EqualFold(u.Email, inv.Email) {
		return OrgInvitationAccepted{}, errInvitationEmail
	}
	out.UserID, out.Email = u.ID, u.Email
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		inv, _, err := invitationByHash(ctx, tx, hash)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		ok, err := markInvitation(ctx, tx, inv.ID, "accepted_at", u.ID, now)
		if err != nil || !ok {
			return firstErr(err, errInvitationInvalid)
		}
		if err := s.addMember(ctx, tx, tenant, inv.OrganizationID, u.ID, inv.Role, "invitation", Actor{UserID: u.ID}); err != nil {
			return err
		}
		out.Membership.Role = inv.Role
		if out.Membership.Organization, err = loadOrg(ctx, tx, tenant, inv.OrganizationID); err != nil {
			return err
		}
		_, err = InvitationAccepted.Record(ctx, tx, tenant, inv.OrganizationID, now, InvitationEvent{InvitationID: inv.ID,
			OrganizationID: inv.OrganizationID, Email: inv.Email, Role: inv.Role, InvitedBy: inv.InvitedBy, AcceptedBy: u.ID})
		return err
	})
	return out, err
}

// peekInvitation finds a pending, unexpired invitation by token hash.
func (s *Service) peekInvitation(ctx context.Context, hash string) (OrgInvitation, string, error) {
	inv, tenant, err := invitationByHash(ctx, s.db, hash)
	if err != nil {
		return OrgInvitation{}, "", err
	}
	if inv.AcceptedAt != nil || inv.RevokedAt != nil || !s.clock.Now().Before(inv.ExpiresAt) {
		return OrgInvitation{}, "", errInvitationInvalid
	}
	return inv, tenant, nil
}

// Join adds the end user userID to org as a member when the organization
// claims a domain and the user's verified e-mail address is at it.
// Errors: domain_not_allowed (403), already_member, organization_not_found.
func (s *Service) Join(ctx context.Context, userID, org string) (OrgMembership, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return OrgMembership{}, err
	}
	u, err := s.eu.User(ctx, userID)
	if err != nil {
		return OrgMembership{}, err
	}
	var m OrgMembership
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		o, err := loadOrg(ctx, tx, tenant, org)
		if err != nil {
			return err
		}
		_, at, _ := strings.Cut(u.Email, "@")
		if o.Domain == "" || !u.EmailVerified || !strings.EqualFold(at, o.Domain) {
			return errDomain
		}
		if err := s.addMember(ctx, tx, tenant, org, userID, RoleMember, "domain", Actor{UserID: userID}); err != nil {
			return err
		}
		m = OrgMembership{Organization: o, Role: RoleMember}
		return nil
	})
	return m, err
}

// Joinable returns the organizations the end user may join by domain:
// the one claiming the domain of their verified address, unless they are
// in it already.
func (s *Service) Joinable(ctx context.Context, userID string) ([]Organization, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.eu.User(ctx, userID)
	if err != nil || !u.EmailVerified {
		return []Organization{}, err
	}
	_, at, _ := strings.Cut(u.Email, "@")
	o, err := scanOrg(s.db.QueryRowContext(ctx, `SELECT `+orgColumns+` FROM organizations o WHERE o.tenant_id = $1 AND o.domain = $2
		AND NOT EXISTS (SELECT 1 FROM organization_members m WHERE m.org_id = o.id AND m.user_id = $3)`, tenant, strings.ToLower(at), userID))
	if isNoRows(err) {
		return []Organization{}, nil
	}
	if err != nil {
		return nil, err
	}
	return []Organization{o}, nil
}
