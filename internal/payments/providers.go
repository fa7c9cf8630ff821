package payments

import (
	"context"
	"net/url"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// ProviderSettings configures a tenant's gateway. Secrets are sealed at rest
// and never shown again.
type ProviderSettings struct {
	SecretKey     string `json:"secret_key" doc:"the gateway's secret API key (sk_live_… or sk_test_… on Stripe); stored encrypted, never shown again"`
	WebhookSecret string `json:"webhook_secret" doc:"the signing secret of the gateway's webhook endpoint (whsec_… on Stripe)"`
	APIBase       string `json:"api_base,omitempty" doc:"the gateway's API base URL; Stripe's when omitted (tests point it at stripe-mock)"`
}

// Provider is a tenant's gateway configuration as the API shows it:
// never the secrets.
type PaymentProvider struct {
	Provider         string    `json:"provider"`
	Configured       bool      `json:"configured"`
	SecretKeyHint    string    `json:"secret_key_hint,omitempty" doc:"the last four characters of the secret key"`
	WebhookSecretSet bool      `json:"webhook_secret_set"`
	APIBase          string    `json:"api_base,omitempty"`
	WebhookURL       string    `json:"webhook_url" doc:"where to point the gateway's webhooks"`
	UpdatedAt        time.Time `json:"updated_at,omitzero"`
}

func (s *Service) webhookURL(tenant, provider string) string {
	return strings.TrimRight(s.cfg.BaseURL, "/") + "/webhooks/" + provider + "/" + tenant
}

// PutProvider sets the tenant's configuration of provider (stripe).
// Errors: "unknown_provider", "invalid_provider" naming fields.
func (s *Service) PutProvider(ctx context.Context, provider string, in ProviderSettings) (PaymentProvider, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return PaymentProvider{}, err
	}
	if err := s.knownProvider(provider); err != nil {
		return PaymentProvider{}, err
	}
	var v abacus.Validation
	in.SecretKey, in.WebhookSecret = strings.TrimSpace(in.SecretKey), strings.TrimSpace(in.WebhookSecret)
	switch {
	case len(in.SecretKey) < 8:
		v.Add("secret_key", "is required (the gateway's secret API key)")
	case len(in.SecretKey) > 500 || strings.ContainsAny(in.SecretKey, " \t\r\n"):
		v.Add("secret_key", "must be one token without spaces")
	}
	switch {
	case len(in.WebhookSecret) < 8:
		v.Add("webhook_secret", "is required (the webhook endpoint's signing secret)")
	case len(in.WebhookSecret) > 500:
		v.Add("webhook_secret", "must be at most 500 characters")
	}
	if in.APIBase != "" {
		u, err := url.Parse(in.APIBase)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			v.Add("api_base", "must be an http(s) URL such as https://api.stripe.com")
		}
	}
	if err := v.Err("invalid_provider"); err != nil {
		return PaymentProvider{}, err
	}
	now := s.now()
	ad := tenant + ":" + provider
	row := providerRow{secretKey: s.sealer.Seal(ad+":secret_key", in.SecretKey), webhookSecret: s.sealer.Seal(ad+":webhook_secret", in.WebhookSecret),
		keyHint: in.SecretKey[len(in.SecretKey)-4:], apiBase: strings.TrimRight(in.APIBase, "/"), updatedAt: now}
	if err := s.db.InTx(ctx, func(tx *db.Tx) error { return putProviderRow(ctx, tx, tenant, provider, row) }); err != nil {
		return PaymentProvider{}, err
	}
	s.mu.Lock()
	delete(s.providers, tenant+"\x00"+provider)
	s.mu.Unlock()
	return s.providerView(tenant, provider, row, true), nil
}

// GetProvider returns the tenant's configuration of provider, without
// its secrets. Errors: "unknown_provider".
func (s *Service) GetProvider(ctx context.Context, provider string) (PaymentProvider, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return PaymentProvider{}, err
	}
	if err := s.knownProvider(provider); err != nil {
		return PaymentProvider{}, err
	}
	row, ok, err := loadProviderRow(ctx, s.db, tenant, provider)
	if err != nil {
		return PaymentProvider{}, err
	}
	return s.providerView(tenant, provider, row, ok), nil
}

