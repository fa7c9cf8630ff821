package analytics

import (
	"net/http"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/money"
	"github.com/abacusbilling/abacus/internal/payments"
	"github.com/shopspring/decimal"
)

// registerExamples records the examples the OpenAPI document shows for
// the analytics routes (the shapes of docs/analytics.md).
func registerExamples(s *httpapi.Server) {
	mrr := MRRPoint{Date: "2026-11-30", Currency: "EUR", MRR: "1470.0000", ARR: "17640.0000", New: "49.0000", Expansion: "98.0000",
		Contraction: "0.0000", Churn: "-49.0000", Reactivation: "0.0000", Customers: 12, ARPA: "122.5000", UsageRevenue: "312.40"}
	mrrUSD := MRRPoint{Date: "2026-11-30", Currency: "USD", MRR: "500.0000", ARR: "6000.0000", New: "0.0000", Expansion: "0.0000",
		Contraction: "0.0000", Churn: "0.0000", Reactivation: "0.0000", Customers: 4, ARPA: "125.0000", UsageRevenue: "0.00"}
	mrrTotal := MRRPoint{Date: "2026-11-30", Currency: "EUR", MRR: "1931.5500", ARR: "23178.6000", New: "49.0000", Expansion: "98.0000",
		Contraction: "0.0000", Churn: "-49.0000", Reactivation: "0.0000", Customers: 16, ARPA: "120.7219", UsageRevenue: "312.40",
		FXMark: FXMark{Converted: true, FXRates: "EUR:1;USD:0.9231", FXRounding: "half_up"}}
	customers := CustomersPoint{Date: "2026-11-30", Currency: "EUR", Customers: 12, NewCustomers: 2, ChurnedCustomers: 1,
		LogoChurnRate: "0.0909", ARPA: "122.5000", TrialsStarted: 3, TrialsConverted: 1, TrialsLapsed: 1, TrialConversionRate: "0.5000"}
	churn := ChurnPoint{Date: "2026-11-30", Currency: "EUR", StartMRR: "1421.0000", StartCustomers: 11, ChurnedCustomers: 1,
		LogoChurnRate: "0.0909", Churn: "-49.0000", Contraction: "0.0000", Expansion: "98.0000", Reactivation: "0.0000",
		GrossRevenueChurnRate: "0.0345", NetRevenueChurnRate: "-0.0345"}
	retention := RetentionPoint{Date: "2026-11-30", Currency: "EUR", CohortCustomers: 9, BaseMRR: "900.0000", RetainedMRR: "990.0000",
		GrossRetainedMRR: "850.0000", NetRevenueRetention: "1.1000", GrossRevenueRetention: "0.9444"}
	revenue := RevenuePoint{Date: "2026-11-30", Currency: "EUR", Invoiced: "1749.30", Collected: "1630.30", Refunded: "19.00", Outstanding: "119.00",
		Usage: "312.40"}
	aging := AgingPoint{Currency: "EUR", Current: "119.00", Days1To30: "0.00", Days31To60: "0.00", Days61To90: "0.00", Over90: "0.00",
		Total: "119.00", Invoices: 1}
	usagePt := UsagePoint{Meter: "tokens", Aggregation: "SUM", Start: "2026-11-02", Date: "2026-11-02", Total: "15", Previous: "4",
		Growth: "2.7500", TopCustomers: UsageCustomers{{CustomerID: "cus_01jbx7k2q9m4r8t6v3w5y0z1ab", Subject: "alice", Value: "10"},
			{Subject: "bob", Value: "5"}}}
	limit, used, left, share := "1000", "250", "750", "0.2500"
	fxAt := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	fxRates := []FXRate{{From: "GBP", To: "EUR", Rate: decimal.RequireFromString("1.1702")}, {From: "USD", To: "EUR", Rate: decimal.RequireFromString("0.9231")}}
	s.Example(
		FXRates{Rounding: money.RoundHalfUp, Rates: fxRates, UpdatedAt: &fxAt},
		FXRatesInput{Rounding: money.RoundHalfUp, Rates: fxRates},
	)
	s.Example(
		CustomerFigures{CustomerID: "cus_01jbx7k2q9m4r8t6v3w5y0z1ab", AsOf: "2026-11-30T12:00:00Z",
			Usage: []QuotaUsage{{Feature: "api_calls", Limit: &limit, Used: used, Remaining: &left, Share: &share,
				PeriodStart: "2026-11-01T12:00:00Z", PeriodEnd: "2026-12-01T12:00:00Z"}},
			Devices:    &CustomerDevices{Sessions: 2, Connections: 1, Total: 3},
			Currencies: []CustomerAmount{{Currency: "EUR", MRR: "147.0000", ARR: "1764.0000", Collected: "1342.00", Refunded: "19.00", LifetimeValue: "1323.00"}},
			Balance: &payments.CustomerBalance{CustomerID: "cus_01jbx7k2q9m4r8t6v3w5y0z1ab", Currency: "EUR",
				Due: decimal.RequireFromString("119.00"), Overdue: decimal.Zero, Credits: decimal.RequireFromString("25.00"),
				Net: decimal.RequireFromString("94.00"), Lines: []payments.BalanceLine{{InvoiceID: "inv_01jbx7k2q9m4r8t6v3w5y0z1ac",
					Number: "INV-2026-0042", Status: "open", Currency: "EUR", Total: decimal.RequireFromString("119.00"),
					AmountDue: decimal.RequireFromString("119.00")}}}},
		RebuildReport{Events: 1234, DurationMS: 85},
	)
	for path, ex := range map[string]any{
		"/api/v1/analytics/mrr":       abacus.ListOf([]MRRPoint{mrr, mrrUSD, mrrTotal}, ""),
		"/api/v1/analytics/customers": abacus.ListOf([]CustomersPoint{customers}, ""),
		"/api/v1/analytics/churn":     abacus.ListOf([]ChurnPoint{churn}, ""),
		"/api/v1/analytics/retention": abacus.ListOf([]RetentionPoint{retention}, ""),
		"/api/v1/analytics/revenue":   abacus.ListOf([]RevenuePoint{revenue}, ""),
		"/api/v1/analytics/aging":     abacus.ListOf([]AgingPoint{aging}, ""),
		"/api/v1/analytics/usage":     abacus.ListOf([]UsagePoint{usagePt}, ""),
	} {
		s.OperationExample(http.MethodGet, path, nil, ex)
	}
}
