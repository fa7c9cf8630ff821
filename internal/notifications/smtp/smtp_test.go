package smtp_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/abacusbilling/abacus/internal/notifications"
	"github.com/abacusbilling/abacus/internal/notifications/smtp"
	"github.com/abacusbilling/abacus/internal/notifications/smtp/smtptest"
)

// certificate returns a server config for 127.0.0.1 and a client config
// trusting it.
func certificate(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtp.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: roots}
}

func invoiceMail() notifications.Mail {
	return notifications.Mail{From: "Acme Billing <billing@acme.test>", ReplyTo: "help@acme.test", To: "ada@example.com",
		ToName: "Ada Lovelace", Subject: "Rechnung INV-7 — fällig", Text: "Hello Ada,\nyour invoice INV-7 is attached.\n",
		HTML: `<p style="color:#333">Hello Ada, your invoice <b>INV-7</b> is attached.</p>`, MessageID: "<dlv_1@abacus>",
		Attachments: []notifications.Attachment{
			{Filename: "INV-7.pdf", ContentType: "application/pdf", Content: []byte("%PDF-1.7\n\x00\x01binary\xff")},
			{Filename: "INV-7.xml", ContentType: "application/xml", Content: []byte(`<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"/>`)},
		}}
}

func send(t *testing.T, url string, o smtp.Options, m notifications.Mail) error {
	t.Helper()
	s, err := smtp.New(url, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.Send(ctx, m)
}

func TestMailWithTextHTMLAndAttachmentsOverSTARTTLSWithAuth(t *testing.T) {
	srvTLS, cliTLS := certificate(t)
	s := smtptest.Start(t, smtptest.Options{TLS: srvTLS, User: "mailer", Password: "s3cret"})
	if err := send(t, "smtp://mailer:s3cret@"+s.Addr, smtp.Options{TLS: cliTLS}, invoiceMail()); err != nil {
		t.Fatal(err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 || !msgs[0].TLS || msgs[0].User != "mailer" || msgs[0].From != "billing@acme.test" || msgs[0].To != "ada@example.com" {
		t.Fatalf("received %+v", msgs)
	}
	p := smtptest.Parse(t, msgs[0].Raw)
	if p.Subject != "Rechnung INV-7 — fällig" || p.Header.Get("Message-Id") != "<dlv_1@abacus>" || p.Header.Get("Reply-To") != "help@acme.test" {
		t.Fatalf("headers %v (subject %q)", p.Header, p.Subject)
	}
	if to, _ := p.Header.AddressList("To"); len(to) != 1 || to[0].Name != "Ada Lovelace" {
		t.Fatalf("To %v", p.Header.Get("To"))
	}
	want := invoiceMail()
	if p.Text != want.Text || p.HTML != want.HTML {
		t.Fatalf("parts: text %q html %q", p.Text, p.HTML)
	}
	for _, a := range want.Attachments {
		if !bytes.Equal(p.Attachments[a.Filename], a.Content) {
			t.Fatalf("attachment %s: %q", a.Filename, p.Attachments[a.Filename])
		}
	}
}

func TestImplicitTLS(t *testing.T) {
	srvTLS, cliTLS := certificate(t)
	s := smtptest.Start(t, smtptest.Options{TLS: srvTLS, Implicit: true, User: "mailer", Password: "s3cret"})
	m := invoiceMail()
	m.Attachments = nil
	if err := send(t, "smtps://mailer:s3cret@"+s.Addr, smtp.Options{TLS: cliTLS}, m); err != nil {
		t.Fatal(err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 || !msgs[0].TLS || msgs[0].User != "mailer" {
		t.Fatalf("received %+v", msgs)
	}
	if p := smtptest.Parse(t, msgs[0].Raw); p.Text != m.Text || p.HTML != m.HTML || len(p.Attachments) != 0 {
		t.Fatalf("parts %+v", p)
	}
}

func TestAnUntrustedCertificateIsRefused(t *testing.T) {
	srvTLS, _ := certificate(t)
	s := smtptest.Start(t, smtptest.Options{TLS: srvTLS, Implicit: true})
	err := send(t, "smtps://"+s.Addr, smtp.Options{}, invoiceMail())
	if err == nil || notifications.IsPermanent(err) || len(s.Messages()) != 0 {
		t.Fatalf("err %v, received %d", err, len(s.Messages()))
	}
}

func TestServerAnswersDecideRetryOrNot(t *testing.T) {
	s := smtptest.Start(t, smtptest.Options{})
	s.Answer(&gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"},
		&gosmtp.SMTPError{Code: 554, EnhancedCode: gosmtp.EnhancedCode{5, 7, 1}, Message: "rejected as spam"},
		&gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try later"})
	err := send(t, "smtp://"+s.Addr, smtp.Options{}, invoiceMail())
	var hb *notifications.HardBounceError
	if !notifications.IsPermanent(err) || !errors.As(err, &hb) || !strings.Contains(err.Error(), "550") {
		t.Fatalf("550 5.1.1: %v", err)
	}
	if err := send(t, "smtp://"+s.Addr, smtp.Options{}, invoiceMail()); !notifications.IsPermanent(err) || errors.As(err, &hb) {
		t.Fatalf("554 5.7.1 is permanent but no bounce: %v", err)
	}
	if err := send(t, "smtp://"+s.Addr, smtp.Options{}, invoiceMail()); err == nil || notifications.IsPermanent(err) {
		t.Fatalf("451: %v", err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	if err := send(t, "smtp://"+dead, smtp.Options{}, invoiceMail()); err == nil || notifications.IsPermanent(err) {
		t.Fatalf("refused connection: %v", err)
	}
}

func TestURLsAreCheckedWithoutEchoingThePassword(t *testing.T) {
	for _, u := range []string{"http://x", "smtp://", "smtp://user:hunter2@/"} {
		_, err := smtp.New(u, smtp.Options{})
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: %v", u, err)
		}
	}
}
