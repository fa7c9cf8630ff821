package payments

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/seal"
)

// Status is the state of a payment (see the package doc).
type Status string

const (
	StatusPending    Status = "pending"    // recorded before the gateway call; not known to have happened
	StatusProcessing Status = "processing" // the gateway accepted it; money not there yet (bank debits)
	StatusSucceeded  Status = "succeeded"
	StatusFailed     Status = "failed"
	StatusCanceled   Status = "canceled"
)

// rank orders statuses: a payment only moves to a higher rank, so events
// arriving late or out of order never undo a later state (a failure
// reported after the success of the same intent changes nothing).
func (s Status) rank() int {
	switch s {
	case StatusProcessing:
		return 1
	case StatusFailed, StatusCanceled:
		return 2
	case StatusSucceeded:
		return 3
	}
	return 0
}

// DeclineKind says whether a failed payment is worth retrying.
type DeclineKind string

const (
	DeclineHard DeclineKind = "hard" // stolen, lost, closed, invalid: ask the customer for another method
	DeclineSoft DeclineKind = "soft" // insufficient funds, try again later, network: retry
)

// hardDeclines are the gateway decline codes no retry fixes (Stripe's
// names; other adapters map theirs onto them).
var hardDeclines = map[string]bool{
	"stolen_card": true, "lost_card": true, "pickup_card": true, "restricted_card": true, "fraudulent": true,
	"merchant_blacklist": true, "invalid_account": true, "account_closed": true, "expired_card": true,
	"incorrect_number": true, "invalid_number": true, "card_not_supported": true, "currency_not_supported": true,
	"new_account_information_available": true, "revocation_of_authorization": true, "revocation_of_all_authorizations": true,
	"stop_payment_order": true, "transaction_not_allowed": true, "security_violation": true, "no_payment_method": true,
}

// DeclineKindOf classifies a decline code: hard for the codes no retry
// fixes, soft for every other (and for an empty code).
func DeclineKindOf(code string) DeclineKind {
	if hardDeclines[code] {
		return DeclineHard
	}
	return DeclineSoft
}

// Provider names.
const (
	ProviderStripe = "stripe"
	ProviderManual = "manual"
	ProviderFake   = "fake"
)

// Collection methods of a customer.
const (
	ChargeAutomatically = "charge_automatically"
	SendInvoice         = "send_invoice"
)

// Config configures the payments module. Zero values take the defaults.
type Config struct {
	// EncryptionKey seals gateway credentials at rest (32 bytes).
	EncryptionKey []byte
	// BaseURL is Abacus's public URL, where the hosted "pay this invoice"
	// links point.
	BaseURL string
	// PayLinkTTL is how long a signed pay link stays valid.
	PayLinkTTL time.Duration
	// DefaultCollection is the collection method of a customer that has
	// none set.
	DefaultCollection string
}

func (c Config) withDefaults() Config {
	if c.PayLinkTTL <= 0 {
		c.PayLinkTTL = 30 * 24 * time.Hour
	}
	if c.DefaultCollection == "" {
		c.DefaultCollection = ChargeAutomatically
	}
	return c
}

// Service is the payments module.
type Service struct {
	db       *db.DB
	clock    abacus.Clock
	log      *slog.Logger
	cfg      Config
	billing  *billing.Service
	sealer   *seal.Sealer
	linkKey  []byte
	gateways map[string]GatewayFactory

	mu        sync.Mutex
	providers map[string]cachedProvider // tenant + "\x00" + provider

	gw [maxLanes]gwQueue
}

type cachedProvider struct {
	cfg   ProviderConfig
	gw    Gateway
	until time.Time
}

// providerTTL bounds how long an opened provider configuration is kept in
// memory; a PUT on this node drops it at once.
const providerTTL = 5 * time.Second

// NewService returns the payments service over billing's invoices.
func NewService(d *db.DB, clock abacus.Clock, log *slog.Logger, cfg Config, bill *billing.Service) (*Service, error) {
	cfg = cfg.withDefaults()
	s, err := seal.New(cfg.EncryptionKey)
	if err != nil {
		return nil, fmt.Errorf("payments.encryption_key: %w", err)
	}
	mac := hmac.New(sha256.New, cfg.EncryptionKey)
	mac.Write([]byte("abacus payments pay links"))
	return &Service{db: d, clock: clock, log: log, cfg: cfg, billing: bill, sealer: s, linkKey: mac.Sum(nil),
		gateways: map[string]GatewayFactory{}, providers: map[string]cachedProvider{}}, nil
}

// RegisterGateway makes provider name available to tenants that configure
// it (app wiring registers stripe; tests register paytest.Fake).
func (s *Service) RegisterGateway(name string, f GatewayFactory) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gateways[name] = f
	s.providers = map[string]cachedProvider{}
}

func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Microsecond) }

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := abacus.AsError(err); ok {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

func tenantCtx(ctx context.Context, tenant string) context.Context {
	return abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: tenant, Kind: "system", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
}

func dec(s string) decimal.Decimal {
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Zero
	}
	return d
}
