package org

import "github.com/abacusbilling/abacus/internal/outbox"

// MemberEvent is a change of one membership. By is who made it: an
// end-user id, or the staff principal's id.
type MemberEvent struct {
	OrganizationID string `json:"organization_id"`
	UserID         string `json:"user_id"`
	Role           string `json:"role"`
	PreviousRole   string `json:"previous_role,omitempty"`
	Reason         string `json:"reason,omitempty" doc:"how the member came or went: created, invitation, domain, staff, personal, left, removed"`
	By             string `json:"by"`
}

// InvitationEvent is an invitation sent or accepted. The token is never
// part of it.
type InvitationEvent struct {
	InvitationID   string `json:"invitation_id"`
	OrganizationID string `json:"organization_id"`
	Email          string `json:"email"`
	Role           string `json:"role"`
	InvitedBy      string `json:"invited_by"`
	AcceptedBy     string `json:"accepted_by,omitempty" doc:"the end user who accepted"`
}

// OwnershipEvent is ownership handed from one member to another.
type OwnershipEvent struct {
	OrganizationID string `json:"organization_id"`
	FromUserID     string `json:"from_user_id"`
	ToUserID       string `json:"to_user_id"`
	FromRole       string `json:"from_role" doc:"the previous owner's role afterwards"`
	By             string `json:"by"`
}

// Organizations' domain events, recorded in the transaction of the change.
var (
	OrganizationCreated  = outbox.Define[Organization]("organization.created", 1, "organization", "An organization of end users was created with its billed customer.")
	OrganizationUpdated  = outbox.Define[Organization]("organization.updated", 1, "organization", "An organization's name or claimed domain changed.")
	OrganizationDeleted  = outbox.Define[Organization]("organization.deleted", 1, "organization", "An organization was deleted with its memberships and invitations; its customer stays.")
	MemberAdded          = outbox.Define[MemberEvent]("organization.member_added", 1, "organization", "An end user joined an organization.")
	MemberRemoved        = outbox.Define[MemberEvent]("organization.member_removed", 1, "organization", "An end user left or was removed from an organization.")
	MemberRoleChanged    = outbox.Define[MemberEvent]("organization.member_role_changed", 1, "organization", "A member's organization role changed.")
	InvitationSent       = outbox.Define[InvitationEvent]("organization.invitation_sent", 1, "organization", "An invitation to join an organization was e-mailed.")
	InvitationAccepted   = outbox.Define[InvitationEvent]("organization.invitation_accepted", 1, "organization", "An invitation was accepted: its invitee is a member.")
	OwnershipTransferred = outbox.Define[OwnershipEvent]("organization.ownership_transferred", 1, "organization", "An owner handed ownership of an organization to another member.")
)
