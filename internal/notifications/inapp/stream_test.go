package inapp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/enduser"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/natsbus"
	"github.com/abacusbilling/abacus/internal/notifications"
	"github.com/abacusbilling/abacus/internal/notifications/inapp"
)

const tenant = "ten_a"

// node is one Abacus process as far as the inbox goes: the API with the
// inbox routes on a real HTTP server and the notifications dispatcher with
// the in_app channel.
type node struct {
	url    string
	inbox  *inapp.Service
	notify *notifications.Service
}

func newNode(t testing.TB, d *db.DB, clock abacus.Clock, eu *enduser.Service, nc *nats.Conn, cfg inapp.Config) *node {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := httpapi.New(httpapi.Config{}, d, log, prometheus.NewRegistry())
	// The end user's token is checked as the app's authenticator will: by
	// the tenant's keys (enduser.VerifyAccessToken).
	s.SetAuthenticator(func(ctx context.Context, tok string) (*abacus.Principal, error) {
		c, err := eu.VerifyAccessToken(ctx, tenant, tok)
		if err != nil {
			return nil, err
		}
		return &abacus.Principal{TenantID: tenant, Kind: "end_user", ID: c.Subject}, nil
	})
	box := inapp.New(d, clock, log, nc, cfg)
	t.Cleanup(box.Close)
	inapp.RegisterRoutes(s, box)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	n := notifications.New(d, clock, log, notifications.Config{})
	n.RegisterChannel(box)
	return &node{url: srv.URL, inbox: box, notify: n}
}

// endUser signs up an end user of tenant and returns its id and a real
// access token.
func endUser(t testing.TB, d *db.DB, eu *enduser.Service) (string, string) {
	t.Helper()
	ctx := enduser.SystemContext(context.Background(), tenant)
	u, err := eu.CreateUser(ctx, enduser.NewUser{Email: "ada@example.com", Password: "correct horse battery", Name: "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	return u.ID, tokenFor(t, d, eu, u)
}

// tokenFor signs u in to a web app and returns the access token.
func tokenFor(t testing.TB, d *db.DB, eu *enduser.Service, u enduser.User) string {
	t.Helper()
	ctx := enduser.SystemContext(context.Background(), tenant)
	app, _, err := eu.CreateApp(ctx, enduser.NewApp{Name: "Web " + u.ID, Type: enduser.AppPublic, RedirectURIs: []string{"https://app.test/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	var sess enduser.Session
	if err := d.InTx(ctx, func(tx *db.Tx) error {
		sess, err = eu.StartSession(ctx, tx, u, enduser.Device{UserAgent: "test"}, app.ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	toks, err := eu.IssueTokens(ctx, sess, app, []string{"openid"}, "")
	if err != nil {
		t.Fatal(err)
	}
	return toks.AccessToken
}

func notify(t *testing.T, d *db.DB, n *notifications.Service, userID, link string) {
	t.Helper()
	err := d.InTx(context.Background(), func(tx *db.Tx) error {
		_, err := n.Enqueue(context.Background(), tx, notifications.Message{TenantID: tenant, Template: "staff.verify_email",
			To: notifications.Recipient{Kind: notifications.RecipientEndUser, ID: userID}, Channels: []string{notifications.ChannelInApp},
			Category: "account", Data: map[string]any{"email": "ada@example.com", "link": link, "expires": "1 hour"}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.DeliverDue(context.Background()); err != nil {
		t.Fatal(err)
	}
}

type event struct{ id, name, data string }

// open starts a stream and returns its events; it waits for the
// stream's first line, so what is sent afterwards must arrive live.
func open(t testing.TB, url, token, lastID string) <-chan event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/v1/end-user/me/notifications/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	events := make(chan event, 16)
	ready := make(chan struct{})
	go func() {
		defer resp.Body.Close()
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		var e event
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == ": connected":
				close(ready)
			case strings.HasPrefix(line, "id: "):
				e.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				e.name = line[7:]
			case strings.HasPrefix(line, "data: "):
				e.data = line[6:]
			case line == "" && e.id != "":
				events <- e
				e = event{}
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("the stream did not start")
	}
	return events
}

func next(t *testing.T, events <-chan event) inapp.InboxItem {
	t.Helper()
	select {
	case e, ok := <-events:
		if !ok {
			t.Fatal("the stream ended")
		}
		var it inapp.InboxItem
		if e.name != "notification" || json.Unmarshal([]byte(e.data), &it) != nil || it.ID != e.id {
			t.Fatalf("event %+v", e)
		}
		return it
	case <-time.After(30 * time.Second):
		t.Fatal("no notification arrived on the stream")
	}
	return inapp.InboxItem{}
}

// An end user's open app receives a notification live: the stream is
// open on one node, the notification is delivered by another, and the item
// crosses through NATS core.
func TestEndUserStreamReceivesNotificationLive(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		bus, err := natsbus.Open(context.Background(), natsbus.Options{StoreDir: filepath.Join(t.TempDir(), "nats"), Listen: "127.0.0.1:-1"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(bus.Close)
		other, err := nats.Connect(bus.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(other.Close)
		clock := abacus.SystemClock{}
		eu := enduser.NewService(d, clock, nil, enduser.WithBaseURL("https://abacus.test"))
		userID, token := endUser(t, d, eu)
		a := newNode(t, d, clock, eu, bus.Conn(), inapp.Config{})
		b := newNode(t, d, clock, eu, other, inapp.Config{})

		events := open(t, b.url, token, "")
		notify(t, d, a.notify, userID, "https://app.test/verify?token=1")
		it := next(t, events)
		if !strings.Contains(it.Body, "https://app.test/verify?token=1") || it.Title == "" || it.Category != "account" {
			t.Fatalf("item %+v", it)
		}

		// Missed while away: resuming with Last-Event-ID sends it first.
		notify(t, d, a.notify, userID, "https://app.test/verify?token=2")
		resumed := next(t, open(t, b.url, token, it.ID))
		if !strings.Contains(resumed.Body, "token=2") {
			t.Fatalf("resumed %+v", resumed)
		}
	})
}

// Without a person's token the stream is refused; a staff API key is no
// person either.
func TestStreamNeedsAPerson(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.SQLite)
	eu := enduser.NewService(d, abacus.SystemClock{}, nil, enduser.WithBaseURL("https://abacus.test"))
	n := newNode(t, d, abacus.SystemClock{}, eu, nil, inapp.Config{})
	resp, err := http.Get(n.url + "/api/v1/end-user/me/notifications/stream")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// An idle stream gets heartbeat comment lines.
func TestIdleStreamGetsHeartbeats(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.SQLite)
	eu := enduser.NewService(d, abacus.SystemClock{}, nil, enduser.WithBaseURL("https://abacus.test"))
	_, token := endUser(t, d, eu)
	n := newNode(t, d, abacus.SystemClock{}, eu, nil, inapp.Config{Heartbeat: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.url+"/api/v1/end-user/me/notifications/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if sc.Text() == ": heartbeat" {
			return
		}
	}
	t.Fatalf("the stream ended without a heartbeat: %v", sc.Err())
}
