package org

import (
	"context"
	"strings"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/enduser"
)

// Actor is who asks. An end user (UserID) acts by their role in the
// organization; staff (Staff, ID = the principal's id) may act on every
// organization of the tenant.
type Actor struct {
	UserID string
	Staff  bool
	ID     string
}

func (a Actor) by() string {
	if a.Staff {
		return a.ID
	}
	return a.UserID
}

// NewOrganization creates an organization.
type NewOrganization struct {
	Name       string `json:"name" maxLength:"200"`
	Domain     string `json:"domain,omitempty" maxLength:"253" doc:"claim this e-mail domain: end users with a verified address there may join"`
	Currency   string `json:"currency,omitempty" maxLength:"3" doc:"ISO 4217 currency of the new customer (default: the server's)"`
	CustomerID string `json:"customer_id,omitempty" maxLength:"255" doc:"staff only: link an existing customer (id or external id) instead of creating one"`
	OwnerID    string `json:"owner_id,omitempty" maxLength:"64" doc:"staff only: the end user who becomes its owner"`
}

// OrganizationPatch changes an organization; nil fields stay.
type OrganizationPatch struct {
	Name   *string `json:"name,omitempty" maxLength:"200"`
	Domain *string `json:"domain,omitempty" maxLength:"253" doc:"\"\" releases the claim"`
}

func checkName(v *abacus.Validation, name string) {
	if strings.TrimSpace(name) == "" {
		v.Add("name", "is required")
	} else if len(name) > 200 {
		v.Add("name", "must be at most 200 characters")
	}
}

func checkDomain(v *abacus.Validation, d string) {
	if d == "" {
		return
	}
	if len(d) > 253 || !strings.Contains(d, ".") || strings.ContainsAny(d, " @/\\:") || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") {
		v.Add("domain", "%q is not an e-mail domain such as example.com", d)
	}
}

// Create makes an organization of the tenant on ctx with its billed
// customer, in one transaction. An end user becomes its owner; staff may
// name an owner (OwnerID) and link an existing customer (CustomerID).
// Errors: invalid_organization (fields), the catalog's customer errors,
// customer_not_found, customer_taken, domain_taken, end_user_not_found.
func (s *Service) Create(ctx context.Context, a Actor, in NewOrganization) (Organization, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Organization{}, err
	}
	in.Name, in.Domain = strings.TrimSpace(in.Name), normDomain(in.Domain)
	var v abacus.Validation
	checkName(&v, in.Name)
	checkDomain(&v, in.Domain)
	if !a.Staff && (in.CustomerID != "" || in.OwnerID != "") {
		v.Add("customer_id", "only staff link customers or name owners")
	}
	if err := v.Err("invalid_organization"); err != nil {
		return Organization{}, err
	}
	owner := a.UserID
	if a.Staff {
		owner = in.OwnerID
	}
	var o Organization
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		var email string
		if owner != "" {
			u, err := s.eu.User(ctx, owner)
			if err != nil {
				return err
			}
			email = u.Email
		}
		o, err = s.create(ctx, tx, tenant, in, false, email)
		if err != nil || owner == "" {
			return err
		}
		return s.addMember(ctx, tx, tenant, o.ID, owner, RoleOwner, "created", a)
	})
	return o, err
}

// create inserts the organization and its customer (or links one).
func (s *Service) create(ctx context.Context, tx *db.Tx, tenant string, in NewOrganization, personal bool, email string) (Organization, error) {
	now := s.clock.Now()
	o := Organization{ID: abacus.NewID("org"), Name: in.Name, Personal: personal, Domain: in.Domain, CreatedAt: now, UpdatedAt: now}
	var err error
	if in.CustomerID != "" {
		o.CustomerID, err = s.customers.CustomerID(ctx, tx, tenant, in.CustomerID)
	} else {
		cur := in.Currency
		if cur == "" {
			cur = s.currency
		}
		o.CustomerID, err = s.customers.CreateCustomer(ctx, tx, NewCustomer{Name: in.Name, Email: email, Currency: cur, ExternalID: o.ID})
	}
	if err != nil {
		return Organization{}, err
	}
	if err := insertOrg(ctx, tx, tenant, o); err != nil {
		return Organization{}, err
	}
	_, err = OrganizationCreated.Record(ctx, tx, tenant, o.ID, now, o)
	return o, err
}

// Get returns organization id of the tenant on ctx; an end user must be
// a member. Errors: organization_not_found.
func (s *Service) Get(ctx context.Context, a Actor, id string) (Organization, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Organization{}, err
	}
	if _, err := s.authorize(ctx, s.db, tenant, id, a, RoleMember); err != nil {
		return Organization{}, err
	}
	return loadOrg(ctx, s.db, tenant, id)
}

