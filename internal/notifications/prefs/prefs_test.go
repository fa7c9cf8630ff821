package prefs_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/notifications"
	"github.com/abacusbilling/abacus/internal/notifications/inapp"
	"github.com/abacusbilling/abacus/internal/notifications/prefs"
)

const tenant = "ten_a"

var ada = inapp.Person{TenantID: tenant, Kind: notifications.RecipientEndUser, ID: "eu_ada"}

// inbox is a recording in_app channel.
type inbox struct {
	mu  sync.Mutex
	got []notifications.Delivery
}

func (b *inbox) Name() string { return notifications.ChannelInApp }
func (b *inbox) Deliver(_ context.Context, d notifications.Delivery) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, d)
	return nil
}
func (b *inbox) delivered() []notifications.Delivery {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]notifications.Delivery(nil), b.got...)
}

type bundle struct {
	d       *db.DB
	clock   *abacus.FakeClock
	svc     *notifications.Service
	store   *prefs.Store
	digests *prefs.Digests
	inbox   *inbox
}

func setup(t *testing.T, d *db.DB, start time.Time) *bundle {
	clock := abacus.NewFakeClock(start)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := notifications.New(d, clock, log, notifications.Config{})
	box := &inbox{}
	svc.RegisterChannel(box)
	svc.SetPolicy(prefs.NewPolicy(d, clock))
	return &bundle{d: d, clock: clock, svc: svc, store: prefs.NewStore(d, clock), digests: prefs.NewDigests(d, clock, log, svc), inbox: box}
}

// send enqueues one in-app notification to Ada and runs a dispatch round.
func (b *bundle) send(t *testing.T, category string, critical bool, link string) {
	t.Helper()
	err := b.d.InTx(context.Background(), func(tx *db.Tx) error {
		// The digest template is the one built-in that is not critical by
		// default; any template does.
		_, err := b.svc.Enqueue(context.Background(), tx, notifications.Message{TenantID: tenant, Template: prefs.DigestTemplate,
			To: notifications.Recipient{Kind: ada.Kind, ID: ada.ID, TimeZone: "Europe/Vienna"}, Channels: []string{notifications.ChannelInApp},
			Category: category, Critical: critical, Data: map[string]any{"link": link, "category": category, "count": 1,
				"items": []any{map[string]any{"subject": "about " + link, "text": "see " + link}}}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	b.round(t)
}

func (b *bundle) round(t *testing.T) {
	t.Helper()
	if _, err := b.svc.DeliverDue(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (b *bundle) put(t *testing.T, s prefs.Preferences) {
	t.Helper()
	if _, err := b.store.Put(context.Background(), ada, s); err != nil {
		t.Fatal(err)
	}
}

func links(ds []notifications.Delivery) string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Data["link"].(string))
	}
	return strings.Join(out, ",")
}

// An opted-out category and channel is dropped unless the notification is
// critical; security and billing cannot be turned off.
func TestOptOut(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
		b.put(t, prefs.Preferences{Preferences: []prefs.Preference{{Category: "general", Channel: "in_app", Mode: prefs.ModeOff}}})
		b.send(t, "general", false, "dropped")
		b.send(t, "usage", false, "other-category")
		b.send(t, "general", true, "critical")
		if got := links(b.inbox.delivered()); got != "other-category,critical" {
			t.Fatalf("delivered %s", got)
		}

		_, err := b.store.Put(context.Background(), ada, prefs.Preferences{Preferences: []prefs.Preference{
			{Category: "usage", Channel: "email", Mode: prefs.ModeOff}, {Category: "security", Channel: "email", Mode: prefs.ModeOff}}})
		e, ok := abacus.AsError(err)
		if !ok || e.Code != "preference_locked" || len(e.Fields) != 1 || e.Fields[0].Field != "preferences[1].mode" ||
			!strings.Contains(e.Fields[0].Message, "cannot be turned off") {
			t.Fatalf("err %v", err)
		}
		s, _ := b.store.Get(context.Background(), ada)
		if len(s.Preferences) != 1 || s.Preferences[0].Category != "general" {
			t.Fatalf("a refused change must change nothing: %+v", s)
		}
	})
}

// A digest holds a category's notifications for its window and sends them
// as one notification when it ends.
func TestDigestBatchesAWindow(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
		b := setup(t, d, t0)
		b.put(t, prefs.Preferences{Preferences: []prefs.Preference{{Category: "usage", Channel: "in_app", Mode: prefs.ModeDigest, DigestSeconds: 3600}}})
		for i, link := range []string{"u1", "u2", "u3"} {
			b.clock.Set(t0.Add(time.Duration(i) * 20 * time.Minute))
			b.send(t, "usage", false, link)
		}
		b.send(t, "usage", true, "critical-now")
		if got := links(b.inbox.delivered()); got != "critical-now" {
			t.Fatalf("before the window ends: %s", got)
		}
		b.clock.Set(t0.Add(59 * time.Minute))
		if n, err := b.digests.FlushDue(context.Background()); err != nil || n != 0 {
			t.Fatalf("flushed %d early (%v)", n, err)
		}
		b.clock.Set(t0.Add(61 * time.Minute))
		if n, err := b.digests.FlushDue(context.Background()); err != nil || n != 1 {
			t.Fatalf("flushed %d (%v)", n, err)
		}
		if n, _ := b.digests.FlushDue(context.Background()); n != 0 {
			t.Fatalf("flushed again: %d", n)
		}
		b.round(t)
		got := b.inbox.delivered()
		if len(got) != 2 {
			t.Fatalf("%d deliveries, want the critical one and one digest", len(got))
		}
		dg := got[1]
		if dg.Template != prefs.DigestTemplate || dg.Category != "usage.digest" || !strings.HasPrefix(dg.Subject, "3 usage notifications") {
			t.Fatalf("digest %s %s %q", dg.Template, dg.Category, dg.Subject)
		}
		for _, l := range []string{"u1", "u2", "u3"} {
			if !strings.Contains(dg.Text, "see "+l) {
				t.Fatalf("digest lacks %s:\n%s", l, dg.Text)
			}
		}
	})
}

// Quiet hours in the recipient's zone defer non-critical notifications to
// their end; critical ones go at once.
func TestQuietHoursDefer(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		// 22:30 UTC is 23:30 in Vienna (winter).
		b := setup(t, d, time.Date(2026, 12, 1, 22, 30, 0, 0, time.UTC))
		b.put(t, prefs.Preferences{QuietHours: &prefs.QuietHours{Start: "22:00", End: "07:00"}})
		b.send(t, "usage", false, "quiet")
		b.send(t, "general", true, "critical")
		if got := links(b.inbox.delivered()); got != "critical" {
			t.Fatalf("during quiet hours: %s", got)
		}
		b.clock.Set(time.Date(2026, 12, 2, 5, 59, 0, 0, time.UTC)) // 06:59 in Vienna
		b.round(t)
		if got := links(b.inbox.delivered()); got != "critical" {
			t.Fatalf("a minute before the end: %s", got)
		}
		b.clock.Set(time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)) // 07:00 in Vienna
		b.round(t)
		if got := links(b.inbox.delivered()); got != "critical,quiet" {
			t.Fatalf("after quiet hours: %s", got)
		}
	})
}
