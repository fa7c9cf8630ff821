package org_test

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/enduser"
	"github.com/abacusbilling/abacus/internal/enduser/org"
	"github.com/abacusbilling/abacus/internal/identity/password"
)

// The catalog and the subscriptions are wired for real in internal/app
// (orgs_test.go); here their ports answer from memory so the rules of
// this package are tested alone, on both engines, with a fake clock.

type customers struct{ n int }

func (c *customers) CreateCustomer(_ context.Context, _ *db.Tx, _ org.NewCustomer) (string, error) {
	c.n++
	return abacus.NewID("cus"), nil
}

func (c *customers) CustomerID(_ context.Context, _ db.Querier, _, ref string) (string, error) {
	return ref, nil
}

// grants is the max_devices value each customer is granted.
type grants struct {
	mu sync.Mutex
	v  map[string]json.RawMessage
}

func (g *grants) StaticValue(_ context.Context, _, customer, feature string) (json.RawMessage, bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	v, ok := g.v[customer]
	return v, ok && feature == org.FeatureMaxDevices, nil
}

type bundle struct {
	eu     *enduser.Service
	orgs   *org.Service
	clock  *abacus.FakeClock
	grants *grants
	ctx    context.Context
	app    enduser.App
	mails  chan enduser.Mail
}

const tenant = "ten_a"

func setup(t *testing.T, d *db.DB) *bundle { return setupAround(t, d, nil, nil) }

