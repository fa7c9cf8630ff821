package billing

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/document"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

type idInput struct {
	ID string `path:"id"`
}

type listInvoicesInput struct {
	CustomerID     string `query:"customer_id" doc:"customer id or external id"`
	SubscriptionID string `query:"subscription_id"`
	Status         string `query:"status" enum:"draft,open,paid,void,uncollectible"`
	Limit          int    `query:"limit" minimum:"0" maximum:"100"`
	Cursor         string `query:"cursor"`
}

type docInput struct {
	ID     string `path:"id"`
	Format string `query:"format" enum:"json,csv,pdf,ubl,xml,cii,facturx,facturx-basic,xrechnung-ubl,xrechnung-cii" doc:"json, csv, pdf, ubl (Peppol BIS 3), cii (CII D16B, EN 16931), facturx (PDF/A-3 with the CII inside; facturx-basic for the BASIC profile), xrechnung-ubl or xrechnung-cii; else from Accept"`
	Accept string `header:"Accept"`
}

type docOutput struct {
	ContentType string `header:"Content-Type"`
	// Dropped lists what the conversion could not carry (element paths of
	// the input, model fields the target lacks), comma-separated; absent
	// when nothing was lost.
	Dropped string `header:"Abacus-Conversion-Dropped" doc:"what the conversion could not carry, comma-separated element paths or fields; absent when nothing was lost"`
	Body    []byte
}

// negotiate picks the format from ?format=, else from Accept, else JSON.
func negotiate(format, accept string) (document.Format, error) {
	if format != "" {
		return document.ParseFormat(format)
	}
	for _, part := range strings.Split(accept, ",") {
		mt := strings.TrimSpace(strings.SplitN(part, ";", 2)[0])
		switch mt {
		case "application/json":
			return document.FormatJSON, nil
		case "text/csv":
			return document.FormatCSV, nil
		case "application/pdf":
			return document.FormatPDF, nil
		case "application/xml", "text/xml":
			return document.FormatUBL, nil
		}
	}
	return document.FormatJSON, nil
}

func renderOut(d *document.Document, f document.Format) (*docOutput, error) {
	b, err := document.Render(d, f)
	if err != nil {
		if e, ok := abacus.AsError(err); ok && e.Kind == abacus.KindInvalid {
			// a stored document that fails validation is the tenant's settings' fault
			e.Kind = abacus.KindUnprocessable
			for _, fe := range e.Fields {
				if fe.Field == "buyer.endpoint_id" {
					e.Message = "the customer has no Peppol electronic address: give it a VAT id or the metadata entry " +
						"peppol_endpoint (SCHEME:ID, e.g. 0088:4035811991021); JSON, CSV and PDF work without one"
				}
			}
		}
		return nil, err
	}
	return &docOutput{ContentType: f.ContentType(), Body: b}, nil
}

