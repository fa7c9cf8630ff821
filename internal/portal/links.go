package portal

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
)

// CreateLink makes a portal link for the customer ref names (id or
// external id) of the tenant on ctx. Errors: customer_not_found,
// invalid_portal_link (ttl_seconds, return_url).
func (s *Service) CreateLink(ctx context.Context, customerRef string, in PortalLinkInput) (PortalLinkWithURL, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return PortalLinkWithURL{}, err
	}
	var v abacus.Validation
	ttl := DefaultLinkTTL
	if in.TTLSeconds != 0 {
		ttl = time.Duration(in.TTLSeconds) * time.Second
		if ttl < MinLinkTTL || ttl > MaxLinkTTL {
			v.Add("ttl_seconds", "must be between %d and %d seconds", int(MinLinkTTL/time.Second), int(MaxLinkTTL/time.Second))
		}
	}
	in.ReturnURL = strings.TrimSpace(in.ReturnURL)
	if in.ReturnURL != "" && !webURL(in.ReturnURL) {
		v.Add("return_url", "must be an http or https URL")
	}
	if err := v.Err("invalid_portal_link"); err != nil {
		return PortalLinkWithURL{}, err
	}
	cus, err := s.catalog.GetCustomer(ctx, customerRef)
	if err != nil {
		return PortalLinkWithURL{}, err
	}
	if cus.ArchivedAt != nil {
		return PortalLinkWithURL{}, abacus.Conflict("customer_archived", "customer %s is archived; its portal cannot be opened", cus.ID)
	}
	now := s.now()
	by := ""
	if p := abacus.PrincipalFrom(ctx); p != nil {
		by = p.ID
	}
	l := PortalLink{ID: abacus.NewID("ptl"), CustomerID: cus.ID, ReturnURL: in.ReturnURL, CreatedBy: by,
		ExpiresAt: now.Add(ttl), CreatedAt: now}
	secret, hash := newSecret(LinkSecretPrefix)
	if err := s.insertLink(ctx, tenant, l, hash); err != nil {
		return PortalLinkWithURL{}, err
	}
	return PortalLinkWithURL{PortalLink: l, URL: s.cfg.BaseURL + "/portal/open#token=" + secret}, nil
}

// ListLinks returns a page of a customer's links, newest first.
func (s *Service) ListLinks(ctx context.Context, customerRef string, limit int, cursor string) (abacus.List[PortalLink], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[PortalLink]{}, err
	}
	cus, err := s.catalog.GetCustomer(ctx, customerRef)
	if err != nil {
		return abacus.List[PortalLink]{}, err
	}
	return s.listLinks(ctx, tenant, cus.ID, limit, cursor)
}

// RevokeLink revokes a customer's link and ends every portal session
// opened from it. Revoking twice is not an error. Errors:
// customer_not_found, portal_link_not_found.
func (s *Service) RevokeLink(ctx context.Context, customerRef, id string) (PortalLink, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return PortalLink{}, err
	}
	cus, err := s.catalog.GetCustomer(ctx, customerRef)
	if err != nil {
		return PortalLink{}, err
	}
	return s.revokeLink(ctx, tenant, cus.ID, id, s.now())
}

// Open exchanges a link's secret for a portal session and returns the
// session with its secret (the cookie's value). Errors:
// portal_link_invalid (unknown, expired or revoked).
func (s *Service) Open(ctx context.Context, linkSecret string) (*PortalSession, string, error) {
	if !strings.HasPrefix(linkSecret, LinkSecretPrefix) || len(linkSecret) > 100 {
		return nil, "", errLinkInvalid
	}
	now := s.now()
	tenant, l, err := s.useLink(ctx, hashSecret(linkSecret), now)
	if err != nil {
		return nil, "", err
	}
	sess := &PortalSession{ID: abacus.NewID("pss"), TenantID: tenant, CustomerID: l.CustomerID, LinkID: l.ID, ExpiresAt: now.Add(s.cfg.SessionTTL)}
	// The customer must still be there (and not archived).
	cus, err := s.catalog.GetCustomer(sess.context(ctx), l.CustomerID)
	if abacus.ErrorKind(err) == abacus.KindNotFound || (err == nil && cus.ArchivedAt != nil) {
		return nil, "", errLinkInvalid
	}
	if err != nil {
		return nil, "", err
	}
	secret, hash := newSecret(SessionSecretPrefix)
	if err := s.insertSession(ctx, *sess, hash, now); err != nil {
		return nil, "", err
	}
	return sess, secret, nil
}

