// Package portal is the customer portal: a self-serve billing page for a
// tenant's customers, served by the dashboard's app under /portal and
// reading through /api/v1/portal/….
//
// A tenant's backend creates a portal link for one customer
// (POST /api/v1/customers/{id}/portal-links → {url, expires_at}); an end
// user holding the owner or billing_admin role of the customer's
// organization may create one for it too (POST /api/v1/end-user/portal-links).
// The link's secret travels in the URL fragment (/portal/open#token=…), so
// it reaches neither logs nor Referer headers; the page exchanges it
// (POST /api/v1/portal/session) for a portal session:
//
//	link ──open──▶ session cookie (abacus_portal, HttpOnly, SameSite=Strict,
//	  │                            Secure over TLS, path /api/v1/portal/)
//	  │                 │
//	  revoke ───────────┴──▶ both refused (link_revoked / portal_session_ended)
//	  expire ──▶ link refused; sessions end at their own expiry (≤ the link's)
//
// State-changing portal requests must echo the abacus_csrf cookie in
// X-CSRF-Token (httpapi.CSRFProblem), like the dashboard's.
//
// A portal session is one tenant and one customer. Every handler reads
// through the owning module's Go API with the tenant on the context and
// the session's customer as the filter (or checks the object's customer
// and answers 404 for another's), so the portal has no path to another
// customer's data and no SQL outside its own tables.
package portal
