package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// FeatureKind is what a feature grants.
type FeatureKind string

const (
	FeatureBoolean FeatureKind = "boolean" // on or off ("hd_streaming")
	FeatureStatic  FeatureKind = "static"  // a configured value ("max_devices" = 4)
	FeatureMetered FeatureKind = "metered" // usage of a meter, limited per usage period
)

// Enforcement says what happens at a metered feature's limit.
type Enforcement string

const (
	Hard Enforcement = "hard" // access ends at the limit
	Soft Enforcement = "soft" // access continues; the limit only warns
)

// Feature is something a plan grants. A metered feature's usage period is
// the subscription's billing period.
type Feature struct {
	ID          string           `json:"id"`
	Key         string           `json:"key"`
	Name        string           `json:"name"`
	Kind        FeatureKind      `json:"kind"`
	Value       json.RawMessage  `json:"value,omitempty" doc:"static features: the default value (any JSON)"`
	MeterSlug   string           `json:"meter_slug,omitempty"`
	Limit       *decimal.Decimal `json:"limit,omitempty" doc:"metered features: the default limit per usage period; none = unlimited"`
	Enforcement Enforcement      `json:"enforcement,omitempty"`
	CreatedAt   time.Time        `json:"created_at"`
	UpdatedAt   time.Time        `json:"updated_at"`
}

// FeatureInput creates a feature.
type FeatureInput struct {
	Key         string           `json:"key" doc:"slug: lower-case letters, digits, _ and -"`
	Name        string           `json:"name"`
	Kind        FeatureKind      `json:"kind" enum:"boolean,static,metered"`
	Value       json.RawMessage  `json:"value,omitempty"`
	MeterSlug   string           `json:"meter_slug,omitempty"`
	Limit       *decimal.Decimal `json:"limit,omitempty"`
	Enforcement Enforcement      `json:"enforcement,omitempty" enum:"hard,soft"`
}

// FeaturePatch changes a feature's name, default value or limit.
type FeaturePatch struct {
	Name        *string          `json:"name,omitempty"`
	Value       json.RawMessage  `json:"value,omitempty"`
	Limit       *decimal.Decimal `json:"limit,omitempty"`
	Enforcement *Enforcement     `json:"enforcement,omitempty" enum:"hard,soft"`
}

func (s *Service) validateFeature(ctx context.Context, tenant string, in *FeatureInput) error {
	var v abacus.Validation
	in.Name = strings.TrimSpace(in.Name)
	if !validSlug(in.Key) {
		v.Add("key", "%q is not a slug: use 1 to 63 lower-case letters, digits, _ or -", in.Key)
	}
	if in.Name == "" {
		in.Name = in.Key
	}
	switch in.Kind {
	case FeatureBoolean:
		if len(in.Value) > 0 || in.MeterSlug != "" || in.Limit != nil {
			v.Add("kind", "a boolean feature has no value, meter_slug or limit")
		}
	case FeatureStatic:
		if len(in.Value) == 0 || !json.Valid(in.Value) {
			v.Add("value", "is required for a static feature: any JSON value, e.g. 4")
		}
		if in.MeterSlug != "" || in.Limit != nil {
			v.Add("kind", "a static feature has no meter_slug or limit")
		}
	case FeatureMetered:
		if len(in.Value) > 0 {
			v.Add("value", "a metered feature has a limit, not a value")
		}
		if in.Limit != nil && in.Limit.IsNegative() {
			v.Add("limit", "must not be negative")
		}
		switch in.Enforcement {
		case "":
			in.Enforcement = Hard
		case Hard, Soft:
		default:
			v.Add("enforcement", "unknown enforcement %q; use hard or soft", in.Enforcement)
		}
		if in.MeterSlug == "" {
			v.Add("meter_slug", "is required for a metered feature")
		} else if ok, err := s.usage.MeterExists(ctx, tenant, in.MeterSlug); err != nil {
			return fmt.Errorf("checking meter %q: %w", in.MeterSlug, err)
		} else if !ok {
			v.Add("meter_slug", "no meter %q exists; create the meter first or fix the slug", in.MeterSlug)
		}
	default:
		v.Add("kind", "unknown kind %q; use boolean, static or metered", in.Kind)
	}
	if in.Kind != FeatureMetered && in.Enforcement != "" {
		v.Add("enforcement", "applies only to metered features")
	}
	return v.Err("invalid_feature")
}

// CreateFeature creates a feature. It returns an "invalid_feature" error
// naming each bad field (an unknown meter names meter_slug), or the
// conflict "feature_key_taken".
func (s *Service) CreateFeature(ctx context.Context, in FeatureInput) (Feature, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Feature{}, err
	}
	if err := s.validateFeature(ctx, tenant, &in); err != nil {
		return Feature{}, err
	}
	now := s.now()
	f := Feature{ID: abacus.NewID("fea"), Key: in.Key, Name: in.Name, Kind: in.Kind, Value: in.Value, MeterSlug: in.MeterSlug,
		Limit: in.Limit, Enforcement: in.Enforcement, CreatedAt: now, UpdatedAt: now}
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO features (id, tenant_id, key, name, kind, value, meter_slug, usage_limit,
			enforcement, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			f.ID, tenant, f.Key, f.Name, string(f.Kind), nullRaw(f.Value), f.MeterSlug, nullDec(f.Limit), string(f.Enforcement),
			db.TimeOf(now), db.TimeOf(now))
		if db.IsUniqueViolation(err) {
			return abacus.Conflict("feature_key_taken", "a feature with key %q exists; pick another key", f.Key).
				WithField("key", "is already used")
		}
		if err != nil {
			return fmt.Errorf("inserting feature: %w", err)
		}
		_, err = FeatureCreated.Record(ctx, tx, tenant, f.ID, now, f)
		return err
	})
	if err != nil {
		return Feature{}, err
	}
	return f, nil
}

