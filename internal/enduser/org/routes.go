package org

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// EndUserKind is the principal Kind of an end user's access token (the
// HTTP edge authenticates it; enduser's principal kind).
const EndUserKind = "end_user"

var errSignInFirst = &abacus.Error{Kind: abacus.KindUnauthorized, Code: "unauthenticated",
	Message: "this route needs an end user's access token: send Authorization: Bearer <access_token>"}

// endUser returns the signed-in end user's id; the tenant is the
// principal's, so stores read it from ctx as for staff.
func endUser(ctx context.Context) (string, error) {
	p := abacus.PrincipalFrom(ctx)
	if p == nil || p.Kind != EndUserKind || p.ID == "" {
		return "", errSignInFirst
	}
	return p.ID, nil
}

// staff is the actor of a staff route.
func staff(ctx context.Context) Actor {
	a := Actor{Staff: true}
	if p := abacus.PrincipalFrom(ctx); p != nil {
		a.ID = p.Kind + ":" + p.ID
	}
	return a
}

// IDPath names an organization.
type IDPath struct {
	ID string `path:"id" maxLength:"64" doc:"organization id"`
}

// MemberPath names a member of an organization.
type MemberPath struct {
	ID     string `path:"id" maxLength:"64" doc:"organization id"`
	UserID string `path:"user_id" maxLength:"64" doc:"end-user id"`
}

// InvitationPath names an invitation of an organization.
type InvitationPath struct {
	ID           string `path:"id" maxLength:"64" doc:"organization id"`
	InvitationID string `path:"invitation_id" maxLength:"64" doc:"invitation id"`
}

// OrgRoleBody changes a member's role.
type OrgRoleBody struct {
	Role string `json:"role" enum:"owner,billing_admin,member"`
}

// NewOrgMember adds an existing end user (staff).
type NewOrgMember struct {
	UserID string `json:"user_id" maxLength:"64"`
	Role   string `json:"role" enum:"owner,billing_admin,member"`
}

// OrgInviteBody invites an e-mail address.
type OrgInviteBody struct {
	Email string `json:"email" maxLength:"254"`
	Role  string `json:"role,omitempty" enum:"owner,billing_admin,member" doc:"default member"`
}

// OrgTransferBody names the member who becomes owner.
type OrgTransferBody struct {
	UserID string `json:"user_id" maxLength:"64"`
}

// OrgAcceptBody accepts an invitation.
type OrgAcceptBody struct {
	Token    string `json:"token" maxLength:"200" doc:"from the invitation link"`
	Password string `json:"password,omitempty" maxLength:"1024" doc:"for a new account (no bearer token): 8 to 128 characters"`
	Name     string `json:"name,omitempty" maxLength:"200"`
}

// NewEndUserOrg is what an end user gives to create an organization.
type NewEndUserOrg struct {
	Name     string `json:"name" maxLength:"200"`
	Domain   string `json:"domain,omitempty" maxLength:"253" doc:"claim this e-mail domain: end users with a verified address there may join"`
	Currency string `json:"currency,omitempty" maxLength:"3" doc:"ISO 4217 currency of the new customer"`
}

func euOp(id, method, path, summary string, status int, desc string) huma.Operation {
	return huma.Operation{OperationID: id, Method: method, Path: path, Summary: summary, Description: desc,
		Tags: []string{"End-user organizations"}, DefaultStatus: status,
		Errors: []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusConflict}}
}

// RegisterRoutes adds the end users' organization routes (their access
// token as bearer) and the staff routes under /api/v1/organizations.
func RegisterRoutes(s *httpapi.Server, svc *Service) {
	s.Example(Examples()...)
	registerEndUserRoutes(s, svc)
	registerMemberRoutes(s, svc)
	registerStaffRoutes(s, svc)
}

