package notifications_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/blob"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/notifications"
	"github.com/abacusbilling/abacus/internal/notifications/smtp/smtptest"
)

var smtpError451 = gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "mailbox busy, try later"}

func finalized(id string) any {
	return map[string]any{"id": id, "number": "INV-7", "customer_id": "cus_1", "total": "58.31", "amount_due": "58.31",
		"currency": "EUR", "status": "open", "period_start": "2026-10-01T00:00:00Z"}
}

func statuses(d notifications.DocumentDelivery) string {
	var s []string
	for _, h := range d.History {
		s = append(s, h.Status)
	}
	return strings.Join(s, ",")
}

// A mail the SMTP server refuses with 451 is failed with the reason and
// the time of its retry; the retry is recorded, then sent.
func TestInvoiceDeliveryHistoryShowsAFailedSendAndItsRetry(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setupTriggers(t, d)
		if _, err := b.svc.SetDeliveryPreference(b.ctx, "cus_1", notifications.DeliveryPreferenceInput{Channels: []string{"email"},
			Formats: []string{"pdf", "ubl"}, Emails: []string{"ap@globex.example"}}); err != nil {
			t.Fatal(err)
		}
		if err := b.svc.HandleEvent(context.Background(), event("evt_h1", "invoice.finalized", "invoice", "inv_1", finalized("inv_1"))); err != nil {
			t.Fatal(err)
		}
		b.mail.Answer(&smtpError451)
		b.deliver(t)
		list, _, err := notifications.ListDocumentDeliveries(b.ctx, d, "invoice", "inv_1", 0, "")
		if err != nil || len(list) != 1 || statuses(list[0]) != "queued,failed" {
			t.Fatalf("after the refusal: %+v %v", list, err)
		}
		failed := list[0].History[1]
		if !strings.Contains(failed.Reason, "451") || failed.NextAttemptAt == nil || !failed.NextAttemptAt.After(b.clock.Now()) ||
			list[0].Channel != "email" || list[0].Recipient != "ap@globex.example" || strings.Join(list[0].Formats, ",") != "pdf,ubl" {
			t.Fatalf("failed step %+v of %+v", failed, list[0])
		}
		b.clock.Set(*failed.NextAttemptAt)
		b.deliver(t)
		b.mail.Wait(t, 1, 30*time.Second)
		list, _, _ = notifications.ListDocumentDeliveries(b.ctx, d, "invoice", "inv_1", 0, "")
		if statuses(list[0]) != "queued,failed,retried,sent" || list[0].Status != "sent" || list[0].Attempts != 2 || list[0].NextAttemptAt != nil {
			t.Fatalf("after the retry: %+v", list[0])
		}
		// Another tenant sees nothing of it.
		other := abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: "ten_b", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
		if l, _, _ := notifications.ListDocumentDeliveries(other, d, "invoice", "inv_1", 0, ""); len(l) != 0 {
			t.Fatalf("tenant b sees %+v", l)
		}
	})
}

var linkRE = regexp.MustCompile(`https?://\S+/api/v1/document-downloads/(\S+)`)

// The download_link channel mails signed links instead of attachments;
// each serves its rendition from the object store until it expires; a
// forged one is refused.
func TestDownloadLinksServeTheRenditionUntilTheyExpire(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setupTriggers(t, d)
		store, err := blob.NewDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		b.svc.SetDownloads(notifications.Downloads{Store: store, Key: make([]byte, 32), BaseURL: "https://billing.acme.example", TTL: 48 * time.Hour})
		if _, err := b.svc.SetDeliveryPreference(b.ctx, "cus_1", notifications.DeliveryPreferenceInput{Channels: []string{"download_link"},
			Formats: []string{"ubl", "pdf"}}); err != nil {
			t.Fatal(err)
		}
		if err := b.svc.HandleEvent(context.Background(), event("evt_d1", "invoice.finalized", "invoice", "inv_1", finalized("inv_1"))); err != nil {
			t.Fatal(err)
		}
		b.deliver(t)
		p := smtptest.Parse(t, b.mail.Wait(t, 1, 30*time.Second)[0].Raw)
		links := linkRE.FindAllStringSubmatch(p.Text, -1)
		if len(p.Attachments) != 0 || len(links) != 2 || !strings.Contains(p.HTML, "/api/v1/document-downloads/") {
			t.Fatalf("attachments %v, links %v in\n%s", p.Attachments, links, p.Text)
		}
		want := map[string][]byte{"INV-7.xml": ubl, "INV-7.pdf": pdf}
		for _, l := range links {
			a, err := b.svc.Download(context.Background(), l[1])
			if err != nil || string(a.Content) != string(want[a.Filename]) {
				t.Fatalf("link %s: %+v %v", l[1], a, err)
			}
		}
		forged := links[0][1][:len(links[0][1])-2] + "AA"
		if _, err := b.svc.Download(context.Background(), forged); abacus.ErrorKind(err) != abacus.KindForbidden {
			t.Fatalf("forged link: %v", err)
		}
		list, _, _ := notifications.ListDocumentDeliveries(b.ctx, d, "invoice", "inv_1", 0, "")
		if len(list) != 1 || list[0].Channel != "download_link" || statuses(list[0]) != "queued,sent" {
			t.Fatalf("history %+v", list)
		}
		b.clock.Advance(48 * time.Hour)
		_, err = b.svc.Download(context.Background(), links[0][1])
		if e, ok := abacus.AsError(err); !ok || e.Kind != abacus.KindGone || e.Code != notifications.CodeLinkExpired {
			t.Fatalf("expired link: %v", err)
		}
	})
}
