package analytics

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/money"
)

// FX-converted totals (docs/analytics.md, "Converted totals"). Every
// figure is kept and answered in its own currency; a tenant may supply
// exchange rates, and a series asked with convert_to then carries, beside
// the per-currency points, one point per interval in that currency,
// marked converted and naming the rates and the rounding it used. Nothing
// is converted without being asked, and a currency without a rate is an
// error, never left out.

// FXRate converts amounts in From into To: 1 From = Rate To.
type FXRate struct {
	From string          `json:"from" doc:"ISO 4217 code of the figures converted"`
	To   string          `json:"to" doc:"ISO 4217 code of the converted total"`
	Rate decimal.Decimal `json:"rate" doc:"units of to per unit of from: positive, at most 12 decimal places, below 1,000,000,000"`
}

// FXRates are a tenant's exchange rates for converted totals.
type FXRates struct {
	Rounding  money.Rounding `json:"rounding" enum:"half_up,half_even,up,down" doc:"how a converted total is rounded: once, after the exact products are summed"`
	Rates     []FXRate       `json:"rates"`
	UpdatedAt *time.Time     `json:"updated_at,omitempty" doc:"when they were last replaced; absent when the tenant has none"`
}

// FXRatesInput replaces a tenant's exchange rates.
type FXRatesInput struct {
	Rounding money.Rounding `json:"rounding,omitempty" enum:"half_up,half_even,up,down" doc:"default half_up"`
	Rates    []FXRate       `json:"rates" maxItems:"500" doc:"each (from, to) at most once; an empty list removes every rate"`
}

// maxRate bounds a rate (a typo guard: no real currency pair is near it).
var maxRate = decimal.NewFromInt(1_000_000_000)

// maxRatePlaces bounds a rate's decimal places.
const maxRatePlaces = 12

// validate checks in. Errors: "invalid_fx_rates" naming each field.
func (in *FXRatesInput) validate() error {
	var v abacus.Validation
	in.Rounding = in.Rounding.OrDefault()
	if err := in.Rounding.Validate("rounding"); err != nil {
		v.Add("rounding", "unknown rounding %q; use half_up, half_even, up or down", in.Rounding)
	}
	if len(in.Rates) > 500 {
		v.Add("rates", "has %d rates; at most 500 are allowed", len(in.Rates))
	}
	seen := map[[2]string]int{}
	for i := range in.Rates {
		r := &in.Rates[i]
		field := func(name string) string { return fmt.Sprintf("rates[%d].%s", i, name) }
		for _, c := range []struct {
			name string
			code *string
		}{{"from", &r.From}, {"to", &r.To}} {
			cur, err := money.LookupCurrency(*c.code)
			if err != nil {
				v.Add(field(c.name), "unknown currency %q; use an ISO 4217 code such as EUR or USD", *c.code)
				continue
			}
			*c.code = cur.Code
		}
		switch {
		case r.From == r.To:
			v.Add(field("to"), "converts %s into itself; its rate is always 1", r.From)
		case !r.Rate.IsPositive():
			v.Add(field("rate"), "must be positive, not %s", r.Rate)
		case r.Rate.Exponent() < -maxRatePlaces:
			v.Add(field("rate"), "%s has more than %d decimal places", r.Rate, maxRatePlaces)
		case !r.Rate.LessThan(maxRate):
			v.Add(field("rate"), "%s is not below 1,000,000,000", r.Rate)
		}
		k := [2]string{r.From, r.To}
		if j, dup := seen[k]; dup {
			v.Add(field("from"), "a second rate from %s to %s (the first is rates[%d])", r.From, r.To, j)
		}
		seen[k] = i
	}
	return v.Err("invalid_fx_rates")
}

// PutFXRates replaces the tenant's exchange rates with in's. Errors:
// "invalid_fx_rates" naming each bad field.
func (s *Service) PutFXRates(ctx context.Context, in FXRatesInput) (FXRates, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return FXRates{}, err
	}
	if err := in.validate(); err != nil {
		return FXRates{}, err
	}
	rates := in.Rates
	if rates == nil {
		rates = []FXRate{}
	}
	sort.Slice(rates, func(i, j int) bool {
		return rates[i].From+rates[i].To < rates[j].From+rates[j].To
	})
	body, err := json.Marshal(rates)
	if err != nil {
		return FXRates{}, err
	}
	now := s.clock.Now().UTC()
	if _, err := s.db.ExecContext(ctx, `INSERT INTO analytics_fx_rates (tenant_id, rounding, rates, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (tenant_id) DO UPDATE SET rounding = excluded.rounding, rates = excluded.rates, updated_at = excluded.updated_at`,
		tenant, string(in.Rounding), string(body), db.TimeOf(now)); err != nil {
		return FXRates{}, fmt.Errorf("saving FX rates: %w", err)
	}
	return FXRates{Rounding: in.Rounding, Rates: rates, UpdatedAt: &now}, nil
}