// RegisterRoutes adds the billing routes: invoices and their documents,
// credit notes, coupons, credits, tax rates, settings, the upcoming
// invoice and the document conversion service.
func RegisterRoutes(s *httpapi.Server, svc *Service) {
	s.Example(Examples()...)
	s.OperationExample(http.MethodPost, "/api/v1/documents/convert", exampleUBL(), nil)
	tags := []string{"Billing"}
	op := func(id, method, path, summary string, status int) huma.Operation {
		return huma.Operation{OperationID: id, Method: method, Path: path, Summary: summary, Tags: tags, DefaultStatus: status}
	}
	httpapi.Register(s, op("list-invoices", http.MethodGet, "/api/v1/invoices", "List invoices", 0), abacus.ScopeRead,
		func(ctx context.Context, in *listInvoicesInput) (*httpapi.Body[Page[Invoice]], error) {
			cus, err := catalog.CustomerFilter(ctx, svc.db, in.CustomerID)
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(svc.ListInvoices(ctx, ListFilter{CustomerID: cus, SubscriptionID: in.SubscriptionID, Status: Status(in.Status),
				Limit: in.Limit, Cursor: in.Cursor}))
		})
	httpapi.Register(s, op("get-invoice", http.MethodGet, "/api/v1/invoices/{id}", "Get an invoice with its lines", 0), abacus.ScopeRead,
		func(ctx context.Context, in *idInput) (*httpapi.Body[Invoice], error) {
			return httpapi.Reply(svc.GetInvoice(ctx, in.ID))
		})
	for _, a := range []struct {
		id, path, summary string
		fn                func(context.Context, string) (Invoice, error)
	}{
		{"finalize-invoice", "finalize", "Finalize a draft invoice now (numbers it, applies credits)", svc.Finalize},
		{"void-invoice", "void", "Void an open or uncollectible invoice", svc.Void},
		{"mark-invoice-paid", "mark-paid", "Mark an invoice paid (until payments exist)", svc.MarkPaid},
		{"mark-invoice-uncollectible", "mark-uncollectible", "Mark an open invoice uncollectible", svc.MarkUncollectible},
	} {
		fn := a.fn
		httpapi.Register(s, op(a.id, http.MethodPost, "/api/v1/invoices/{id}/"+a.path, a.summary, http.StatusOK), abacus.ScopeWrite,
			func(ctx context.Context, in *idInput) (*httpapi.Body[Invoice], error) {
				return httpapi.Reply(fn(ctx, in.ID))
			})
	}
	httpapi.Register(s, documentOp(op("get-invoice-document", http.MethodGet, "/api/v1/invoices/{id}/document",
		"Get a finalized invoice as JSON, CSV, PDF, UBL 2.1 (Peppol BIS 3), CII, Factur-X or XRechnung", 0), document.FormatJSON, document.FormatCSV, document.FormatPDF, document.FormatUBL), abacus.ScopeRead,
		func(ctx context.Context, in *docInput) (*docOutput, error) {
			f, err := negotiate(in.Format, in.Accept)
			if err != nil {
				return nil, err
			}
			d, err := svc.InvoiceDocument(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			return renderOut(d, f)
		})
	httpapi.Register(s, op("get-upcoming-invoice", http.MethodGet, "/api/v1/subscriptions/{id}/upcoming-invoice",
		"Preview what the subscription's next invoice would hold now", 0), abacus.ScopeRead,
		func(ctx context.Context, in *idInput) (*httpapi.Body[Invoice], error) {
			return httpapi.Reply(svc.UpcomingInvoice(ctx, in.ID))
		})

	httpapi.Register(s, op("create-credit-note", http.MethodPost, "/api/v1/credit-notes", "Credit a finalized invoice", http.StatusCreated),
		abacus.ScopeWrite, func(ctx context.Context, in *httpapi.Body[CreditNoteInput]) (*httpapi.Body[CreditNote], error) {
			return httpapi.Reply(svc.CreateCreditNote(ctx, in.Body))
		})
	httpapi.Register(s, op("list-credit-notes", http.MethodGet, "/api/v1/credit-notes", "List credit notes", 0), abacus.ScopeRead,
		func(ctx context.Context, in *struct {
			InvoiceID string `query:"invoice_id"`
			Limit     int    `query:"limit" minimum:"0" maximum:"100"`
			Cursor    string `query:"cursor"`
		}) (*httpapi.Body[Page[CreditNote]], error) {
			return httpapi.Reply(svc.ListCreditNotes(ctx, in.InvoiceID, in.Limit, in.Cursor))
		})
	httpapi.Register(s, op("get-credit-note", http.MethodGet, "/api/v1/credit-notes/{id}", "Get a credit note", 0), abacus.ScopeRead,
		func(ctx context.Context, in *idInput) (*httpapi.Body[CreditNote], error) {
			return httpapi.Reply(svc.GetCreditNote(ctx, in.ID))
		})
	httpapi.Register(s, documentOp(op("get-credit-note-document", http.MethodGet, "/api/v1/credit-notes/{id}/document",
		"Get a credit note as JSON, CSV, PDF or UBL 2.1", 0), document.FormatJSON, document.FormatCSV, document.FormatPDF, document.FormatUBL), abacus.ScopeRead,
		func(ctx context.Context, in *docInput) (*docOutput, error) {
			f, err := negotiate(in.Format, in.Accept)
			if err != nil {
				return nil, err
			}
			d, err := svc.CreditNoteDocument(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			return renderOut(d, f)
		})

	httpapi.Register(s, op("create-coupon", http.MethodPost, "/api/v1/coupons", "Create a coupon", http.StatusCreated), abacus.ScopeWrite,
		func(ctx context.Context, in *httpapi.Body[CouponInput]) (*httpapi.Body[Coupon], error) {
			return httpapi.Reply(svc.CreateCoupon(ctx, in.Body))
		})
	httpapi.Register(s, op("list-coupons", http.MethodGet, "/api/v1/coupons", "List coupons", 0), abacus.ScopeRead,
		func(ctx context.Context, _ *struct{}) (*httpapi.Body[Page[Coupon]], error) {
			cs, err := svc.ListCoupons(ctx)
			return httpapi.Reply(abacus.ListOf(cs, ""), err)
		})
	httpapi.Register(s, op("get-coupon", http.MethodGet, "/api/v1/coupons/{id}", "Get a coupon by id or code", 0), abacus.ScopeRead,
		func(ctx context.Context, in *idInput) (*httpapi.Body[Coupon], error) {
			return httpapi.Reply(svc.GetCoupon(ctx, in.ID))
		})
	httpapi.Register(s, op("redeem-coupon", http.MethodPost, "/api/v1/coupons/{id}/redemptions", "Redeem a coupon on a customer or subscription",
		http.StatusCreated), abacus.ScopeWrite, func(ctx context.Context, in *struct {
		ID   string `path:"id"`
		Body RedeemInput
	}) (*httpapi.Body[Redemption], error) {
		return httpapi.Reply(svc.Redeem(ctx, in.ID, in.Body))
	})

	httpapi.Register(s, op("grant-credits", http.MethodPost, "/api/v1/customers/{id}/credits", "Grant or top up credits", http.StatusCreated),
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			ID   string `path:"id"`
			Body GrantInput
		}) (*httpapi.Body[CreditEntry], error) {
			return httpapi.Reply(svc.Grant(ctx, in.ID, in.Body))
		})
	httpapi.Register(s, op("list-credits", http.MethodGet, "/api/v1/customers/{id}/credits", "List a customer's credit ledger", 0), abacus.ScopeRead,
		func(ctx context.Context, in *idInput) (*httpapi.Body[Page[CreditEntry]], error) {
			es, err := svc.CreditLedger(ctx, in.ID)
			return httpapi.Reply(abacus.ListOf(es, ""), err)
		})
	httpapi.Register(s, op("get-credit-balance", http.MethodGet, "/api/v1/customers/{id}/credits/balance", "Get a customer's credit balance", 0),
		abacus.ScopeRead, func(ctx context.Context, in *struct {
			ID       string `path:"id"`
			Currency string `query:"currency"`
		}) (*httpapi.Body[Balance], error) {
			return httpapi.Reply(svc.CreditBalance(ctx, in.ID, in.Currency))
		})

	httpapi.Register(s, op("create-tax-rate", http.MethodPost, "/api/v1/tax-rates", "Create a tax rate", http.StatusCreated), abacus.ScopeAdmin,
		func(ctx context.Context, in *httpapi.Body[TaxRateInput]) (*httpapi.Body[TaxRate], error) {
			return httpapi.Reply(svc.CreateTaxRate(ctx, in.Body))
		})
	httpapi.Register(s, op("list-tax-rates", http.MethodGet, "/api/v1/tax-rates", "List tax rates", 0), abacus.ScopeRead,
		func(ctx context.Context, _ *struct{}) (*httpapi.Body[Page[TaxRate]], error) {
			rs, err := svc.ListTaxRates(ctx)
			return httpapi.Reply(abacus.ListOf(rs, ""), err)
		})
	type assignment struct {
		TargetType string `json:"target_type" enum:"customer,plan"`
		TargetID   string `json:"target_id"`
		TaxRateID  string `json:"tax_rate_id" doc:"empty removes the assignment"`
	}
	s.Example(assignment{TargetType: "customer", TargetID: "crm-4711", TaxRateID: "txr_01jbx80a2c4e6g8j0l2n4q6s8u"})
	httpapi.Register(s, op("assign-tax-rate", http.MethodPut, "/api/v1/tax-assignments", "Assign a tax rate to a customer or plan", 0),
		abacus.ScopeAdmin, func(ctx context.Context, in *httpapi.Body[assignment]) (*httpapi.Body[assignment], error) {
			if in.Body.TargetType == "customer" { // named by id or external id; assigned to the id
				id, err := catalog.CustomerFilter(ctx, svc.db, in.Body.TargetID)
				if err != nil {
					return nil, err
				}
				in.Body.TargetID = id
			}
			return httpapi.Reply(in.Body, svc.AssignTaxRate(ctx, in.Body.TargetType, in.Body.TargetID, in.Body.TaxRateID))
		})
	httpapi.Register(s, op("get-billing-settings", http.MethodGet, "/api/v1/billing/settings", "Get billing settings", 0), abacus.ScopeRead,
		func(ctx context.Context, _ *struct{}) (*httpapi.Body[Settings], error) {
			return httpapi.Reply(svc.Settings(ctx))
		})
	httpapi.Register(s, op("put-billing-settings", http.MethodPut, "/api/v1/billing/settings", "Replace billing settings", 0), abacus.ScopeAdmin,
		func(ctx context.Context, in *httpapi.Body[Settings]) (*httpapi.Body[Settings], error) {
			return httpapi.Reply(svc.PutSettings(ctx, in.Body))
		})

	httpapi.Register(s, documentOp(op("convert-document", http.MethodPost, "/api/v1/documents/convert",
		"Validate an invoice or credit note in any supported format (UBL, CII, Factur-X PDF, JSON; detected from the content) and convert it", http.StatusOK),
		document.FormatJSON, document.FormatCSV, document.FormatPDF, document.FormatUBL), abacus.ScopeRead,
		func(ctx context.Context, in *struct {
			Format  string `query:"format" enum:"json,csv,pdf,ubl,xml,cii,facturx,facturx-basic,xrechnung-ubl,xrechnung-cii" doc:"json (default), csv, pdf, ubl, cii, facturx, facturx-basic, xrechnung-ubl or xrechnung-cii"`
			RawBody []byte `contentType:"application/xml"`
		}) (*docOutput, error) {
			f := document.FormatJSON
			if in.Format != "" {
				var err error
				if f, err = document.ParseFormat(in.Format); err != nil {
					return nil, err
				}
			}
			b, rep, err := Convert(in.RawBody, f)
			if err != nil {
				return nil, err
			}
			return &docOutput{ContentType: f.ContentType(), Dropped: droppedHeader(rep.Dropped), Body: b}, nil
		})
}

// droppedHeader lists dropped for the Abacus-Conversion-Dropped header,
// cut at about 4 KiB with the number left out.
func droppedHeader(dropped []string) string {
	var b strings.Builder
	for i, d := range dropped {
		if b.Len()+len(d) > 4000 {
			fmt.Fprintf(&b, ", … and %d more", len(dropped)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(d)
	}
	return b.String()
}