// setupAround registers before and after (when set) as OnSessionStart
// hooks around the organizations' own.
func setupAround(t *testing.T, d *db.DB, before, after func(context.Context, *db.Tx, enduser.User, enduser.Session) error) *bundle {
	t.Helper()
	clock := abacus.NewFakeClock(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	b := &bundle{clock: clock, grants: &grants{v: map[string]json.RawMessage{}}, mails: make(chan enduser.Mail, 100),
		ctx: enduser.SystemContext(context.Background(), tenant)}
	b.eu = enduser.NewService(d, clock, nil, enduser.WithPasswordParams(password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}))
	if before != nil {
		b.eu.OnSessionStart(before)
	}
	b.orgs = org.New(d, clock, nil, b.eu, &customers{}, b.grants, org.WithMailer(enduser.MailerFunc(
		func(_ context.Context, _ *db.Tx, m enduser.Mail) error { b.mails <- m; return nil })))
	if after != nil {
		b.eu.OnSessionStart(after)
	}
	var err error
	b.app, _, err = b.eu.CreateApp(b.ctx, enduser.NewApp{Name: "Web", Type: enduser.AppPublic, RedirectURIs: []string{"https://app.test/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *bundle) user(t *testing.T, email string) enduser.User {
	t.Helper()
	u, err := b.eu.CreateUser(b.ctx, enduser.NewUser{Email: email, Password: "a long passphrase 42", EmailVerified: true})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (b *bundle) signIn(u enduser.User, device string) (enduser.Session, error) {
	sess, _, err := b.eu.SignIn(context.Background(), tenant, u.Email, "a long passphrase 42", enduser.Device{UserAgent: device, IP: "192.0.2.1"}, b.app.ID)
	return sess, err
}

func code(err error) string {
	if e, ok := abacus.AsError(err); ok {
		return e.Code
	}
	return ""
}

func TestInvitationExpiresAndIsUsedOnce(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		owner := b.user(t, "owner@a.test")
		o, err := b.orgs.Create(b.ctx, org.Actor{UserID: owner.ID}, org.NewOrganization{Name: "A"})
		if err != nil {
			t.Fatal(err)
		}
		token := func() string {
			m := <-b.mails
			u, err := url.Parse(m.Data["link"].(string))
			if err != nil {
				t.Fatal(err)
			}
			return u.Query().Get("token")
		}
		if _, err := b.orgs.Invite(b.ctx, org.Actor{UserID: owner.ID}, o.ID, "late@a.test", org.RoleMember); err != nil {
			t.Fatal(err)
		}
		late := token()
		b.clock.Advance(org.InvitationTTL + time.Second)
		if _, err := b.orgs.Accept(context.Background(), "", "", late, "a long passphrase 42", ""); code(err) != "invitation_invalid" {
			t.Fatalf("expired invitation: %v", err)
		}
		if _, err := b.orgs.Invite(b.ctx, org.Actor{UserID: owner.ID}, o.ID, "new@a.test", org.RoleBillingAdmin); err != nil {
			t.Fatal(err)
		}
		tok := token()
		if _, err := b.orgs.Accept(context.Background(), "ten_other", "", tok, "a long passphrase 42", ""); code(err) != "invitation_invalid" {
			t.Fatalf("another tenant's invitation: %v", err)
		}
		acc, err := b.orgs.Accept(context.Background(), "", "", tok, "a long passphrase 42", "New")
		if err != nil || !acc.NewUser || acc.Membership.Role != org.RoleBillingAdmin {
			t.Fatalf("accept: %+v %v", acc, err)
		}
		if _, err := b.orgs.Accept(context.Background(), "", acc.UserID, tok, "", ""); code(err) != "invitation_invalid" {
			t.Fatalf("second use: %v", err)
		}
		// An address with an account must sign in first; the link stays usable.
		known := b.user(t, "known@a.test")
		if _, err := b.orgs.Invite(b.ctx, org.Actor{UserID: owner.ID}, o.ID, known.Email, ""); err != nil {
			t.Fatal(err)
		}
		kt := token()
		if _, err := b.orgs.Accept(context.Background(), "", "", kt, "another passphrase 43", ""); code(err) != "end_user_exists" {
			t.Fatalf("accepting for an existing account without signing in: %v", err)
		}
		if acc, err := b.orgs.Accept(context.Background(), tenant, known.ID, kt, "", ""); err != nil || acc.NewUser || acc.Membership.Role != org.RoleMember {
			t.Fatalf("accepting signed in: %+v %v", acc, err)
		}
		if _, err := b.orgs.Invite(b.ctx, org.Actor{UserID: owner.ID}, o.ID, "new@a.test", ""); code(err) != "already_member" {
			t.Fatalf("inviting a member: %v", err)
		}
		if _, err := b.orgs.Invite(b.ctx, org.Actor{UserID: acc.UserID}, o.ID, "boss@a.test", org.RoleOwner); code(err) != "organization_role_required" {
			t.Fatalf("a billing admin inviting an owner: %v", err)
		}
	})
}

func TestParsePolicy(t *testing.T) {
	for _, c := range []struct {
		in   string
		want org.DevicePolicy
		bad  bool
	}{
		{in: `2`, want: org.DevicePolicy{Limit: 2, OnLimit: "refuse", Per: "organization"}},
		{in: `{"limit": 3, "on_limit": "evict_lru"}`, want: org.DevicePolicy{Limit: 3, OnLimit: "evict_lru", Per: "organization"}},
		{in: `{"limit": 1, "per": "user"}`, want: org.DevicePolicy{Limit: 1, OnLimit: "refuse", Per: "user"}},
		{in: `-1`, bad: true},
		{in: `"two"`, bad: true},
		{in: `{"limit": 2, "on_limit": "kick"}`, bad: true},
		{in: `{"limit": 2, "per": "device"}`, bad: true},
	} {
		p, err := org.ParsePolicy(json.RawMessage(c.in))
		if (err != nil) != c.bad || (!c.bad && p != c.want) {
			t.Errorf("ParsePolicy(%s) = %+v, %v", c.in, p, err)
		}
	}
}

// TestDeviceLimitHoldsUnderConcurrentSignIns: sign-ins racing for the
// last device slot of an organization do not both get it.
func TestDeviceLimitHoldsUnderConcurrentSignIns(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		var users []enduser.User
		for _, e := range []string{"a@fam.test", "b@fam.test", "c@fam.test", "d@fam.test"} {
			users = append(users, b.user(t, e))
		}
		o, err := b.orgs.Create(b.ctx, org.Actor{UserID: users[0].ID}, org.NewOrganization{Name: "Family"})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range users[1:] {
			if _, err := b.orgs.AddMember(b.ctx, org.Actor{Staff: true, ID: "test"}, o.ID, u.ID, org.RoleMember); err != nil {
				t.Fatal(err)
			}
		}
		b.grants.v[o.CustomerID] = json.RawMessage(`2`)
		if _, err := b.signIn(users[0], "one"); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i, u := range users[1:] {
			wg.Add(1)
			go func() { defer wg.Done(); _, errs[i] = b.signIn(u, "racer") }()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case code(err) != "device_limit_reached":
				t.Fatalf("racing sign-in: %v", err)
			}
		}
		n, err := b.eu.CountActiveSessions(context.Background(), d, tenant, []string{users[0].ID, users[1].ID, users[2].ID, users[3].ID})
		if err != nil || ok != 1 || n != 2 {
			t.Fatalf("%v: %d racing sign-ins passed, %d devices active; want 1 and 2", err, ok, n)
		}
	})
}

