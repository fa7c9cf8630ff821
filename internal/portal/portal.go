package portal

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// Secret prefixes: a link's secret travels in its URL, a session's in the
// portal cookie. Only their SHA-256 is stored.
const (
	LinkSecretPrefix    = "apl_"
	SessionSecretPrefix = "aps_"
)

// Bounds of a link's life (LinkInput.TTLSeconds).
const (
	DefaultLinkTTL = time.Hour
	MinLinkTTL     = time.Minute
	MaxLinkTTL     = 7 * 24 * time.Hour
)

// Config configures the portal.
type Config struct {
	// BaseURL is where links point: BaseURL + "/portal/open#token=…".
	BaseURL string
	// SessionTTL is how long a portal session lasts after its link was
	// opened (default one hour). Revoking the link ends it sooner.
	SessionTTL time.Duration
}

func (c Config) withDefaults() Config {
	if c.SessionTTL <= 0 {
		c.SessionTTL = time.Hour
	}
	c.BaseURL = strings.TrimSuffix(c.BaseURL, "/")
	return c
}

// Service is the customer portal.
type Service struct {
	db      *db.DB
	clock   abacus.Clock
	log     *slog.Logger
	cfg     Config
	catalog *catalog.Service
	subs    *subscription.Service
	billing *billing.Service

	orgBilling OrgBilling // see SetOrgBilling
	payLinks   PayLinks   // see SetPayLinks
}

// NewService returns the portal. It reads customers, subscriptions,
// entitlements, invoices and credit notes through the given modules'
// services only.
func NewService(d *db.DB, clock abacus.Clock, log *slog.Logger, cfg Config, cat *catalog.Service,
	subs *subscription.Service, bill *billing.Service) *Service {
	return &Service{db: d, clock: clock, log: log, cfg: cfg.withDefaults(), catalog: cat, subs: subs, billing: bill}
}

func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Microsecond) }

// PortalLink is a portal link of one customer. Its URL is answered only when it
// is created (PortalLinkWithURL): the secret in it is not stored.
type PortalLink struct {
	ID         string     `json:"id"`
	CustomerID string     `json:"customer_id"`
	ReturnURL  string     `json:"return_url,omitempty"`
	CreatedBy  string     `json:"created_by"`
	ExpiresAt  time.Time  `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty" doc:"when it was last opened"`
	CreatedAt  time.Time  `json:"created_at"`
}

// PortalLinkWithURL is a new link with the URL to send the customer to: shown
// once.
type PortalLinkWithURL struct {
	PortalLink
	URL string `json:"url" doc:"open in a browser; the secret is in the fragment, shown only here"`
}

// PortalLinkInput creates a link.
type PortalLinkInput struct {
	TTLSeconds int    `json:"ttl_seconds,omitempty" doc:"how long the link can be opened (60 to 604800; default 3600)"`
	ReturnURL  string `json:"return_url,omitempty" maxLength:"2000" doc:"where the portal's back link goes (http or https); default: the portal setting"`
}

// PortalSession is an open portal session: one tenant, one customer.
type PortalSession struct {
	ID         string    `json:"id"`
	TenantID   string    `json:"tenant_id"`
	CustomerID string    `json:"customer_id"`
	LinkID     string    `json:"link_id,omitempty"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// context returns ctx carrying the session's principal: the tenant, kind
// "portal" and no scope, so no staff route accepts it.
func (sess *PortalSession) context(ctx context.Context) context.Context {
	return abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: sess.TenantID, Kind: "portal", ID: sess.ID})
}

// PortalBranding is how the portal looks for a tenant's customers.
type PortalBranding struct {
	Name         string `json:"name" required:"false" maxLength:"100" doc:"shown in the portal's header (default: Billing)"`
	LogoURL      string `json:"logo_url" required:"false" maxLength:"2000" doc:"https URL of the logo (or empty)"`
	PrimaryColor string `json:"primary_color" required:"false" doc:"#rrggbb of buttons and links"`
	AccentColor  string `json:"accent_color" required:"false" doc:"#rrggbb of the header"`
}

// PortalSettings are what a tenant's customers may do in the portal, and its
// branding.
type PortalSettings struct {
	Branding        PortalBranding `json:"branding" required:"false"`
	AllowPlanChange bool           `json:"allow_plan_change" required:"false" doc:"customers may switch to one of plans"`
	Plans           []string       `json:"plans" required:"false" doc:"keys of the plans offered for a change"`
	PlanChangeWhen  string         `json:"plan_change_when" required:"false" enum:"now,period_end" doc:"when a change takes effect: now (prorated) or period_end"`
	AllowCancel     bool           `json:"allow_cancel" required:"false" doc:"customers may cancel at the end of the period"`
	ReturnURL       string         `json:"return_url" required:"false" maxLength:"2000" doc:"the default back link of the portal"`
	UpdatedAt       *time.Time     `json:"updated_at,omitempty"`
}

// DefaultSettings is what a tenant that changed nothing gets: no plan
// change, no cancellation, the dashboard's colours.
func DefaultSettings() PortalSettings {
	return PortalSettings{Branding: PortalBranding{PrimaryColor: "#1d4ed8", AccentColor: "#0f172a"}, Plans: []string{}, PlanChangeWhen: "period_end"}
}

var colorPattern = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

func (st *PortalSettings) validate() error {
	var v abacus.Validation
	b := &st.Branding
	b.Name = strings.TrimSpace(b.Name)
	if len(b.Name) > 100 {
		v.Add("branding.name", "must be at most 100 characters")
	}
	if b.LogoURL != "" && !httpsURL(b.LogoURL) {
		v.Add("branding.logo_url", "must be an https URL")
	}
	def := DefaultSettings().Branding
	if b.PrimaryColor == "" {
		b.PrimaryColor = def.PrimaryColor
	}
	if b.AccentColor == "" {
		b.AccentColor = def.AccentColor
	}
	for _, c := range []struct{ f, v string }{{"branding.primary_color", b.PrimaryColor}, {"branding.accent_color", b.AccentColor}} {
		if !colorPattern.MatchString(c.v) {
			v.Add(c.f, "%q is not a colour such as #1d4ed8", c.v)
		}
	}
	if st.Plans == nil {
		st.Plans = []string{}
	}
	if len(st.Plans) > 50 {
		v.Add("plans", "at most 50 plans")
	}
	switch st.PlanChangeWhen {
	case "":
		st.PlanChangeWhen = "period_end"
	case "now", "period_end":
	default:
		v.Add("plan_change_when", "must be now or period_end")
	}
	if st.ReturnURL != "" && !webURL(st.ReturnURL) {
		v.Add("return_url", "must be an http or https URL")
	}
	return v.Err("invalid_portal_settings")
}

func httpsURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != ""
}

func webURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && len(s) <= 2000
}

// newSecret returns a fresh secret with prefix and its stored hash.
func newSecret(prefix string) (secret, hash string) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	secret = prefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, hashSecret(secret)
}

func hashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

var (
	errLinkInvalid = abacus.Errorf(abacus.KindUnauthorized, "portal_link_invalid",
		"this portal link is not valid, has expired or was revoked; ask for a new one")
	errNoSession = abacus.Errorf(abacus.KindUnauthorized, "portal_session_required",
		"no portal session: open the portal link you were sent")
	errSessionEnded = abacus.Errorf(abacus.KindUnauthorized, "portal_session_ended",
		"this portal session has ended; open a new portal link")
)
