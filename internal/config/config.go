// Package config is Abacus's typed configuration: one struct folded from
// defaults, an optional YAML or TOML file, ABACUS_* environment variables
// and command-line flags, in that order of precedence (flags win).
//
// Every leaf setting has a dotted key (tag `key`), e.g. "http.addr". The
// same key names it in a file (http: {addr: …}), in the environment
// (ABACUS_HTTP_ADDR) and as a flag (--http-addr), so the three never drift.
package config

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/metering"
)

// Config is the whole configuration of one abacus process. It is built by
// Load and passed down; nothing reads it from a global.
type Config struct {
	// DataDir holds the SQLite database, the embedded NATS store and keys.
	DataDir string `key:"data_dir" help:"directory for all local data (SQLite, embedded NATS, keys)"`
	// Roles are the roles to run: "all" or a list such as api,outbox.
	Roles []string `key:"roles" help:"roles to run: all, or a comma list"`

	HTTP      HTTP      `key:"http"`
	Database  Database  `key:"database"`
	NATS      NATS      `key:"nats"`
	Log       Log       `key:"log"`
	Outbox    Outbox    `key:"outbox"`
	Bootstrap Bootstrap `key:"bootstrap"`
	Metering  Metering  `key:"metering"`
	SMTP      SMTP      `key:"smtp"`
	Identity  Identity  `key:"identity"`
	GC        GC        `key:"gc"`
	Push      Push      `key:"push"`
	Webhooks  Webhooks  `key:"webhooks"`
	Risk      Risk      `key:"risk"`
	Payments  Payments  `key:"payments"`
	Realtime  Realtime  `key:"realtime"`
	Blob      Blob      `key:"blob"`
	Media     Media     `key:"media"`
	Nearby    Nearby    `key:"nearby"`
	Inbound   Inbound   `key:"inbound"`
	Billing   Billing   `key:"billing"`
}

// Billing configures the billing role.
type Billing struct {
	PollInterval time.Duration `key:"poll_interval" help:"how often the billing role looks for period ends to invoice and drafts to finalize"`
}

// Blob selects the object store (images, documents): a directory under
// data_dir ("objects") unless s3_endpoint names an S3-compatible service.
type Blob struct {
	S3Endpoint      string `key:"s3_endpoint" help:"URL of an S3-compatible object store, e.g. https://s3.eu-central-1.amazonaws.com (empty: the directory data_dir/objects)"`
	S3Region        string `key:"s3_region" help:"region requests are signed for (default us-east-1)"`
	S3Bucket        string `key:"s3_bucket" help:"bucket holding the objects"`
	S3AccessKey     string `key:"s3_access_key" help:"access key id"`
	S3SecretKey     string `key:"s3_secret_key" secret:"true" help:"secret access key"`
	S3Prefix        string `key:"s3_prefix" help:"prefix before every object key, e.g. abacus/ (several deployments in one bucket)"`
	S3VirtualHosted bool   `key:"s3_virtual_hosted" help:"address the bucket as bucket.host (virtual-hosted style) instead of host/bucket"`
	S3CreateBucket  bool   `key:"s3_create_bucket" help:"create the bucket at start when it does not exist"`
}

// Media configures image sharing (the media role). Zero values take the
// defaults of internal/media.
type Media struct {
	ThumbnailPx int           `key:"thumbnail_px" help:"longest side in pixels of the thumbnail variant (default 160)"`
	MediumPx    int           `key:"medium_px" help:"longest side in pixels of the medium variant (default 640)"`
	LargePx     int           `key:"large_px" help:"longest side in pixels of the large variant (default 1600)"`
	Workers     int           `key:"workers" help:"images rendered at once per process (default: the number of CPUs)"`
	URLTTL      time.Duration `key:"url_ttl" help:"how long a signed image URL works (default 1h)"`
	SigningKey  string        `key:"signing_key" secret:"true" help:"base64 of 32 bytes signing image URLs (same on every node); empty: data_dir/media-url.key"`
	CacheMB     int           `key:"cache_mb" help:"MiB of served image variants kept in memory per process (default 64)"`
	Retention   time.Duration `key:"retention" help:"default time between deleting an image (or its owner) and erasing its bytes; tenants may set their own (default 24h)"`
}