// UpdateFeature changes the fields set in p of feature idOrKey. Errors are
// those of CreateFeature and "feature_not_found".
func (s *Service) UpdateFeature(ctx context.Context, idOrKey string, p FeaturePatch) (Feature, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Feature{}, err
	}
	var f Feature
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		cur, err := LoadFeature(ctx, tx, tenant, idOrKey)
		if err != nil {
			return err
		}
		in := FeatureInput{Key: cur.Key, Name: cur.Name, Kind: cur.Kind, Value: cur.Value, MeterSlug: cur.MeterSlug,
			Limit: cur.Limit, Enforcement: cur.Enforcement}
		setIf(&in.Name, p.Name)
		if p.Value != nil {
			in.Value = p.Value
		}
		if p.Limit != nil {
			in.Limit = p.Limit
		}
		setIf(&in.Enforcement, p.Enforcement)
		if err := s.validateFeature(ctx, tenant, &in); err != nil {
			return err
		}
		f = cur
		f.Name, f.Value, f.Limit, f.Enforcement, f.UpdatedAt = in.Name, in.Value, in.Limit, in.Enforcement, s.now()
		if _, err := tx.ExecContext(ctx, `UPDATE features SET name = $3, value = $4, usage_limit = $5, enforcement = $6, updated_at = $7
			WHERE tenant_id = $1 AND id = $2`, tenant, f.ID, f.Name, nullRaw(f.Value), nullDec(f.Limit), string(f.Enforcement),
			db.TimeOf(f.UpdatedAt)); err != nil {
			return fmt.Errorf("updating feature: %w", err)
		}
		_, err = FeatureUpdated.Record(ctx, tx, tenant, f.ID, f.UpdatedAt, f)
		return err
	})
	if err != nil {
		return Feature{}, err
	}
	s.changed(tenant, "")
	return f, nil
}

const featureCols = `id, key, name, kind, value, meter_slug, usage_limit, enforcement, created_at, updated_at`

func scanFeature(r interface{ Scan(...any) error }) (Feature, error) {
	var f Feature
	var value, limit sql.NullString
	var kind, enf string
	var created, updated db.Time
	if err := r.Scan(&f.ID, &f.Key, &f.Name, &kind, &value, &f.MeterSlug, &limit, &enf, &created, &updated); err != nil {
		return f, err
	}
	f.Kind, f.Enforcement, f.CreatedAt, f.UpdatedAt = FeatureKind(kind), Enforcement(enf), created.Time, updated.Time
	if value.Valid {
		f.Value = json.RawMessage(value.String)
	}
	if limit.Valid {
		d, err := decimal.NewFromString(limit.String)
		if err != nil {
			return f, fmt.Errorf("decoding limit of feature %s: %w", f.ID, err)
		}
		f.Limit = &d
	}
	return f, nil
}

// LoadFeature reads a feature by id (fea_…) or key through q. It returns
// "feature_not_found".
func LoadFeature(ctx context.Context, q db.Querier, tenant, idOrKey string) (Feature, error) {
	f, err := scanFeature(q.QueryRowContext(ctx, `SELECT `+featureCols+` FROM features WHERE tenant_id = $1 AND (id = $2 OR key = $2)`,
		tenant, idOrKey))
	if errors.Is(err, sql.ErrNoRows) {
		return f, abacus.NotFound("feature", idOrKey)
	}
	if err != nil {
		return f, fmt.Errorf("reading feature %s: %w", idOrKey, err)
	}
	return f, nil
}

// GetFeature returns a feature by id or key, or "feature_not_found".
func (s *Service) GetFeature(ctx context.Context, idOrKey string) (Feature, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Feature{}, err
	}
	return LoadFeature(ctx, s.db, tenant, idOrKey)
}

// FeaturesByKey returns the tenant's features with the given keys (all
// of them when keys is empty), by key; unknown keys are left out.
func FeaturesByKey(ctx context.Context, q db.Querier, tenant string, keys []string) (map[string]Feature, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+featureCols+` FROM features WHERE tenant_id = $1 ORDER BY id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("reading features: %w", err)
	}
	defer rows.Close()
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	out := map[string]Feature{}
	for rows.Next() {
		f, err := scanFeature(rows)
		if err != nil {
			return nil, err
		}
		if len(keys) == 0 || want[f.Key] {
			out[f.Key] = f
		}
	}
	return out, rows.Err()
}

// ListFeatures returns a page of features ordered by id.
func (s *Service) ListFeatures(ctx context.Context, pg Page) (List[Feature], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return List[Feature]{}, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+featureCols+` FROM features WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT `+
		itoa(pg.limit()+1), tenant, pg.Cursor)
	if err != nil {
		return List[Feature]{}, fmt.Errorf("listing features: %w", err)
	}
	defer rows.Close()
	var out []Feature
	for rows.Next() {
		f, err := scanFeature(rows)
		if err != nil {
			return List[Feature]{}, err
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return List[Feature]{}, err
	}
	return page(out, pg.limit(), func(f Feature) string { return f.ID }), nil
}

func nullRaw(r json.RawMessage) any {
	if len(r) == 0 {
		return nil
	}
	return string(r)
}

func nullDec(d *decimal.Decimal) any {
	if d == nil {
		return nil
	}
	return d.String()
}
