package payments

import (
	"time"

	"github.com/shopspring/decimal"
)

// Examples are the values the API reference shows for the payments
// module's bodies (httpapi.Server.Example).
func Examples() []any {
	at := time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	amt := decimal.RequireFromString("119.00")
	return []any{
		Payment{ID: "pay_01jbx7k2q9m4r8t6v3w5y0z1ab", InvoiceID: "inv_01jbx6r1c8e2g4j6l8n0q2s4uw", CustomerID: "cus_01jbx5m9a7c9e1g3i5k7m9o1qs",
			Provider: ProviderStripe, ProviderReference: "pi_3QdJ8x2eZvKYlo2C1a2b3c4d", Status: StatusSucceeded, Amount: amt,
			AmountRefunded: decimal.Zero, Currency: "EUR", Attempt: 1, PaidAt: &at, CreatedAt: at, UpdatedAt: at},
		ManualPaymentInput{InvoiceID: "inv_01jbx6r1c8e2g4j6l8n0q2s4uw", Amount: decimal.RequireFromString("50.00"), Reference: "SEPA-2026-11-0042",
			Note: "Partial payment by bank transfer"},
		ProviderSettings{SecretKey: "sk_test_51HxYz…", WebhookSecret: "whsec_…", APIBase: "https://api.stripe.com"},
		PaymentProvider{Provider: ProviderStripe, Configured: true, SecretKeyHint: "4242", WebhookSecretSet: true,
			WebhookURL: "https://billing.example.com/webhooks/stripe/ten_01jbx4h8z6b8d0f2h4j6l8n0pr", UpdatedAt: at},
		CustomerBillingInput{CollectionMethod: SendInvoice},
		RefundInput{CreditNoteID: "cn_01jbx9c3d5f7h9k1m3p5r7t9vx"},
		CustomerBilling{CustomerID: "cus_01jbx5m9a7c9e1g3i5k7m9o1qs", CollectionMethod: ChargeAutomatically, DefaultMethodID: "pm_01jbx8a1b2c3d4e5f6g7h8j9k0", UpdatedAt: at},
		CustomerBalance{CustomerID: "cus_01jbx5m9a7c9e1g3i5k7m9o1qs", Currency: "EUR", Due: amt, Overdue: amt, Credits: decimal.RequireFromString("10.00"),
			Net: decimal.RequireFromString("109.00"), Lines: []BalanceLine{{InvoiceID: "inv_01jbx6r1c8e2g4j6l8n0q2s4uw", Number: "INV-2026-0042",
				Status: "open", Currency: "EUR", Total: amt, AmountDue: amt, DueAt: &at, DaysOverdue: 12}}},
		PaymentMethod{ID: "pm_01jbx8a1b2c3d4e5f6g7h8j9k0", CustomerID: "cus_01jbx5m9a7c9e1g3i5k7m9o1qs", Provider: ProviderStripe,
			ProviderReference: "pm_1QdJ8x2eZvKYlo2CabcdEFGH", Brand: "visa", Last4: "4242", ExpMonth: 12, ExpYear: 2028, Status: "active",
			Default: true, CreatedAt: at, UpdatedAt: at},
		MethodSetupInput{SuccessURL: "https://app.example.com/billing?setup=done", CancelURL: "https://app.example.com/billing"},
		HostedSession{ID: "cs_test_a1b2c3", URL: "https://checkout.stripe.com/c/pay/cs_test_a1b2c3", ExpiresAt: at.Add(24 * time.Hour)},
		PayLink{InvoiceID: "inv_01jbx6r1c8e2g4j6l8n0q2s4uw", URL: "https://billing.example.com/pay/pl_dGVuXzAxamJ4NGg4ejZiOGQwZjJoNGo2bDhuMHBy.Kx9rV2mQ",
			ExpiresAt: at.Add(30 * 24 * time.Hour)},
		exampleAging(),
		Dispute{ID: "dp_01jbxa2b4d6f8h0k2m4p6r8t0v", PaymentID: "pay_01jbx7k2q9m4r8t6v3w5y0z1ab", InvoiceID: "inv_01jbx6r1c8e2g4j6l8n0q2s4uw",
			CustomerID: "cus_01jbx5m9a7c9e1g3i5k7m9o1qs", Provider: ProviderStripe, ProviderReference: "dp_1QdJ9a2eZvKYlo2C5e6f7g8h",
			Kind: DisputeChargeback, Status: "needs_response", Amount: amt, Currency: "EUR", Reason: "fraudulent", CreatedAt: at, UpdatedAt: at},
	}
}

func exampleAging() Aging {
	at := time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	return Aging{AsOf: at, Currencies: []AgingBuckets{{Currency: "EUR", Current: decimal.RequireFromString("119.00"),
		Days1To30: decimal.RequireFromString("49.00"), Days31To60: decimal.Zero, Days61To90: decimal.Zero,
		Over90: decimal.RequireFromString("12.50"), Total: decimal.RequireFromString("180.50"), Invoices: 3}}}
}
