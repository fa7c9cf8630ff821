package smtp_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/smtp"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/blob"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/document"
	"github.com/abacusbilling/abacus/internal/inbound"
	inboundsmtp "github.com/abacusbilling/abacus/internal/inbound/smtp"
)

func tenantCtx(tenant string) context.Context {
	return abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: tenant, Kind: "api_key", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
}

type bundle struct {
	svc  *inbound.Service
	d    *db.DB
	addr string // the SMTP server's
}

func setup(t *testing.T, d *db.DB, maxBytes int64) bundle {
	t.Helper()
	store, err := blob.NewDir(filepath.Join(t.TempDir(), "objects"))
	if err != nil {
		t.Fatal(err)
	}
	svc := inbound.NewService(d, store, abacus.SystemClock{}, slog.New(slog.DiscardHandler))
	svc.ConfigureMail(inbound.MailConfig{Domain: "inbound.example.com"})
	srv, err := inboundsmtp.Listen(inboundsmtp.Config{Addr: "127.0.0.1:0", Domain: "inbound.example.com", MaxMessageBytes: maxBytes},
		svc, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return bundle{svc: svc, d: d, addr: srv.Addr()}
}

// facturX renders the document package's German SaaS example as a
// Factur-X PDF.
func facturX(t *testing.T) []byte {
	t.Helper()
	ubl, err := os.ReadFile(filepath.Join("..", "..", "document", "testdata", "examples", "invoice-saas-de.xml"))
	if err != nil {
		t.Fatal(err)
	}
	pdf, _, err := document.Convert(ubl, document.FormatFacturX)
	if err != nil {
		t.Fatal(err)
	}
	return pdf
}

type part struct {
	contentType, filename string
	data                  []byte
}

// message builds a multipart/mixed e-mail as a mail client would: a text
// body, then each part base64-encoded in 76-character lines.
func message(to, subject string, parts ...part) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Supplier GmbH <billing@supplier.example>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%d@supplier.example>\r\nMIME-Version: 1.0\r\n", to, subject, time.Now().UnixNano())
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlease find our invoice attached.\r\n")
	for _, p := range parts {
		fmt.Fprintf(&b, "--b1\r\nContent-Type: %s; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", p.contentType, p.filename, p.filename)
		enc := base64.StdEncoding.EncodeToString(p.data)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
	}
	b.WriteString("--b1--\r\n")
	return b.Bytes()
}

// send delivers msg with the standard library's SMTP client and returns
// the server's answer as an error (nil: 250).
func send(addr, to string, msg []byte) error {
	return smtp.SendMail(addr, nil, "billing@supplier.example", []string{to}, msg)
}

func smtpCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

// TestFacturXByMailBecomesADocument: a supplier's Factur-X PDF sent by
// e-mail to a tenant's inbound address, through a real SMTP client and
// server, is stored once, normalised from the XML inside and listed with
// the message it came in; the same message again changes nothing; a mail
// to an unknown address, one without a document and one above the size
// limit are refused with the SMTP codes a sender understands.
func TestFacturXByMailBecomesADocument(t *testing.T) {
	t.Parallel()
	pdf := facturX(t)
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d, 1<<20)
		ctx := tenantCtx("ten_a")
		addr, err := b.svc.Address(ctx)
		if err != nil || !strings.HasSuffix(addr.Address, "@inbound.example.com") {
			t.Fatalf("Address: %v %+v", err, addr)
		}
		if again, _ := b.svc.Address(ctx); again.Address != addr.Address {
			t.Fatalf("the address changed: %s then %s", addr.Address, again.Address)
		}
		msg := message(addr.Address, "Invoice WW-2027-00042", part{"application/pdf", "WW-2027-00042.pdf", pdf},
			part{"application/pdf", "terms.pdf", []byte("%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")})
		if err := send(b.addr, addr.Address, msg); err != nil {
			t.Fatalf("sending: %v", err)
		}
		msgs, err := b.svc.ListMessages(ctx, inbound.MessageFilter{})
		if err != nil || len(msgs.Data) != 1 {
			t.Fatalf("messages: %v %+v", err, msgs)
		}
		m := msgs.Data[0]
		if m.Status != inbound.MessageProcessed || len(m.Documents) != 1 || m.Subject != "Invoice WW-2027-00042" || m.From != "billing@supplier.example" ||
			m.To != addr.Address || len(m.Notes) != 1 || !strings.Contains(m.Notes[0], "terms.pdf") {
			t.Fatalf("message %+v", m)
		}
		doc, err := b.svc.Get(ctx, m.Documents[0])
		if err != nil || doc.Format != document.FormatFacturX || doc.Source != inbound.SourceEmail || doc.Status != inbound.StatusValid || doc.Number != "WW-2027-00042" {
			t.Fatalf("document: %v %+v", err, doc)
		}
		if _, orig, err := b.svc.Original(ctx, doc.ID); err != nil || !bytes.Equal(orig, pdf) {
			t.Fatalf("the original is not the attached PDF: %v", err)
		}
		if cii, err := b.svc.Render(ctx, doc.ID, document.FormatCII); err != nil || !bytes.Contains(cii, []byte("WW-2027-00042")) {
			t.Fatalf("as CII: %v", err)
		}
		// The sender retries the same message (its 250 was lost): nothing new.
		if err := send(b.addr, addr.Address, msg); err != nil {
			t.Fatalf("sending again: %v", err)
		}
		if l, _ := b.svc.ListMessages(ctx, inbound.MessageFilter{}); len(l.Data) != 1 {
			t.Fatalf("%d messages after a resend, want 1", len(l.Data))
		}
		if l, _ := b.svc.List(ctx, inbound.ListFilter{}); len(l.Data) != 1 {
			t.Fatalf("%d documents after a resend, want 1", len(l.Data))
		}
		var events int
		if err := d.QueryRowContext(ctx, `SELECT count(*) FROM outbox_events WHERE tenant_id = 'ten_a' AND type = 'document.received'`).Scan(&events); err != nil || events != 1 {
			t.Fatalf("%d document.received events (%v), want 1", events, err)
		}

		if err := send(b.addr, "nobody@inbound.example.com", msg); smtpCode(err) != 550 {
			t.Errorf("unknown address: %v, want 550", err)
		}
		if err := send(b.addr, strings.Replace(addr.Address, "@inbound.example.com", "@elsewhere.example", 1), msg); smtpCode(err) != 550 {
			t.Errorf("another domain: %v, want 550", err)
		}
		noDoc := message(addr.Address, "Hello", part{"text/csv", "prices.csv", []byte("a,b\n1,2\n")})
		if err := send(b.addr, addr.Address, noDoc); smtpCode(err) != 554 || !strings.Contains(err.Error(), "prices.csv") {
			t.Errorf("no document: %v, want 554 naming the attachment", err)
		}
		big := message(addr.Address, "Huge", part{"application/pdf", "big.pdf", bytes.Repeat([]byte("x"), 1<<20)})
		if err := send(b.addr, addr.Address, big); smtpCode(err) != 552 {
			t.Errorf("above the limit: %v, want 552", err)
		}
		rejected, err := b.svc.ListMessages(ctx, inbound.MessageFilter{Status: inbound.MessageRejected})
		if err != nil || len(rejected.Data) != 1 || !strings.Contains(rejected.Data[0].Error, "prices.csv") {
			t.Fatalf("rejected: %v %+v", err, rejected)
		}

		// A rotated address refuses mail to the old one; another tenant sees nothing.
		rotated, err := b.svc.RotateAddress(ctx)
		if err != nil || rotated.Address == addr.Address {
			t.Fatalf("rotate: %v %+v", err, rotated)
		}
		if err := send(b.addr, addr.Address, msg); smtpCode(err) != 550 {
			t.Errorf("the old address after rotation: %v, want 550", err)
		}
		if l, err := b.svc.ListMessages(tenantCtx("ten_b"), inbound.MessageFilter{}); err != nil || len(l.Data) != 0 {
			t.Errorf("another tenant lists %v %v", l, err)
		}
		if _, err := b.svc.GetMessage(tenantCtx("ten_b"), m.ID); abacus.ErrorKind(err) != abacus.KindNotFound {
			t.Errorf("another tenant got the message: %v", err)
		}
	})
}

