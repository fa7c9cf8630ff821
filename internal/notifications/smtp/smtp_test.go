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
	"encoding/base64"
	"errors"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/abacusbilling/abacus/internal/notifications"
	"github.com/abacusbilling/abacus/internal/notifications/smtp"
)

// got is one message the server accepted.
type got struct {
	from, to string
	tls      bool
	user     string
	raw      []byte
}

type server struct {
	addr string
	mu   sync.Mutex
	msgs []got
	// answer, when set, is the error DATA returns.
	answer error
}

type session struct {
	s    *server
	c    *gosmtp.Conn
	cur  got
	user string
}

func (x *session) AuthMechanisms() []string { return []string{sasl.Plain} }
func (x *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "mailer" || pass != "s3cret" {
			return errors.New("bad credentials")
		}
		x.user = user
		return nil
	}), nil
}
func (x *session) Reset()        {}
func (x *session) Logout() error { return nil }
func (x *session) Mail(from string, _ *gosmtp.MailOptions) error {
	x.cur = got{from: from}
	return nil
}
func (x *session) Rcpt(to string, _ *gosmtp.RcptOptions) error { x.cur.to = to; return nil }
func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	if x.s.answer != nil {
		return x.s.answer
	}
	_, x.cur.tls = x.c.TLSConnectionState()
	x.cur.user, x.cur.raw = x.user, b
	x.s.msgs = append(x.s.msgs, x.cur)
	return nil
}

func (s *server) received() []got {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]got(nil), s.msgs...)
}

// start runs a real SMTP server: STARTTLS offered when cfg is set, or
// TLS from the first byte when implicit.
func start(t *testing.T, cfg *tls.Config, implicit bool) *server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{addr: l.Addr().String()}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) { return &session{s: s, c: c}, nil }))
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if implicit {
		l = tls.NewListener(l, cfg)
	} else {
		srv.TLSConfig = cfg
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

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

// parsed is a received message taken apart.
type parsed struct {
	header      mail.Header
	text, html  string
	attachments map[string][]byte
}

func parse(t *testing.T, raw []byte) parsed {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	p := parsed{header: m.Header, attachments: map[string][]byte{}}
	walk(t, m.Header.Get("Content-Type"), m.Body, &p)
	return p
}

func walk(t *testing.T, contentType string, body io.Reader, p *parsed) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", mt, err)
		}
		ct := part.Header.Get("Content-Type")
		switch {
		case strings.HasPrefix(ct, "multipart/"):
			walk(t, ct, part, p)
		case part.FileName() != "":
			b, _ := io.ReadAll(base64.NewDecoder(base64.StdEncoding, part))
			p.attachments[part.FileName()] = b
		case strings.HasPrefix(ct, "text/html"):
			b, _ := io.ReadAll(quotedprintable.NewReader(part))
			p.html = string(b)
		default:
			b, _ := io.ReadAll(quotedprintable.NewReader(part))
			p.text = strings.ReplaceAll(string(b), "\r\n", "\n") // mail lines end in CRLF
		}
	}
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
	s := start(t, srvTLS, false)
	if err := send(t, "smtp://mailer:s3cret@"+s.addr, smtp.Options{TLS: cliTLS}, invoiceMail()); err != nil {
		t.Fatal(err)
	}
	msgs := s.received()
	if len(msgs) != 1 || !msgs[0].tls || msgs[0].user != "mailer" || msgs[0].from != "billing@acme.test" || msgs[0].to != "ada@example.com" {
		t.Fatalf("received %+v", msgs)
	}
	p := parse(t, msgs[0].raw)
	dec := new(mime.WordDecoder)
	subject, _ := dec.DecodeHeader(p.header.Get("Subject"))
	if subject != "Rechnung INV-7 — fällig" || p.header.Get("Message-Id") != "<dlv_1@abacus>" || p.header.Get("Reply-To") != "help@acme.test" {
		t.Fatalf("headers %v (subject %q)", p.header, subject)
	}
	if to, _ := p.header.AddressList("To"); len(to) != 1 || to[0].Name != "Ada Lovelace" {
		t.Fatalf("To %v", p.header.Get("To"))
	}
	want := invoiceMail()
	if p.text != want.Text || p.html != want.HTML {
		t.Fatalf("parts: text %q html %q", p.text, p.html)
	}
	for _, a := range want.Attachments {
		if !bytes.Equal(p.attachments[a.Filename], a.Content) {
			t.Fatalf("attachment %s: %q", a.Filename, p.attachments[a.Filename])
		}
	}
}

func TestImplicitTLS(t *testing.T) {
	srvTLS, cliTLS := certificate(t)
	s := start(t, srvTLS, true)
	m := invoiceMail()
	m.Attachments = nil
	if err := send(t, "smtps://mailer:s3cret@"+s.addr, smtp.Options{TLS: cliTLS}, m); err != nil {
		t.Fatal(err)
	}
	msgs := s.received()
	if len(msgs) != 1 || !msgs[0].tls || msgs[0].user != "mailer" {
		t.Fatalf("received %+v", msgs)
	}
	if p := parse(t, msgs[0].raw); p.text != m.Text || p.html != m.HTML || len(p.attachments) != 0 {
		t.Fatalf("parts %+v", p)
	}
}

func TestAnUntrustedCertificateIsRefused(t *testing.T) {
	srvTLS, _ := certificate(t)
	s := start(t, srvTLS, true)
	err := send(t, "smtps://"+s.addr, smtp.Options{}, invoiceMail())
	if err == nil || notifications.IsPermanent(err) || len(s.received()) != 0 {
		t.Fatalf("err %v, received %d", err, len(s.received()))
	}
}

func TestServerAnswersDecideRetryOrNot(t *testing.T) {
	s := start(t, nil, false)
	s.answer = &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	err := send(t, "smtp://"+s.addr, smtp.Options{}, invoiceMail())
	if !notifications.IsPermanent(err) || !strings.Contains(err.Error(), "550") {
		t.Fatalf("550: %v", err)
	}
	s.answer = &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try later"}
	if err := send(t, "smtp://"+s.addr, smtp.Options{}, invoiceMail()); err == nil || notifications.IsPermanent(err) {
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
