package app

import (
	"log/slog"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// Entitlement states are cached per process (2 s). A change made on one
// node drops the state there at once; cacheInvalidation tells the other
// nodes on NATS core subjects, so that a payment that restores access (or
// a suspension) is seen by every node's entitlement checks within the
// time a message takes, not when their copy expires:
//
//	abacus.cache.customer.<tenant>.<customer>   one customer's state
//	abacus.cache.tenant.<tenant>                every customer of a tenant
//
// Core, not JetStream: a node that misses one still drops the state when
// it expires. A node ignores its own messages (header Abacus-Node).
const (
	cacheCustomerSubject = "abacus.cache.customer."
	cacheTenantSubject   = "abacus.cache.tenant."
	cacheNodeHeader      = "Abacus-Node"
)

// cacheInvalidation connects subs's cache to the other nodes through nc.
// It returns the subscription to close on stop (nil without a bus).
func cacheInvalidation(nc *nats.Conn, subs *subscription.Service, log *slog.Logger) *nats.Subscription {
	if nc == nil {
		return nil
	}
	node := abacus.NewID("node")
	sub, err := nc.Subscribe("abacus.cache.>", func(m *nats.Msg) {
		if m.Header.Get(cacheNodeHeader) == node {
			return
		}
		switch {
		case strings.HasPrefix(m.Subject, cacheCustomerSubject):
			tenant, customer, ok := strings.Cut(strings.TrimPrefix(m.Subject, cacheCustomerSubject), ".")
			if ok && tenant != "" && customer != "" {
				subs.Forget(tenant, customer)
			}
		case strings.HasPrefix(m.Subject, cacheTenantSubject):
			if tenant := strings.TrimPrefix(m.Subject, cacheTenantSubject); tenant != "" {
				subs.Forget(tenant, "")
			}
		}
	})
	if err != nil {
		log.Warn("entitlement cache: subscribing to invalidations failed; other nodes' changes show when states expire (2 s)", "err", err)
		return nil
	}
	subs.OnInvalidate(func(tenant, customer string) {
		m := nats.NewMsg(cacheSubject(tenant, customer))
		if m.Subject == "" || nc.IsClosed() {
			return
		}
		m.Header.Set(cacheNodeHeader, node)
		if err := nc.PublishMsg(m); err != nil {
			log.Warn("entitlement cache: publishing an invalidation failed; other nodes see it when their state expires", "tenant", tenant, "err", err)
		}
	})
	return sub
}

// cacheSubject is the subject that drops customer's state (every
// customer's of tenant when customer is "" or not a subject token).
func cacheSubject(tenant, customer string) string {
	if !subjectToken(tenant) {
		return ""
	}
	if customer == "" || !subjectToken(customer) {
		return cacheTenantSubject + tenant
	}
	return cacheCustomerSubject + tenant + "." + customer
}

func subjectToken(s string) bool {
	return s != "" && !strings.ContainsAny(s, ". *>\t\r\n")
}