// FXRates returns the tenant's exchange rates (none, rounding half_up,
// when it has set none).
func (s *Service) FXRates(ctx context.Context) (FXRates, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return FXRates{}, err
	}
	out := FXRates{Rounding: money.RoundHalfUp, Rates: []FXRate{}}
	var rounding, body string
	var at db.Time
	err = s.db.QueryRowContext(ctx, `SELECT rounding, rates, updated_at FROM analytics_fx_rates WHERE tenant_id = $1`, tenant).
		Scan(&rounding, &body, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("reading FX rates: %w", err)
	}
	if err := json.Unmarshal([]byte(body), &out.Rates); err != nil {
		return out, fmt.Errorf("reading FX rates: %w", err)
	}
	t := at.UTC()
	out.Rounding, out.UpdatedAt = money.Rounding(rounding), &t
	return out, nil
}

// converter sums one interval's figures in several currencies into one.
type converter struct {
	to       string
	places   int32 // to's minor unit
	rates    map[string]decimal.Decimal
	rounding money.Rounding
	label    string // the rates used, FROM:rate joined by ";"
}

// converterTo returns the converter of the tenant's rates into to for
// figures in currencies. Errors: "fx_rate_missing" (field convert_to)
// naming every currency without a rate into to.
func (s *Service) converterTo(ctx context.Context, to string, currencies []string) (*converter, error) {
	fx, err := s.FXRates(ctx)
	if err != nil {
		return nil, err
	}
	cur, err := money.LookupCurrency(to)
	if err != nil {
		return nil, err
	}
	c := &converter{to: to, places: cur.Exponent, rates: map[string]decimal.Decimal{to: decimal.NewFromInt(1)}, rounding: fx.Rounding.OrDefault()}
	for _, r := range fx.Rates {
		if r.To == to {
			c.rates[r.From] = r.Rate
		}
	}
	var missing, used []string
	for _, from := range currencies {
		r, ok := c.rates[from]
		if !ok {
			missing = append(missing, from)
			continue
		}
		used = append(used, from+":"+r.String())
	}
	if len(missing) > 0 {
		var v abacus.Validation
		v.Add("convert_to", "no FX rate from %s to %s: set one with PUT /api/v1/analytics/fx-rates, or leave convert_to out",
			strings.Join(missing, ", "), to)
		return nil, v.Err("fx_rate_missing")
	}
	c.label = strings.Join(used, ";")
	return c, nil
}

// sum converts the amounts (one per currency) and adds them: each product
// is exact; the sum is rounded once, to places, with the tenant's
// rounding.
func (c *converter) sum(places int32, amounts map[string]decimal.Decimal) decimal.Decimal {
	total := decimal.Zero
	for cur, a := range amounts {
		total = total.Add(a.Mul(c.rates[cur]))
	}
	return money.RoundTo(total, places, c.rounding)
}

// convertBuckets groups bs (per currency, each over the same spans) by
// span and sums each span's figures into c.to; get picks the figures of
// one bucket. It returns the spans in order with their converted figures.
func convertBuckets(bs []bucket, c *converter, places []int32, get func(bucket) []decimal.Decimal) []convertedSpan {
	var spans []convertedSpan
	at := map[[2]int]int{}
	for _, b := range bs {
		k := [2]int{b.start, b.end}
		i, ok := at[k]
		if !ok {
			i = len(spans)
			at[k] = i
			spans = append(spans, convertedSpan{b: bucket{currency: c.to, start: b.start, end: b.end}, by: make([]map[string]decimal.Decimal, len(places))})
		}
		sp := &spans[i]
		sp.b.endCustomers += b.endCustomers
		for j, v := range get(b) {
			if sp.by[j] == nil {
				sp.by[j] = map[string]decimal.Decimal{}
			}
			sp.by[j][b.currency] = v
		}
	}
	for i := range spans {
		sp := &spans[i]
		sp.values = make([]decimal.Decimal, len(places))
		for j := range places {
			sp.values[j] = c.sum(places[j], sp.by[j])
		}
	}
	return spans
}

// convertedSpan is one interval of a converted series: its bucket (the
// paying customers summed across currencies) and its converted figures.
type convertedSpan struct {
	b      bucket
	by     []map[string]decimal.Decimal
	values []decimal.Decimal
}

// currenciesOf are the distinct currencies of bs, by code.
func currenciesOf(bs []bucket) []string {
	seen := map[string]bool{}
	var out []string
	for _, b := range bs {
		if !seen[b.currency] {
			seen[b.currency] = true
			out = append(out, b.currency)
		}
	}
	sort.Strings(out)
	return out
}
