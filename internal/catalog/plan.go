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
	"github.com/abacusbilling/abacus/internal/money"
	"github.com/abacusbilling/abacus/internal/outbox"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
)

// MaxTrialDays bounds a version's trial.
const MaxTrialDays = 730

// Plan groups the versions of one offer ("pro").
type Plan struct {
	ID          string    `json:"id"`
	Key         string    `json:"key"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// PlanInput creates a plan.
type PlanInput struct {
	Key         string `json:"key" doc:"slug, unique per tenant"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// VersionStatus is where a plan version is in its life.
type VersionStatus string

const (
	Draft     VersionStatus = "draft"
	Published VersionStatus = "published"
	Archived  VersionStatus = "archived"
)

// AnchorPolicy chooses where a subscription's billing periods start.
type AnchorPolicy string

const (
	// AnchorStart starts periods when the subscription starts (or its
	// trial ends).
	AnchorStart AnchorPolicy = "start"
	// AnchorCalendar aligns periods to the calendar in the customer's
	// zone: Mondays, the 1st of a month, quarter or year. The first
	// period is partial.
	AnchorCalendar AnchorPolicy = "calendar"
)

// Grant is what a version grants of a feature: the feature's
// defaults unless overridden. Enabled false withholds a boolean feature.
type Grant struct {
	Feature     string           `json:"feature" doc:"feature key"`
	Enabled     *bool            `json:"enabled,omitempty"`
	Value       json.RawMessage  `json:"value,omitempty" doc:"static features: overrides the feature's value"`
	Limit       *decimal.Decimal `json:"limit,omitempty" doc:"metered features: overrides the feature's limit"`
	Unlimited   bool             `json:"unlimited,omitempty" doc:"metered features: no limit"`
	Enforcement Enforcement      `json:"enforcement,omitempty" enum:"hard,soft"`
}

// VersionSpec is the editable content of a plan version.
type VersionSpec struct {
	Currency          string            `json:"currency"`
	Rounding          money.Rounding    `json:"rounding,omitempty" enum:"half_up,half_even,up,down"`
	BillingInterval   period.Interval   `json:"billing_interval"`
	Anchor            AnchorPolicy      `json:"anchor,omitempty" enum:"start,calendar"`
	TrialDays         int               `json:"trial_days,omitempty"`
	Entitlements      []Grant           `json:"entitlements,omitempty"`
	Charges           []pricing.Charge  `json:"charges"`
	MinimumCommitment *decimal.Decimal  `json:"minimum_commitment,omitempty"`
	Metadata          map[string]string `json:"metadata,omitempty"`
}

// Pricing returns the priced part of the spec for the pricing engine.
func (sp VersionSpec) Pricing() pricing.PlanPricing {
	return pricing.PlanPricing{Currency: sp.Currency, Rounding: sp.Rounding, Charges: sp.Charges, MinimumCommitment: sp.MinimumCommitment}
}

// Entitlement returns the version's entitlement for feature key.
func (sp VersionSpec) Entitlement(key string) (Grant, bool) {
	for _, e := range sp.Entitlements {
		if e.Feature == key {
			return e, true
		}
	}
	return Grant{}, false
}

// Version is one version of a plan.
type Version struct {
	ID      string        `json:"id"`
	PlanID  string        `json:"plan_id"`
	Version int           `json:"version"`
	Status  VersionStatus `json:"status"`
	VersionSpec
	PublishedAt *time.Time `json:"published_at,omitempty"`
	ArchivedAt  *time.Time `json:"archived_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// CreatePlan creates a plan without versions. It returns "invalid_plan"
// or the conflict "plan_key_taken".
func (s *Service) CreatePlan(ctx context.Context, in PlanInput) (Plan, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Plan{}, err
	}
	var v abacus.Validation
	if !validSlug(in.Key) {
		v.Add("key", "%q is not a slug: use 1 to 63 lower-case letters, digits, _ or -", in.Key)
	}
	if in.Name = strings.TrimSpace(in.Name); in.Name == "" {
		v.Add("name", "is required")
	}
	if err := v.Err("invalid_plan"); err != nil {
		return Plan{}, err
	}
	now := s.now()
	p := Plan{ID: abacus.NewID("plan"), Key: in.Key, Name: in.Name, Description: in.Description, CreatedAt: now, UpdatedAt: now}
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO plans (id, tenant_id, key, name, description, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, p.ID, tenant, p.Key, p.Name, p.Description, db.TimeOf(now), db.TimeOf(now))
		if db.IsUniqueViolation(err) {
			return abacus.Conflict("plan_key_taken", "a plan with key %q exists; pick another key", p.Key).WithField("key", "is already used")
		}
		if err != nil {
			return fmt.Errorf("inserting plan: %w", err)
		}
		_, err = PlanCreated.Record(ctx, tx, tenant, p.ID, now, p)
		return err
	})
	if err != nil {
		return Plan{}, err
	}
	return p, nil
}

const planCols = `id, key, name, description, created_at, updated_at`

func scanPlan(r interface{ Scan(...any) error }) (Plan, error) {
	var p Plan
	var c, u db.Time
	err := r.Scan(&p.ID, &p.Key, &p.Name, &p.Description, &c, &u)
	p.CreatedAt, p.UpdatedAt = c.Time, u.Time
	return p, err
}

// LoadPlan reads a plan by id or key through q; "plan_not_found".
func LoadPlan(ctx context.Context, q db.Querier, tenant, idOrKey string) (Plan, error) {
	p, err := scanPlan(q.QueryRowContext(ctx, `SELECT `+planCols+` FROM plans WHERE tenant_id = $1 AND (id = $2 OR key = $2)`, tenant, idOrKey))
	if errors.Is(err, sql.ErrNoRows) {
		return p, abacus.NotFound("plan", idOrKey)
	}
	if err != nil {
		return p, fmt.Errorf("reading plan %s: %w", idOrKey, err)
	}
	return p, nil
}

// GetPlan returns a plan by id or key, or "plan_not_found".
func (s *Service) GetPlan(ctx context.Context, idOrKey string) (Plan, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Plan{}, err
	}
	return LoadPlan(ctx, s.db, tenant, idOrKey)
}

// ListPlans returns a page of plans ordered by id.
func (s *Service) ListPlans(ctx context.Context, pg Page) (List[Plan], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return List[Plan]{}, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+planCols+` FROM plans WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT `+itoa(pg.limit()+1),
		tenant, pg.Cursor)
	if err != nil {
		return List[Plan]{}, fmt.Errorf("listing plans: %w", err)
	}
	defer rows.Close()
	var out []Plan
	for rows.Next() {
		p, err := scanPlan(rows)
		if err != nil {
			return List[Plan]{}, err
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return List[Plan]{}, err
	}
	return page(out, pg.limit(), func(p Plan) string { return p.ID }), nil
}

// validateSpec checks everything about a version spec and reports every
// problem with its field path: currency, interval, trial, charges and
// prices (via pricing, e.g. charges[1].price.tiers[0].up_to), meters of
// usage charges, and features of entitlements.
func (s *Service) validateSpec(ctx context.Context, q db.Querier, tenant string, sp *VersionSpec) error {
	var v abacus.Validation
	sp.Currency = strings.ToUpper(strings.TrimSpace(sp.Currency))
	if sp.Anchor == "" {
		sp.Anchor = AnchorStart
	}
	if sp.BillingInterval.Count == 0 {
		sp.BillingInterval.Count = 1
	}
	if sp.Charges == nil {
		sp.Charges = []pricing.Charge{}
	}
	sp.BillingInterval.ValidateInto(&v, "billing_interval")
	switch sp.Anchor {
	case AnchorStart, AnchorCalendar:
	default:
		v.Add("anchor", "unknown anchor %q; use start or calendar", sp.Anchor)
	}
	if sp.TrialDays < 0 || sp.TrialDays > MaxTrialDays {
		v.Add("trial_days", "must be between 0 and %d", MaxTrialDays)
	}
	sp.Pricing().ValidateInto(&v, "")
	meters := map[string]bool{}
	for i, ch := range sp.Charges {
		if ch.Kind != pricing.ChargeUsage || ch.Meter == "" {
			continue
		}
		ok, seen := meters[ch.Meter]
		if !seen {
			var err error
			if ok, err = s.usage.MeterExists(ctx, tenant, ch.Meter); err != nil {
				return fmt.Errorf("checking meter %q: %w", ch.Meter, err)
			}
			meters[ch.Meter] = ok
		}
		if !ok {
			v.Add(fmt.Sprintf("charges[%d].meter", i), "no meter %q exists; create the meter first or fix the slug", ch.Meter)
		}
	}
	if len(sp.Entitlements) > 0 {
		feats, err := FeaturesByKey(ctx, q, tenant, nil)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for i, e := range sp.Entitlements {
			f := fmt.Sprintf("entitlements[%d]", i)
			feat, ok := feats[e.Feature]
			switch {
			case !ok:
				v.Add(f+".feature", "no feature %q exists; create it first or fix the key", e.Feature)
				continue
			case seen[e.Feature]:
				v.Add(f+".feature", "duplicate feature %q", e.Feature)
			}
			seen[e.Feature] = true
			if e.Limit != nil && e.Limit.IsNegative() {
				v.Add(f+".limit", "must not be negative")
			}
			if (e.Limit != nil || e.Unlimited || e.Enforcement != "") && feat.Kind != FeatureMetered {
				v.Add(f+".limit", "limits apply only to metered features; %q is %s", e.Feature, feat.Kind)
			}
			if e.Limit != nil && e.Unlimited {
				v.Add(f+".unlimited", "give either limit or unlimited, not both")
			}
			if len(e.Value) > 0 && (feat.Kind != FeatureStatic || !json.Valid(e.Value)) {
				v.Add(f+".value", "values apply only to static features and must be JSON")
			}
			switch e.Enforcement {
			case "", Hard, Soft:
			default:
				v.Add(f+".enforcement", "unknown enforcement %q; use hard or soft", e.Enforcement)
			}
		}
	}
	return v.Err("invalid_plan_version")
}

// CreateVersion adds a draft version to plan planID, numbered after the
// last one. It returns "plan_not_found" or an "invalid_plan_version" error
// naming every bad field; nothing is written then.
func (s *Service) CreateVersion(ctx context.Context, planID string, sp VersionSpec) (Version, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Version{}, err
	}
	var ver Version
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		p, err := LoadPlan(ctx, tx, tenant, planID)
		if err != nil {
			return err
		}
		if err := s.validateSpec(ctx, tx, tenant, &sp); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM plan_versions WHERE tenant_id = $1 AND plan_id = $2`,
			tenant, p.ID).Scan(&n); err != nil {
			return fmt.Errorf("numbering version: %w", err)
		}
		now := s.now()
		ver = Version{ID: abacus.NewID("pver"), PlanID: p.ID, Version: n + 1, Status: Draft, VersionSpec: sp, CreatedAt: now, UpdatedAt: now}
		_, err = tx.ExecContext(ctx, `INSERT INTO plan_versions (id, tenant_id, plan_id, version, status, body, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, ver.ID, tenant, p.ID, ver.Version, string(Draft), mustJSON(sp), db.TimeOf(now), db.TimeOf(now))
		if db.IsUniqueViolation(err) {
			return abacus.Conflict("version_conflict", "another version of plan %s was created at the same time; retry", p.ID)
		}
		if err != nil {
			return fmt.Errorf("inserting version: %w", err)
		}
		return nil
	})
	if err != nil {
		return Version{}, err
	}
	return ver, nil
}

// UpdateVersion replaces the spec of a draft version. A published or
// archived version is immutable: "version_immutable" (409). Other errors
// are those of CreateVersion and "plan_version_not_found".
func (s *Service) UpdateVersion(ctx context.Context, planID string, number int, sp VersionSpec) (Version, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Version{}, err
	}
	var ver Version
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		ver, err = s.versionByNumber(ctx, tx, tenant, planID, number)
		if err != nil {
			return err
		}
		if ver.Status != Draft {
			return abacus.Conflict("version_immutable", "version %d of the plan is %s and cannot change; create a new version instead",
				ver.Version, ver.Status).WithField("version", "is "+string(ver.Status))
		}
		if err := s.validateSpec(ctx, tx, tenant, &sp); err != nil {
			return err
		}
		ver.VersionSpec, ver.UpdatedAt = sp, s.now()
		res, err := tx.ExecContext(ctx, `UPDATE plan_versions SET body = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2 AND status = 'draft'`,
			tenant, ver.ID, mustJSON(sp), db.TimeOf(ver.UpdatedAt))
		if err != nil {
			return fmt.Errorf("updating version: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return abacus.Conflict("version_immutable", "version %d was published meanwhile and cannot change", ver.Version)
		}
		return nil
	})
	if err != nil {
		return Version{}, err
	}
	return ver, nil
}

// PublishVersion publishes a draft version: it becomes immutable and the
// version new subscriptions take (if it is the latest published). It
// returns "version_immutable" for a version that is not a draft.
func (s *Service) PublishVersion(ctx context.Context, planID string, number int) (Version, error) {
	return s.moveVersion(ctx, planID, number, Draft, Published, PlanVersionPublished)
}

// ArchiveVersion archives a version: no new subscriptions take it;
// existing subscriptions keep it. Archiving twice is a conflict
// "version_archived".
func (s *Service) ArchiveVersion(ctx context.Context, planID string, number int) (Version, error) {
	return s.moveVersion(ctx, planID, number, "", Archived, PlanVersionArchived)
}

func (s *Service) moveVersion(ctx context.Context, planID string, number int, from, to VersionStatus, event outbox.Kind[Version]) (Version, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Version{}, err
	}
	var ver Version
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		ver, err = s.versionByNumber(ctx, tx, tenant, planID, number)
		if err != nil {
			return err
		}
		if from != "" && ver.Status != from {
			return abacus.Conflict("version_immutable", "version %d is %s; only a draft can be published", ver.Version, ver.Status).
				WithField("status", "is "+string(ver.Status))
		}
		if ver.Status == Archived {
			return abacus.Conflict("version_archived", "version %d is already archived", ver.Version)
		}
		now := s.now()
		ver.Status, ver.UpdatedAt = to, now
		col := "published_at"
		if to == Archived {
			col = "archived_at"
			ver.ArchivedAt = &now
		} else {
			ver.PublishedAt = &now
		}
		if _, err := tx.ExecContext(ctx, `UPDATE plan_versions SET status = $3, `+col+` = $4, updated_at = $4 WHERE tenant_id = $1 AND id = $2`,
			tenant, ver.ID, string(to), db.TimeOf(now)); err != nil {
			return fmt.Errorf("moving version to %s: %w", to, err)
		}
		_, err = event.Record(ctx, tx, tenant, ver.ID, now, ver)
		return err
	})
	if err != nil {
		return Version{}, err
	}
	s.versions.Delete(ver.ID)
	return ver, nil
}

const versionCols = `id, plan_id, version, status, body, published_at, archived_at, created_at, updated_at`

func scanVersion(r interface{ Scan(...any) error }) (Version, error) {
	var v Version
	var status, body string
	var pub, arch db.NullTime
	var c, u db.Time
	if err := r.Scan(&v.ID, &v.PlanID, &v.Version, &status, &body, &pub, &arch, &c, &u); err != nil {
		return v, err
	}
	v.Status, v.PublishedAt, v.ArchivedAt, v.CreatedAt, v.UpdatedAt = VersionStatus(status), pub.Ptr(), arch.Ptr(), c.Time, u.Time
	if err := json.Unmarshal([]byte(body), &v.VersionSpec); err != nil {
		return v, fmt.Errorf("decoding version %s: %w", v.ID, err)
	}
	return v, nil
}

func (s *Service) versionByNumber(ctx context.Context, q db.Querier, tenant, planID string, number int) (Version, error) {
	p, err := LoadPlan(ctx, q, tenant, planID)
	if err != nil {
		return Version{}, err
	}
	v, err := scanVersion(q.QueryRowContext(ctx, `SELECT `+versionCols+` FROM plan_versions WHERE tenant_id = $1 AND plan_id = $2 AND version = $3`,
		tenant, p.ID, number))
	if errors.Is(err, sql.ErrNoRows) {
		return v, abacus.Errorf(abacus.KindNotFound, "plan_version_not_found", "plan %s has no version %d", planID, number)
	}
	if err != nil {
		return v, fmt.Errorf("reading version %d of plan %s: %w", number, planID, err)
	}
	return v, nil
}

// GetVersion returns version number of plan planID (id or key), or
// "plan_not_found" / "plan_version_not_found".
func (s *Service) GetVersion(ctx context.Context, planID string, number int) (Version, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Version{}, err
	}
	return s.versionByNumber(ctx, s.db, tenant, planID, number)
}

// ListVersions returns every version of a plan, oldest first.
func (s *Service) ListVersions(ctx context.Context, planID string) ([]Version, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	p, err := LoadPlan(ctx, s.db, tenant, planID)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+versionCols+` FROM plan_versions WHERE tenant_id = $1 AND plan_id = $2 ORDER BY version`,
		tenant, p.ID)
	if err != nil {
		return nil, fmt.Errorf("listing versions: %w", err)
	}
	defer rows.Close()
	out := []Version{}
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// LoadVersion reads version id through q. Published versions are cached
// (their spec never changes; the status may, so callers that care about
// archival read Status from the database). It returns
// "plan_version_not_found".
func (s *Service) LoadVersion(ctx context.Context, q db.Querier, tenant, id string) (Version, error) {
	if v, ok := s.versions.Load(id); ok {
		if cv := v.(*cachedVersion); cv.owner == tenant {
			return cv.Version, nil
		}
	}
	v, err := scanVersion(q.QueryRowContext(ctx, `SELECT `+versionCols+` FROM plan_versions WHERE tenant_id = $1 AND id = $2`, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return v, abacus.Errorf(abacus.KindNotFound, "plan_version_not_found", "plan version %q does not exist", id)
	}
	if err != nil {
		return v, fmt.Errorf("reading version %s: %w", id, err)
	}
	if v.Status == Published {
		s.versions.Store(id, &cachedVersion{Version: v, owner: tenant})
	}
	return v, nil
}

type cachedVersion struct {
	Version Version
	owner   string
}

// LatestPublished returns the latest published version of plan planID
// (id or key). It returns "plan_not_found", or the conflict
// "plan_not_published" when the plan has no published version.
func (s *Service) LatestPublished(ctx context.Context, q db.Querier, tenant, planID string) (Version, error) {
	p, err := LoadPlan(ctx, q, tenant, planID)
	if err != nil {
		return Version{}, err
	}
	v, err := scanVersion(q.QueryRowContext(ctx, `SELECT `+versionCols+` FROM plan_versions WHERE tenant_id = $1 AND plan_id = $2 AND status = 'published'
		ORDER BY version DESC LIMIT 1`, tenant, p.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return v, abacus.Conflict("plan_not_published", "plan %s has no published version; publish one first", p.Key).
			WithField("plan_id", "has no published version")
	}
	if err != nil {
		return v, fmt.Errorf("reading latest version of plan %s: %w", p.ID, err)
	}
	return v, nil
}
