package portal

import (
	"time"

	"github.com/abacusbilling/abacus/internal/catalog"
)

// Examples are the values the API reference shows for the portal's
// bodies (httpapi.Server.Example).
func Examples() []any {
	at := time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	link := PortalLink{ID: "ptl_01jbx7k2q9m4r8t6v3w5y0z1ab", CustomerID: "cus_01jbx7h0a2c4e6g8j0l2n4q6s8", ReturnURL: "https://app.example.com/account",
		CreatedBy: "key_01jbx70000000000000000000a", ExpiresAt: at.Add(time.Hour), CreatedAt: at}
	name, tax := "Acme GmbH", "DE123456789"
	addr := catalog.Address{Line1: "Hauptstraße 1", City: "Berlin", PostalCode: "10115", Country: "DE"}
	st := DefaultSettings()
	st.Branding = PortalBranding{Name: "My Better Netflix", LogoURL: "https://cdn.example.com/logo.svg", PrimaryColor: "#1d4ed8", AccentColor: "#0f172a"}
	st.AllowPlanChange, st.Plans, st.AllowCancel = true, []string{"starter", "pro"}, true
	st.ReturnURL = "https://app.example.com/account"
	sess := PortalSession{ID: "pss_01jbx7m0d4f6h8j0k2m4n6p8qr", TenantID: "ten_01jbx6z0000000000000000000", CustomerID: link.CustomerID,
		LinkID: link.ID, ExpiresAt: at.Add(time.Hour)}
	pro := PortalPlan{ID: "pln_01jbx7a0000000000000000000", Key: "pro", Name: "Pro"}
	end := at.AddDate(0, 1, 0)
	return []any{
		PortalLinkInput{TTLSeconds: 3600, ReturnURL: link.ReturnURL},
		link,
		PortalLinkWithURL{PortalLink: link, URL: "https://billing.example.com/portal/open#token=apl_Zk9yZXhhbXBsZW9ubHlub3RhcmVhbHRva2VuMTIzNA"},
		st,
		PortalOpenInput{Token: "apl_Zk9yZXhhbXBsZW9ubHlub3RhcmVhbHRva2VuMTIzNA"},
		sess,
		PortalCustomer{ID: link.CustomerID, Name: name, Email: "billing@acme.example", Currency: "EUR", Address: addr, TaxID: tax},
		PortalDetailsInput{Name: &name, Address: &addr, TaxID: &tax},
		PortalChangePlanInput{Plan: "pro"},
		PortalPayLink{InvoiceID: "inv_01jbx7e0000000000000000000", URL: "https://billing.example.com/pay/pl_dGVuXzAxamJ4.Kx9rV2mQ", ExpiresAt: at.AddDate(0, 0, 30)},
		PortalSubscription{ID: "sub_01jbx7c0000000000000000000", Status: "active", Plan: pro,
			CurrentPeriod: &PortalPeriodView{Start: at, End: end}, CanChangePlan: true, CanCancel: true},
		PortalOverview{Session: sess, Branding: st.Branding, ReturnURL: st.ReturnURL,
			Customer: PortalCustomer{ID: link.CustomerID, Name: name, Currency: "EUR", Address: addr, TaxID: tax},
			Subscriptions: []PortalSubscription{{ID: "sub_01jbx7c0000000000000000000", Status: "active", Plan: pro,
				CurrentPeriod: &PortalPeriodView{Start: at, End: end}, CanChangePlan: true, CanCancel: true}},
			Plans: []PortalPlan{{ID: "pln_01jbx7b0000000000000000000", Key: "starter", Name: "Starter"}, pro}, PlanChangeAt: "period_end"},
	}
}