// Nearby configures people and places nearby.
type Nearby struct {
	PrecisionM       int           `key:"precision_m" help:"metres locations are snapped to, and distances rounded to (default 200)"`
	TTL              time.Duration `key:"ttl" help:"how long an end user's location is shown after it was published (default 30m)"`
	QueriesPerMinute int           `key:"queries_per_minute" help:"nearby queries a user or key may make per minute (default 30)"`
}

// Inbound configures receiving e-documents by e-mail (the inbound-smtp
// role): each tenant's address is <token>@<domain>.
type Inbound struct {
	// SMTPAddr is where the inbound-smtp role listens for mail; empty: it
	// only finishes messages a crash left half-processed.
	SMTPAddr string `key:"smtp_addr" help:"host:port the inbound-smtp role receives supplier documents by e-mail on (e.g. 0.0.0.0:25, behind the MX of inbound.domain); empty: not listening"`
	// Domain is the mail domain of the tenants' inbound addresses.
	Domain string `key:"domain" help:"mail domain of the tenants' inbound addresses (<token>@domain); its MX must reach inbound.smtp_addr"`
	// MaxMessageBytes bounds one e-mail (announced with SIZE).
	MaxMessageBytes int64 `key:"max_message_bytes" help:"largest e-mail the inbound-smtp role accepts, in bytes"`
}

// Risk configures the risk module.
type Risk struct {
	// HashKey is the secret personal identifiers in risk events are hashed
	// under (a key per tenant is derived from it); every node needs the
	// same. Empty: a key generated in data_dir/risk.key.
	HashKey string `key:"hash_key" secret:"true" help:"base64 of 32 bytes the risk module hashes personal identifiers under (same on every node); empty: data_dir/risk.key"`
}

// Payments configures the payments module (gateways, collection).
type Payments struct {
	// EncryptionKey seals the tenants' gateway credentials at rest; empty
	// keeps a generated key in data_dir/payments.key (every node of a
	// cluster needs the same).
	EncryptionKey string `key:"encryption_key" secret:"true" help:"base64 of 32 bytes encrypting payment gateway credentials at rest; empty: a key generated in data_dir/payments.key"`
}

// Push configures Web Push (notifications/push).
type Push struct {
	// SealKey encrypts each tenant's VAPID private key at rest: base64 of
	// 32 bytes, the same on every node. Empty: a key file in data_dir
	// (push-seal.key, made on first start), which suits one node.
	SealKey string `key:"seal_key" secret:"true" help:"base64 of 32 random bytes sealing the tenants' VAPID private keys (same on every node); empty: data_dir/push-seal.key"`
	// Subject is the contact push services see in the VAPID token.
	Subject string `key:"subject" help:"VAPID contact sent to push services, mailto:… or https://…"`
}

// Realtime configures the WebSocket gateway (the realtime role). Zero
// values take the gateway's defaults (docs/realtime.md).
type Realtime struct {
	Node          string        `key:"node" help:"this node's name in connection listings (default: host name and process id)"`
	MaxFrameBytes int64         `key:"max_frame_bytes" help:"largest frame a client may send; larger closes with 1009 (default 65536)"`
	SendQueue     int           `key:"send_queue" help:"frames waiting to be written per connection before it is dropped as a slow consumer, 4009 (default 1024)"`
	RatePerSecond int           `key:"rate_per_second" help:"frames a connection may send per second (default 50)"`
	RateBurst     int           `key:"rate_burst" help:"burst of frames above rate_per_second (default 100)"`
	PingInterval  time.Duration `key:"ping_interval" help:"how often the server pings each connection (default 25s)"`
	MemberLimit   int           `key:"member_limit" help:"default and largest member limit of a group (default 10000)"`
	OfflineDelay  time.Duration `key:"offline_delay" help:"how long a message to a member with no live connection waits before it becomes a notification (default 10s)"`
	// OfflineChannels are the notification channels of offline messages.
	OfflineChannels []string `key:"offline_channels" help:"notification channels of messages to offline members: in_app, push, email (default in_app,push)"`
}

