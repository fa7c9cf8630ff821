package payments

import (
	"bytes"
	"context"
	"encoding/csv"
	"net/url"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
)

// CustomerBilling is how a customer's invoices are collected.
type CustomerBilling struct {
	CustomerID       string    `json:"customer_id"`
	CollectionMethod string    `json:"collection_method" enum:"charge_automatically,send_invoice" doc:"charge_automatically: Abacus charges the default payment method when an invoice is finalized; send_invoice: the customer pays through the hosted page the invoice links to"`
	DefaultMethodID  string    `json:"default_payment_method_id,omitempty"`
	UpdatedAt        time.Time `json:"updated_at,omitzero"`
}

// CustomerBillingInput sets a customer's collection method.
type CustomerBillingInput struct {
	CollectionMethod string `json:"collection_method" enum:"charge_automatically,send_invoice"`
}

// PutCustomerBilling sets customer id's collection method. Errors:
// "customer_not_found", "invalid_customer_billing".
func (s *Service) PutCustomerBilling(ctx context.Context, customerID string, in CustomerBillingInput) (CustomerBilling, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return CustomerBilling{}, err
	}
	if in.CollectionMethod != ChargeAutomatically && in.CollectionMethod != SendInvoice {
		return CustomerBilling{}, abacus.Invalid("invalid_customer_billing", "collection_method %q is not charge_automatically or send_invoice",
			in.CollectionMethod).WithField("collection_method", "must be charge_automatically or send_invoice")
	}
	now := s.now()
	var out CustomerBilling
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		cus, err := catalog.LoadCustomer(ctx, tx, tenant, customerID)
		if err != nil {
			return err
		}
		row, _, err := loadCustomerRow(ctx, tx, tenant, cus.ID)
		if err != nil {
			return err
		}
		row.collection, row.updatedAt = in.CollectionMethod, now
		out = CustomerBilling{CustomerID: cus.ID, CollectionMethod: row.collection, DefaultMethodID: row.defaultMethod, UpdatedAt: now}
		return putCustomerRow(ctx, tx, tenant, cus.ID, row)
	})
	return out, err
}

// GetCustomerBilling returns customer id's collection method (the
// default, charge_automatically, when none was set). Errors:
// "customer_not_found".
func (s *Service) GetCustomerBilling(ctx context.Context, customerID string) (CustomerBilling, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return CustomerBilling{}, err
	}
	cus, err := catalog.LoadCustomer(ctx, s.db, tenant, customerID)
	if err != nil {
		return CustomerBilling{}, err
	}
	row, _, err := loadCustomerRow(ctx, s.db, tenant, cus.ID)
	if err != nil {
		return CustomerBilling{}, err
	}
	if row.collection == "" {
		row.collection = s.cfg.DefaultCollection
	}
	return CustomerBilling{CustomerID: cus.ID, CollectionMethod: row.collection, DefaultMethodID: row.defaultMethod, UpdatedAt: row.updatedAt}, nil
}

// BalanceLine is one invoice a customer still owes.
type BalanceLine struct {
	InvoiceID   string          `json:"invoice_id"`
	Number      string          `json:"number"`
	Status      string          `json:"status" enum:"open,uncollectible"`
	Currency    string          `json:"currency"`
	Total       decimal.Decimal `json:"total"`
	AmountDue   decimal.Decimal `json:"amount_due"`
	DueAt       *time.Time      `json:"due_at,omitempty"`
	DaysOverdue int             `json:"days_overdue" doc:"0 when not yet due"`
}

// CustomerBalance is what a customer owes and holds, in its currency.
type CustomerBalance struct {
	CustomerID string          `json:"customer_id"`
	Currency   string          `json:"currency"`
	Due        decimal.Decimal `json:"due" doc:"amount due on open invoices"`
	Overdue    decimal.Decimal `json:"overdue" doc:"the part of due past its due date"`
	Credits    decimal.Decimal `json:"credits" doc:"available in the credit ledger (overpayments, refunds to credit, grants)"`
	Net        decimal.Decimal `json:"net" doc:"due less credits; negative when the customer is owed"`
	Lines      []BalanceLine   `json:"lines" doc:"open invoices with something due, oldest due first; invoices in other currencies are listed and not summed"`
}

// Balance returns what customer id owes (open invoices) and holds
// (credits) at now. Errors: "customer_not_found".
func (s *Service) Balance(ctx context.Context, customerID string) (CustomerBalance, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return CustomerBalance{}, err
	}
	cus, err := catalog.LoadCustomer(ctx, s.db, tenant, customerID)
	if err != nil {
		return CustomerBalance{}, err
	}
	now := s.now()
	out := CustomerBalance{CustomerID: cus.ID, Currency: cus.Currency, Lines: []BalanceLine{}}
	err = s.eachUnpaid(ctx, cus.ID, func(inv billing.Invoice) {
		l := lineOf(inv, now)
		out.Lines = append(out.Lines, l)
		if inv.Currency == cus.Currency {
			out.Due = out.Due.Add(l.AmountDue)
			if l.DaysOverdue > 0 {
				out.Overdue = out.Overdue.Add(l.AmountDue)
			}
		}
	})
	if err != nil {
		return CustomerBalance{}, err
	}
	sort.SliceStable(out.Lines, func(i, j int) bool { return dueKey(out.Lines[i]).Before(dueKey(out.Lines[j])) })
	cb, err := s.billing.CreditBalance(ctx, cus.ID, cus.Currency)
	if err != nil {
		return CustomerBalance{}, err
	}
	out.Credits = cb.Available
	out.Net = out.Due.Sub(out.Credits)
	return out, nil
}