func registerEndUserRoutes(s *httpapi.Server, svc *Service) {
	pub := httpapi.ScopePublic
	const base = "/api/v1/end-user/organizations"
	httpapi.Register(s, euOp("end-user-create-organization", "POST", base, "Create an organization", 201,
		"The signed-in end user becomes its owner; a customer is created for it, which the tenant bills."),
		pub, func(ctx context.Context, in *httpapi.Body[NewEndUserOrg]) (*httpapi.Body[OrgMembership], error) {
			user, err := endUser(ctx)
			if err != nil {
				return nil, err
			}
			o, err := svc.Create(ctx, Actor{UserID: user}, NewOrganization{Name: in.Body.Name, Domain: in.Body.Domain, Currency: in.Body.Currency})
			return httpapi.Reply(OrgMembership{Organization: o, Role: RoleOwner}, err)
		})
	httpapi.Register(s, euOp("end-user-list-organizations", "GET", base, "List my organizations", 200,
		"With my role in each; the first is the one my tokens name in `org` (the last selected, else my personal one, else the oldest)."),
		pub, func(ctx context.Context, _ *struct{}) (*httpapi.Body[abacus.List[OrgMembership]], error) {
			user, err := endUser(ctx)
			if err != nil {
				return nil, err
			}
			ms, err := svc.Mine(ctx, user)
			return httpapi.Reply(abacus.ListOf(ms, ""), err)
		})
	httpapi.Register(s, euOp("end-user-joinable-organizations", "GET", "/api/v1/end-user/joinable-organizations", "List organizations I may join", 200,
		"The organization claiming the domain of my verified e-mail address, unless I am a member."),
		pub, func(ctx context.Context, _ *struct{}) (*httpapi.Body[abacus.List[Organization]], error) {
			user, err := endUser(ctx)
			if err != nil {
				return nil, err
			}
			os, err := svc.Joinable(ctx, user)
			return httpapi.Reply(abacus.ListOf(os, ""), err)
		})
	httpapi.Register(s, euOp("end-user-get-organization", "GET", base+"/{id}", "Get one of my organizations", 200, ""),
		pub, func(ctx context.Context, in *IDPath) (*httpapi.Body[Organization], error) {
			user, err := endUser(ctx)
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(svc.Get(ctx, Actor{UserID: user}, in.ID))
		})
	httpapi.Register(s, euOp("end-user-update-organization", "PATCH", base+"/{id}", "Rename an organization or claim a domain", 200, "Owners only."),
		pub, func(ctx context.Context, in *struct {
			IDPath
			Body OrganizationPatch
		}) (*httpapi.Body[Organization], error) {
			user, err := endUser(ctx)
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(svc.Update(ctx, Actor{UserID: user}, in.ID, in.Body))
		})
	registerEndUserActions(s, svc, base)
}

func registerEndUserActions(s *httpapi.Server, svc *Service, base string) {
	pub := httpapi.ScopePublic
	act := func(id, path, summary, desc string, f func(ctx context.Context, user, org string) (OrgMembership, error)) {
		httpapi.Register(s, euOp(id, "POST", base+"/{id}/"+path, summary, 200, desc),
			pub, func(ctx context.Context, in *IDPath) (*httpapi.Body[OrgMembership], error) {
				user, err := endUser(ctx)
				if err != nil {
					return nil, err
				}
				return httpapi.Reply(f(ctx, user, in.ID))
			})
	}
	act("end-user-join-organization", "join", "Join an organization by e-mail domain",
		"Needs a verified e-mail address at the domain the organization claims (403 domain_not_allowed otherwise).", svc.Join)
	act("end-user-select-organization", "select", "Make an organization the one my tokens name",
		"Tokens issued from now on (sign-in, refresh) carry `org` and `org_role` of this organization.", svc.Select)
	httpapi.Register(s, euOp("end-user-leave-organization", "POST", base+"/{id}/leave", "Leave an organization", 204,
		"The last owner cannot leave (409 last_owner): hand ownership over first."),
		pub, func(ctx context.Context, in *IDPath) (*struct{}, error) {
			user, err := endUser(ctx)
			if err != nil {
				return nil, err
			}
			return nil, svc.Leave(ctx, user, in.ID)
		})
	httpapi.Register(s, euOp("end-user-transfer-organization", "POST", base+"/{id}/transfer", "Hand ownership to another member", 204,
		"The member becomes owner; I become billing admin. Owners only."),
		pub, func(ctx context.Context, in *struct {
			IDPath
			Body OrgTransferBody
		}) (*struct{}, error) {
			user, err := endUser(ctx)
			if err != nil {
				return nil, err
			}
			return nil, svc.Transfer(ctx, user, in.ID, in.Body.UserID)
		})
	httpapi.Register(s, euOp("end-user-organization-devices", "GET", base+"/{id}/devices", "Devices in use and the plan's limit", 200,
		"How many devices (sessions) the members use, and the organization's `max_devices` policy when its plan grants one."),
		pub, func(ctx context.Context, in *IDPath) (*httpapi.Body[OrgDevices], error) {
			user, err := endUser(ctx)
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(svc.Devices(ctx, Actor{UserID: user}, in.ID))
		})
	httpapi.Register(s, euOp("end-user-accept-organization-invitation", "POST", "/api/v1/end-user/organization-invitations/accept",
		"Accept an organization invitation", 200,
		"Signed in (bearer access token), the signed-in end user joins; the invitation must be for their address. "+
			"Without a token, an account is created for the invited address with the password given (409 end_user_exists when it has one: sign in first)."),
		pub, func(ctx context.Context, in *httpapi.Body[OrgAcceptBody]) (*httpapi.Body[OrgInvitationAccepted], error) {
			var tenant, user string
			if p := abacus.PrincipalFrom(ctx); p != nil {
				if user, tenant = p.ID, p.TenantID; p.Kind != EndUserKind {
					return nil, errSignInFirst
				}
			}
			return httpapi.Reply(svc.Accept(ctx, tenant, user, in.Body.Token, in.Body.Password, in.Body.Name))
		})
}

