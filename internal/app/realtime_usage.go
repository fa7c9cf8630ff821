package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/metering"
	"github.com/abacusbilling/abacus/internal/metering/usage"
	"github.com/abacusbilling/abacus/internal/realtime"
)

// Messages are metered through Abacus's own metering (docs/realtime.md,
// Metering and the message cap): one usage event per accepted message,
// source abacus/realtime, type realtime.message, subject the sender, id
// <conversation>:<seq> (a message is counted once, whatever retries).
const (
	messageEventSource = "abacus/realtime"
	messageEventType   = "realtime.message"
	// messageFlushEvery is how long an accepted message's usage event may
	// wait to be sent with others: the send path never waits for metering.
	messageFlushEvery = 100 * time.Millisecond
	// messageBacklog bounds the events kept while metering refuses them;
	// past it the oldest are dropped (and logged).
	messageBacklog = 1 << 20
)

// messageUsage batches the usage events of accepted messages and sends
// them to metering's ingester off the send path.
type messageUsage struct {
	in    *usage.Ingester
	log   *slog.Logger
	mu    sync.Mutex
	buf   []metering.Event
	drops int
}

// newMessageUsage starts the ingester the realtime role meters through
// (the usage stream, as the media role does).
func (a *App) newMessageUsage(ctx context.Context) (*messageUsage, error) {
	m := a.Config.Metering
	in, err := usage.NewIngester(ctx, a.Bus, usage.IngestConfig{Partitions: m.Partitions, Linger: m.Linger,
		MaxBatchEvents: m.MaxBatchEvents, MaxBatchBytes: m.MaxBatchBytes, MaxLag: m.MaxLag, StreamMaxAge: m.StreamMaxAge,
	}, a.Clock, a.Log.With("role", "realtime"), prometheus.NewRegistry())
	if err != nil {
		return nil, fmt.Errorf("realtime: the usage ingester: %w", err)
	}
	return &messageUsage{in: in, log: a.Log.With("module", "realtime", "component", "usage")}, nil
}

// sent queues the usage event of a stored message (the Sent hook).
func (u *messageUsage) sent(tenant string, s realtime.Sent) {
	data, _ := json.Marshal(struct {
		ConversationID string `json:"conversation_id"`
		Recipients     int    `json:"recipients"`
	}{s.Message.ConversationID, max(len(s.Members)-1, 0)})
	e := metering.Event{TenantID: tenant, ID: s.Message.ConversationID + ":" + strconv.FormatInt(s.Message.Seq, 10),
		Source: messageEventSource, SpecVersion: "1.0", Type: messageEventType, Subject: s.Message.SenderID,
		Time: s.Message.SentAt.UTC(), DataContentType: "application/json", Data: data, ReceivedAt: time.Now()}
	u.mu.Lock()
	if len(u.buf) >= messageBacklog {
		u.buf = u.buf[1:]
		u.drops++
	}
	u.buf = append(u.buf, e)
	u.mu.Unlock()
}

// run sends the queued events every messageFlushEvery until ctx ends,
// then once more; what metering refuses is sent again with the same ids
// (metering counts an id once).
func (u *messageUsage) run(ctx context.Context) {
	go func() { _ = u.in.Run(ctx) }()
	t := time.NewTicker(messageFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			u.flush(fctx)
			cancel()
			return
		case <-t.C:
			u.flush(ctx)
		}
	}
}

func (u *messageUsage) flush(ctx context.Context) {
	u.mu.Lock()
	events, drops := u.buf, u.drops
	u.buf, u.drops = nil, 0
	u.mu.Unlock()
	if drops > 0 {
		u.log.Error("realtime: message usage events dropped: metering refused them for too long", "dropped", drops)
	}
	if len(events) == 0 {
		return
	}
	if err := u.in.Submit(ctx, events); err != nil {
		u.log.Warn("realtime: sending message usage to metering; kept for the next round", "events", len(events), "err", err)
		u.mu.Lock()
		u.buf = append(events, u.buf...)
		u.mu.Unlock()
	}
}

