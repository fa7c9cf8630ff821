package app

import (
	"context"
	"fmt"
	"slices"

	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/document"
	"github.com/abacusbilling/abacus/internal/identity"
	"github.com/abacusbilling/abacus/internal/notifications"
	"github.com/abacusbilling/abacus/internal/notifications/smtp"
	"github.com/abacusbilling/abacus/internal/seal"
)

// newNotifications builds the notifications service every role of the
// process shares: its channels (e-mail here; in-app and push register
// beside it), its policy, its directory of recipients and the sources
// triggers read. Without smtp.url e-mail is the development inbox: mails
// are kept, not sent.
func newNotifications(a *App, m *modules) *notifications.Service {
	svc := notifications.New(a.DB, a.Clock, a.Log.With("module", "notifications"),
		notifications.Config{KeepBodies: a.Config.SMTP.URL == ""})
	var sender notifications.Sender
	if a.Config.SMTP.URL != "" {
		s, err := smtp.New(a.Config.SMTP.URL, smtp.Options{})
		if err != nil {
			// config.Validate refuses such a URL; should one get here, mail
			// waits (and says why) rather than pretend to be sent.
			sender = failing{err}
		} else {
			sender = s
		}
	}
	svc.RegisterChannel(notifications.NewEmail(svc, sender, a.Config.SMTP.From))
	svc.SetSources(notificationSources{a: a, m: m})
	svc.SetDirectory(staffDirectory{a: a})
	setDownloads(a, svc)
	return svc
}

// setDownloads enables the download_link channel: renditions in the shared
// object store, links signed with smtp.document_link_key. Without them the
// channel says why on each delivery that asks for it.
func setDownloads(a *App, svc *notifications.Service) {
	store, err := a.objects(context.Background())
	if err == nil {
		var key []byte
		key, err = seal.LoadOrCreateKey(a.Config.SMTP.DocumentLinkKey, a.Config.DataDir, "document-links.key", "smtp.document_link_key")
		if err == nil {
			svc.SetDownloads(notifications.Downloads{Store: store, Key: key, BaseURL: linkBase(a), TTL: a.Config.SMTP.DocumentLinkTTL})
			return
		}
	}
	a.Log.Error("document download links are disabled", "err", err)
}

// linkBase is where e-mailed links open: smtp.link_base_url, else this
// process's own address.
func linkBase(a *App) string {
	if base := a.Config.SMTP.LinkBaseURL; base != "" {
		return base
	}
	return "http://" + a.Addr()
}

// failing is a Sender that cannot send.
type failing struct{ err error }

func (f failing) Send(context.Context, notifications.Mail) error { return f.err }

// notificationSources reads tenants, customers, plans and documents for
// the notification triggers through their owners' APIs.
type notificationSources struct {
	a *App
	m *modules
}

func (s notificationSources) TenantName(ctx context.Context, tenant string) (string, error) {
	return identity.TenantName(ctx, s.a.DB, tenant)
}

func (s notificationSources) Customer(ctx context.Context, tenant, id string) (notifications.Contact, error) {
	c, err := s.m.catalog.GetCustomer(tenantCtx(ctx, tenant), id)
	if err != nil {
		return notifications.Contact{}, err
	}
	return notifications.Contact{ID: c.ID, Name: c.Name, Email: c.Email, TimeZone: c.Timezone}, nil
}

func (s notificationSources) PlanName(ctx context.Context, tenant, id string) (string, error) {
	names, err := catalog.PlanNames(ctx, s.a.DB, tenant)
	if err != nil {
		return "", err
	}
	if n, ok := names[id]; ok {
		return n, nil
	}
	return id, nil
}

func (s notificationSources) Document(ctx context.Context, tenant, kind, id, format string) (notifications.Attachment, error) {
	ctx = tenantCtx(ctx, tenant)
	var d *document.Document
	var err error
	switch kind {
	case "invoice":
		d, err = s.m.billing.InvoiceDocument(ctx, id)
	case "credit_note":
		d, err = s.m.billing.CreditNoteDocument(ctx, id)
	default:
		return notifications.Attachment{}, fmt.Errorf("no documents for %s", kind)
	}
	if err != nil {
		return notifications.Attachment{}, err
	}
	b, err := billing.Render(d, document.Format(format))
	if err != nil {
		return notifications.Attachment{}, err
	}
	f := document.Format(format)
	name := map[document.Format]string{document.FormatPDF: ".pdf", document.FormatUBL: ".xml", document.FormatCII: ".cii.xml",
		document.FormatFacturX: ".facturx.pdf", document.FormatXRechnungUBL: ".xrechnung-ubl.xml", document.FormatXRechnungCII: ".xrechnung-cii.xml"}[f]
	if name == "" {
		name = "." + format
	}
	return notifications.Attachment{Filename: d.Number + name, ContentType: f.ContentType(), Content: b}, nil
}

func (s notificationSources) Exists(ctx context.Context, tenant, kind, id string) error {
	ctx = tenantCtx(ctx, tenant)
	var err error
	switch kind {
	case "invoice":
		_, err = s.m.billing.GetInvoice(ctx, id)
	case "credit_note":
		_, err = s.m.billing.GetCreditNote(ctx, id)
	default:
		err = fmt.Errorf("no %s objects", kind)
	}
	return err
}

// staffDirectory names a tenant's staff for triggers that notify them.
type staffDirectory struct{ a *App }

// Lookup fills a staff member's address from the tenant's members; end
// users come with the end-user module.
func (d staffDirectory) Lookup(ctx context.Context, tenant string, r notifications.Recipient) (notifications.Recipient, string, error) {
	if r.Kind != notifications.RecipientStaff || r.Email != "" {
		return r, "", nil
	}
	staff, err := d.StaffEmails(ctx, tenant)
	if err != nil {
		return r, "", err
	}
	for _, m := range staff {
		if m.ID == r.ID {
			r.Email = m.Email
		}
	}
	return r, "", nil
}

func (d staffDirectory) StaffEmails(ctx context.Context, tenant string, roles ...string) ([]notifications.Recipient, error) {
	members, err := d.a.Identity.ListMembers(tenantCtx(ctx, tenant))
	if err != nil {
		return nil, err
	}
	var out []notifications.Recipient
	for _, m := range members {
		if len(roles) == 0 || slices.Contains(roles, string(m.Role)) {
			out = append(out, notifications.Recipient{Kind: notifications.RecipientEmail, ID: m.UserID, Email: m.Email})
		}
	}
	return out, nil
}
