package notifications

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// recorder is a channel that keeps what it is given and fails as told.
type recorder struct {
	name string
	mu   sync.Mutex
	got  []Delivery
	fail []error // returned by the next calls, in order
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) Deliver(_ context.Context, d Delivery) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.fail) > 0 {
		err := r.fail[0]
		r.fail = r.fail[1:]
		return err
	}
	r.got = append(r.got, d)
	return nil
}

func (r *recorder) deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

type bundle struct {
	db    *db.DB
	clock *abacus.FakeClock
	svc   *Service
	email *recorder
}

func setup(t *testing.T, d *db.DB) bundle {
	clock := abacus.NewFakeClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	svc := New(d, clock, slog.New(slog.NewTextHandler(io.Discard, nil)), Config{KeepBodies: true})
	email := &recorder{name: ChannelEmail}
	svc.RegisterChannel(email)
	return bundle{db: d, clock: clock, svc: svc, email: email}
}

func verifyMessage(to string) Message {
	return Message{TenantID: "ten_a", Template: "staff.verify_email", To: Recipient{Kind: RecipientEmail, Email: to},
		Data: map[string]any{"email": to, "link": "https://example.com/verify?token=t0k", "expires": "24 hours"}}
}

func (b bundle) enqueue(t *testing.T, m Message) string {
	t.Helper()
	var id string
	err := b.db.InTx(context.Background(), func(tx *db.Tx) error {
		var err error
		id, err = b.svc.Enqueue(context.Background(), tx, m)
		return err
	})
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	return id
}

func (b bundle) deliverDue(t *testing.T) int {
	t.Helper()
	n, err := b.svc.DeliverDue(context.Background())
	if err != nil {
		t.Fatalf("DeliverDue: %v", err)
	}
	return n
}

func (b bundle) state(t *testing.T, notification string) (state string, attempts int, lastErr string) {
	t.Helper()
	err := b.db.QueryRowContext(context.Background(), `SELECT state, attempts, last_error FROM notification_deliveries
		WHERE notification_id = $1`, notification).Scan(&state, &attempts, &lastErr)
	if err != nil {
		t.Fatal(err)
	}
	return state, attempts, lastErr
}

func TestEnqueueIsSentOnlyIfTheTransactionCommits(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		ctx := context.Background()
		rollback := errors.New("rolled back")
		err := d.InTx(ctx, func(tx *db.Tx) error {
			if _, err := b.svc.Enqueue(ctx, tx, verifyMessage("lost@example.com")); err != nil {
				return err
			}
			return rollback
		})
		if !errors.Is(err, rollback) {
			t.Fatal(err)
		}
		id := b.enqueue(t, verifyMessage("ada@example.com"))
		b.deliverDue(t)
		got := b.email.deliveries()
		if len(got) != 1 || got[0].To.Email != "ada@example.com" || got[0].NotificationID != id {
			t.Fatalf("delivered %+v, want one to ada@example.com", got)
		}
		if got[0].Subject != "Confirm your e-mail address for Abacus" ||
			!strings.Contains(got[0].Text, "https://example.com/verify?token=t0k") ||
			!strings.Contains(got[0].HTML, `href="https://example.com/verify?token=t0k"`) {
			t.Fatalf("rendered %q / %q / %q", got[0].Subject, got[0].Text, got[0].HTML)
		}
		if st, n, _ := b.state(t, id); st != StateSent || n != 1 {
			t.Fatalf("state %s after %d attempts, want sent after 1", st, n)
		}
		if b.deliverDue(t) != 0 || len(b.email.deliveries()) != 1 {
			t.Fatal("a sent delivery was delivered again")
		}
	})
}

