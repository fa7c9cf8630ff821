package app

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/blob"
	"github.com/abacusbilling/abacus/internal/enduser"
	"github.com/abacusbilling/abacus/internal/media"
	"github.com/abacusbilling/abacus/internal/metering"
	"github.com/abacusbilling/abacus/internal/metering/usage"
	"github.com/abacusbilling/abacus/internal/nearby"
	"github.com/abacusbilling/abacus/internal/outbox"
	"github.com/abacusbilling/abacus/internal/realtime"
	"github.com/abacusbilling/abacus/internal/seal"
	"github.com/abacusbilling/abacus/internal/service"
)

// objects is the object store every module shares (blob.*), opened once.
type objects struct {
	once  sync.Once
	store blob.Store
	err   error
}

func (a *App) objects(ctx context.Context) (blob.Store, error) {
	o := &a.objs
	o.once.Do(func() {
		c := a.Config.Blob
		o.store, o.err = blob.Open(ctx, blob.Config{Dir: blob.DirUnder(a.Config.DataDir), S3: blob.S3Config{
			Endpoint: c.S3Endpoint, Region: c.S3Region, Bucket: c.S3Bucket, AccessKey: c.S3AccessKey, SecretKey: c.S3SecretKey,
			Prefix: c.S3Prefix, VirtualHosted: c.S3VirtualHosted, CreateBucket: c.S3CreateBucket,
		}})
	})
	return o.store, o.err
}

// mediaRole builds the media role: its routes, the rendering pool and
// sweeper, the usage it meters (through its own ingester into the usage
// stream) and the consumer erasing a deleted end user's images.
func mediaRole(ctx context.Context, a *App) (service.Service, error) {
	store, err := a.objects(ctx)
	if err != nil {
		return nil, err
	}
	c := a.Config.Media
	key, err := seal.LoadOrCreateKey(c.SigningKey, a.Config.DataDir, "media-url.key", "media.signing_key")
	if err != nil {
		return nil, err
	}
	m := a.Config.Metering
	in, err := usage.NewIngester(ctx, a.Bus, usage.IngestConfig{Partitions: m.Partitions, Linger: m.Linger,
		MaxBatchEvents: m.MaxBatchEvents, MaxBatchBytes: m.MaxBatchBytes, MaxLag: m.MaxLag, StreamMaxAge: m.StreamMaxAge,
	}, a.Clock, a.Log.With("role", "media"), prometheus.NewRegistry())
	if err != nil {
		return nil, err
	}
	svc, err := media.New(a.DB, store, a.Clock, a.Log.With("module", "media"), media.Config{
		Sizes:   media.Sizes{Thumbnail: c.ThumbnailPx, Medium: c.MediumPx, Large: c.LargePx},
		Workers: c.Workers, URLTTL: c.URLTTL, SigningKey: key, BaseURL: a.Config.SMTP.LinkBaseURL,
		CacheBytes: int64(c.CacheMB) << 20, Retention: c.Retention,
	}, a.realtime(), usageMeter{in: in, clock: a.Clock})
	if err != nil {
		return nil, err
	}
	a.mediaSvc = svc
	media.RegisterRoutes(a.HTTP, svc)
	return service.NewFunc("media", func(ctx context.Context) error {
		var wg sync.WaitGroup
		wg.Go(func() { _ = in.Run(ctx) })
		wg.Go(func() { a.consumeEndUserDeletions(ctx, svc) })
		wg.Go(func() { a.consumeMessageDeletions(ctx, svc) })
		defer wg.Wait()
		return svc.Run(ctx)
	}), nil
}

// usageMeter sends media usage to metering as usage events (source
// abacus/media, data {"bytes": n}); a tenant bills or caps them with
// meters on media.stored_bytes and media.served_bytes (sum of $.bytes,
// grouped by subject = the end user).
type usageMeter struct {
	in    *usage.Ingester
	clock abacus.Clock
}

func (u usageMeter) Record(ctx context.Context, tenant string, us []media.Usage) error {
	events := make([]metering.Event, 0, len(us))
	now := u.clock.Now()
	for _, x := range us {
		data, _ := json.Marshal(map[string]int64{"bytes": x.Bytes})
		events = append(events, metering.Event{TenantID: tenant, ID: x.ID, Source: "abacus/media", SpecVersion: "1.0", Type: x.Type,
			Subject: x.Subject, Time: x.Time.UTC(), DataContentType: "application/json", Data: data, ReceivedAt: now})
	}
	return u.in.Submit(ctx, events)
}

// mediaConsumer is the durable consumer of end_user.deleted.
const mediaConsumer = "media"

// consumeEndUserDeletions deletes the images of deleted end users (their
// bytes go after the retention window), once per event, until ctx ends.
// A new consumer starts at the deletions from now on.
func (a *App) consumeEndUserDeletions(ctx context.Context, svc *media.Service) {
	_ = outbox.Consume(ctx, a.Bus, outbox.Subscription{
		Durable: mediaConsumer, Types: []string{enduser.Deleted.Type().Name}, Since: time.Now(), AckWait: time.Minute,
		Log: a.Log.With("module", "media"),
	}, func(ctx context.Context, e outbox.Event) error {
		ev, err := enduser.Deleted.Decode(e.Payload)
		if err != nil {
			a.Log.Error("media: skipping an unreadable end_user.deleted", "event_id", e.ID, "err", err)
			return nil
		}
		// Idempotent: only images not yet deleted are marked.
		return svc.DeleteOwnedBy(ctx, e.TenantID, ev.EndUserID)
	})
}

// mediaMessagesConsumer is the durable consumer of message.deleted.
const mediaMessagesConsumer = "media-messages"

// consumeMessageDeletions deletes the images a deleted message carried
// (those its sender uploaded; their bytes go after the retention window),
// once per event, until ctx ends. An attachment names its image by a
// media URL or data.media_id.
func (a *App) consumeMessageDeletions(ctx context.Context, svc *media.Service) {
	_ = outbox.Consume(ctx, a.Bus, outbox.Subscription{
		Durable: mediaMessagesConsumer, Types: []string{realtime.MessageDeleted.Type().Name}, Since: time.Now(), AckWait: time.Minute,
		Log: a.Log.With("module", "media"),
	}, func(ctx context.Context, e outbox.Event) error {
		ev, err := realtime.MessageDeleted.Decode(e.Payload)
		if err != nil {
			a.Log.Error("media: skipping an unreadable message.deleted", "event_id", e.ID, "err", err)
			return nil
		}
		var ids []string
		for _, at := range ev.Attachments {
			if id, _ := at.Data["media_id"].(string); id != "" {
				ids = append(ids, id)
			} else if id := media.IDFromURL(at.URL); id != "" {
				ids = append(ids, id)
			}
		}
		// Idempotent: only images not yet deleted are marked.
		return svc.DeleteAttached(ctx, e.TenantID, ev.SenderID, ids)
	})
}

// registerNearby adds the nearby routes (people and places) to the API;
// end users are checked through the end-user directory.
func registerNearby(a *App) {
	c := a.Config.Nearby
	svc := nearby.New(a.DB, a.Clock, a.Log.With("module", "nearby"), nearby.Config{PrecisionM: c.PrecisionM, TTL: c.TTL,
		QueriesPerMinute: c.QueriesPerMinute}, endUserDirectory{a.EndUsers()})
	nearby.RegisterRoutes(a.HTTP, svc)
}

// endUserDirectory adapts enduser to nearby.Users.
type endUserDirectory struct{ eu *enduser.Service }

func (d endUserDirectory) Exists(ctx context.Context, id string) error {
	_, err := d.eu.User(ctx, id)
	return err
}