// Authenticate returns the open session of a portal cookie and ctx
// carrying its principal (tenant, kind "portal", no scope). Errors:
// portal_session_required (no cookie), portal_session_ended.
func (s *Service) Authenticate(ctx context.Context, cookie string) (context.Context, *PortalSession, error) {
	if cookie == "" {
		return ctx, nil, errNoSession
	}
	if !strings.HasPrefix(cookie, SessionSecretPrefix) || len(cookie) > 100 {
		return ctx, nil, errSessionEnded
	}
	sess, err := s.sessionByHash(ctx, hashSecret(cookie), s.now())
	if err != nil {
		return ctx, nil, err
	}
	return sess.context(ctx), sess, nil
}

// SignOut ends the session of a portal cookie. Idempotent.
func (s *Service) SignOut(ctx context.Context, cookie string) error {
	if cookie == "" {
		return nil
	}
	return s.endSession(ctx, hashSecret(cookie), s.now())
}

// Settings returns the tenant's portal settings (the defaults when it
// changed nothing).
func (s *Service) Settings(ctx context.Context) (PortalSettings, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return PortalSettings{}, err
	}
	return s.loadSettings(ctx, tenant)
}

// PutSettings replaces the tenant's portal settings. Plans must name
// plans of the tenant (by key or id). Errors: invalid_portal_settings.
func (s *Service) PutSettings(ctx context.Context, st PortalSettings) (PortalSettings, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return PortalSettings{}, err
	}
	if err := st.validate(); err != nil {
		return PortalSettings{}, err
	}
	var v abacus.Validation
	for i, ref := range st.Plans {
		p, err := s.catalog.GetPlan(ctx, ref)
		if abacus.ErrorKind(err) == abacus.KindNotFound {
			v.Add("plans["+strconv.Itoa(i)+"]", "no plan %q", ref)
			continue
		}
		if err != nil {
			return PortalSettings{}, err
		}
		st.Plans[i] = p.Key
	}
	if err := v.Err("invalid_portal_settings"); err != nil {
		return PortalSettings{}, err
	}
	now := s.now()
	if err := s.storeSettings(ctx, tenant, st, now); err != nil {
		return PortalSettings{}, err
	}
	st.UpdatedAt = &now
	return st, nil
}

// OrgBilling returns the customer billed for organization orgID when end
// user userID (of the tenant on ctx) holds a role there that may see
// billing (owner or billing_admin); an error otherwise (not found when the
// user is no member, forbidden for a plain member).
type OrgBilling func(ctx context.Context, userID, orgID string) (customerID string, err error)

// SetOrgBilling lets end users open the portal of their organization's
// customer (CreateEndUserLink). Call before serving.
func (s *Service) SetOrgBilling(f OrgBilling) { s.orgBilling = f }

// CreateEndUserLink makes a portal link for the customer of organization
// orgID, for the end user on ctx who holds its owner or billing_admin
// role: the tenant's app sends its signed-in billing admin to the url.
// Errors: unauthenticated (no end user), organization_not_found,
// organization_role_required, and those of CreateLink.
func (s *Service) CreateEndUserLink(ctx context.Context, orgID string, in PortalLinkInput) (PortalLinkWithURL, error) {
	p := abacus.PrincipalFrom(ctx)
	if p == nil || p.Kind != "end_user" || p.ID == "" {
		return PortalLinkWithURL{}, abacus.Errorf(abacus.KindUnauthorized, "unauthenticated",
			"this route needs an end user's access token: send Authorization: Bearer <access_token>")
	}
	if s.orgBilling == nil {
		return PortalLinkWithURL{}, abacus.NotFound("organization", orgID)
	}
	cus, err := s.orgBilling(ctx, p.ID, orgID)
	if err != nil {
		return PortalLinkWithURL{}, err
	}
	return s.CreateLink(ctx, cus, in)
}