// List returns a page of the tenant's organizations (staff), by id.
func (s *Service) List(ctx context.Context, cursor string, limit int) (abacus.List[Organization], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[Organization]{}, err
	}
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	os, err := listOrgs(ctx, s.db, tenant, cursor, limit)
	if err != nil {
		return abacus.List[Organization]{}, err
	}
	next := ""
	if len(os) == limit {
		next = os[len(os)-1].ID
	}
	return abacus.ListOf(os, next), nil
}

// Mine returns the organizations of end user userID with their role,
// the one tokens name first.
func (s *Service) Mine(ctx context.Context, userID string) ([]OrgMembership, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	return membershipsOf(ctx, s.db, tenant, userID)
}

// Update renames an organization or changes its claimed domain (owners
// and staff). Errors: invalid_organization, domain_taken,
// organization_not_found, organization_role_required.
func (s *Service) Update(ctx context.Context, a Actor, id string, p OrganizationPatch) (Organization, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Organization{}, err
	}
	var o Organization
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if _, err := s.authorize(ctx, tx, tenant, id, a, RoleOwner); err != nil {
			return err
		}
		if o, err = loadOrg(ctx, tx, tenant, id); err != nil {
			return err
		}
		if p.Name != nil {
			o.Name = strings.TrimSpace(*p.Name)
		}
		if p.Domain != nil {
			o.Domain = normDomain(*p.Domain)
		}
		var v abacus.Validation
		checkName(&v, o.Name)
		checkDomain(&v, o.Domain)
		if err := v.Err("invalid_organization"); err != nil {
			return err
		}
		o.UpdatedAt = s.clock.Now()
		if err := updateOrg(ctx, tx, tenant, o); err != nil {
			return err
		}
		_, err = OrganizationUpdated.Record(ctx, tx, tenant, o.ID, o.UpdatedAt, o)
		return err
	})
	return o, err
}

// Delete removes an organization with its memberships and invitations
// (staff only); its customer, with its subscriptions and invoices, stays.
// Errors: organization_not_found.
func (s *Service) Delete(ctx context.Context, id string) (Organization, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Organization{}, err
	}
	var o Organization
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if o, err = loadOrg(ctx, tx, tenant, id); err != nil {
			return err
		}
		if err := deleteOrg(ctx, tx, tenant, id); err != nil {
			return err
		}
		_, err = OrganizationDeleted.Record(ctx, tx, tenant, o.ID, s.clock.Now(), o)
		return err
	})
	return o, err
}

// authorize checks that a may act on org with at least role need (staff
// always may) and returns a's role. A non-member end user is told the
// organization does not exist.
func (s *Service) authorize(ctx context.Context, q db.Querier, tenant, org string, a Actor, need string) (string, error) {
	if a.Staff {
		if _, err := loadOrg(ctx, q, tenant, org); err != nil {
			return "", err
		}
		return RoleOwner, nil
	}
	role, err := roleOf(ctx, q, tenant, org, a.UserID)
	switch {
	case err != nil:
		return "", err
	case role == "":
		return "", abacus.NotFound("organization", org)
	case need == RoleOwner && role != RoleOwner:
		return role, errNotOwner
	case need == RoleBillingAdmin && role == RoleMember:
		return role, errNotAdmin
	}
	return role, nil
}

// personalOrganization is the OnSignUp hook: with the tenant's setting
// personal_organization, a new end user gets an organization of their own
// (and so a customer), made in the sign-up's transaction.
func (s *Service) personalOrganization(ctx context.Context, tx *db.Tx, u enduser.User) error {
	set, err := s.eu.Settings(enduser.SystemContext(ctx, u.TenantID))
	if err != nil || !set.PersonalOrganization {
		return err
	}
	name := u.Name
	if name == "" {
		name = u.Email
	}
	ctx = enduser.SystemContext(ctx, u.TenantID)
	o, err := s.create(ctx, tx, u.TenantID, NewOrganization{Name: name}, true, u.Email)
	if err != nil {
		return err
	}
	return s.addMember(ctx, tx, u.TenantID, o.ID, u.ID, RoleOwner, "personal", Actor{UserID: u.ID})
}

// claims is the ClaimsFor hook: org and org_role name the organization
// the user selected last (SelectOrganization), else their personal one,
// else the one they joined first; none when the user has none.
func (s *Service) claims(ctx context.Context, tenant, user string) (map[string]any, error) {
	var org, role string
	err := s.db.QueryRowContext(ctx, `SELECT m.org_id, m.role FROM organization_members m JOIN organizations o ON o.id = m.org_id
		WHERE m.tenant_id = $1 AND m.user_id = $2
		ORDER BY CASE WHEN m.selected_at IS NULL THEN 1 ELSE 0 END, m.selected_at DESC, o.personal DESC, m.created_at, o.id
		LIMIT 1`, tenant, user).Scan(&org, &role)
	if err != nil {
		if isNoRows(err) {
			return nil, nil
		}
		return nil, err
	}
	return map[string]any{"org": org, "org_role": role}, nil
}