// failingDocuments stores raw e-mails but fails to store documents, as a
// process killed after the message's row was committed would leave it.
type failingDocuments struct{ blob.Store }

func (f failingDocuments) Put(ctx context.Context, key string, data []byte) error {
	if strings.HasPrefix(key, "inbound-mail/") {
		return f.Store.Put(ctx, key, data)
	}
	return errors.New("killed before the attachment was stored")
}

// TestAcceptedMailSurvivesACrash: once the raw message is stored and its
// row committed the sender gets 250 even if processing fails; the message
// stays received, and ProcessPending turns it into its document exactly
// once.
func TestAcceptedMailSurvivesACrash(t *testing.T) {
	t.Parallel()
	pdf := facturX(t)
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		dir, err := blob.NewDir(filepath.Join(t.TempDir(), "objects"))
		if err != nil {
			t.Fatal(err)
		}
		crashing := inbound.NewService(d, failingDocuments{dir}, abacus.SystemClock{}, slog.New(slog.DiscardHandler))
		srv, err := inboundsmtp.Listen(inboundsmtp.Config{Addr: "127.0.0.1:0"}, crashing, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Run(runCtx) }()
		defer func() { cancel(); <-done }()
		ctx := tenantCtx("ten_a")
		addr, err := crashing.Address(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := send(srv.Addr(), addr.Address, message(addr.Address, "Invoice", part{"application/pdf", "inv.pdf", pdf})); err != nil {
			t.Fatalf("a stored message must be accepted: %v", err)
		}
		l, err := crashing.ListMessages(ctx, inbound.MessageFilter{})
		if err != nil || len(l.Data) != 1 || l.Data[0].Status != inbound.MessageReceived {
			t.Fatalf("after the crash: %v %+v", err, l)
		}
		healthy := inbound.NewService(d, dir, abacus.SystemClock{}, slog.New(slog.DiscardHandler))
		if n, err := healthy.ProcessPending(context.Background(), -time.Second); err != nil || n != 1 {
			t.Fatalf("ProcessPending: %d %v", n, err)
		}
		if n, err := healthy.ProcessPending(context.Background(), -time.Second); err != nil || n != 0 {
			t.Fatalf("ProcessPending again: %d %v", n, err)
		}
		m, err := healthy.GetMessage(ctx, l.Data[0].ID)
		if err != nil || m.Status != inbound.MessageProcessed || len(m.Documents) != 1 || m.ProcessedAt == nil {
			t.Fatalf("after reprocessing: %v %+v", err, m)
		}
		if doc, err := healthy.Get(ctx, m.Documents[0]); err != nil || doc.Number != "WW-2027-00042" {
			t.Fatalf("document: %v %+v", err, doc)
		}
	})
}