func TestDedupeKeyMakesASecondEnqueueANoOp(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		m := verifyMessage("ada@example.com")
		m.DedupeKey = "evt_1:verify"
		if id := b.enqueue(t, m); id == "" {
			t.Fatal("first enqueue ignored")
		}
		if id := b.enqueue(t, m); id != "" {
			t.Fatalf("second enqueue recorded %s", id)
		}
		m.TenantID = "ten_b" // keys are per tenant
		if id := b.enqueue(t, m); id == "" {
			t.Fatal("another tenant's same key was ignored")
		}
		b.deliverDue(t)
		if n := len(b.email.deliveries()); n != 2 {
			t.Fatalf("%d deliveries, want 2", n)
		}
	})
}

func TestTemporaryFailuresAreRetriedWithBackoffAndPermanentOnesAreNot(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		b.email.fail = []error{errors.New("421 try later"), errors.New("421 try later")}
		id := b.enqueue(t, verifyMessage("ada@example.com"))
		b.deliverDue(t)
		if st, n, e := b.state(t, id); st != StatePending || n != 1 || e != "421 try later" {
			t.Fatalf("after one failure: %s, %d attempts, %q", st, n, e)
		}
		if b.deliverDue(t) != 0 {
			t.Fatal("retried before its backoff")
		}
		b.clock.Advance(Backoff(1) * 2)
		b.deliverDue(t)
		b.clock.Advance(Backoff(2) * 2)
		b.deliverDue(t)
		if st, n, _ := b.state(t, id); st != StateSent || n != 3 || len(b.email.deliveries()) != 1 {
			t.Fatalf("after two failures and a success: %s, %d attempts, %d delivered", st, n, len(b.email.deliveries()))
		}

		b.email.fail = []error{Permanent(errors.New("550 no such mailbox"))}
		id = b.enqueue(t, verifyMessage("nobody@example.com"))
		b.deliverDue(t)
		b.clock.Advance(24 * time.Hour)
		b.deliverDue(t)
		if st, n, e := b.state(t, id); st != StateFailed || n != 1 || !strings.Contains(e, "550") {
			t.Fatalf("permanent failure: %s, %d attempts, %q", st, n, e)
		}
	})
}

func TestAttemptsAreSpentThenTheDeliveryFails(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		b.svc.cfg.MaxAttempts = 3
		for range 5 {
			b.email.fail = append(b.email.fail, errors.New("connection refused"))
		}
		id := b.enqueue(t, verifyMessage("ada@example.com"))
		for range 5 {
			b.deliverDue(t)
			b.clock.Advance(7 * time.Hour)
		}
		if st, n, _ := b.state(t, id); st != StateFailed || n != 3 {
			t.Fatalf("%s after %d attempts, want failed after 3", st, n)
		}
	})
}

// policyFunc adapts a function to Policy.
type policyFunc func(to Recipient, category, channel string, critical bool, now time.Time) Decision

func (f policyFunc) Decide(_ context.Context, _ string, to Recipient, category, channel string, critical bool, now time.Time) (Decision, error) {
	return f(to, category, channel, critical, now), nil
}

func TestPolicyDropsAndDefers(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		quietUntil := b.clock.Now().Add(8 * time.Hour)
		b.svc.SetPolicy(policyFunc(func(to Recipient, category, channel string, critical bool, now time.Time) Decision {
			switch {
			case to.Email == "optout@example.com":
				return Decision{Action: Drop, Reason: "opted out of " + category}
			case now.Before(quietUntil):
				return Decision{Action: Defer, Until: quietUntil, Reason: "quiet hours"}
			}
			return Decision{Action: Send}
		}))
		dropped := b.enqueue(t, verifyMessage("optout@example.com"))
		deferred := b.enqueue(t, verifyMessage("ada@example.com"))
		b.deliverDue(t)
		if st, _, e := b.state(t, dropped); st != StateDropped || e != "opted out of security" {
			t.Fatalf("dropped: %s %q", st, e)
		}
		if st, n, e := b.state(t, deferred); st != StateDeferred || n != 0 || e != "quiet hours" {
			t.Fatalf("deferred: %s, %d attempts, %q", st, n, e)
		}
		b.clock.Advance(time.Hour)
		b.deliverDue(t)
		if len(b.email.deliveries()) != 0 {
			t.Fatal("sent during quiet hours")
		}
		b.clock.Set(quietUntil)
		b.deliverDue(t)
		if st, n, _ := b.state(t, deferred); st != StateSent || n != 1 || len(b.email.deliveries()) != 1 {
			t.Fatalf("after quiet hours: %s after %d attempts", st, n)
		}
	})
}