func dueKey(l BalanceLine) time.Time {
	if l.DueAt == nil {
		return time.Time{}
	}
	return *l.DueAt
}

func lineOf(inv billing.Invoice, now time.Time) BalanceLine {
	l := BalanceLine{InvoiceID: inv.ID, Number: inv.Number, Status: string(inv.Status), Currency: inv.Currency, Total: inv.Total,
		AmountDue: inv.AmountDue, DueAt: inv.DueAt}
	if inv.DueAt != nil && now.After(*inv.DueAt) {
		l.DaysOverdue = int(now.Sub(*inv.DueAt)/(24*time.Hour)) + 1
	}
	return l
}

// eachUnpaid calls f for every open invoice with something due (of
// customer, or of the whole tenant when customer is "").
func (s *Service) eachUnpaid(ctx context.Context, customer string, f func(billing.Invoice)) error {
	cursor := ""
	for {
		page, err := s.billing.ListInvoices(ctx, billing.ListFilter{CustomerID: customer, Status: billing.Open, Limit: 100, Cursor: cursor})
		if err != nil {
			return err
		}
		for _, inv := range page.Data {
			if inv.AmountDue.IsPositive() {
				f(inv)
			}
		}
		if page.NextCursor == "" {
			return nil
		}
		cursor = page.NextCursor
	}
}

// AgingBuckets is what is owed in one currency by how long it is past
// due.
type AgingBuckets struct {
	Currency   string          `json:"currency"`
	Current    decimal.Decimal `json:"current" doc:"not yet due"`
	Days1To30  decimal.Decimal `json:"days_1_30"`
	Days31To60 decimal.Decimal `json:"days_31_60"`
	Days61To90 decimal.Decimal `json:"days_61_90"`
	Over90     decimal.Decimal `json:"over_90"`
	Total      decimal.Decimal `json:"total"`
	Invoices   int             `json:"invoices"`
}

// Aging is the accounts-receivable aging report of a tenant.
type Aging struct {
	AsOf       time.Time      `json:"as_of"`
	Currencies []AgingBuckets `json:"currencies" doc:"one row per currency, by code"`
}

// AgingReport returns the tenant's open invoices' amounts due by age at
// now, per currency.
func (s *Service) AgingReport(ctx context.Context) (Aging, error) {
	now := s.now()
	by := map[string]*AgingBuckets{}
	err := s.eachUnpaid(ctx, "", func(inv billing.Invoice) {
		b := by[inv.Currency]
		if b == nil {
			b = &AgingBuckets{Currency: inv.Currency}
			by[inv.Currency] = b
		}
		l := lineOf(inv, now)
		switch d := l.DaysOverdue; {
		case d <= 0:
			b.Current = b.Current.Add(l.AmountDue)
		case d <= 30:
			b.Days1To30 = b.Days1To30.Add(l.AmountDue)
		case d <= 60:
			b.Days31To60 = b.Days31To60.Add(l.AmountDue)
		case d <= 90:
			b.Days61To90 = b.Days61To90.Add(l.AmountDue)
		default:
			b.Over90 = b.Over90.Add(l.AmountDue)
		}
		b.Total = b.Total.Add(l.AmountDue)
		b.Invoices++
	})
	if err != nil {
		return Aging{}, err
	}
	out := Aging{AsOf: now, Currencies: []AgingBuckets{}}
	for _, b := range by {
		out.Currencies = append(out.Currencies, *b)
	}
	sort.Slice(out.Currencies, func(i, j int) bool { return out.Currencies[i].Currency < out.Currencies[j].Currency })
	return out, nil
}

// CSV renders the report as CSV, one row per currency.
func (a Aging) CSV() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"as_of", "currency", "current", "days_1_30", "days_31_60", "days_61_90", "over_90", "total", "invoices"})
	for _, c := range a.Currencies {
		_ = w.Write([]string{a.AsOf.Format(time.RFC3339), c.Currency, c.Current.String(), c.Days1To30.String(), c.Days31To60.String(),
			c.Days61To90.String(), c.Over90.String(), c.Total.String(), decimal.NewFromInt(int64(c.Invoices)).String()})
	}
	w.Flush()
	return b.Bytes()
}

func checkURL(v *abacus.Validation, field, s string) {
	u, err := url.Parse(s)
	if s == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		v.Add(field, "must be an http(s) URL")
	}
}
