package app

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/dashboard"
	"github.com/abacusbilling/abacus/internal/enduser"
	"github.com/abacusbilling/abacus/internal/enduser/oidc"
	"github.com/abacusbilling/abacus/internal/enduser/org"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/identity"
	"github.com/abacusbilling/abacus/internal/metering"
	"github.com/abacusbilling/abacus/internal/metering/usage"
	"github.com/abacusbilling/abacus/internal/notifications"
	"github.com/abacusbilling/abacus/internal/outbox"
	"github.com/abacusbilling/abacus/internal/payments"
	"github.com/abacusbilling/abacus/internal/payments/dunning"
	"github.com/abacusbilling/abacus/internal/payments/stripe"
	"github.com/abacusbilling/abacus/internal/portal"
	"github.com/abacusbilling/abacus/internal/realtime"
	"github.com/abacusbilling/abacus/internal/service"
	"github.com/abacusbilling/abacus/internal/subscription"
	"github.com/abacusbilling/abacus/internal/webhooks"
)

// Role is a named part of Abacus a process can run. Roles talk to each
// other only through the database and NATS, so any role can run on any
// node. Build registers the role's routes (if any) and returns its
// service; it runs before the HTTP server starts listening.
type Role struct {
	Name  string
	Doc   string
	Deps  []string
	Build func(ctx context.Context, a *App) (service.Service, error)
	// WithoutDatabase says the role serves while the database cannot be
	// reached (it starts with it, then needs only what it cached and
	// NATS): a process whose every role says so leaves the database out
	// of /readyz, so balancers keep sending it requests during a database
	// outage.
	WithoutDatabase bool
}

// needDatabase reports whether a process running roles is ready only
// while its database answers.
func needDatabase(roles []Role) bool {
	return len(roles) == 0 || slices.ContainsFunc(roles, func(r Role) bool { return !r.WithoutDatabase })
}

