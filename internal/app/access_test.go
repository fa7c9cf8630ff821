package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/catalog/catalogtest"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// node is one process's subscription service, wired to the bus as the
// app wires it.
type node struct {
	cat  *catalog.Service
	subs *subscription.Service
}

// accessBundle is two processes' services over one database, each with
// its own connection to one NATS server, and a customer subscribed.
type accessBundle struct {
	ctx      context.Context
	a, b     node
	customer string
	sub      string
}

func natsServer(t testing.TB) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, DontListen: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

func newNode(t testing.TB, d *db.DB, ns *server.Server, clock abacus.Clock, usage *catalogtest.MemoryUsage) node {
	t.Helper()
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	cat := catalog.NewService(d, clock, nil, usage)
	subs := subscription.NewService(cat, clock, nil)
	subs.SetStateTTL(time.Hour) // only an invalidation can drop a state
	cacheInvalidation(nc, subs, slog.New(slog.DiscardHandler))
	if err := nc.Flush(); err != nil { // the subscription is in place
		t.Fatal(err)
	}
	return node{cat: cat, subs: subs}
}

func setupAccess(t testing.TB, d *db.DB) *accessBundle {
	t.Helper()
	ns := natsServer(t)
	clock := abacus.NewFakeClock(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	usage := catalogtest.NewMemoryUsage()
	ab := &accessBundle{ctx: abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: "ten_access", Kind: "api_key",
		ID: "key_test", Scopes: []abacus.Scope{abacus.ScopeAdmin}})}
	ab.a, ab.b = newNode(t, d, ns, clock, usage), newNode(t, d, ns, clock, usage)
	cat := ab.a.cat
	if _, err := cat.CreateFeature(ab.ctx, catalog.FeatureInput{Key: "hd", Kind: catalog.FeatureBoolean}); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.CreatePlan(ab.ctx, catalog.PlanInput{Key: "pro", Name: "Pro"}); err != nil {
		t.Fatal(err)
	}
	v, err := cat.CreateVersion(ab.ctx, "pro", catalog.VersionSpec{Currency: "EUR", BillingInterval: period.Monthly,
		Entitlements: []catalog.Grant{{Feature: "hd"}},
		Charges:      []pricing.Charge{{Key: "base", Kind: pricing.ChargeFee, Fee: &pricing.Fee{Amount: decimal.RequireFromString("10")}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cat.PublishVersion(ab.ctx, "pro", v.Version); err != nil {
		t.Fatal(err)
	}
	cus, err := cat.CreateCustomer(ab.ctx, catalog.CustomerInput{Name: "late", Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := ab.a.subs.Create(ab.ctx, subscription.CreateInput{CustomerID: cus.ID, PlanID: "pro"})
	if err != nil {
		t.Fatal(err)
	}
	ab.customer, ab.sub = cus.ID, sub.ID
	return ab
}

// hasAccess is node n's answer on the hot path (CheckJSON).
func (ab *accessBundle) hasAccess(t testing.TB, n node) (bool, string) {
	t.Helper()
	body, err := n.subs.CheckJSON(ab.ctx, ab.customer, "hd")
	if err != nil {
		t.Fatal(err)
	}
	var e subscription.Entitlement
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatal(err)
	}
	return e.HasAccess, e.Reason
}

// waitAccess polls node n until its answer is want. The states are cached
// for an hour, so only an invalidation from the other node can turn it.
func (ab *accessBundle) waitAccess(t testing.TB, n node, want bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _ := ab.hasAccess(t, n)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node b still answers has_access %v after 10 s (its state is cached for an hour: no invalidation arrived)", got)
		}
		time.Sleep(time.Millisecond)
	}
}

// A suspension and a restore made on node a reach node b's cached
// entitlement state through NATS: b, whose states live an hour, answers
// payment_overdue and then access again without waiting for expiry.
func TestAccessFollowsPaymentOnEveryNode(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ab := setupAccess(t, d)
		for _, n := range []node{ab.a, ab.b} {
			if ok, _ := ab.hasAccess(t, n); !ok {
				t.Fatal("active subscription without access")
			}
		}
		if _, err := ab.a.subs.Suspend(ab.ctx, ab.sub, subscription.SuspendInput{}); err != nil {
			t.Fatal(err)
		}
		if ok, reason := ab.hasAccess(t, ab.a); ok || reason != "payment_overdue" {
			t.Fatalf("node a after suspending: %v %q", ok, reason)
		}
		ab.waitAccess(t, ab.b, false)
		if _, reason := ab.hasAccess(t, ab.b); reason != "payment_overdue" {
			t.Fatalf("node b's reason %q", reason)
		}
		if _, err := ab.a.subs.Reactivate(ab.ctx, ab.sub, "paid"); err != nil {
			t.Fatal(err)
		}
		ab.waitAccess(t, ab.b, true)
		// And from b to a.
		if _, err := ab.b.subs.Suspend(ab.ctx, ab.sub, subscription.SuspendInput{}); err != nil {
			t.Fatal(err)
		}
		ab.waitAccess(t, ab.a, false)
	})
}

func TestCacheSubjects(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ tenant, customer, want string }{
		{"ten_1", "cus_2", "abacus.cache.customer.ten_1.cus_2"},
		{"ten_1", "", "abacus.cache.tenant.ten_1"},
		{"ten_1", "a.b", "abacus.cache.tenant.ten_1"}, // not a token: the whole tenant
		{"ten.1", "cus_2", ""},
		{"", "cus_2", ""},
	} {
		if got := cacheSubject(tt.tenant, tt.customer); got != tt.want {
			t.Errorf("cacheSubject(%q, %q) = %q, want %q", tt.tenant, tt.customer, got, tt.want)
		}
	}
}

// BenchmarkAccessRestoredAcrossNodes measures the time from a payment
// restoring access on node a (Reactivate returned: committed) to node b's
// entitlement check answering has_access true, and reports the median and
// the worst as metrics. Node b polls its hot path (CheckJSON) without
// pause. Run:
//
//	go test ./internal/app -run '^$' -bench AccessRestoredAcrossNodes -benchtime 200x
func BenchmarkAccessRestoredAcrossNodes(b *testing.B) {
	for _, e := range []db.Engine{db.SQLite, db.Postgres} {
		b.Run(string(e), func(b *testing.B) {
			d := dbtest.Open(b, e)
			ab := setupAccess(b, d)
			var lat []time.Duration
			for b.Loop() {
				if _, err := ab.a.subs.Suspend(ab.ctx, ab.sub, subscription.SuspendInput{}); err != nil {
					b.Fatal(err)
				}
				ab.waitAccess(b, ab.b, false)
				if _, err := ab.a.subs.Reactivate(ab.ctx, ab.sub, "paid"); err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				ab.waitAccess(b, ab.b, true)
				lat = append(lat, time.Since(t0))
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
		})
	}
}