// Webhooks configures outbound webhooks (the webhooks role and routes).
type Webhooks struct {
	// AllowPrivateTargets lets endpoints reach loopback, private,
	// link-local and metadata addresses; off, they are refused when saved
	// and on every connection.
	AllowPrivateTargets bool `key:"allow_private_targets" help:"let webhook endpoints reach loopback, private and link-local addresses (tests, private networks)"`
	// EncryptionKey encrypts endpoint secrets at rest; empty keeps a generated
	// key in data_dir/webhooks.key (every node of a cluster needs the same).
	EncryptionKey       string        `key:"encryption_key" secret:"true" help:"base64 of 32 bytes encrypting webhook secrets at rest; empty: a key generated in data_dir/webhooks.key"`
	Workers             int           `key:"workers" help:"webhook deliveries in flight per process at most"`
	EndpointConcurrency int           `key:"endpoint_concurrency" help:"deliveries in flight per endpoint at most (one while it fails)"`
	Timeout             time.Duration `key:"timeout" help:"time limit of one webhook attempt"`
}

// GC tunes the Go garbage collector of abacus serve.
type GC struct {
	// HeapFloorMB is the heap size below which no collection starts (see
	// package heapfloor): a small live heap under load would otherwise be
	// collected many times a second, and each cycle slows the requests
	// beside it. Up to this much garbage is held; 0 leaves Go's default.
	HeapFloorMB int `key:"heap_floor_mb" help:"heap size in MiB below which the garbage collector does not start a cycle (0: Go's default, twice the live heap)"`
}

// HTTP configures the API server.
type HTTP struct {
	Addr            string        `key:"addr" help:"address the HTTP API listens on"`
	ReadTimeout     time.Duration `key:"read_timeout" help:"maximum time to read a request"`
	WriteTimeout    time.Duration `key:"write_timeout" help:"maximum time to write a response"`
	IdleTimeout     time.Duration `key:"idle_timeout" help:"keep-alive idle timeout"`
	ShutdownTimeout time.Duration `key:"shutdown_timeout" help:"time to finish in-flight requests on shutdown"`
	MaxBodyBytes    int64         `key:"max_body_bytes" help:"largest accepted request body"`
	CORSOrigins     []string      `key:"cors_origins" help:"origins allowed by CORS (empty: CORS off; * for any)"`
	// TrustedProxies are the reverse proxies whose forwarding header names
	// the client (for sign-in throttling and audit); from any other peer
	// the header is ignored, since a client can send anything.
	TrustedProxies []string `key:"trusted_proxies" help:"CIDRs or addresses of reverse proxies whose client_ip_header is believed (empty: the TCP peer is the client)"`
	ClientIPHeader string   `key:"client_ip_header" help:"header a trusted proxy names the client in: x-forwarded-for or forwarded (RFC 7239)"`
	// DrainDelay is how long /readyz answers 503 on SIGTERM before the
	// server stops taking connections, so load balancers stop sending
	// requests first (docs/operations.md, "Rolling upgrades").
	DrainDelay time.Duration `key:"drain_delay" help:"on shutdown, how long /readyz reports not ready while requests are still served, before the server stops accepting (0: stop at once)"`
	// IdempotencyRetention is how long a stored Idempotency-Key answers
	// retries; older keys are deleted by the outbox role and are new again.
	IdempotencyRetention time.Duration `key:"idempotency_retention" help:"how long an Idempotency-Key is kept after its first request (at least 1h); afterwards the key is new again"`
}