// Registry lists every role in a stable order. Building blocks (database,
// bus, HTTP server) are not roles: every process has them.
func Registry() []Role {
	return []Role{
		{
			Name: "api",
			Doc:  "the management API: API keys and identity, meters and usage queries, customers, plans, subscriptions, entitlements, invoices; the dashboard at /",
			Build: func(_ context.Context, a *App) (service.Service, error) {
				identity.RegisterRoutes(a.HTTP, a.Identity)
				enduser.RegisterRoutes(a.HTTP, a.EndUsers())
				oidc.RegisterRoutes(a.HTTP, a.OIDC())
				m := a.modules()
				catalog.RegisterRoutes(a.HTTP, m.catalog)
				subscription.RegisterRoutes(a.HTTP, m.subs)
				billing.RegisterRoutes(a.HTTP, m.billing)
				org.RegisterRoutes(a.HTTP, a.Organizations())
				usage.RegisterRoutes(a.HTTP, m.usage)
				outbox.RegisterRoutes(a.HTTP)
				ui, err := dashboard.New()
				if err != nil {
					return nil, err
				}
				dashboard.Register(a.HTTP, ui)
				notifications.RegisterRoutes(a.HTTP, m.notify)
				registerInbox(a)
				hooks, err := a.webhooks()
				if err != nil {
					return nil, err
				}
				webhooks.RegisterRoutes(a.HTTP, hooks)
				portal.RegisterRoutes(a.HTTP, a.Portal())
				dunning.RegisterRoutes(a.HTTP, m.dunning)
				pays, err := a.payments()
				if err != nil {
					return nil, err
				}
				payments.RegisterRoutes(a.HTTP, pays)
				stripe.RegisterRoutes(a.HTTP, pays)
				if err := registerInbound(a); err != nil {
					return nil, err
				}
				if err := registerAnalytics(a); err != nil {
					return nil, err
				}
				registerNearby(a)   // media.go
				registerTimeline(a) // timeline.go
				return nil, nil
			},
		},
		{
			Name: "subscriptions",
			Doc:  "time-driven subscription transitions (trial ends, scheduled plan changes, period-end cancellations) and usage thresholds",
			Build: func(_ context.Context, a *App) (service.Service, error) {
				subs := a.modules().subs
				return service.NewFunc("subscriptions", func(ctx context.Context) error { return subs.Run(ctx, 0) }), nil
			},
		},
		{
			Name: "billing",
			Doc:  "billing cycles: creates, refreshes and finalizes invoices at each subscription's period end; expires credits",
			Build: func(_ context.Context, a *App) (service.Service, error) {
				bill := a.modules().billing
				return service.NewFunc("billing", bill.Run), nil
			},
		},
		{
			Name:  "dunning",
			Doc:   "dunning: retries, reminders and the final action for overdue invoices; access suspended and restored as payments fail and arrive",
			Build: func(_ context.Context, a *App) (service.Service, error) { return dunningRole(a), nil },
		},
		{
			Name: "notifications",
			Doc:  "notification triggers (domain events → notifications) and delivery (e-mail, and the channels registered beside it) with retries",
			Build: func(_ context.Context, a *App) (service.Service, error) {
				n := a.modules().notify
				return service.NewFunc("notifications", withDigests(a, func(ctx context.Context) error {
					var wg sync.WaitGroup
					wg.Go(func() { _ = n.RunTriggers(ctx, a.Bus) })
					defer wg.Wait()
					return n.Run(ctx)
				})), nil
			},
		},
		{
			Name: "ingest",
			Doc:  "usage event ingestion (POST /api/v1/events) with group commit to JetStream",
			// Events go to NATS; API keys and tenant rules come from caches
			// that outlive a database outage (identity's staleKeyFor).
			WithoutDatabase: true,
			Build: func(ctx context.Context, a *App) (service.Service, error) {
				m := a.Config.Metering
				in, err := usage.NewIngester(ctx, a.Bus, usage.IngestConfig{Partitions: m.Partitions, Linger: m.Linger,
					MaxBatchEvents: m.MaxBatchEvents, MaxBatchBytes: m.MaxBatchBytes, MaxLag: m.MaxLag, StreamMaxAge: m.StreamMaxAge,
					Limits: metering.Limits{MaxBatchEvents: m.MaxEvents, MaxBatchBytes: int(a.Config.HTTP.MaxBodyBytes), LateWindow: m.LateWindow},
					Rules:  a.modules().usage.Rules(),
				}, a.Clock, a.Log.With("role", "ingest"), a.Metrics)
				if err != nil {
					return nil, err
				}
				usage.RegisterIngest(a.HTTP, in)
				return service.NewFunc("ingest", in.Run), nil
			},
		},
		{
			Name: "meter",
			Doc:  "metering workers: usage events from JetStream into raw events and rollups, exactly once",
			Build: func(_ context.Context, a *App) (service.Service, error) {
				m := a.Config.Metering
				ws := usage.NewWorkers(a.DB, a.Bus, usage.WorkerConfig{Partitions: m.Partitions, RoundEvents: m.RoundEvents,
					StreamMaxAge: m.StreamMaxAge}, a.Clock, a.Log.With("role", "meter"), a.Metrics)
				return service.NewFunc("meter", ws.Run), nil
			},
		},
		{
			Name: "outbox",
			Doc:  "publishes committed domain events to NATS (transactional outbox relay); deletes Idempotency-Keys older than http.idempotency_retention",
			Build: func(_ context.Context, a *App) (service.Service, error) {
				log := a.Log.With("role", "outbox")
				relay := outbox.NewRelay(a.DB, a.Bus, outbox.RelayConfig{
					PollInterval: a.Config.Outbox.PollInterval, BatchSize: a.Config.Outbox.BatchSize,
				}, log, a.Metrics)
				// The platform's background role also keeps the HTTP
				// edge's Idempotency-Keys to their retention.
				keys := httpapi.NewKeyRetention(a.DB, httpapi.KeyRetentionConfig{Window: a.Config.HTTP.IdempotencyRetention}, a.Clock, log)
				return service.NewFunc("outbox", func(ctx context.Context) error {
					kctx, stop := context.WithCancel(ctx)
					var wg sync.WaitGroup
					wg.Go(func() { _ = keys.Run(kctx) })
					err := relay.Run(ctx)
					stop()
					wg.Wait()
					return err
				}), nil
			},
		},
		{
			Name: "realtime",
			Doc:  "real-time messaging: the WebSocket gateway (GET /api/v1/realtime/ws), conversations and messages, connection tokens; delivery across nodes through NATS",
			Build: func(ctx context.Context, a *App) (service.Service, error) {
				rt := a.realtime()
				realtime.RegisterRoutes(a.HTTP, rt)
				used, err := a.newMessageUsage(ctx) // realtime_usage.go
				if err != nil {
					return nil, err
				}
				stop, err := a.realtimeParts(rt, used) // realtime_presence.go
				if err != nil {
					return nil, err
				}
				return service.NewFunc("realtime", func(ctx context.Context) error {
					defer stop()
					metered := make(chan struct{})
					go func() { used.run(ctx); close(metered) }()
					defer func() { <-metered }()
					return rt.Run(ctx)
				}), nil
			},
		},
		{
			Name:  "media",
			Doc:   "image sharing: uploads (POST /api/v1/media), variants rendered in a bounded pool (pending ones again on start), signed URLs, usage metered, images of deleted end users erased after the retention window",
			Build: mediaRole, // media.go
		},
		{
			Name: "payments",
			Doc:  "payment collection: charges invoices of customers charged automatically when they are finalized, finishes attempts a crash left pending, notices expiring cards",
			Build: func(_ context.Context, a *App) (service.Service, error) {
				pays, err := a.payments()
				if err != nil {
					return nil, err
				}
				bus := a.Bus
				return service.NewFunc("payments", func(ctx context.Context) error { return pays.Run(ctx, bus) }), nil
			},
		},
		{
			Name: "webhooks",
			Doc:  "outbound webhooks: domain events to tenants' endpoints (Standard Webhooks), with retries",
			Build: func(_ context.Context, a *App) (service.Service, error) {
				hooks, err := a.webhooks()
				if err != nil {
					return nil, err
				}
				bus := a.Bus
				return service.NewFunc("webhooks", func(ctx context.Context) error { return hooks.Run(ctx, bus) }), nil
			},
		},
		riskRole(),
		analyticsRole(),
		timelineRole(), // timeline.go
		{
			Name:  "inbound-smtp",
			Doc:   "receives supplier invoices and credit notes by e-mail at the tenants' inbound addresses (inbound.smtp_addr), attachments through the inbound documents pipeline",
			Build: func(_ context.Context, a *App) (service.Service, error) { return inboundSMTPRole(a) },
		},
	}
}