// registerMemberRoutes adds members and invitations, for end users (by
// their organization role) and for staff (every organization).
func registerMemberRoutes(s *httpapi.Server, svc *Service) {
	for _, side := range []struct {
		prefix, idp string
		tags        []string
		read, write abacus.Scope
		actor       func(ctx context.Context) (Actor, error)
	}{
		{"/api/v1/end-user/organizations", "end-user-", []string{"End-user organizations"}, httpapi.ScopePublic, httpapi.ScopePublic,
			func(ctx context.Context) (Actor, error) { u, err := endUser(ctx); return Actor{UserID: u}, err }},
		{"/api/v1/organizations", "", []string{"Organizations"}, abacus.ScopeRead, abacus.ScopeWrite,
			func(ctx context.Context) (Actor, error) { return staff(ctx), nil }},
	} {
		op := func(id, method, path, summary string, status int, desc string) huma.Operation {
			o := euOp(side.idp+id, method, side.prefix+path, summary, status, desc)
			o.Tags = side.tags
			return o
		}
		actor := side.actor
		httpapi.Register(s, op("list-organization-members", "GET", "/{id}/members", "List an organization's members", 200, ""),
			side.read, func(ctx context.Context, in *IDPath) (*httpapi.Body[abacus.List[OrgMember]], error) {
				a, err := actor(ctx)
				if err != nil {
					return nil, err
				}
				ms, err := svc.Members(ctx, a, in.ID)
				return httpapi.Reply(abacus.ListOf(ms, ""), err)
			})
		httpapi.Register(s, op("change-organization-member-role", "PATCH", "/{id}/members/{user_id}", "Change a member's role", 200,
			"Owners only; the last owner cannot be demoted (409 last_owner)."),
			side.write, func(ctx context.Context, in *struct {
				MemberPath
				Body OrgRoleBody
			}) (*httpapi.Body[OrgMember], error) {
				a, err := actor(ctx)
				if err != nil {
					return nil, err
				}
				return httpapi.Reply(svc.SetRole(ctx, a, in.ID, in.UserID, in.Body.Role))
			})
		httpapi.Register(s, op("remove-organization-member", "DELETE", "/{id}/members/{user_id}", "Remove a member", 204,
			"Owners remove anyone, members themselves; the last owner cannot be removed (409 last_owner)."),
			side.write, func(ctx context.Context, in *MemberPath) (*struct{}, error) {
				a, err := actor(ctx)
				if err != nil {
					return nil, err
				}
				return nil, svc.Remove(ctx, a, in.ID, in.UserID)
			})
		httpapi.Register(s, op("invite-to-organization", "POST", "/{id}/invitations", "Invite someone by e-mail", 201,
			"Owners and billing admins invite; only owners invite owners. The link is mailed (template `end_user.invitation`) and lasts 7 days."),
			side.write, func(ctx context.Context, in *struct {
				IDPath
				Body OrgInviteBody
			}) (*httpapi.Body[OrgInvitation], error) {
				a, err := actor(ctx)
				if err != nil {
					return nil, err
				}
				return httpapi.Reply(svc.Invite(ctx, a, in.ID, in.Body.Email, in.Body.Role))
			})
		httpapi.Register(s, op("list-organization-invitations", "GET", "/{id}/invitations", "List an organization's invitations", 200, ""),
			side.read, func(ctx context.Context, in *IDPath) (*httpapi.Body[abacus.List[OrgInvitation]], error) {
				a, err := actor(ctx)
				if err != nil {
					return nil, err
				}
				is, err := svc.Invitations(ctx, a, in.ID)
				return httpapi.Reply(abacus.ListOf(is, ""), err)
			})
		httpapi.Register(s, op("revoke-organization-invitation", "DELETE", "/{id}/invitations/{invitation_id}", "Revoke an invitation", 200,
			"Its link stops working; revoking twice is not an error."),
			side.write, func(ctx context.Context, in *InvitationPath) (*httpapi.Body[OrgInvitation], error) {
				a, err := actor(ctx)
				if err != nil {
					return nil, err
				}
				return httpapi.Reply(svc.RevokeInvitation(ctx, a, in.ID, in.InvitationID))
			})
	}
}