// digestPolicy puts everything in a digest it records.
type digestPolicy struct{ got []string }

func (p *digestPolicy) Decide(context.Context, string, Recipient, string, string, bool, time.Time) (Decision, error) {
	return Decision{Action: Digest}, nil
}

func (p *digestPolicy) AddToDigest(_ context.Context, tx *db.Tx, d Delivery) error {
	if tx == nil {
		return errors.New("no transaction")
	}
	p.got = append(p.got, d.NotificationID)
	return nil
}

func TestDigestHandsTheDeliveryToTheSinkOnce(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		p := &digestPolicy{}
		b.svc.SetPolicy(p)
		id := b.enqueue(t, verifyMessage("ada@example.com"))
		b.deliverDue(t)
		b.clock.Advance(time.Hour)
		b.deliverDue(t)
		if st, _, _ := b.state(t, id); st != StateDigested || len(p.got) != 1 || p.got[0] != id || len(b.email.deliveries()) != 0 {
			t.Fatalf("digest: state %s, sink got %v, sent %d", st, p.got, len(b.email.deliveries()))
		}
	})
}

func TestAnExpiredClaimIsTakenOverAndTheOldClaimantCannotFinish(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		ctx := context.Background()
		id := b.enqueue(t, verifyMessage("ada@example.com"))
		// A process claims the delivery and dies before recording an answer.
		list, err := b.svc.dueDeliveries(ctx, b.clock.Now(), 10)
		if err != nil || len(list) != 1 {
			t.Fatalf("due: %v %v", list, err)
		}
		if ok, err := b.svc.claim(ctx, list[0], b.clock.Now(), b.clock.Now().Add(b.svc.cfg.Lease)); !ok || err != nil {
			t.Fatalf("claim: %v %v", ok, err)
		}
		if b.deliverDue(t) != 0 {
			t.Fatal("a leased delivery was taken before its lease ended")
		}
		b.clock.Advance(b.svc.cfg.Lease)
		b.deliverDue(t)
		if st, n, _ := b.state(t, id); st != StateSent || n != 2 || len(b.email.deliveries()) != 1 {
			t.Fatalf("after takeover: %s after %d attempts, %d sent", st, n, len(b.email.deliveries()))
		}
		// The dead claimant's late answer (attempt 1) changes nothing.
		ok, err := finish(ctx, d, list[0].id, 1, outcome{state: StateFailed, err: "late"}, b.clock.Now())
		if err != nil || ok {
			t.Fatalf("stale finish applied: %v %v", ok, err)
		}
	})
}

func TestAChannelNobodyRegisteredIsDroppedWithAReason(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		m := verifyMessage("ada@example.com")
		m.Channels = []string{ChannelPush}
		id := b.enqueue(t, m)
		b.deliverDue(t)
		if st, _, e := b.state(t, id); st != StateDropped || !strings.Contains(e, "push is not enabled") {
			t.Fatalf("%s %q", st, e)
		}
	})
}

