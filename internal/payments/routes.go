package payments

import (
	"context"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// IDPath is the {id} path parameter.
type IDPath struct {
	ID string `path:"id" doc:"id"`
}

// CustomerPath is a customer's {id} path parameter.
type CustomerPath struct {
	ID string `path:"id" doc:"customer id or external id"`
}

// ProviderPath is the {provider} path parameter.
type ProviderPath struct {
	Provider string `path:"provider" doc:"payment provider: stripe"`
}

// csvOutput is a CSV answer.
type csvOutput struct {
	ContentType        string `header:"Content-Type"`
	ContentDisposition string `header:"Content-Disposition"`
	Body               []byte
}

// RegisterRoutes adds the payments routes: the ledger, manual payments,
// gateway configuration, customers' collection, payment methods, balances
// and the aging report. Gateway callbacks are registered by their
// adapters (payments/stripe).
func RegisterRoutes(s *httpapi.Server, svc *Service) {
	s.Example(Examples()...)
	s.OperationExample(http.MethodGet, "/api/v1/receivables/aging", nil, exampleAging())
	tags := []string{"Payments"}
	op := func(id, method, path, summary, desc string) huma.Operation {
		return huma.Operation{OperationID: id, Method: method, Path: path, Summary: summary, Description: desc, Tags: tags}
	}
	httpapi.Register(s, op("list-payments", http.MethodGet, "/api/v1/payments", "List payments",
		"The payments ledger: every payment Abacus started, a gateway reported or staff recorded, by id."), abacus.ScopeRead,
		func(ctx context.Context, in *struct {
			InvoiceID  string `query:"invoice_id" doc:"only this invoice's payments"`
			CustomerID string `query:"customer_id" doc:"only this customer's payments"`
			Status     string `query:"status" enum:"pending,processing,succeeded,failed,canceled"`
			Provider   string `query:"provider" enum:"stripe,manual,fake"`
			Limit      int    `query:"limit" minimum:"0" maximum:"100" doc:"page size (default 20)"`
			Cursor     string `query:"cursor" doc:"next_cursor of the previous page"`
		}) (*httpapi.Body[abacus.List[Payment]], error) {
			return httpapi.Reply(svc.ListPayments(ctx, PaymentFilter{InvoiceID: in.InvoiceID, CustomerID: in.CustomerID,
				Status: Status(in.Status), Provider: in.Provider, Limit: in.Limit, Cursor: in.Cursor}))
		})
	httpapi.Register(s, op("get-payment", http.MethodGet, "/api/v1/payments/{id}", "Get a payment", ""), abacus.ScopeRead,
		func(ctx context.Context, in *IDPath) (*httpapi.Body[Payment], error) {
			return httpapi.Reply(svc.GetPayment(ctx, in.ID))
		})
	create := op("record-manual-payment", http.MethodPost, "/api/v1/payments", "Record a manual payment",
		"Records money received outside a gateway (bank transfer, cash): provider manual. Less than due is a partial payment; "+
			"more pays the invoice and credits the rest to the customer's credit ledger.")
	create.DefaultStatus = http.StatusCreated
	httpapi.Register(s, create, abacus.ScopeWrite, func(ctx context.Context, in *httpapi.Body[ManualPaymentInput]) (*httpapi.Body[Payment], error) {
		return httpapi.Reply(svc.RecordManual(ctx, in.Body))
	})
	refund := op("refund-payment", http.MethodPost, "/api/v1/payments/{id}/refund", "Refund a payment",
		"Refunds part or all of a payment to the method it came from (Stripe: a refund of its PaymentIntent; manual: a record of money sent back). "+
			"With credit_note_id, refunds that credit note of the payment's invoice. The invoice's amount due grows by it.")
	httpapi.Register(s, refund, abacus.ScopeWrite, func(ctx context.Context, in *struct {
		IDPath
		Body RefundInput
	}) (*httpapi.Body[Payment], error) {
		return httpapi.Reply(svc.Refund(ctx, in.ID, in.Body))
	})
	httpapi.Register(s, op("get-payment-provider", http.MethodGet, "/api/v1/payment-providers/{provider}", "Get a payment provider's configuration",
		"Never shows the secrets: only the last four characters of the key and whether a webhook secret is set."), abacus.ScopeRead,
		func(ctx context.Context, in *ProviderPath) (*httpapi.Body[PaymentProvider], error) {
			return httpapi.Reply(svc.GetProvider(ctx, in.Provider))
		})
	httpapi.Register(s, op("put-payment-provider", http.MethodPut, "/api/v1/payment-providers/{provider}", "Configure a payment provider",
		"Sets the tenant's gateway credentials. The secrets are encrypted at rest and never shown again. Point the gateway's webhooks at webhook_url."),
		abacus.ScopeAdmin, func(ctx context.Context, in *struct {
			ProviderPath
			Body ProviderSettings
		}) (*httpapi.Body[PaymentProvider], error) {
			return httpapi.Reply(svc.PutProvider(ctx, in.Provider, in.Body))
		})
	payLink := op("create-pay-link", http.MethodPost, "/api/v1/invoices/{id}/pay-link", "Create a pay link for an invoice",
		"A signed, expiring link to the hosted page where the invoice's customer sees it (and its PDF) and pays its amount due through "+
			"the gateway's hosted checkout (Stripe Checkout). Send it to a send_invoice customer; it opens this one invoice only.")
	payLink.DefaultStatus = http.StatusCreated
	httpapi.Register(s, payLink, abacus.ScopeWrite, func(ctx context.Context, in *IDPath) (*httpapi.Body[PayLink], error) {
		return httpapi.Reply(svc.CreatePayLink(ctx, in.ID))
	})
	registerPayPage(s, svc)
	registerCustomerRoutes(s, svc, op)
	registerDisputeRoutes(s, svc, op)
}

func registerDisputeRoutes(s *httpapi.Server, svc *Service, op func(id, method, path, summary, desc string) huma.Operation) {
	httpapi.Register(s, op("list-disputes", http.MethodGet, "/api/v1/disputes", "List disputes",
		"Chargebacks, inquiries and early fraud warnings the gateway reported against the tenant's payments, by id. "+
			"An open chargeback withdraws its amount from the invoice; one won gives it back."), abacus.ScopeRead,
		func(ctx context.Context, in *struct {
			Status     string `query:"status" enum:"warning_needs_response,warning_under_review,warning_closed,needs_response,under_review,won,lost,prevented,actionable,not_actionable" doc:"only disputes in this status"`
			CustomerID string `query:"customer_id" doc:"only this customer's disputes"`
			InvoiceID  string `query:"invoice_id" doc:"only disputes of this invoice's payments"`
			Limit      int    `query:"limit" minimum:"0" maximum:"100" doc:"page size (default 20)"`
			Cursor     string `query:"cursor" doc:"next_cursor of the previous page"`
		}) (*httpapi.Body[abacus.List[Dispute]], error) {
			return httpapi.Reply(svc.ListDisputes(ctx, DisputeFilter{Status: in.Status, CustomerID: in.CustomerID, InvoiceID: in.InvoiceID,
				Limit: in.Limit, Cursor: in.Cursor}))
		})
	httpapi.Register(s, op("get-dispute", http.MethodGet, "/api/v1/disputes/{id}", "Get a dispute", ""), abacus.ScopeRead,
		func(ctx context.Context, in *IDPath) (*httpapi.Body[Dispute], error) {
			return httpapi.Reply(svc.GetDispute(ctx, in.ID))
		})
}

func registerCustomerRoutes(s *httpapi.Server, svc *Service, op func(id, method, path, summary, desc string) huma.Operation) {
	httpapi.Register(s, op("get-customer-billing", http.MethodGet, "/api/v1/customers/{id}/billing", "Get a customer's collection method", ""),
		abacus.ScopeRead, func(ctx context.Context, in *CustomerPath) (*httpapi.Body[CustomerBilling], error) {
			return httpapi.Reply(svc.GetCustomerBilling(ctx, in.ID))
		})
	httpapi.Register(s, op("put-customer-billing", http.MethodPut, "/api/v1/customers/{id}/billing", "Set a customer's collection method",
		"charge_automatically: Abacus charges the default payment method when an invoice is finalized; send_invoice: the customer pays through the hosted page."),
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			CustomerPath
			Body CustomerBillingInput
		}) (*httpapi.Body[CustomerBilling], error) {
			return httpapi.Reply(svc.PutCustomerBilling(ctx, in.ID, in.Body))
		})
	httpapi.Register(s, op("get-customer-balance", http.MethodGet, "/api/v1/customers/{id}/balance", "Get a customer's balance",
		"What the customer owes on open invoices (and how much of it is overdue) and holds in credits, with the invoices behind it."),
		abacus.ScopeRead, func(ctx context.Context, in *CustomerPath) (*httpapi.Body[CustomerBalance], error) {
			return httpapi.Reply(svc.Balance(ctx, in.ID))
		})
	httpapi.Register(s, op("list-payment-methods", http.MethodGet, "/api/v1/customers/{id}/payment-methods", "List a customer's payment methods", ""),
		abacus.ScopeRead, func(ctx context.Context, in *CustomerPath) (*httpapi.Body[abacus.List[PaymentMethod]], error) {
			return httpapi.Reply(svc.ListMethods(ctx, in.ID))
		})
	setup := op("start-payment-method-setup", http.MethodPost, "/api/v1/customers/{id}/payment-methods/setup", "Start a payment method setup",
		"Answers a hosted gateway page (Stripe Checkout in setup mode) to send the customer to; the method is recorded when the gateway reports it set up.")
	setup.DefaultStatus = http.StatusCreated
	httpapi.Register(s, setup, abacus.ScopeWrite, func(ctx context.Context, in *struct {
		CustomerPath
		Body MethodSetupInput
	}) (*httpapi.Body[HostedSession], error) {
		return httpapi.Reply(svc.StartSetup(ctx, in.ID, in.Body))
	})
	httpapi.Register(s, op("get-receivables-aging", http.MethodGet, "/api/v1/receivables/aging", "Accounts-receivable aging",
		"What open invoices owe per currency by days past due: current, 1–30, 31–60, 61–90, over 90. format=csv exports it."),
		abacus.ScopeRead, func(ctx context.Context, in *struct {
			Format string `query:"format" enum:"json,csv" doc:"json (default) or csv"`
			Accept string `header:"Accept"`
		}) (*csvOutput, error) {
			a, err := svc.AgingReport(ctx)
			if err != nil {
				return nil, err
			}
			if in.Format == "csv" || (in.Format == "" && strings.Contains(in.Accept, "text/csv")) {
				return &csvOutput{ContentType: "text/csv; charset=utf-8", ContentDisposition: `attachment; filename="aging.csv"`, Body: a.CSV()}, nil
			}
			b, err := httpapi.EncodeJSON(a)
			if err != nil {
				return nil, err
			}
			return &csvOutput{ContentType: "application/json", Body: b}, nil
		})
}