// messageCap refuses a send when the plan of a customer the sender is
// billed through caps messages per period (feature realtime.FeatureMessages,
// metered) and the period's usage has reached the cap. The customers: the
// one owning the sender's id as a usage subject, and, for an end user,
// their organizations'. Answers are cached briefly per sender, so the
// cap may be passed by the messages of that moment and of metering's lag.
type messageCap struct {
	a   *App
	ttl time.Duration

	mu      sync.Mutex
	cache   map[[2]string]capAnswer
	tenants map[string]time.Time // tenants without the feature, until when
}

type capAnswer struct {
	err   error // nil: may send
	until time.Time
}

func newMessageCap(a *App) *messageCap {
	return &messageCap{a: a, ttl: time.Second, cache: map[[2]string]capAnswer{}, tenants: map[string]time.Time{}}
}

// check is the BeforeSend hook's part: nil or a message_quota_exceeded
// error.
func (c *messageCap) check(ctx context.Context, tenant, user string) error {
	key, now := [2]string{tenant, user}, time.Now()
	c.mu.Lock()
	ans, ok := c.cache[key]
	none := now.Before(c.tenants[tenant])
	c.mu.Unlock()
	if none {
		return nil
	}
	if ok && now.Before(ans.until) {
		return ans.err
	}
	ctx = tenantCtx(ctx, tenant)
	if has, err := c.tenantHasFeature(ctx, tenant, now); err != nil || !has {
		return err
	}
	err := c.decide(ctx, user)
	if e, ok := abacus.AsError(err); err != nil && (!ok || e.Code != "message_quota_exceeded") {
		return err // a failure to read is not cached
	}
	c.mu.Lock()
	if len(c.cache) >= 100_000 {
		clear(c.cache) // bounded; an answer costs a few cached reads
	}
	c.cache[key] = capAnswer{err: err, until: now.Add(c.ttl)}
	c.mu.Unlock()
	return err
}

// tenantHasFeature reports whether the tenant defined the feature; a
// tenant without it is not asked again for 10 s (most tenants: no cap,
// no read per send).
func (c *messageCap) tenantHasFeature(ctx context.Context, tenant string, now time.Time) (bool, error) {
	_, err := c.a.modules().catalog.GetFeature(ctx, realtime.FeatureMessages)
	if abacus.ErrorKind(err) == abacus.KindNotFound {
		c.mu.Lock()
		if len(c.tenants) >= 100_000 {
			clear(c.tenants)
		}
		c.tenants[tenant] = now.Add(10 * time.Second)
		c.mu.Unlock()
		return false, nil
	}
	return err == nil, err
}

func (c *messageCap) decide(ctx context.Context, user string) error {
	ids, err := c.customersOf(ctx, user)
	if err != nil {
		return err
	}
	for _, id := range ids {
		e, err := c.a.modules().subs.Check(ctx, id, realtime.FeatureMessages)
		if abacus.ErrorKind(err) == abacus.KindNotFound {
			continue // the tenant has no such feature, or no such customer
		}
		if err != nil {
			return fmt.Errorf("checking %s of %s: %w", realtime.FeatureMessages, id, err)
		}
		if e.Kind == catalog.FeatureMetered && !e.HasAccess && e.Limit != nil {
			msg := fmt.Sprintf("the plan allows %s messages per period and %s were sent", e.Limit, e.Used)
			if e.PeriodEnd != nil {
				msg += "; sending resumes at " + e.PeriodEnd.UTC().Format(time.RFC3339)
			}
			return abacus.Errorf(abacus.KindRateLimited, "message_quota_exceeded", "%s", msg)
		}
	}
	return nil
}

// customersOf returns the customers user's messages are billed to.
func (c *messageCap) customersOf(ctx context.Context, user string) ([]string, error) {
	var ids []string
	cus, err := c.a.modules().catalog.CustomerBySubject(ctx, user)
	switch {
	case err == nil:
		ids = append(ids, cus.ID)
	case abacus.ErrorKind(err) != abacus.KindNotFound:
		return nil, err
	}
	if strings.HasPrefix(user, "eu_") {
		ms, err := c.a.Organizations().Mine(ctx, user)
		if err != nil {
			return nil, fmt.Errorf("reading the organizations of %s: %w", user, err)
		}
		for _, m := range ms {
			ids = append(ids, m.CustomerID)
		}
	}
	return ids, nil
}
