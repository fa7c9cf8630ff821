package identity_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/identity"
	"github.com/abacusbilling/abacus/internal/identity/password"
)

// cheap argon2 parameters for tests; production uses DefaultParams.
var cheap = password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

// received is one message the test SMTP server got.
type received struct {
	To      string
	Subject string
	Text    string
	HTML    string
}

// smtpServer is a real in-process SMTP server (emersion/go-smtp).
type smtpServer struct {
	addr string
	ch   chan received
}

func startSMTP(t *testing.T) *smtpServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{addr: l.Addr().String(), ch: make(chan received, 32)}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &smtpSession{s: s, t: t}, nil }))
	srv.Domain = "localhost"
	srv.ErrorLog = nil
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

type smtpSession struct {
	s  *smtpServer
	t  *testing.T
	to string
}

func (x *smtpSession) Reset()                                    {}
func (x *smtpSession) Logout() error                             { return nil }
func (x *smtpSession) Mail(string, *smtp.MailOptions) error      { return nil }
func (x *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error { x.to = to; return nil }
func (x *smtpSession) Data(r io.Reader) error {
	m, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	rec := received{To: x.to, Subject: m.Header.Get("Subject")}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		return err
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(quotedprintable.NewReader(p))
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
			rec.HTML = string(b)
		} else {
			rec.Text = string(b)
		}
	}
	x.s.ch <- rec
	return nil
}

// next waits for the next message (the mailer sends in the background).
func (s *smtpServer) next(t *testing.T) received {
	t.Helper()
	select {
	case m := <-s.ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no mail arrived within 5s")
		return received{}
	}
}

func (s *smtpServer) none(t *testing.T) {
	t.Helper()
	select {
	case m := <-s.ch:
		t.Fatalf("unexpected mail to %s: %s", m.To, m.Subject)
	default:
	}
}

var tokenInLink = regexp.MustCompile(`\?token=([a-z0-9_]+)`)

// linkToken follows the link in a message: the token in its query.
func linkToken(t *testing.T, m received) string {
	t.Helper()
	found := tokenInLink.FindStringSubmatch(m.Text)
	if found == nil {
		t.Fatalf("no link with a token in %q", m.Text)
	}
	if !strings.Contains(m.HTML, found[1]) {
		t.Fatalf("HTML part lacks the link: %s", m.HTML)
	}
	return found[1]
}

// syncBuffer is a concurrency-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type env struct {
	t     *testing.T
	d     *db.DB
	clock *abacus.FakeClock
	svc   *identity.Service
	srv   *httpapi.Server
	url   string
	mail  *smtpServer
	logs  *syncBuffer
}

func newEnv(t *testing.T, d *db.DB, opts ...identity.Option) *env {
	t.Helper()
	e := &env{t: t, d: d, clock: abacus.NewFakeClock(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)), mail: startSMTP(t), logs: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := identity.NewSMTPMailer("smtp://" + e.mail.addr)
	if err != nil {
		t.Fatal(err)
	}
	// Links point at this server, whose hosted pages they open.
	ts := httptest.NewUnstartedServer(nil)
	e.url = "http://" + ts.Listener.Addr().String()
	opts = append([]identity.Option{identity.WithPasswordParams(cheap), identity.WithMailer(m, "Abacus <no-reply@abacus.test>"),
		identity.WithLinkBaseURL(e.url)}, opts...)
	e.svc = identity.NewService(d, e.clock, log, opts...)
	e.srv = httpapi.New(httpapi.Config{Version: "test"}, d, log, prometheus.NewRegistry())
	e.srv.SetAuthenticator(e.svc.Authenticate)
	e.srv.SetAuthorizer(e.svc.Authorize)
	identity.RegisterRoutes(e.srv, e.svc)
	ts.Config.Handler = e.srv.Handler()
	ts.Start()
	t.Cleanup(ts.Close)
	return e
}

type res struct {
	status int
	header http.Header
	body   []byte
}

func (r res) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("not a JSON object (%d): %s", r.status, r.body)
	}
	return m
}

func (r res) str(t *testing.T, key string) string {
	t.Helper()
	s, _ := r.obj(t)[key].(string)
	if s == "" {
		t.Fatalf("no %s in %s", key, r.body)
	}
	return s
}

func (e *env) do(method, path, bearer string, body any) res {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, e.url+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return e.send(req)
}

func (e *env) send(req *http.Request) res {
	e.t.Helper()
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return res{status: r.StatusCode, header: r.Header, body: b}
}

func (e *env) want(r res, status int) res {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

// problem asserts a problem+json answer with status and code.
func (e *env) problem(r res, status int, code string) {
	e.t.Helper()
	if r.status != status || r.header.Get("Content-Type") != "application/problem+json" {
		e.t.Fatalf("want %d problem+json %s, got %d %s: %s", status, code, r.status, r.header.Get("Content-Type"), r.body)
	}
	if got := r.obj(e.t)["code"]; got != code {
		e.t.Fatalf("code %v, want %s: %s", got, code, r.body)
	}
}

// signup creates an account and organization and verifies nothing.
func (e *env) signup(email, pw, org string) (tenant, user string) {
	e.t.Helper()
	r := e.want(e.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": email, "password": pw, "organization": org}), 201)
	m := r.obj(e.t)
	e.mail.next(e.t) // the verification mail
	return m["tenant"].(map[string]any)["id"].(string), m["user"].(map[string]any)["id"].(string)
}

func (e *env) login(email, pw string, extra ...string) res {
	e.t.Helper()
	b := map[string]any{"email": email, "password": pw}
	for i := 0; i+1 < len(extra); i += 2 {
		b[extra[i]] = extra[i+1]
	}
	return e.do("POST", "/api/v1/auth/login", "", b)
}