// Database selects the storage engine: SQLite in the data dir when URL is
// empty, PostgreSQL when URL is postgres://….
type Database struct {
	URL      string `key:"url" secret:"true" help:"postgres://… URL; empty for SQLite in the data dir"`
	MaxConns int    `key:"max_conns" help:"maximum open connections (PostgreSQL)"`
}

// NATS selects the bus: an embedded server when URL is empty, else an
// external server or cluster.
type NATS struct {
	URL    string `key:"url" secret:"true" help:"nats://… URL of an external server; empty for embedded"`
	Listen string `key:"listen" help:"host:port for the embedded server to accept clients on (default: none)"`
	// SyncAlways makes the embedded server fsync every write. Off by
	// default: an acknowledged message survives a process crash either
	// way (it is in the OS page cache); only power loss needs fsync.
	SyncAlways bool `key:"sync_always" help:"embedded server fsyncs every write"`
	// Replicas is the replication factor of the streams Abacus provisions
	// (usage, domain events, …): 3 on a three-node JetStream cluster.
	Replicas int `key:"replicas" help:"replicas of each JetStream stream Abacus creates (1 to 5; 3 on a three-node NATS cluster)"`
}

// Log configures slog output.
type Log struct {
	Level  string `key:"level" help:"debug, info, warn or error"`
	Format string `key:"format" help:"auto (text on a terminal, else JSON), text or json"`
}

// Outbox configures the relay that publishes domain events.
type Outbox struct {
	PollInterval time.Duration `key:"poll_interval" help:"how often the relay looks for unpublished events"`
	BatchSize    int           `key:"batch_size" help:"events published per round"`
}

// Bootstrap configures what the first start on empty data creates.
type Bootstrap struct {
	APIKey string `key:"api_key" secret:"true" help:"admin API key to create on empty data (default: generated and printed once)"`
	// The first owner account, for automation; without it the first start
	// prints a one-time link to the dashboard that creates one.
	AdminEmail    string `key:"admin_email" help:"e-mail of the owner account to create on empty data (with admin_password; default: print a one-time setup link)"`
	AdminPassword string `key:"admin_password" secret:"true" help:"password of that owner account (8 to 128 characters, not a common one)"`
}

// SMTP configures outgoing mail (verification, password reset,
// invitations). With no URL, messages are kept in the mail outbox that
// tenant admins read at GET /api/v1/mail-outbox.
type SMTP struct {
	URL  string `key:"url" secret:"true" help:"smtp://[user:pass@]host[:port] (STARTTLS when offered) or smtps://… (implicit TLS) of the mail server; empty keeps mail in the development inbox"`
	From string `key:"from" help:"sender address of outgoing mail"`
	// LinkBaseURL is Abacus's public URL, where links in e-mails open its
	// hosted pages unless identity.app_url sends them to an application;
	// empty means http://<http.addr>.
	LinkBaseURL string `key:"link_base_url" help:"public base URL of Abacus for links in e-mails (its hosted pages), e.g. https://billing.example.com; identity.app_url takes precedence"`
	// DocumentLinkKey signs the download_link channel's links to invoices
	// and credit notes (issue 22); every node must have the same.
	DocumentLinkKey string        `key:"document_link_key" secret:"true" help:"base64 of 32 bytes signing e-mailed document download links (same on every node); empty: data_dir/document-links.key"`
	DocumentLinkTTL time.Duration `key:"document_link_ttl" help:"how long an e-mailed document download link works (default 720h, 30 days)"`
}

// Identity configures sign-up and the links identity mails.
type Identity struct {
	// Signup says who may create an account: open (anyone; a new
	// organization each), invite_only (only with an invitation token) or
	// closed (nobody; admins' invitations still work).
	Signup string `key:"signup" help:"who may sign up: open, invite_only (with an invitation token) or closed"`
	// AppURL is the application that opens e-mailed links; empty means
	// Abacus's own hosted pages at smtp.link_base_url.
	AppURL string `key:"app_url" help:"URL of your application, where e-mailed links go ({app_url}/verify-email?token=…); empty: Abacus's own pages at smtp.link_base_url"`
}