func (s *Service) providerView(tenant, provider string, r providerRow, ok bool) PaymentProvider {
	p := PaymentProvider{Provider: provider, Configured: ok, WebhookURL: s.webhookURL(tenant, provider)}
	if ok {
		p.SecretKeyHint, p.WebhookSecretSet, p.APIBase, p.UpdatedAt = r.keyHint, r.webhookSecret != "", r.apiBase, r.updatedAt
	}
	return p
}

// provider returns the tenant's opened configuration of provider and its
// gateway, cached for providerTTL; ok is false when the tenant has none.
func (s *Service) provider(ctx context.Context, tenant, provider string) (cachedProvider, bool, error) {
	key := tenant + "\x00" + provider
	now := time.Now()
	s.mu.Lock()
	c, hit := s.providers[key]
	factory := s.gateways[provider]
	s.mu.Unlock()
	if hit && now.Before(c.until) {
		return c, c.cfg.Provider != "", nil
	}
	row, ok, err := loadProviderRow(ctx, s.db, tenant, provider)
	if err != nil {
		return c, false, err
	}
	c = cachedProvider{until: now.Add(providerTTL)}
	if ok {
		ad := tenant + ":" + provider
		c.cfg = ProviderConfig{Provider: provider, APIBase: row.apiBase}
		if c.cfg.SecretKey, err = s.sealer.Open(ad+":secret_key", row.secretKey); err != nil {
			return c, false, err
		}
		if c.cfg.WebhookSecret, err = s.sealer.Open(ad+":webhook_secret", row.webhookSecret); err != nil {
			return c, false, err
		}
		if factory != nil {
			if c.gw, err = factory(c.cfg); err != nil {
				return c, false, err
			}
		}
	}
	s.mu.Lock()
	if len(s.providers) > 10_000 {
		clear(s.providers)
	}
	s.providers[key] = c
	s.mu.Unlock()
	return c, ok, nil
}

// WebhookSecret returns the tenant's signing secret for provider's
// webhooks; ok is false when the tenant has not configured provider. The
// gateway adapters' callback routes verify signatures with it.
func (s *Service) WebhookSecret(ctx context.Context, tenant, provider string) (string, bool, error) {
	c, ok, err := s.provider(ctx, tenant, provider)
	return c.cfg.WebhookSecret, ok && c.cfg.WebhookSecret != "", err
}

// gateway returns the tenant's gateway: the configured provider (stripe
// before fake). Errors: conflict "payment_provider_not_configured".
func (s *Service) gateway(ctx context.Context, tenant string) (Gateway, string, error) {
	for _, name := range []string{ProviderStripe, ProviderFake} {
		c, ok, err := s.provider(ctx, tenant, name)
		if err != nil {
			return nil, "", err
		}
		if ok && c.gw != nil {
			return c.gw, name, nil
		}
	}
	return nil, "", abacus.Conflict("payment_provider_not_configured",
		"no payment gateway is configured: PUT /api/v1/payment-providers/stripe with the secret key and webhook secret")
}

// knownProvider refuses a provider name no adapter is registered for
// (stripe is always known).
func (s *Service) knownProvider(provider string) error {
	s.mu.Lock()
	_, ok := s.gateways[provider]
	s.mu.Unlock()
	if ok || provider == ProviderStripe {
		return nil
	}
	return abacus.Invalid("unknown_provider", "payment provider %q is not one Abacus talks to (stripe)", provider).
		WithField("path.provider", "must be stripe")
}

// GatewayFor returns the tenant's gateway of provider; ok is false when
// the tenant has not configured it. Adapters use it to read back from
// their gateway while handling its callbacks.
func (s *Service) GatewayFor(ctx context.Context, tenant, provider string) (Gateway, bool, error) {
	c, ok, err := s.provider(ctx, tenant, provider)
	return c.gw, ok && c.gw != nil, err
}
