// Package media is image sharing: end users (and tenants' backends)
// upload JPEG, PNG, WebP and GIF images, detected from their content and
// bounded by the tenant's limits before any pixel is decoded; a bounded
// worker pool renders each image once, off the request path, into an
// original without metadata and three variants (thumbnail, medium,
// large); clients fetch the quality they need through signed, expiring
// URLs that only members of the image's conversation (or, for an image
// outside conversations, anyone in the tenant) are given.
//
// A file (media_files) is one image's bytes in a tenant, by the SHA-256
// of the upload: the same bytes uploaded twice are stored and rendered
// once. A medium (media) is one upload of a file, with its owner and
// conversation.
//
//	upload ──▶ pending ──(every rendition durable)──▶ ready
//	              │  crash: still pending, rendered again on start
//	              └─ unreadable image: the upload is refused, nothing kept
//
// Bytes live in the object store (internal/blob) under
// media/<tenant>/<hash>/<rendition>; the database keeps the metadata.
package media

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/blob"
	"github.com/abacusbilling/abacus/internal/db"
)

// Image is one uploaded image as the API shows it.
type Image struct {
	ID             string            `json:"id" example:"med_01JD0000000000000000000000"`
	ContentType    string            `json:"content_type" example:"image/jpeg" doc:"of the variants (the original of a GIF stays image/gif)"`
	Format         string            `json:"format" enum:"jpeg,png,gif,webp" doc:"the uploaded format, detected from the content"`
	Width          int               `json:"width" example:"4000" doc:"of the original, orientation applied"`
	Height         int               `json:"height" example:"3000"`
	Bytes          int64             `json:"bytes" doc:"size of the upload"`
	Status         string            `json:"status" enum:"pending,ready" doc:"pending until every variant is stored; the URLs answer 409 media_processing until then"`
	OwnerID        string            `json:"owner_id,omitempty" doc:"the end user who uploaded it (or for whom the backend did)"`
	ConversationID string            `json:"conversation_id,omitempty" doc:"only this conversation's members may fetch it"`
	Variants       map[string]string `json:"variants" doc:"thumbnail, medium, large and original: signed URLs, valid until expires_at"`
	ExpiresAt      time.Time         `json:"expires_at" doc:"when the signed URLs stop working"`
	CreatedAt      time.Time         `json:"created_at"`
}

// Rendition metadata kept with a file.
type renditionMeta struct {
	ContentType string `json:"content_type"`
	Width       int    `json:"width"`
	Height      int    `json:"height"`
	Bytes       int64  `json:"bytes"`
	ETag        string `json:"etag"`
}

// file is a row of media_files.
type file struct {
	Hash          string
	Status        string
	Format        Format
	Width, Height int
	Frames        int
	UploadBytes   int64
	StoredBytes   int64
	Renditions    map[string]renditionMeta
	Attempts      int
	UpdatedAt     time.Time
}

// Members is the membership read API of conversations (realtime).
type Members interface {
	// IsMember reports whether user is a member of conversation in the
	// tenant on ctx; a conversation that does not exist has no members.
	IsMember(ctx context.Context, conversation, user string) (bool, error)
}

// Usage is bytes stored or served, for Abacus's own metering.
type Usage struct {
	ID      string // unique per usage, so a retry is counted once
	Type    string // EventStored or EventServed
	Subject string // the end user, or "tenant" when none
	Bytes   int64  // negative for stored bytes freed
	Time    time.Time
}

// Usage event types a tenant can define meters on (sum of $.bytes).
const (
	EventStored = "media.stored_bytes"
	EventServed = "media.served_bytes"
)

// Meter records usage events (the metering pipeline).
type Meter interface {
	Record(ctx context.Context, tenant string, us []Usage) error
}

// Config configures the service. Zero fields take defaults.
type Config struct {
	Sizes   Sizes
	Workers int // renderings at once (default: the number of CPUs)
	Queue   int // renderings waiting (default 64); more stay pending for the sweeper
	// URLTTL is how long a signed URL works (default 1h).
	URLTTL time.Duration
	// SigningKey signs URLs (HMAC-SHA256); every node needs the same.
	// Empty: a random key (one node; URLs die with the process).
	SigningKey []byte
	// BaseURL prefixes the URLs (e.g. https://api.example.com); empty
	// gives paths.
	BaseURL string
	// Wait is how long an upload waits for its variants before
	// answering pending (default 20s).
	Wait time.Duration
	// CacheBytes bounds the in-memory cache of served renditions
	// (default 64 MiB).
	CacheBytes int64
	// Lease is how long a pending file may go untouched before a
	// sweeper renders it again (default 30s).
	Lease time.Duration
	// Retention is the default window between a deletion and the bytes
	// going (default 24h); a tenant may set its own.
	Retention time.Duration
}

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	if c.Sizes == (Sizes{}) {
		c.Sizes = DefaultSizes
	}
	if c.Workers <= 0 {
		c.Workers = runtime.NumCPU()
	}
	if c.Queue <= 0 {
		c.Queue = 64
	}
	if c.URLTTL <= 0 {
		c.URLTTL = time.Hour
	}
	if len(c.SigningKey) == 0 {
		c.SigningKey = make([]byte, 32)
		_, _ = rand.Read(c.SigningKey)
	}
	if c.Wait <= 0 {
		c.Wait = 20 * time.Second
	}
	if c.CacheBytes <= 0 {
		c.CacheBytes = 64 << 20
	}
	if c.Lease <= 0 {
		c.Lease = 30 * time.Second
	}
	if c.Retention <= 0 {
		c.Retention = 24 * time.Hour
	}
	return c
}

// Validate names the first bad field.
func (c Config) Validate() error {
	s := c.Sizes
	if s != (Sizes{}) && (s.Thumbnail <= 0 || s.Medium <= s.Thumbnail || s.Large <= s.Medium) {
		return fmt.Errorf("media.variant_sizes: %d,%d,%d must grow from thumbnail to large", s.Thumbnail, s.Medium, s.Large)
	}
	if len(c.SigningKey) > 0 && len(c.SigningKey) < 16 {
		return errors.New("media.signing_key: must be at least 16 bytes")
	}
	return nil
}

// Service is the media module.
type Service struct {
	db    *db.DB
	blobs blob.Store
	clock abacus.Clock
	log   *slog.Logger
	cfg   Config

	members Members
	meter   Meter

	jobs     chan *job
	mu       sync.Mutex
	inflight map[string]*job // tenant/hash → its rendering
	cache    *cache
	served   *servedCounter
}

// New returns a media service storing bytes in blobs. members may be nil
// (then only owners and staff see conversation media); meter may be nil.
func New(d *db.DB, blobs blob.Store, clock abacus.Clock, log *slog.Logger, cfg Config, members Members, meter Meter) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	return &Service{db: d, blobs: blobs, clock: clock, log: log, cfg: cfg, members: members, meter: meter,
		jobs: make(chan *job, cfg.Queue), inflight: map[string]*job{},
		cache: newCache(cfg.CacheBytes), served: newServedCounter()}, nil
}

func blobKey(tenant, hash, name string) string { return "media/" + tenant + "/" + hash + "/" + name }