// Metering configures the ingest and meter roles (usage events).
type Metering struct {
	Partitions     int           `key:"partitions" help:"usage bus partitions (hash of tenant and subject); every ingest and meter process must agree"`
	Linger         time.Duration `key:"linger" help:"how long an ingest batcher waits for more events while a publish is in flight"`
	MaxBatchEvents int           `key:"max_batch_events" help:"events per bus message at most (group commit)"`
	MaxBatchBytes  int           `key:"max_batch_bytes" help:"bytes per bus message at most (capped by the NATS max payload)"`
	MaxLag         int           `key:"max_lag" help:"unprocessed usage events per partition (estimated) above which ingestion answers 503 with Retry-After"`
	RoundEvents    int           `key:"round_events" help:"events a meter worker folds per database transaction at most"`
	LateWindow     time.Duration `key:"late_window" help:"how old an event's time may be when ingested"`
	MaxEvents      int           `key:"max_events" help:"events per ingestion request at most"`
	StreamMaxAge   time.Duration `key:"stream_max_age" help:"how long the bus keeps usage messages (events are also stored in the database)"`
	// MetersTenant is the tenant that Meters belong to; empty means the
	// first tenant (the one bootstrap creates on empty data).
	MetersTenant string `key:"meters_tenant" help:"tenant id the static meters (metering.meters) belong to; empty for the bootstrap tenant"`
	// Meters are static meters, read from the config file only (a list of
	// objects with the API's fields: slug, name, description, eventType,
	// aggregation, valueProperty, groupBy, filters, eventFrom). They are
	// created or updated at start and read-only through the API.
	Meters []metering.Meter `key:"meters" fileonly:"true"`
}

// Default returns the configuration used when nothing else is given.
func Default() Config {
	return Config{
		DataDir: "./data",
		Roles:   []string{"all"},
		HTTP: HTTP{
			Addr:                 "127.0.0.1:8080",
			ReadTimeout:          30 * time.Second,
			WriteTimeout:         60 * time.Second,
			IdleTimeout:          120 * time.Second,
			ShutdownTimeout:      20 * time.Second,
			MaxBodyBytes:         16 << 20,
			ClientIPHeader:       "x-forwarded-for",
			IdempotencyRetention: 24 * time.Hour,
		},
		Database: Database{MaxConns: 16},
		NATS:     NATS{Replicas: 1},
		Log:      Log{Level: "info", Format: "auto"},
		Outbox:   Outbox{PollInterval: 200 * time.Millisecond, BatchSize: 500},
		Billing:  Billing{PollInterval: 10 * time.Second},
		Metering: Metering{Partitions: 4, Linger: time.Millisecond, MaxBatchEvents: 20_000, MaxBatchBytes: 1 << 20,
			MaxLag: 100_000, RoundEvents: 20_000, LateWindow: 35 * 24 * time.Hour, MaxEvents: 10_000, StreamMaxAge: 72 * time.Hour},
		SMTP:     SMTP{From: "Abacus <no-reply@localhost>"},
		Identity: Identity{Signup: "open"},
		GC:       GC{HeapFloorMB: 64},
		Webhooks: Webhooks{Workers: 128, EndpointConcurrency: 8, Timeout: 15 * time.Second},
		Inbound:  Inbound{Domain: "localhost", MaxMessageBytes: 25 << 20},
	}
}

// Problem is one invalid setting.
type Problem struct {
	Key     string
	Value   string
	Message string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s = %q: %s", p.Key, p.Value, p.Message)
}

// Problems is every invalid setting at once.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return "invalid configuration: " + strings.Join(lines, "; ")
}