func registerStaffRoutes(s *httpapi.Server, svc *Service) {
	op := func(id, method, path, summary string, status int, desc string) huma.Operation {
		return huma.Operation{OperationID: id, Method: method, Path: path, Summary: summary, Description: desc,
			Tags: []string{"Organizations"}, DefaultStatus: status}
	}
	const base = "/api/v1/organizations"
	httpapi.Register(s, op("create-organization", "POST", base, "Create an organization", 201,
		"Creates its customer, or links an existing one (`customer_id`, id or external id); `owner_id` names an end user who becomes owner."),
		abacus.ScopeWrite, func(ctx context.Context, in *httpapi.Body[NewOrganization]) (*httpapi.Body[Organization], error) {
			return httpapi.Reply(svc.Create(ctx, staff(ctx), in.Body))
		})
	httpapi.Register(s, op("list-organizations", "GET", base, "List organizations", 200, ""),
		abacus.ScopeRead, func(ctx context.Context, in *struct {
			Limit  int    `query:"limit" minimum:"0" maximum:"100" doc:"page size (default 20)"`
			Cursor string `query:"cursor" doc:"next_cursor of the previous page"`
		}) (*httpapi.Body[abacus.List[Organization]], error) {
			return httpapi.Reply(svc.List(ctx, in.Cursor, in.Limit))
		})
	httpapi.Register(s, op("get-organization", "GET", base+"/{id}", "Get an organization", 200, ""),
		abacus.ScopeRead, func(ctx context.Context, in *IDPath) (*httpapi.Body[Organization], error) {
			return httpapi.Reply(svc.Get(ctx, staff(ctx), in.ID))
		})
	httpapi.Register(s, op("update-organization", "PATCH", base+"/{id}", "Update an organization", 200, ""),
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			IDPath
			Body OrganizationPatch
		}) (*httpapi.Body[Organization], error) {
			return httpapi.Reply(svc.Update(ctx, staff(ctx), in.ID, in.Body))
		})
	httpapi.Register(s, op("delete-organization", "DELETE", base+"/{id}", "Delete an organization", 200,
		"Its memberships and invitations go; its customer, subscriptions and invoices stay."),
		abacus.ScopeWrite, func(ctx context.Context, in *IDPath) (*httpapi.Body[Organization], error) {
			return httpapi.Reply(svc.Delete(ctx, in.ID))
		})
	httpapi.Register(s, op("add-organization-member", "POST", base+"/{id}/members", "Add an end user as a member", 201, ""),
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			IDPath
			Body NewOrgMember
		}) (*httpapi.Body[OrgMember], error) {
			return httpapi.Reply(svc.AddMember(ctx, staff(ctx), in.ID, in.Body.UserID, in.Body.Role))
		})
	httpapi.Register(s, op("organization-devices", "GET", base+"/{id}/devices", "Devices in use and the plan's limit", 200,
		"How many devices (sessions) the members use, and the `max_devices` policy the organization's plan grants."),
		abacus.ScopeRead, func(ctx context.Context, in *IDPath) (*httpapi.Body[OrgDevices], error) {
			return httpapi.Reply(svc.Devices(ctx, staff(ctx), in.ID))
		})
}