func TestEnqueueRefusesBadMessagesNamingTheField(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		cases := map[string]func(m *Message){
			"template":     func(m *Message) { m.Template = "Bad Key" },
			"locale":       func(m *Message) { m.Locale = "not a locale!" },
			"to.kind":      func(m *Message) { m.To.Kind = "robot" },
			"to.email":     func(m *Message) { m.To.Email = "not-an-address" },
			"channels":     func(m *Message) { m.Channels = []string{"pigeon"} },
			"to.time_zone": func(m *Message) { m.To.TimeZone = "Mars/Olympus" },
		}
		for field, change := range cases {
			m := verifyMessage("ada@example.com")
			change(&m)
			err := d.InTx(context.Background(), func(tx *db.Tx) error { _, err := b.svc.Enqueue(context.Background(), tx, m); return err })
			e, ok := abacus.AsError(err)
			if !ok || len(e.Fields) == 0 || e.Fields[0].Field != field {
				t.Errorf("%s: got %v", field, err)
			}
		}
	})
}

func TestLocaleChainFallsBackToLanguageTenantDefaultAndEnglish(t *testing.T) {
	t.Parallel()
	got := localeChain("de-AT", "fr-CA")
	want := []string{"de-AT", "de", "fr-CA", "fr", "en"}
	if !slices.Equal(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
	if got := localeChain("", "en"); !slices.Equal(got, []string{"en"}) {
		t.Fatalf("%v", got)
	}
}

func TestAHardBounceSuppressesTheAddress(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		b.email.fail = []error{HardBounce(errors.New("550 5.1.1 user unknown"))}
		first := b.enqueue(t, verifyMessage("Gone@Example.com"))
		b.deliverDue(t)
		second := b.enqueue(t, verifyMessage("gone@example.com"))
		b.deliverDue(t)
		for _, id := range []string{first, second} {
			if st, _, _ := b.state(t, id); st != StateSuppressed {
				t.Fatalf("%s: %s, want suppressed", id, st)
			}
		}
		if len(b.email.deliveries()) != 0 {
			t.Fatal("mail went to a bounced address")
		}
		ctx := abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: "ten_a"})
		list, _, err := b.svc.ListSuppressions(ctx, 10, "")
		if err != nil || len(list) != 1 || list[0].Email != "gone@example.com" || list[0].Reason != ReasonHardBounce {
			t.Fatalf("suppressions %+v %v", list, err)
		}
	})
}

func TestTheTenantsTemplateAndDefaultLocaleAreUsedAndDevBodiesKept(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d) // KeepBodies: the development inbox
		ctx := abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: "ten_a"})
		if _, err := b.svc.SaveTemplate(ctx, "staff.verify_email", "fr", NotificationTemplateInput{Subject: "Confirmez {{.email}}",
			Text: "Ouvrez {{.link}}", HTML: "<p><a href=\"{{.link}}\">Confirmer</a></p>"}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.svc.UpdateSettings(ctx, SendingSettingsPatch{DefaultLocale: &[]string{"fr-CA"}[0]}); err != nil {
			t.Fatal(err)
		}
		de := verifyMessage("ada@example.com")
		de.Locale = "de-AT" // no German template: the tenant's default (fr-CA → fr) comes before en
		id := b.enqueue(t, de)
		b.deliverDue(t)
		got := b.email.deliveries()
		if len(got) != 1 || got[0].Subject != "Confirmez ada@example.com" || got[0].Locale != "fr" {
			t.Fatalf("rendered %+v", got)
		}
		n, err := GetNotification(ctx, d, id)
		if err != nil || n.Deliveries[0].Text != "Ouvrez https://example.com/verify?token=t0k" || n.Deliveries[0].HTML == "" {
			t.Fatalf("dev inbox %+v %v", n, err)
		}
		// Another tenant does not see ten_a's template or notification.
		other := abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: "ten_b"})
		if _, err := GetNotification(other, d, id); abacus.ErrorKind(err) != abacus.KindNotFound {
			t.Fatalf("cross-tenant get: %v", err)
		}
		if tpl, err := b.svc.GetTemplate(other, "staff.verify_email", "fr"); err == nil {
			t.Fatalf("cross-tenant template: %+v", tpl)
		}
	})
}
