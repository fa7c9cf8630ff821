package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/client"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// call sends v as JSON and decodes the answer into out, retrying (with
// the same Idempotency-Key, so at most one takes effect) while nodes die.
func call(ctx context.Context, api *client.Client, method, path string, v, out any) error {
	body, _ := json.Marshal(v)
	if v == nil {
		body = nil
	}
	_, err := client.Retry(ctx, client.Backoff{MaxAttempts: 100, Initial: 20 * time.Millisecond, Max: 300 * time.Millisecond},
		func(ctx context.Context) error {
			res, err := api.Do(ctx, method, path, "application/json", body)
			if err == nil && out != nil {
				err = json.Unmarshal(res, out)
			}
			return err
		})
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// seedBilling makes n customers (tax exempt, so no rate is missing) on a
// monthly 10 EUR plan billed in advance, each subscription started months
// months ago: the billing role then closes months past periods each and
// opens the current one, every invoice finalized at once (no grace). It
// returns the subscription ids.
func seedBilling(t *testing.T, ctx context.Context, api *client.Client, tag string, n, months int) []string {
	t.Helper()
	settings := map[string]any{"invoice_prefix": "INV", "credit_note_prefix": "CN", "grace_seconds": 0, "due_days": 14,
		"seller": map[string]any{"name": "Chaos GmbH", "address": []string{"Friedrichstraße 68"}, "city": "Berlin", "postal_code": "10117",
			"country_code": "DE", "vat_id": "DE136695976", "endpoint_id": "DE136695976", "endpoint_scheme": "9930"}}
	if err := call(ctx, api, http.MethodPut, "/api/v1/billing/settings", settings, nil); err != nil {
		t.Fatal(err)
	}
	var plan struct{ ID string }
	if err := call(ctx, api, http.MethodPost, "/api/v1/plans", catalog.PlanInput{Key: "chaos_" + tag, Name: "Chaos " + tag}, &plan); err != nil {
		t.Fatal(err)
	}
	spec := catalog.VersionSpec{Currency: "EUR", BillingInterval: period.Interval{Unit: period.Month, Count: 1}, Charges: []pricing.Charge{{
		Key: "platform", Description: "Platform fee", Kind: pricing.ChargeFee,
		Fee: &pricing.Fee{Amount: decimal.RequireFromString("10.00"), Billed: pricing.InAdvance}}}}
	var v struct{ Version int }
	if err := call(ctx, api, http.MethodPost, "/api/v1/plans/"+plan.ID+"/versions", spec, &v); err != nil {
		t.Fatal(err)
	}
	if err := call(ctx, api, http.MethodPost, fmt.Sprintf("/api/v1/plans/%s/versions/%d/publish", plan.ID, v.Version), nil, nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now().UTC().AddDate(0, -months, 0).Add(-time.Hour)
	subs := make([]string, n)
	for i := range n {
		var cus, sub struct{ ID string }
		in := catalog.CustomerInput{ExternalID: fmt.Sprintf("%s-%03d", tag, i), Name: fmt.Sprintf("Chaos %s %d", tag, i), Currency: "EUR",
			Address: catalog.Address{Line1: "1 Chaos Street", City: "Berlin", PostalCode: "10115", Country: "DE"}, TaxStatus: catalog.TaxStatus("exempt")}
		if err := call(ctx, api, http.MethodPost, "/api/v1/customers", in, &cus); err != nil {
			t.Fatal(err)
		}
		if err := call(ctx, api, http.MethodPost, "/api/v1/subscriptions",
			subscription.CreateInput{CustomerID: cus.ID, PlanID: plan.ID, StartAt: &start, SkipTrial: true}, &sub); err != nil {
			t.Fatal(err)
		}
		subs[i] = sub.ID
	}
	return subs
}

type invoice struct {
	ID             string    `json:"id"`
	SubscriptionID string    `json:"subscription_id"`
	Status         string    `json:"status"`
	Number         string    `json:"number"`
	PeriodStart    time.Time `json:"period_start"`
}

// invoices lists every invoice of the tenant.
func invoices(ctx context.Context, api *client.Client) ([]invoice, error) {
	var all []invoice
	cursor := ""
	for {
		var page struct {
			Data       []invoice `json:"data"`
			NextCursor string    `json:"next_cursor"`
		}
		if err := call(ctx, api, http.MethodGet, "/api/v1/invoices?limit=100&cursor="+url.QueryEscape(cursor), nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Data...)
		if page.NextCursor == "" {
			return all, nil
		}
		cursor = page.NextCursor
	}
}

// checkInvoices says what is wrong with the invoices of subs: each must
// have want finalized invoices, one per period (none missing, none
// duplicated), and the tenant's numbers must run 1…N without a gap.
func checkInvoices(invs []invoice, subs []string, want int) error {
	mine := map[string]bool{}
	for _, s := range subs {
		mine[s] = true
	}
	perSub := map[string]map[time.Time]int{}
	var nums []int
	for _, inv := range invs {
		if inv.Number != "" {
			n, err := strconv.Atoi(inv.Number[strings.LastIndexByte(inv.Number, '-')+1:])
			if err != nil {
				return fmt.Errorf("invoice %s has the number %q", inv.ID, inv.Number)
			}
			nums = append(nums, n)
		}
		if !mine[inv.SubscriptionID] {
			continue
		}
		if inv.Status == "draft" || inv.Number == "" {
			return fmt.Errorf("invoice %s of %s is still %s", inv.ID, inv.SubscriptionID, inv.Status)
		}
		if perSub[inv.SubscriptionID] == nil {
			perSub[inv.SubscriptionID] = map[time.Time]int{}
		}
		perSub[inv.SubscriptionID][inv.PeriodStart]++
	}
	for _, s := range subs {
		if len(perSub[s]) != want {
			return fmt.Errorf("subscription %s has invoices for %d periods, want %d", s, len(perSub[s]), want)
		}
		for p, n := range perSub[s] {
			if n != 1 {
				return fmt.Errorf("subscription %s has %d invoices for the period starting %s", s, n, p)
			}
		}
	}
	sort.Ints(nums)
	for i, n := range nums {
		if n != i+1 {
			return fmt.Errorf("invoice numbers: %d invoices, the %dth is numbered %d (a gap or a duplicate)", len(nums), i+1, n)
		}
	}
	return nil
}
