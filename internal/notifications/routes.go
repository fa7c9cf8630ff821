package notifications

import (
	"context"
	"errors"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// ListQuery is the paging of a list.
type ListQuery struct {
	Limit  int    `query:"limit" minimum:"0" maximum:"100" doc:"page size (default 20)"`
	Cursor string `query:"cursor" doc:"next_cursor of the previous page"`
}

// TemplatePath names a template: key and locale.
type TemplatePath struct {
	Key    string `path:"key" example:"invoice.finalized"`
	Locale string `path:"locale" example:"de"`
}

// RegisterRoutes serves the notifications API.
func RegisterRoutes(s *httpapi.Server, svc *Service) {
	s.Example(Examples()...)
	registerNotificationRoutes(s, svc)
	registerTemplateRoutes(s, svc)
	registerSettingsRoutes(s, svc)
	registerSuppressionRoutes(s, svc)
	registerTriggerRoutes(s, svc)
	registerDeliveryRoutes(s, svc)
}

func registerNotificationRoutes(s *httpapi.Server, svc *Service) {
	tags := []string{"Notifications"}
	httpapi.Register(s, huma.Operation{OperationID: "send-notification", Method: http.MethodPost, Path: "/api/v1/notifications",
		Summary: "Send a notification", Tags: tags, DefaultStatus: http.StatusAccepted,
		Description: "Records a notification rendered from a template and queues its deliveries (one per channel); GET it to follow them."},
		abacus.ScopeWrite, func(ctx context.Context, in *httpapi.Body[SendInput]) (*httpapi.Body[Notification], error) {
			return httpapi.Reply(svc.Send(ctx, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "list-notifications", Method: http.MethodGet, Path: "/api/v1/notifications",
		Summary: "List notifications", Tags: tags, Description: "Newest first, each with the state of its deliveries."},
		abacus.ScopeRead, func(ctx context.Context, in *struct {
			ListQuery
			Template    string `query:"template" doc:"only this template key"`
			Email       string `query:"email" doc:"only to this address"`
			Channel     string `query:"channel" enum:"email,in_app,push" doc:"only with a delivery on this channel"`
			SubjectType string `query:"subject_type" doc:"only about this kind of object (invoice, credit_note…)"`
			SubjectID   string `query:"subject_id" doc:"only about this object"`
		}) (*httpapi.Body[abacus.List[Notification]], error) {
			list, next, err := ListNotifications(ctx, svc.db, Filter{Template: in.Template, Email: in.Email, Channel: in.Channel,
				SubjectType: in.SubjectType, SubjectID: in.SubjectID, Limit: in.Limit, Cursor: in.Cursor})
			return httpapi.Reply(abacus.ListOf(list, next), err)
		})
	httpapi.Register(s, huma.Operation{OperationID: "get-notification", Method: http.MethodGet, Path: "/api/v1/notifications/{id}",
		Summary: "Get a notification", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *struct {
			ID string `path:"id" example:"ntf_01jbx7t7d9f1h3k5m7p9r1t3vx"`
		}) (*httpapi.Body[Notification], error) {
			return httpapi.Reply(GetNotification(ctx, svc.db, in.ID))
		})
}

func registerTemplateRoutes(s *httpapi.Server, svc *Service) {
	tags := []string{"Notification templates"}
	httpapi.Register(s, huma.Operation{OperationID: "list-notification-templates", Method: http.MethodGet, Path: "/api/v1/notifications/templates",
		Summary: "List notification templates", Tags: tags,
		Description: "The tenant's own templates and the built-in ones they have not replaced, by key and locale (one page)."},
		abacus.ScopeRead, func(ctx context.Context, _ *struct{}) (*httpapi.Body[abacus.List[NotificationTemplateSummary]], error) {
			list, err := svc.ListTemplates(ctx)
			return httpapi.Reply(abacus.ListOf(list, ""), err)
		})
	httpapi.Register(s, huma.Operation{OperationID: "get-notification-template", Method: http.MethodGet, Path: "/api/v1/notifications/templates/{key}/{locale}",
		Summary: "Get a notification template", Tags: tags, Description: "The tenant's current version in exactly this locale, else the built-in one."},
		abacus.ScopeRead, func(ctx context.Context, in *TemplatePath) (*httpapi.Body[NotificationTemplate], error) {
			return httpapi.Reply(svc.GetTemplate(ctx, in.Key, in.Locale))
		})
	httpapi.Register(s, huma.Operation{OperationID: "save-notification-template", Method: http.MethodPut, Path: "/api/v1/notifications/templates/{key}/{locale}",
		Summary: "Save a notification template", Tags: tags,
		Description: "Stores a new version. Syntax errors, unknown functions and (for built-in keys) unknown variables are refused with their line and column; parts are limited to 1 KiB (subject), 64 KiB (text) and 256 KiB (html)."},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			TemplatePath
			Body NotificationTemplateInput
		}) (*httpapi.Body[NotificationTemplate], error) {
			return httpapi.Reply(svc.SaveTemplate(ctx, in.Key, in.Locale, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "delete-notification-template", Method: http.MethodDelete, Path: "/api/v1/notifications/templates/{key}/{locale}",
		Summary: "Delete a notification template", Tags: tags, DefaultStatus: http.StatusNoContent,
		Description: "The built-in template (or the next locale of the fallback chain) applies again; the versions stay readable."},
		abacus.ScopeWrite, func(ctx context.Context, in *TemplatePath) (*struct{}, error) {
			return nil, svc.DeleteTemplate(ctx, in.Key, in.Locale)
		})
	httpapi.Register(s, huma.Operation{OperationID: "list-notification-template-versions", Method: http.MethodGet, Path: "/api/v1/notifications/templates/{key}/{locale}/versions",
		Summary: "List a template's versions", Tags: tags, Description: "Every saved version, newest first (one page)."},
		abacus.ScopeRead, func(ctx context.Context, in *TemplatePath) (*httpapi.Body[abacus.List[NotificationTemplate]], error) {
			list, err := svc.TemplateVersions(ctx, in.Key, in.Locale)
			return httpapi.Reply(abacus.ListOf(list, ""), err)
		})
	httpapi.Register(s, huma.Operation{OperationID: "preview-notification-template", Method: http.MethodPost, Path: "/api/v1/notifications/templates/{key}/{locale}/preview",
		Summary: "Preview a notification template", Tags: tags,
		Description: "Renders the template (through the locale fallback chain), or the unsaved parts given, against the data given or the key's documented sample."},
		abacus.ScopeRead, func(ctx context.Context, in *struct {
			TemplatePath
			Body PreviewInput
		}) (*httpapi.Body[Rendered], error) {
			return httpapi.Reply(svc.Preview(ctx, in.Key, in.Locale, in.Body))
		})
}

func registerSettingsRoutes(s *httpapi.Server, svc *Service) {
	tags := []string{"Notification settings"}
	httpapi.Register(s, huma.Operation{OperationID: "get-notification-settings", Method: http.MethodGet, Path: "/api/v1/notifications/settings",
		Summary: "Get notification settings", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, _ *struct{}) (*httpapi.Body[SendingSettings], error) {
			return httpapi.Reply(svc.GetSettings(ctx))
		})
	httpapi.Register(s, huma.Operation{OperationID: "update-notification-settings", Method: http.MethodPatch, Path: "/api/v1/notifications/settings",
		Summary: "Update notification settings", Tags: tags, Description: "Sender identity (from, reply_to) and default locale; the fields given change."},
		abacus.ScopeAdmin, func(ctx context.Context, in *httpapi.Body[SendingSettingsPatch]) (*httpapi.Body[SendingSettings], error) {
			return httpapi.Reply(svc.UpdateSettings(ctx, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "rotate-bounce-secret", Method: http.MethodPost, Path: "/api/v1/notifications/settings/bounce-secret",
		Summary: "Make a new bounce webhook secret", Tags: tags, DefaultStatus: http.StatusCreated,
		Description: "The secret is shown once; the previous one stops verifying."},
		abacus.ScopeAdmin, func(ctx context.Context, _ *struct{}) (*httpapi.Body[BounceSecret], error) {
			return httpapi.Reply(svc.RotateBounceSecret(ctx))
		})
}

func registerSuppressionRoutes(s *httpapi.Server, svc *Service) {
	tags := []string{"Notification suppressions"}
	httpapi.Register(s, huma.Operation{OperationID: "list-suppressions", Method: http.MethodGet, Path: "/api/v1/notifications/suppressions",
		Summary: "List suppressed addresses", Tags: tags, Description: "Addresses no mail is sent to, by address; the cursor is the last address of a page.",
		Metadata: map[string]any{httpapi.MetaOwnCursor: true}},
		abacus.ScopeRead, func(ctx context.Context, in *ListQuery) (*httpapi.Body[abacus.List[Suppression]], error) {
			list, next, err := svc.ListSuppressions(ctx, in.Limit, in.Cursor)
			return httpapi.Reply(abacus.ListOf(list, next), err)
		})
	httpapi.Register(s, huma.Operation{OperationID: "add-suppression", Method: http.MethodPost, Path: "/api/v1/notifications/suppressions",
		Summary: "Suppress an address", Tags: tags, DefaultStatus: http.StatusCreated},
		abacus.ScopeWrite, func(ctx context.Context, in *httpapi.Body[SuppressionInput]) (*httpapi.Body[Suppression], error) {
			return httpapi.Reply(svc.Suppress(ctx, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "remove-suppression", Method: http.MethodDelete, Path: "/api/v1/notifications/suppressions/{email}",
		Summary: "Stop suppressing an address", Tags: tags, DefaultStatus: http.StatusNoContent},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			Email string `path:"email" example:"gone@example.com"`
		}) (*struct{}, error) {
			return nil, svc.Unsuppress(ctx, in.Email)
		})
	httpapi.Register(s, huma.Operation{OperationID: "report-bounces", Method: http.MethodPost, Path: "/api/v1/notifications/bounces/{tenant_id}",
		Summary: "Report bounces and complaints", Tags: tags,
		Description: "For the mail provider: hard bounces and complaints suppress the address. The body is signed with the tenant's bounce secret: header `Abacus-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` (docs/notifications.md)."},
		httpapi.ScopePublic, func(ctx context.Context, in *struct {
			TenantID  string `path:"tenant_id" example:"ten_01jbx7k2q9m4r8t6v3w5y0z1ab"`
			Signature string `header:"Abacus-Signature" example:"t=1793611800,v1=5d41402abc4b2a76b9719d911017c592…"`
			RawBody   []byte
			Body      BounceReport
		}) (*httpapi.Body[BounceResult], error) {
			if err := svc.VerifyBounce(ctx, in.TenantID, in.Signature, in.RawBody); err != nil {
				if errors.Is(err, ErrBadSignature) {
					return nil, abacus.Errorf(abacus.KindUnauthorized, "invalid_signature",
						"the Abacus-Signature header does not verify with the tenant's bounce secret (or its timestamp is more than 5 minutes off)")
				}
				return nil, err
			}
			return httpapi.Reply(svc.ApplyBounces(ctx, in.TenantID, in.Body))
		})
}

func registerTriggerRoutes(s *httpapi.Server, svc *Service) {
	tags := []string{"Notification triggers"}
	type eventPath struct {
		EventType string `path:"event_type" example:"invoice.finalized"`
	}
	httpapi.Register(s, huma.Operation{OperationID: "list-notification-triggers", Method: http.MethodGet, Path: "/api/v1/notifications/triggers",
		Summary: "List notification triggers", Tags: tags,
		Description: "Which domain events send which template to whom: the tenant's own mappings and the defaults it has not replaced (one page)."},
		abacus.ScopeRead, func(ctx context.Context, _ *struct{}) (*httpapi.Body[abacus.List[Trigger]], error) {
			list, err := svc.ListTriggers(ctx)
			return httpapi.Reply(abacus.ListOf(list, ""), err)
		})
	httpapi.Register(s, huma.Operation{OperationID: "save-notification-trigger", Method: http.MethodPut, Path: "/api/v1/notifications/triggers/{event_type}",
		Summary: "Map an event type to a notification", Tags: tags, Description: "Replaces the default (or the tenant's previous mapping) for this event type."},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			EventType string `path:"event_type" example:"invoice.finalized"`
			Body      TriggerInput
		}) (*httpapi.Body[Trigger], error) {
			return httpapi.Reply(svc.SaveTrigger(ctx, in.EventType, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "delete-notification-trigger", Method: http.MethodDelete, Path: "/api/v1/notifications/triggers/{event_type}",
		Summary: "Remove a notification trigger", Tags: tags, DefaultStatus: http.StatusNoContent, Description: "The default mapping (if any) applies again."},
		abacus.ScopeWrite, func(ctx context.Context, in *eventPath) (*struct{}, error) {
			return nil, svc.DeleteTrigger(ctx, in.EventType)
		})
}

func registerDeliveryRoutes(s *httpapi.Server, svc *Service) {
	tags := []string{"Invoice delivery"}
	httpapi.Register(s, huma.Operation{OperationID: "get-invoice-delivery", Method: http.MethodGet, Path: "/api/v1/customers/{id}/invoice-delivery",
		Summary: "Get how a customer receives invoices", Tags: tags, Description: "Default: the PDF by e-mail to the customer's address."},
		abacus.ScopeRead, func(ctx context.Context, in *struct {
			ID string `path:"id" example:"cus_01jbx7k2q9m4r8t6v3w5y0z1ab" doc:"customer id or external id"`
		}) (*httpapi.Body[DeliveryPreference], error) {
			return httpapi.Reply(svc.GetDeliveryPreference(ctx, in.ID))
		})
	httpapi.Register(s, huma.Operation{OperationID: "set-invoice-delivery", Method: http.MethodPut, Path: "/api/v1/customers/{id}/invoice-delivery",
		Summary: "Set how a customer receives invoices", Tags: tags,
		Description: "Channels (email, download_link, webhook), document formats attached to the mail or linked from it (pdf, ubl, cii, facturx, xrechnung-ubl, xrechnung-cii) and billing contacts; applies to invoices and credit notes issued from now on."},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			ID   string `path:"id" example:"cus_01jbx7k2q9m4r8t6v3w5y0z1ab" doc:"customer id or external id"`
			Body DeliveryPreferenceInput
		}) (*httpapi.Body[DeliveryPreference], error) {
			return httpapi.Reply(svc.SetDeliveryPreference(ctx, in.ID, in.Body))
		})
	for _, d := range []struct{ id, path, kind, what string }{
		{"list-invoice-deliveries", "/api/v1/invoices/{id}/deliveries", "invoice", "an invoice"},
		{"list-credit-note-deliveries", "/api/v1/credit-notes/{id}/deliveries", "credit_note", "a credit note"},
	} {
		httpapi.Register(s, huma.Operation{OperationID: d.id, Method: http.MethodGet, Path: d.path,
			Summary: "List the deliveries of " + d.what, Tags: tags,
			Description: "Each delivery of it to the customer, as their delivery preference asked (e-mail with the documents attached, " +
				"e-mail with download links, the tenant's webhook endpoints), with its status history: queued, sent (the SMTP server " +
				"accepted the mail), delivered (the endpoint answered 2xx), failed with the reason, retried. Ordered by delivery id."},
			abacus.ScopeRead, func(ctx context.Context, in *struct {
				ListQuery
				ID string `path:"id" example:"inv_01jbx7r1b3d5f7h9k1m3p5r7tv"`
			}) (*httpapi.Body[abacus.List[DocumentDelivery]], error) {
				if err := svc.checkSubject(ctx, d.kind, in.ID); err != nil {
					return nil, err
				}
				list, next, err := ListDocumentDeliveries(ctx, svc.db, d.kind, in.ID, in.Limit, in.Cursor)
				return httpapi.Reply(abacus.ListOf(list, next), err)
			})
	}
	registerDownloadRoute(s, svc, tags)
}

type downloadOutput struct {
	ContentType        string `header:"Content-Type"`
	ContentDisposition string `header:"Content-Disposition"`
	CacheControl       string `header:"Cache-Control"`
	Body               []byte
}

// registerDownloadRoute serves the download_link channel's links: public,
// the signed token is the credential.
func registerDownloadRoute(s *httpapi.Server, svc *Service, tags []string) {
	httpapi.Register(s, huma.Operation{OperationID: "download-document", Method: http.MethodGet, Path: "/api/v1/document-downloads/{token}",
		Summary: "Download a delivered document", Tags: tags,
		Description: "The link e-mailed by the download_link channel: the invoice or credit note in the format the customer chose, from the object store. " +
			"No credentials: the link is signed and expires (30 days by default). A link Abacus did not sign is 403 download_link_invalid; an expired one 410 download_link_expired.",
		Responses: map[string]*huma.Response{"200": {Description: "The document", Content: map[string]*huma.MediaType{
			"application/pdf": {}, "application/xml": {}}}}},
		httpapi.ScopePublic, func(ctx context.Context, in *struct {
			Token string `path:"token" maxLength:"1024" example:"ZG9jdW1lbnQtbGlua3Mv….q3x0"`
		}) (*downloadOutput, error) {
			a, err := svc.Download(ctx, in.Token)
			if err != nil {
				return nil, err
			}
			return &downloadOutput{ContentType: a.ContentType, ContentDisposition: `attachment; filename="` + a.Filename + `"`,
				CacheControl: "private, no-store", Body: a.Content}, nil
		})
}
