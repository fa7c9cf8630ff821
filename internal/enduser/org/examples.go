package org

import (
	"time"
)

// Examples are the values the API reference shows for the organization
// routes' bodies (httpapi.Server.Example).
func Examples() []any {
	at := time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	o := Organization{ID: "org_01jbx7k2q9m4r8t6v3w5y0z1ab", Name: "Acme GmbH", CustomerID: "cus_01jbx7k2q9m4r8t6v3w5y0z1ab",
		Domain: "acme.example", CreatedAt: at, UpdatedAt: at}
	user := "eu_01jbx7m0d4f6h8j0k2m4n6p8qr"
	p := DevicePolicy{Limit: 2, OnLimit: OnLimitRefuse, Per: PerOrganization}
	return []any{
		o,
		OrgMembership{Organization: o, Role: RoleOwner},
		OrgMember{OrganizationID: o.ID, UserID: user, Email: "jane@acme.example", Name: "Jane Doe", Role: RoleBillingAdmin, CreatedAt: at},
		OrgInvitation{ID: "oinv_01jbx7n3s5v7x9z1b3d5f7h9jk", OrganizationID: o.ID, Email: "sam@acme.example", Role: RoleMember,
			InvitedBy: user, CreatedAt: at, ExpiresAt: at.Add(InvitationTTL)},
		OrgInvitationAccepted{Membership: OrgMembership{Organization: o, Role: RoleMember}, NewUser: true, UserID: "eu_01jbx7p6w8y0a2c4e6g8j0l2np", Email: "sam@acme.example"},
		OrgDevices{OrganizationID: o.ID, Feature: FeatureMaxDevices, Limited: true, Policy: &p, InUse: 2,
			Members: []MemberDevices{{UserID: user, InUse: 2}}},
		NewEndUserOrg{Name: "Acme GmbH", Domain: "acme.example", Currency: "EUR"},
		NewOrganization{Name: "Acme GmbH", Currency: "EUR", OwnerID: user},
		OrganizationPatch{Name: &o.Name, Domain: &o.Domain},
		OrgRoleBody{Role: RoleBillingAdmin},
		NewOrgMember{UserID: user, Role: RoleMember},
		OrgInviteBody{Email: "sam@acme.example", Role: RoleMember},
		OrgTransferBody{UserID: user},
		OrgAcceptBody{Token: "oit_…", Password: "a long passphrase 42", Name: "Sam Roe"},
	}
}
