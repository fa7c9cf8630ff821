package inbound

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/document"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

type listInput struct {
	Status    string `query:"status" enum:"valid,invalid" doc:"only documents with this status"`
	Duplicate string `query:"duplicate" enum:"true,false" doc:"true: only flagged duplicates; false: only the others"`
	Limit     int    `query:"limit" minimum:"0" maximum:"100" doc:"page size (default 50)"`
	Cursor    string `query:"cursor" doc:"next_cursor of the previous page"`
}

type receiveOutput struct {
	Status int
	Body   Document
}

type getInput struct {
	ID     string `path:"id" doc:"inbound document id (idoc_…)"`
	Format string `query:"format" enum:"original,json,csv,pdf,ubl,cii,facturx,facturx-basic,xrechnung-ubl,xrechnung-cii" doc:"absent: the metadata and validation report; original: the bytes as received; else the normalised document in that format"`
}

type getOutput struct {
	ContentType string `header:"Content-Type"`
	Body        []byte
}

// RegisterRoutes adds the inbound document routes.
func RegisterRoutes(s *httpapi.Server, svc *Service) {
	s.Example(Examples()...)
	tags := []string{"Documents"}
	base := "/api/v1/documents/inbound"
	s.OperationExample(http.MethodPost, base, exampleUBL(), nil)
	httpapi.Register(s, huma.Operation{OperationID: "receive-document", Method: http.MethodPost, Path: base, Tags: tags,
		Summary: "Receive a supplier invoice or credit note (UBL, CII, Factur-X PDF or JSON, detected from the content)", DefaultStatus: http.StatusCreated,
		Description: "Stores the document once (by the SHA-256 of its bytes: sending the same bytes again answers 200 with the stored document), " +
			"normalises and validates it (status invalid with the report when it breaks a rule), flags a duplicate (same supplier, number and issue date) " +
			"and records document.received. Input that cannot be read at all is refused with problem+json and nothing is stored.",
		Responses: map[string]*huma.Response{"200": {Description: "the same bytes were received before: the stored document"}}},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			RawBody []byte `contentType:"application/xml"`
		}) (*receiveOutput, error) {
			d, created, err := svc.Receive(ctx, in.RawBody, SourceAPI)
			if err != nil {
				return nil, err
			}
			status := http.StatusOK
			if created {
				status = http.StatusCreated
			}
			return &receiveOutput{Status: status, Body: d}, nil
		})
	httpapi.Register(s, huma.Operation{OperationID: "list-inbound-documents", Method: http.MethodGet, Path: base, Tags: tags,
		Summary: "List received documents"},
		abacus.ScopeRead, func(ctx context.Context, in *listInput) (*httpapi.Body[abacus.List[Document]], error) {
			f := ListFilter{Status: Status(in.Status), Limit: in.Limit, Cursor: in.Cursor}
			if in.Duplicate != "" {
				dup := in.Duplicate == "true"
				f.Duplicate = &dup
			}
			return httpapi.Reply(svc.List(ctx, f))
		})
	docExample, _ := json.Marshal(exampleDocument())
	httpapi.Register(s, huma.Operation{OperationID: "get-inbound-document", Method: http.MethodGet, Path: base + "/{id}", Tags: tags,
		Summary: "Get a received document: its metadata and report, the original, or the normalised document in any format",
		Responses: map[string]*huma.Response{"200": {Description: "the metadata (no format), the original, or the rendition", Content: map[string]*huma.MediaType{
			"application/json": {Schema: &huma.Schema{Type: "object", AdditionalProperties: true}, Example: json.RawMessage(docExample)},
			"application/xml":  {Schema: &huma.Schema{Type: "string"}, Example: exampleUBL()},
			"application/pdf":  {Schema: &huma.Schema{Type: "string", Format: "binary"}},
			"text/csv":         {Schema: &huma.Schema{Type: "string"}},
		}}}},
		abacus.ScopeRead, func(ctx context.Context, in *getInput) (*getOutput, error) {
			switch in.Format {
			case "":
				d, err := svc.Get(ctx, in.ID)
				if err != nil {
					return nil, err
				}
				b, err := json.Marshal(d)
				if err != nil {
					return nil, fmt.Errorf("encoding inbound document %s: %w", in.ID, err)
				}
				return &getOutput{ContentType: "application/json", Body: b}, nil
			case "original":
				d, b, err := svc.Original(ctx, in.ID)
				if err != nil {
					return nil, err
				}
				ct := d.Format.ContentType()
				if d.Format == document.FormatFacturX {
					ct = "application/pdf"
				}
				return &getOutput{ContentType: ct, Body: b}, nil
			}
			f, err := document.ParseFormat(in.Format)
			if err != nil {
				return nil, err
			}
			b, err := svc.Render(ctx, in.ID, f)
			if err != nil {
				if e, ok := abacus.AsError(err); ok && e.Kind == abacus.KindInvalid && e.Code == document.CodeInvalid {
					e.Kind = abacus.KindUnprocessable // the stored document breaks rules: see its report
				}
				return nil, err
			}
			return &getOutput{ContentType: f.ContentType(), Body: b}, nil
		})
	registerMailRoutes(s, svc, tags)
	registerRetentionRoutes(s, svc, tags)
}

