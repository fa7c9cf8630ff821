// Package org groups a tenant's end users into organizations, each one a
// billed customer of the tenant (a catalog customer, made with the
// organization or linked to an existing one by staff).
//
// A member has one role: owner, billing_admin or member. People join by
// an e-mailed invitation, by a verified address at the domain the
// organization claims, or when staff add them; they leave, are removed,
// or hand ownership over. The last owner can neither leave nor be removed
// nor demoted.
//
//	invite ──▶ pending ──accept──▶ accepted (member added)
//	              │╰──── expiry ──▶ expired
//	              ╰───── revoke ──▶ revoked
//
// The package plugs into enduser through its hooks (enduser never imports
// it): OnSignUp makes a personal organization when the tenant's settings
// ask for one, ClaimsFor puts org and org_role in tokens, OnSessionStart
// enforces the plan feature max_devices (devices.go).
package org

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/enduser"
)

// Organization roles.
const (
	RoleOwner        = "owner"         // everything, including roles, removal and transfer
	RoleBillingAdmin = "billing_admin" // invites and sees billing; cannot change roles
	RoleMember       = "member"
)

// InvitationTTL is how long an e-mailed invitation can be accepted.
const InvitationTTL = 7 * 24 * time.Hour

// MailInvitation is the template key of the invitation e-mail. Data has
// "organization" {id, name}, "inviter" {name, email} (empty when staff
// invited), "role", "link" and "expires_at".
const MailInvitation = "end_user.invitation"

// Organization is a group of end users billed as one customer.
type Organization struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	CustomerID string    `json:"customer_id" doc:"the catalog customer billed for the organization"`
	Personal   bool      `json:"personal" doc:"made on sign-up for one user (B2C)"`
	Domain     string    `json:"domain,omitempty" doc:"end users with a verified address at this domain may join"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// OrgMembership is an organization as one of its members sees it.
type OrgMembership struct {
	Organization
	Role string `json:"role" enum:"owner,billing_admin,member"`
}

// OrgMember is one end user of an organization.
type OrgMember struct {
	OrganizationID string    `json:"organization_id"`
	UserID         string    `json:"user_id"`
	Email          string    `json:"email,omitempty"`
	Name           string    `json:"name,omitempty"`
	Role           string    `json:"role" enum:"owner,billing_admin,member"`
	CreatedAt      time.Time `json:"created_at"`
}

// OrgInvitation is an e-mailed offer to join an organization.
type OrgInvitation struct {
	ID             string     `json:"id"`
	OrganizationID string     `json:"organization_id"`
	Email          string     `json:"email"`
	Role           string     `json:"role" enum:"owner,billing_admin,member"`
	InvitedBy      string     `json:"invited_by"`
	CreatedAt      time.Time  `json:"created_at"`
	ExpiresAt      time.Time  `json:"expires_at"`
	AcceptedAt     *time.Time `json:"accepted_at,omitempty"`
	AcceptedBy     string     `json:"accepted_by,omitempty"`
	RevokedAt      *time.Time `json:"revoked_at,omitempty"`
}

// NewCustomer is what an organization asks of the catalog.
type NewCustomer struct {
	Name       string
	Email      string
	Currency   string // empty: the service's default
	ExternalID string // the organization's id, so the customer names it
}

// Customers is the catalog as organizations need it (wired in
// internal/app): create the customer of a new organization in the same
// transaction, and resolve a customer staff link by id or external id.
type Customers interface {
	CreateCustomer(ctx context.Context, tx *db.Tx, c NewCustomer) (id string, err error)
	CustomerID(ctx context.Context, q db.Querier, tenant, ref string) (id string, err error)
}

// Entitlements reads a static feature's value granted to a customer by
// its live subscription (ok false: not granted). Wired to
// subscription.Service.Check in internal/app.
type Entitlements interface {
	StaticValue(ctx context.Context, tenant, customerID, feature string) (value json.RawMessage, ok bool, err error)
}

// Option configures a Service.
type Option func(*Service)

// WithMailer sets how invitations are mailed (enduser's Mailer). Without
// one they are created but not mailed (and a warning is logged).
func WithMailer(m enduser.Mailer) Option { return func(s *Service) { s.mailer = m } }

// SetMailer sets (or replaces) the Mailer, for wiring that builds the
// mailer after the service.
func (s *Service) SetMailer(m enduser.Mailer) {
	s.mailMu.Lock()
	defer s.mailMu.Unlock()
	s.mailer = m
}

func (s *Service) getMailer() enduser.Mailer {
	s.mailMu.RLock()
	defer s.mailMu.RUnlock()
	return s.mailer
}

// WithDefaultCurrency sets the currency of customers made for new
// organizations that name none (default USD).
func WithDefaultCurrency(c string) Option { return func(s *Service) { s.currency = c } }

// WithInvitationTTL sets how long invitations last (default InvitationTTL).
func WithInvitationTTL(d time.Duration) Option { return func(s *Service) { s.inviteTTL = d } }

// Service manages organizations. Safe for concurrent use; one per process.
type Service struct {
	db        *db.DB
	clock     abacus.Clock
	log       *slog.Logger
	eu        *enduser.Service
	customers Customers
	ents      Entitlements
	mailMu    sync.RWMutex
	mailer    enduser.Mailer
	currency  string
	inviteTTL time.Duration
	devices   *limiter
}

// New returns the organization service and registers its hooks on eu
// (personal organizations, org claims, device limits).
func New(d *db.DB, clock abacus.Clock, log *slog.Logger, eu *enduser.Service, c Customers, e Entitlements, opts ...Option) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{db: d, clock: clock, log: log, eu: eu, customers: c, ents: e, currency: "USD", inviteTTL: InvitationTTL}
	for _, o := range opts {
		o(s)
	}
	s.devices = newLimiter(s)
	eu.OnSignUp(s.personalOrganization)
	eu.ClaimsFor(s.claims)
	eu.OnSessionStart(s.devices.onSessionStart)
	return s
}

// Errors shared by several operations.
var (
	errLastOwner = abacus.Conflict("last_owner",
		"an organization needs an owner: transfer ownership or make another member owner first")
	errNotOwner = &abacus.Error{Kind: abacus.KindForbidden, Code: "organization_role_required",
		Message: "only an owner of the organization may do this"}
	errNotAdmin = &abacus.Error{Kind: abacus.KindForbidden, Code: "organization_role_required",
		Message: "only an owner or billing admin of the organization may do this"}
)

func validRole(r string) bool {
	return r == RoleOwner || r == RoleBillingAdmin || r == RoleMember
}