// RoleNames lists the names of the roles in the registry.
func RoleNames() []string {
	var names []string
	for _, r := range Registry() {
		names = append(names, r.Name)
	}
	return names
}

// SelectRoles resolves a role list ("all" or names) into roles in
// dependency order, adding dependencies. A name with a leading "-" removes
// that role ("all,-api,-ingest" runs every other role, including roles
// added later). Unknown names are refused with the list of valid ones.
func SelectRoles(names []string) ([]Role, error) {
	all := Registry()
	byName := map[string]Role{}
	for _, r := range all {
		byName[r.Name] = r
	}
	want := map[string]bool{}
	var unknown []string
	var without []string // "-name": every role but these (deployments' background group)
	for _, n := range names {
		n = strings.TrimSpace(strings.ToLower(n))
		if rest, ok := strings.CutPrefix(n, "-"); ok {
			if byName[rest].Name == "" {
				unknown = append(unknown, n)
			}
			without = append(without, rest)
			continue
		}
		switch {
		case n == "all":
			for _, r := range all {
				want[r.Name] = true
			}
		case byName[n].Name != "":
			want[n] = true
		default:
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("unknown role %s; valid roles: all, %s (a -name removes one from all)", strings.Join(unknown, ", "), strings.Join(RoleNames(), ", "))
	}
	for _, n := range without {
		delete(want, n)
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("no role left to run in %q", strings.Join(names, ","))
	}
	var out []Role
	var visit func(n string, path []string) error
	visit = func(n string, path []string) error {
		if slices.Contains(path, n) {
			return fmt.Errorf("role dependency cycle: %s", strings.Join(append(path, n), " → "))
		}
		for _, r := range out {
			if r.Name == n {
				return nil
			}
		}
		for _, d := range byName[n].Deps {
			if err := visit(d, append(path, n)); err != nil {
				return err
			}
		}
		out = append(out, byName[n])
		return nil
	}
	for _, r := range all { // registry order, so the result is stable
		if want[r.Name] {
			if err := visit(r.Name, nil); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}
