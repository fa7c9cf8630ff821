package catalog_test

import (
	"context"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/catalog/catalogtest"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/period"
)

func tenantCtx(id string) context.Context {
	return abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: id, Scopes: []abacus.Scope{abacus.ScopeAdmin}})
}

func code(err error) string {
	if e, ok := abacus.AsError(err); ok {
		return e.Code
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

func TestCustomersStore(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		svc := catalog.NewService(d, abacus.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), nil, nil)
		a, b := tenantCtx("ten_a"), tenantCtx("ten_b")
		var ids []string
		for _, n := range []string{"Alpha Corp", "beta_LLC", "Gamma"} {
			c, err := svc.CreateCustomer(a, catalog.CustomerInput{Name: n, Currency: "eur", ExternalID: "x-" + n, Subjects: []string{"s-" + n}})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, c.ID)
		}
		if _, err := svc.CreateCustomer(a, catalog.CustomerInput{Name: "dup", Currency: "EUR", ExternalID: "x-Gamma"}); code(err) != "external_id_taken" {
			t.Fatalf("duplicate external id: %v", err)
		}
		// Another tenant may reuse external ids and subjects, and sees none of tenant a's customers.
		if _, err := svc.CreateCustomer(b, catalog.CustomerInput{Name: "B", Currency: "USD", ExternalID: "x-Gamma", Subjects: []string{"s-Gamma"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.GetCustomer(b, ids[0]); code(err) != "customer_not_found" {
			t.Fatalf("cross-tenant get: %v", err)
		}
		if _, err := svc.UpdateCustomer(b, ids[0], catalog.CustomerPatch{}); code(err) != "customer_not_found" {
			t.Fatalf("cross-tenant update: %v", err)
		}
		if _, err := svc.ArchiveCustomer(b, ids[0]); code(err) != "customer_not_found" {
			t.Fatalf("cross-tenant archive: %v", err)
		}
		// Search is case-insensitive and treats _ literally; pagination walks by id.
		l, err := svc.ListCustomers(a, catalog.CustomerQuery{Search: "ETA_l"}, catalog.Page{})
		if err != nil || len(l.Data) != 1 || l.Data[0].Name != "beta_LLC" {
			t.Fatalf("search: %+v %v", l, err)
		}
		p1, _ := svc.ListCustomers(a, catalog.CustomerQuery{}, catalog.Page{Limit: 2})
		p2, _ := svc.ListCustomers(a, catalog.CustomerQuery{}, catalog.Page{Limit: 2, Cursor: p1.NextCursor})
		if len(p1.Data) != 2 || p1.NextCursor == "" || len(p2.Data) != 1 || p2.NextCursor != "" || p2.Data[0].ID != ids[2] {
			t.Fatalf("pages: %+v / %+v", p1, p2)
		}
		// Subjects move with updates and stay unique.
		subj := []string{"s-new", "s-Alpha Corp"}
		if _, err := svc.UpdateCustomer(a, ids[1], catalog.CustomerPatch{Subjects: &subj}); code(err) != "subject_taken" {
			t.Fatalf("taking another customer's subject: %v", err)
		}
		subj = []string{"s-new"}
		if _, err := svc.UpdateCustomer(a, ids[1], catalog.CustomerPatch{Subjects: &subj}); err != nil {
			t.Fatal(err)
		}
		if c, err := svc.CustomerBySubject(a, "s-new"); err != nil || c.ID != ids[1] {
			t.Fatalf("by subject: %v %v", c.ID, err)
		}
		if _, err := svc.CustomerBySubject(a, "s-beta_LLC"); code(err) != "customer_not_found" {
			t.Fatalf("released subject still maps: %v", err)
		}
		c, err := svc.ArchiveCustomer(a, ids[0])
		if err != nil || c.ArchivedAt == nil {
			t.Fatalf("archive: %v", err)
		}
	})
}

func TestPlanVersionLifecycle(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		usage := catalogtest.NewMemoryUsage()
		svc := catalog.NewService(d, abacus.NewFakeClock(time.Now()), nil, usage)
		ctx := tenantCtx("ten_a")
		if _, err := svc.CreateFeature(ctx, catalog.FeatureInput{Key: "gpu", Kind: catalog.FeatureMetered, MeterSlug: "gpu"}); code(err) != "invalid_feature" {
			t.Fatalf("unknown meter: %v", err)
		}
		if _, err := svc.CreatePlan(ctx, catalog.PlanInput{Key: "pro", Name: "Pro"}); err != nil {
			t.Fatal(err)
		}
		spec := catalog.VersionSpec{Currency: "EUR", BillingInterval: period.Monthly}
		if _, err := svc.LatestPublished(ctx, d, "ten_a", "pro"); code(err) != "plan_not_published" {
			t.Fatalf("no published version: %v", err)
		}
		for range 2 {
			if _, err := svc.CreateVersion(ctx, "pro", spec); err != nil {
				t.Fatal(err)
			}
		}
		for _, n := range []int{1, 2} {
			if _, err := svc.PublishVersion(ctx, "pro", n); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := svc.PublishVersion(ctx, "pro", 2); code(err) != "version_immutable" {
			t.Fatalf("publishing twice: %v", err)
		}
		if _, err := svc.UpdateVersion(ctx, "pro", 1, spec); code(err) != "version_immutable" {
			t.Fatalf("editing published: %v", err)
		}
		if v, err := svc.LatestPublished(ctx, d, "ten_a", "pro"); err != nil || v.Version != 2 {
			t.Fatalf("latest published: %d %v", v.Version, err)
		}
		if _, err := svc.ArchiveVersion(ctx, "pro", 2); err != nil {
			t.Fatal(err)
		}
		if v, err := svc.LatestPublished(ctx, d, "ten_a", "pro"); err != nil || v.Version != 1 {
			t.Fatalf("latest after archiving 2: %d %v", v.Version, err)
		}
		if _, err := svc.GetVersion(tenantCtx("ten_b"), "pro", 1); code(err) != "plan_not_found" {
			t.Fatalf("cross-tenant version: %v", err)
		}
		bad := catalog.VersionSpec{Currency: "ZZZ", BillingInterval: period.Interval{Unit: "day"}, TrialDays: -1,
			Entitlements: []catalog.Grant{{Feature: "nope"}}}
		_, e := svc.CreateVersion(ctx, "pro", bad)
		ae, _ := abacus.AsError(e)
		if ae == nil || len(ae.Fields) != 4 {
			t.Fatalf("bad spec: want 4 field errors, got %v", e)
		}
	})
}