// Validate reports every invalid setting; the error is Problems.
func (c *Config) Validate() error {
	var ps Problems
	add := func(key, value, format string, args ...any) {
		ps = append(ps, Problem{Key: key, Value: value, Message: fmt.Sprintf(format, args...)})
	}
	if strings.TrimSpace(c.DataDir) == "" {
		add("data_dir", c.DataDir, "must not be empty")
	}
	if len(c.Roles) == 0 {
		add("roles", "", "name at least one role, or all")
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
		add("http.addr", c.HTTP.Addr, "must be host:port, e.g. 127.0.0.1:8080")
	}
	for key, d := range map[string]time.Duration{
		"http.read_timeout": c.HTTP.ReadTimeout, "http.write_timeout": c.HTTP.WriteTimeout,
		"http.idle_timeout": c.HTTP.IdleTimeout, "http.shutdown_timeout": c.HTTP.ShutdownTimeout,
		"outbox.poll_interval": c.Outbox.PollInterval, "webhooks.timeout": c.Webhooks.Timeout,
		"billing.poll_interval": c.Billing.PollInterval,
	} {
		if d <= 0 {
			add(key, d.String(), "must be a positive duration such as 30s")
		}
	}
	for key, n := range map[string]int64{"realtime.max_frame_bytes": c.Realtime.MaxFrameBytes, "realtime.send_queue": int64(c.Realtime.SendQueue),
		"realtime.rate_per_second": int64(c.Realtime.RatePerSecond), "realtime.rate_burst": int64(c.Realtime.RateBurst),
		"realtime.ping_interval": int64(c.Realtime.PingInterval), "realtime.member_limit": int64(c.Realtime.MemberLimit),
		"media.workers": int64(c.Media.Workers), "media.thumbnail_px": int64(c.Media.ThumbnailPx),
		"media.medium_px": int64(c.Media.MediumPx), "media.large_px": int64(c.Media.LargePx), "media.url_ttl": int64(c.Media.URLTTL), "media.cache_mb": int64(c.Media.CacheMB),
		"media.retention": int64(c.Media.Retention), "nearby.precision_m": int64(c.Nearby.PrecisionM), "nearby.ttl": int64(c.Nearby.TTL),
		"nearby.queries_per_minute": int64(c.Nearby.QueriesPerMinute), "realtime.offline_delay": int64(c.Realtime.OfflineDelay)} {
		if n < 0 {
			add(key, fmt.Sprint(n), "must not be negative (0 takes the default)")
		}
	}
	for _, ch := range c.Realtime.OfflineChannels {
		if ch != "in_app" && ch != "push" && ch != "email" {
			add("realtime.offline_channels", ch, "must be in_app, push or email")
		}
	}
	for _, p := range c.HTTP.TrustedProxies {
		if !validProxy(p) {
			add("http.trusted_proxies", p, "must be a CIDR such as 10.0.0.0/8 or an IP address")
		}
	}
	switch strings.ToLower(c.HTTP.ClientIPHeader) {
	case "x-forwarded-for", "forwarded":
	default:
		add("http.client_ip_header", c.HTTP.ClientIPHeader, "must be x-forwarded-for or forwarded")
	}
	if c.Inbound.SMTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.Inbound.SMTPAddr); err != nil {
			add("inbound.smtp_addr", c.Inbound.SMTPAddr, "must be host:port, e.g. 0.0.0.0:25")
		}
	}
	if d := c.Inbound.Domain; d == "" || strings.ContainsAny(d, "@ /:") {
		add("inbound.domain", d, "must be a mail domain such as inbound.example.com")
	}
	if c.Inbound.MaxMessageBytes < 64<<10 || c.Inbound.MaxMessageBytes > 100<<20 {
		add("inbound.max_message_bytes", fmt.Sprint(c.Inbound.MaxMessageBytes), "must be between 65536 and 104857600")
	}
	if c.HTTP.MaxBodyBytes < 1024 {
		add("http.max_body_bytes", fmt.Sprint(c.HTTP.MaxBodyBytes), "must be at least 1024")
	}
	if c.Database.URL != "" {
		u, err := url.Parse(c.Database.URL)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			add("database.url", Redact(c.Database.URL), "must be a postgres:// URL, or empty for SQLite")
		}
	}
	if c.HTTP.IdempotencyRetention < time.Hour {
		add("http.idempotency_retention", c.HTTP.IdempotencyRetention.String(), "must be at least 1h: a key must outlive every request and retry made with it (default 24h)")
	}
	if c.HTTP.DrainDelay < 0 {
		add("http.drain_delay", c.HTTP.DrainDelay.String(), "must not be negative (0 stops at once)")
	}
	if c.NATS.Replicas < 0 || c.NATS.Replicas > 5 {
		add("nats.replicas", fmt.Sprint(c.NATS.Replicas), "must be 1 to 5 (JetStream's limit; 0 means 1); 3 on a three-node cluster")
	} else if c.NATS.Replicas > 1 && c.NATS.URL == "" {
		add("nats.replicas", fmt.Sprint(c.NATS.Replicas), "the embedded server is one node: replicas above 1 need nats.url (a cluster)")
	}
	if c.Database.MaxConns < 1 {
		add("database.max_conns", fmt.Sprint(c.Database.MaxConns), "must be at least 1")
	}
	if c.NATS.URL != "" {
		for _, one := range strings.Split(c.NATS.URL, ",") {
			u, err := url.Parse(strings.TrimSpace(one))
			if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
				add("nats.url", Redact(c.NATS.URL), "must be nats://host:port (comma-separated for a cluster), or empty for the embedded server")
				break
			}
		}
		if c.NATS.Listen != "" {
			add("nats.listen", c.NATS.Listen, "only applies to the embedded server; remove it or nats.url")
		}
	}
	if c.NATS.Listen != "" {
		if _, _, err := net.SplitHostPort(c.NATS.Listen); err != nil {
			add("nats.listen", c.NATS.Listen, "must be host:port, e.g. 127.0.0.1:4222")
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", c.Log.Level, "must be debug, info, warn or error")
	}
	switch c.Log.Format {
	case "auto", "text", "json":
	default:
		add("log.format", c.Log.Format, "must be auto, text or json")
	}
	if c.Outbox.BatchSize < 1 || c.Outbox.BatchSize > 10000 {
		add("outbox.batch_size", fmt.Sprint(c.Outbox.BatchSize), "must be between 1 and 10000")
	}
	if k := c.Bootstrap.APIKey; k != "" && (!strings.HasPrefix(k, "abk_") || len(k) < 24) {
		add("bootstrap.api_key", "[redacted]", "must start with abk_ and be at least 24 characters")
	}
	if (c.Bootstrap.AdminEmail == "") != (c.Bootstrap.AdminPassword == "") {
		add("bootstrap.admin_email", c.Bootstrap.AdminEmail, "set bootstrap.admin_email and bootstrap.admin_password together, or neither")
	}
	if e := c.Bootstrap.AdminEmail; e != "" {
		if a, err := mail.ParseAddress(e); err != nil || a.Address != strings.TrimSpace(e) {
			add("bootstrap.admin_email", e, "must be a plain e-mail address such as owner@example.com")
		}
	}
	if k := c.Push.SealKey; k != "" {
		if b, err := base64.StdEncoding.DecodeString(k); err != nil || len(b) != 32 {
			add("push.seal_key", "(secret)", "must be base64 of 32 random bytes (openssl rand -base64 32)")
		}
	}
	if k := c.Risk.HashKey; k != "" {
		if b, err := base64.StdEncoding.DecodeString(k); err != nil || len(b) != 32 {
			add("risk.hash_key", "(secret)", "must be base64 of 32 random bytes (openssl rand -base64 32)")
		}
	}
	if k := c.Payments.EncryptionKey; k != "" {
		if b, err := base64.StdEncoding.DecodeString(k); err != nil || len(b) != 32 {
			add("payments.encryption_key", "(secret)", "must be base64 of 32 random bytes (openssl rand -base64 32)")
		}
	}
	if c.SMTP.URL != "" {
		if u, err := url.Parse(c.SMTP.URL); err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
			add("smtp.url", Redact(c.SMTP.URL), "must be smtp://[user:pass@]host[:port] (STARTTLS when offered) or smtps://… (implicit TLS), or empty to keep mail in the outbox")
		}
	}
	if a, err := mail.ParseAddress(c.SMTP.From); err != nil || a.Address == "" {
		add("smtp.from", c.SMTP.From, "must be an e-mail address such as Abacus <billing@example.com>")
	}
	for key, v := range map[string]string{"smtp.link_base_url": c.SMTP.LinkBaseURL, "identity.app_url": c.Identity.AppURL} {
		if u, err := url.Parse(v); v != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
			add(key, v, "must be an http(s):// URL such as https://app.example.com")
		}
	}
	switch c.Identity.Signup {
	case "open", "invite_only", "closed":
	default:
		add("identity.signup", c.Identity.Signup, "must be open, invite_only or closed")
	}
	if c.GC.HeapFloorMB < 0 || c.GC.HeapFloorMB > 1<<20 {
		add("gc.heap_floor_mb", fmt.Sprint(c.GC.HeapFloorMB), "must be between 0 (off) and 1048576 MiB")
	}
	m := &c.Metering
	for _, f := range []struct {
		key       string
		v, lo, hi int
	}{
		{"metering.partitions", m.Partitions, 1, 256}, {"metering.max_batch_events", m.MaxBatchEvents, 1, 1_000_000},
		{"metering.max_batch_bytes", m.MaxBatchBytes, 64 << 10, 64 << 20}, {"metering.max_lag", m.MaxLag, 1, 1 << 30},
		{"metering.round_events", m.RoundEvents, 1, 1_000_000}, {"metering.max_events", m.MaxEvents, 1, 1_000_000},
	} {
		if f.v < f.lo || f.v > f.hi {
			add(f.key, fmt.Sprint(f.v), "must be between %d and %d", f.lo, f.hi)
		}
	}
	for key, d := range map[string]time.Duration{"metering.linger": m.Linger, "metering.late_window": m.LateWindow, "metering.stream_max_age": m.StreamMaxAge} {
		if d <= 0 {
			add(key, d.String(), "must be a positive duration such as 1ms or 840h")
		}
	}
	if m.LateWindow > 0 && (m.LateWindow < metering.MinLateWindow || m.LateWindow > metering.MaxLateWindow) {
		add("metering.late_window", m.LateWindow.String(), "must be between %s and %s (366 days)",
			metering.FormatWindow(metering.MinLateWindow), metering.FormatWindow(metering.MaxLateWindow))
	}
	if err := metering.ValidateMeterList("metering.meters", m.Meters); err != nil {
		if e, ok := abacus.AsError(err); ok {
			for _, f := range e.Fields {
				add(f.Field, "", "%s", f.Message)
			}
		}
	}
	if len(ps) > 0 {
		return ps
	}
	return nil
}

// validProxy reports whether s is a CIDR or an IP address.
func validProxy(s string) bool {
	if _, err := netip.ParsePrefix(s); err == nil {
		return true
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// SQLitePath is the SQLite database file used when no database URL is set.
func (c *Config) SQLitePath() string { return filepath.Join(c.DataDir, "abacus.db") }

// NATSStoreDir is where the embedded NATS server keeps JetStream data.
func (c *Config) NATSStoreDir() string { return filepath.Join(c.DataDir, "nats") }

// Redact hides the password in a URL so it can be logged or printed.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "redacted")
	}
	return u.String()
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// JSONLogs reports whether logs should be JSON: format json, or auto when
// stderr is not a terminal.
func (c *Config) JSONLogs() bool {
	return c.Log.Format == "json" || (c.Log.Format == "auto" && !isTerminal(os.Stderr))
}
