package identity

import (
	"context"
	"slices"
	"strings"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// Area groups routes for the role dimension of permissions. The scope a
// route is registered with (read, write, admin…) is the first check; the
// area is the second, for roles narrower than their scopes (billing).
type Area string

const (
	AreaPlatform Area = "platform" // health, metrics, docs: public
	AreaPublic   Area = "public"   // sign-up, sign-in, token endpoints: no credentials
	AreaSelf     Area = "self"     // the caller's own account: /me, sessions, MFA
	AreaIdentity Area = "identity" // keys, members, invitations, clients, audit: admin
	AreaDomain   Area = "domain"   // customers, plans, subscriptions, meters…
	AreaIngest   Area = "ingest"   // usage events
	AreaBilling  Area = "billing"  // invoices, credit notes, coupons, credits, payments
)

// Permissions is the one table that maps every route to an area, by path
// pattern prefix ("*" matches one path segment). The longest matching
// prefix wins. A route that matches nothing is refused to restricted
// roles and fails TestEveryRouteHasAPermission: add its prefix here.
var Permissions = []struct {
	Prefix string
	Area   Area
}{
	{"/healthz", AreaPlatform}, {"/readyz", AreaPlatform}, {"/metrics", AreaPlatform},
	{"/docs", AreaPlatform}, {"/openapi.json", AreaPlatform}, {"/openapi.yaml", AreaPlatform},
	{"/{$}", AreaPlatform}, {"/assets/", AreaPlatform}, // the dashboard's page and files (internal/dashboard)
	{"/.well-known/", AreaPublic},
	{"/oauth/token", AreaPublic},
	{"/api/v1/auth/", AreaPublic},
	{"/api/v1/invitations/accept", AreaPublic},
	{"/verify-email", AreaPublic}, {"/reset-password", AreaPublic}, {"/accept-invitation", AreaPublic},
	{"/api/v1/me", AreaSelf},
	{"/api/v1/end-user/", AreaPublic},
	{"/oidc/", AreaPublic}, // the end users' pages and OpenID Connect provider, per tenant
	{"/api/v1/end-users", AreaDomain},
	{"/api/v1/apps", AreaIdentity},
	{"/api/v1/settings/end-users", AreaIdentity},
	{"/api/v1/api-keys", AreaIdentity},
	{"/api/v1/members", AreaIdentity},
	{"/api/v1/invitations", AreaIdentity},
	{"/api/v1/oauth-clients", AreaIdentity},
	{"/api/v1/audit-events", AreaIdentity},
	{"/api/v1/mail-outbox", AreaIdentity},
	{"/api/v1/tenant", AreaIdentity},
	{"/api/v1/events", AreaIngest},
	{"/api/v1/usage", AreaDomain},
	{"/api/v1/meters", AreaDomain},
	{"/api/v1/event-types", AreaDomain},
	{"/api/v1/domain-event-types", AreaDomain},
	{"/api/v1/settings/metering", AreaDomain},
	{"/api/v2/events", AreaIngest},
	{"/api/v1/customers", AreaDomain},
	{"/api/v1/timeline", AreaDomain}, // rebuilding customers' timelines (internal/timeline)
	{"/api/v1/organizations", AreaDomain},
	{"/api/v1/customers/*/credits", AreaBilling},
	{"/api/v1/customers/*/wallets", AreaBilling},
	{"/api/v1/customers/*/invoices", AreaBilling},
	{"/api/v1/customers/*/invoice-delivery", AreaBilling},
	{"/api/v1/customers/*/balance", AreaBilling},
	{"/api/v1/customers/*/portal-links", AreaBilling}, // the customer portal (internal/portal)
	{"/api/v1/portal/", AreaPublic},                   // the portal's own routes: its session cookie, no staff credential
	{"/api/v1/settings/portal", AreaDomain},
	{"/api/v1/features", AreaDomain},
	{"/api/v1/entitlements", AreaDomain},
	{"/api/v1/plans", AreaDomain},
	{"/api/v1/prices", AreaDomain},
	{"/api/v1/products", AreaDomain},
	{"/api/v1/subscriptions", AreaDomain},
	{"/api/v1/notifications", AreaDomain},
	{"/api/v1/notifications/bounces", AreaPublic},
	{"/api/v1/templates", AreaDomain},
	{"/api/v1/webhooks", AreaDomain},
	{"/api/v1/realtime/ws", AreaPublic}, // authenticates its own token (docs/realtime.md)
	{"/api/v1/realtime/", AreaDomain},
	{"/api/v1/conversations", AreaDomain},
	{"/api/v1/messages", AreaDomain},
	{"/api/v1/webhook-endpoints", AreaDomain},
	{"/api/v1/webhook-event-types", AreaDomain},
	{"/api/v1/conversations", AreaDomain},
	{"/api/v1/messages", AreaDomain},
	{"/api/v1/attachments", AreaDomain},
	{"/api/v1/risk", AreaDomain},
	{"/api/v1/analytics", AreaDomain},
	{"/api/v1/invoices", AreaBilling},
	{"/api/v1/credit-notes", AreaBilling},
	{"/api/v1/coupons", AreaBilling},
	{"/api/v1/credits", AreaBilling},
	{"/api/v1/wallets", AreaBilling},
	{"/api/v1/taxes", AreaBilling},
	{"/api/v1/tax-assignments", AreaBilling},
	{"/api/v1/documents", AreaBilling},
	{"/api/v1/document-downloads", AreaPublic}, // the download_link channel's signed, expiring links (internal/notifications)
	{"/api/v1/tax-rates", AreaBilling},
	{"/api/v1/billing", AreaBilling},
	{"/api/v1/payments", AreaBilling},
	{"/api/v1/disputes", AreaBilling},
	{"/api/v1/settings/dunning", AreaBilling},
	{"/api/v1/dunning", AreaBilling},
	{"/api/v1/payment-providers", AreaIdentity}, // gateway credentials: admins
	{"/api/v1/customers/*/billing", AreaBilling},
	{"/api/v1/customers/*/payment-methods", AreaBilling},
	{"/api/v1/receivables", AreaBilling},
	{"/webhooks/", AreaPublic}, // payment gateways' callbacks, signed per tenant
	{"/pay/", AreaPublic},      // the hosted "pay this invoice" page, by signed link
	{"/api/v1/dunning", AreaBilling},
	{"/api/v1/media", AreaPublic}, // end users' and staff's uploads: checked in the handlers; signed URLs (internal/media)
	{"/api/v1/settings/media", AreaDomain},
	{"/api/v1/nearby", AreaDomain},
	{"/api/v1/places", AreaDomain},
}

// AreaOf returns the area of a registered route pattern and whether the
// table has an entry for it.
func AreaOf(pattern string) (Area, bool) {
	best, area := -1, Area("")
	for _, e := range Permissions {
		if n, ok := prefixMatch(e.Prefix, pattern); ok && n > best {
			best, area = n, e.Area
		}
	}
	return area, best >= 0
}

// prefixMatch reports whether prefix matches the start of path segment by
// segment ("*" matches any one segment; the last prefix segment may be a
// prefix of the path segment, so "/openapi.json" and "/api/v1/me" match
// themselves and what lies below) and returns the prefix length as rank.
func prefixMatch(prefix, path string) (int, bool) {
	ps, xs := strings.Split(prefix, "/"), strings.Split(path, "/")
	if len(ps) > len(xs) {
		return 0, false
	}
	for i, p := range ps {
		x := xs[i]
		switch {
		case p == "*" || p == x:
		case i == len(ps)-1 && p == "": // prefix ends with "/"
		default:
			return 0, false
		}
	}
	// a whole-segment match only: "/api/v1/me" must not match "/api/v1/members".
	return len(prefix), true
}

// Authorize is the httpapi Authorizer: a principal restricted to billing
// (the billing role) may use only billing routes and its own account.
// Everything else is already decided by scopes. It returns a forbidden
// *abacus.Error (code role_not_allowed).
func (s *Service) Authorize(_ context.Context, p *abacus.Principal, route httpapi.Route) error {
	if !slices.Contains(p.Scopes, ScopeBillingOnly) {
		return nil
	}
	switch area, _ := AreaOf(route.Path); area {
	case AreaBilling, AreaSelf, AreaPublic, AreaPlatform:
		return nil
	}
	return abacus.Errorf(abacus.KindForbidden, "role_not_allowed",
		"the billing role may use billing routes only (invoices, credit notes, coupons, credits, payments); ask an admin for another role")
}