// TestDeviceCheckCost times the max_devices check alone (the
// OnSessionStart hook: memberships, the cached entitlement, lock, count,
// eviction) against a session start without it. ABACUS_BENCH=1.
func TestDeviceCheckCost(t *testing.T) {
	if os.Getenv("ABACUS_BENCH") != "1" {
		t.Skip("a measurement: run with ABACUS_BENCH=1")
	}
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		var t0 time.Time
		var hook time.Duration // the organizations' hook alone, of the last session start
		b := setupAround(t, d,
			func(context.Context, *db.Tx, enduser.User, enduser.Session) error { t0 = time.Now(); return nil },
			func(context.Context, *db.Tx, enduser.User, enduser.Session) error { hook = time.Since(t0); return nil })
		evicting, checked, free := b.user(t, "evict@b.test"), b.user(t, "check@b.test"), b.user(t, "free@b.test")
		for _, c := range []struct {
			u      enduser.User
			policy string
		}{{evicting, `{"limit": 2, "on_limit": "evict_lru"}`}, {checked, `5`}} {
			u, policy := c.u, c.policy
			o, err := b.orgs.Create(b.ctx, org.Actor{UserID: u.ID}, org.NewOrganization{Name: u.Email})
			if err != nil {
				t.Fatal(err)
			}
			b.grants.v[o.CustomerID] = json.RawMessage(policy)
		}
		// start times one session start; the user under the limit signs
		// out again (untimed), so it stays below its 5 devices.
		start := func(u enduser.User) time.Duration {
			t0 := time.Now()
			var sess enduser.Session
			err := d.InTx(context.Background(), func(tx *db.Tx) error {
				var err error
				sess, err = b.eu.StartSession(b.ctx, tx, u, enduser.Device{UserAgent: "bench"}, b.app.ID)
				return err
			})
			took := time.Since(t0)
			if err == nil && u.ID == checked.ID {
				err = b.eu.RevokeSession(context.Background(), tenant, sess.ID)
			}
			if err != nil {
				t.Fatal(err)
			}
			b.clock.Advance(time.Millisecond)
			return took
		}
		var evict, check, without, hEvict, hCheck, hFree []time.Duration
		for range 2000 {
			evict, hEvict = append(evict, start(evicting)), append(hEvict, hook)
			check, hCheck = append(check, start(checked)), append(hCheck, hook)
			without, hFree = append(without, start(free)), append(hFree, hook)
		}
		pct := func(d []time.Duration, p int) time.Duration {
			slices.Sort(d)
			return d[len(d)*p/100].Round(time.Microsecond)
		}
		t.Logf("session start, max_devices evicting: p50 %v p99 %v; under the limit: p50 %v p99 %v; no limit: p50 %v p99 %v",
			pct(evict, 50), pct(evict, 99), pct(check, 50), pct(check, 99), pct(without, 50), pct(without, 99))
		t.Logf("the hook alone, evicting: p50 %v p99 %v; under the limit: p50 %v p99 %v; no organization: p50 %v p99 %v",
			pct(hEvict, 50), pct(hEvict, 99), pct(hCheck, 50), pct(hCheck, 99), pct(hFree, 50), pct(hFree, 99))
	})
}