// registerRetentionRoutes adds the settings and deletion after retention.
func registerRetentionRoutes(s *httpapi.Server, svc *Service, tags []string) {
	s.Example(DocumentSettings{RetentionYears: DefaultRetentionYears}, DocumentSettingsInput{RetentionYears: DefaultRetentionYears})
	httpapi.Register(s, huma.Operation{OperationID: "get-document-settings", Method: http.MethodGet, Path: "/api/v1/documents/settings", Tags: tags,
		Summary: "Get the tenant's settings for received documents (retention)"},
		abacus.ScopeRead, func(ctx context.Context, _ *struct{}) (*httpapi.Body[DocumentSettings], error) {
			return httpapi.Reply(svc.GetSettings(ctx))
		})
	httpapi.Register(s, huma.Operation{OperationID: "set-document-settings", Method: http.MethodPut, Path: "/api/v1/documents/settings", Tags: tags,
		Summary:     "Set the tenant's settings for received documents (retention)",
		Description: "The retention applies to documents received from now on; each stored document keeps the retain_until it was given."},
		abacus.ScopeAdmin, func(ctx context.Context, in *struct{ Body DocumentSettingsInput }) (*httpapi.Body[DocumentSettings], error) {
			return httpapi.Reply(svc.SetSettings(ctx, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "delete-inbound-document", Method: http.MethodDelete, Path: "/api/v1/documents/inbound/{id}", Tags: tags,
		Summary: "Delete a received document once its retention has ended", DefaultStatus: http.StatusNoContent,
		Description: "Before retain_until the original is immutable and the answer is 409 retention_active."},
		abacus.ScopeAdmin, func(ctx context.Context, in *struct {
			ID string `path:"id" doc:"inbound document id (idoc_…)"`
		}) (*struct{}, error) {
			return nil, svc.Delete(ctx, in.ID)
		})
}

type messageListInput struct {
	Status string `query:"status" enum:"received,processed,rejected" doc:"only messages with this status"`
	Limit  int    `query:"limit" minimum:"0" maximum:"100" doc:"page size (default 50)"`
	Cursor string `query:"cursor" doc:"next_cursor of the previous page"`
}

// registerMailRoutes adds the inbound address and the received e-mails.
func registerMailRoutes(s *httpapi.Server, svc *Service, tags []string) {
	s.Example(exampleAddress(), exampleMessage())
	httpapi.Register(s, huma.Operation{OperationID: "get-inbound-address", Method: http.MethodGet, Path: "/api/v1/documents/inbound-address", Tags: tags,
		Summary: "Get the tenant's inbound e-mail address",
		Description: "Suppliers send invoices and credit notes to this address (attached as UBL, CII or JSON, or as a Factur-X/ZUGFeRD PDF); " +
			"each attachment becomes a received document as if uploaded. The address is created on first use and is a secret: rotate it when it leaks."},
		abacus.ScopeRead, func(ctx context.Context, _ *struct{}) (*httpapi.Body[MailAddress], error) {
			return httpapi.Reply(svc.Address(ctx))
		})
	httpapi.Register(s, huma.Operation{OperationID: "rotate-inbound-address", Method: http.MethodPost, Path: "/api/v1/documents/inbound-address/rotate", Tags: tags,
		Summary: "Give the tenant a new inbound e-mail address", Description: "Mail to the previous address is refused (550 5.1.1) from now on."},
		abacus.ScopeAdmin, func(ctx context.Context, _ *struct{}) (*httpapi.Body[MailAddress], error) {
			return httpapi.Reply(svc.RotateAddress(ctx))
		})
	httpapi.Register(s, huma.Operation{OperationID: "list-inbound-messages", Method: http.MethodGet, Path: "/api/v1/documents/inbound-messages", Tags: tags,
		Summary: "List e-mails received at the inbound address",
		Description: "Each message with the documents its attachments became, the attachments that were not documents and why, " +
			"and, for a rejected message (the sender was answered 554), the reason."},
		abacus.ScopeRead, func(ctx context.Context, in *messageListInput) (*httpapi.Body[abacus.List[ReceivedMail]], error) {
			return httpapi.Reply(svc.ListMessages(ctx, MessageFilter{Status: MessageStatus(in.Status), Limit: in.Limit, Cursor: in.Cursor}))
		})
	httpapi.Register(s, huma.Operation{OperationID: "get-inbound-message", Method: http.MethodGet, Path: "/api/v1/documents/inbound-messages/{id}", Tags: tags,
		Summary: "Get an e-mail received at the inbound address"},
		abacus.ScopeRead, func(ctx context.Context, in *struct {
			ID string `path:"id" doc:"inbound message id (imsg_…)"`
		}) (*httpapi.Body[ReceivedMail], error) {
			return httpapi.Reply(svc.GetMessage(ctx, in.ID))
		})
}