// A customer is named by its id or its external id wherever an id is
// accepted, like a plan by id or key; an id wins over another customer's
// equal external id, and another tenant's external id is not found.
func TestCustomersByExternalID(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		svc := catalog.NewService(d, abacus.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), nil, nil)
		a, b := tenantCtx("ten_a"), tenantCtx("ten_b")
		acme, err := svc.CreateCustomer(a, catalog.CustomerInput{Name: "Acme", Currency: "EUR", ExternalID: "crm-7"})
		if err != nil {
			t.Fatal(err)
		}
		// Another customer whose external id is Acme's id: Acme's id still names Acme.
		other, err := svc.CreateCustomer(a, catalog.CustomerInput{Name: "Other", Currency: "EUR", ExternalID: acme.ID})
		if err != nil {
			t.Fatal(err)
		}
		if c, err := svc.GetCustomer(a, "crm-7"); err != nil || c.ID != acme.ID {
			t.Fatalf("get by external id: %+v %v", c, err)
		}
		if c, err := svc.GetCustomer(a, acme.ID); err != nil || c.ID != acme.ID {
			t.Fatalf("an id against an equal external id: got %s (other is %s) %v", c.ID, other.ID, err)
		}
		name := "Acme GmbH"
		if c, err := svc.UpdateCustomer(a, "crm-7", catalog.CustomerPatch{Name: &name}); err != nil || c.ID != acme.ID || c.Name != name {
			t.Fatalf("update by external id: %+v %v", c, err)
		}
		if c, err := svc.ArchiveCustomer(a, "crm-7"); err != nil || c.ID != acme.ID || c.ArchivedAt == nil {
			t.Fatalf("archive by external id: %+v %v", c, err)
		}
		if l, err := svc.ListCustomers(a, catalog.CustomerQuery{ExternalID: "crm-7"}, catalog.Page{}); err != nil || len(l.Data) != 1 || l.Data[0].ID != acme.ID {
			t.Fatalf("list ?external_id=: %+v %v", l, err)
		}
		if l, err := svc.ListCustomers(a, catalog.CustomerQuery{ExternalID: "crm"}, catalog.Page{}); err != nil || len(l.Data) != 0 {
			t.Fatalf("list ?external_id= matches exactly: %+v %v", l, err)
		}
		for _, id := range []string{"crm-7", acme.ID} {
			if got, err := catalog.CustomerFilter(a, d, id); err != nil || got != acme.ID {
				t.Fatalf("filter %s: %s %v", id, got, err)
			}
		}

		// Tenant b sees none of it.
		if _, err := svc.GetCustomer(b, "crm-7"); code(err) != "customer_not_found" {
			t.Fatalf("cross-tenant get by external id: %v", err)
		}
		if _, err := svc.UpdateCustomer(b, "crm-7", catalog.CustomerPatch{Name: &name}); code(err) != "customer_not_found" {
			t.Fatalf("cross-tenant update by external id: %v", err)
		}
		if l, err := svc.ListCustomers(b, catalog.CustomerQuery{ExternalID: "crm-7"}, catalog.Page{}); err != nil || len(l.Data) != 0 {
			t.Fatalf("cross-tenant list ?external_id=: %+v %v", l, err)
		}
		if got, err := catalog.CustomerFilter(b, d, "crm-7"); err != nil || got != "crm-7" {
			t.Fatalf("cross-tenant filter: %s %v", got, err)
		}
	})
}
