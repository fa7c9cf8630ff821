package usage

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/metering"
)

// Service is the metering API over the database: meters, usage queries,
// raw event listing and rebuilds. Every method is tenant-scoped by the
// principal on ctx; another tenant's meter is meter_not_found.
type Service struct {
	db     *db.DB
	clock  abacus.Clock
	log    *slog.Logger
	limits metering.Limits
	rules  *Rules
}

// NewService returns a Service. limits.LateWindow is the default
// late-event window (tenants may choose theirs) and bounds default query
// ranges; zero fields take metering.DefaultLimits.
func NewService(d *db.DB, clock abacus.Clock, log *slog.Logger, limits metering.Limits) *Service {
	return &Service{db: d, clock: clock, log: log, limits: limits.WithDefaults(), rules: NewRules(d, log)}
}

// Rules is the cache of tenants' ingestion rules that this service
// invalidates when a schema or setting changes; give it to the ingester
// of the same process (IngestConfig.Rules).
func (s *Service) Rules() *Rules { return s.rules }

// MeterRecord is a stored meter: the definition plus its timestamps.
type MeterRecord struct {
	metering.Meter
	// ManagedBy is "config" for a meter defined in the configuration file
	// (metering.meters; read-only through the API) and "api" otherwise.
	ManagedBy string    `json:"managedBy"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Who manages a meter.
const (
	ManagedByAPI    = "api"
	ManagedByConfig = "config"
)

// MeterUpdate changes a meter; absent (nil) fields keep their value. The
// aggregation cannot change (stored rollups hold its state): create a new
// meter instead.
type MeterUpdate struct {
	Name          *string               `json:"name,omitempty"`
	Description   *string               `json:"description,omitempty"`
	EventType     *string               `json:"eventType,omitempty"`
	Aggregation   *metering.Aggregation `json:"aggregation,omitempty"`
	ValueProperty *string               `json:"valueProperty,omitempty"`
	GroupBy       map[string]string     `json:"groupBy,omitempty"`
	EventFrom     *time.Time            `json:"eventFrom,omitempty"`
	Filters       []metering.Filter     `json:"filters,omitempty"`
}

const meterCols = `id, definition, created_at, updated_at, managed_by`

func scanMeter(r interface{ Scan(...any) error }) (MeterRecord, error) {
	var m MeterRecord
	var def string
	var created, updated db.Time
	if err := r.Scan(&m.ID, &def, &created, &updated, &m.ManagedBy); err != nil {
		return m, err
	}
	if err := json.Unmarshal([]byte(def), &m.Meter); err != nil {
		return m, fmt.Errorf("decoding meter %s: %w", m.ID, err)
	}
	m.CreatedAt, m.UpdatedAt = created.Time, updated.Time
	return m, nil
}

// bumpMeters marks the meter definitions changed for the workers.
func bumpMeters(ctx context.Context, tx *db.Tx) error {
	if _, err := tx.ExecContext(ctx, `UPDATE metering_versions SET meters = meters + 1 WHERE name = 'global'`); err != nil {
		return fmt.Errorf("bumping meters version: %w", err)
	}
	return nil
}

// CreateMeter stores a new meter. Errors: invalid_meter (every bad field),
// meter_slug_taken (conflict) when the tenant has a meter with that slug.
func (s *Service) CreateMeter(ctx context.Context, m metering.Meter) (MeterRecord, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return MeterRecord{}, err
	}
	m.ID = abacus.NewID("mtr")
	if _, err := metering.Compile(m); err != nil {
		return MeterRecord{}, err
	}
	now := s.clock.Now().Truncate(time.Microsecond)
	rec := MeterRecord{Meter: m, ManagedBy: ManagedByAPI, CreatedAt: now, UpdatedAt: now}
	def, err := json.Marshal(m)
	if err != nil {
		return MeterRecord{}, fmt.Errorf("encoding meter: %w", err)
	}
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO meters (tenant_id, id, slug, definition, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $5)`, tenant, m.ID, m.Slug, string(def), db.TimeOf(now))
		if db.IsUniqueViolation(err) {
			return abacus.Conflict("meter_slug_taken", "a meter with slug %q exists; choose another slug or update that meter", m.Slug).WithField("slug", "is taken")
		}
		if err != nil {
			return fmt.Errorf("inserting meter: %w", err)
		}
		if err := bumpMeters(ctx, tx); err != nil {
			return err
		}
		_, err = MeterCreated.Record(ctx, tx, tenant, m.ID, time.Time{}, rec)
		return err
	})
	if err != nil {
		return MeterRecord{}, err
	}
	return rec, nil
}

// GetMeter returns the tenant's meter by id or slug, or meter_not_found.
func (s *Service) GetMeter(ctx context.Context, idOrSlug string) (MeterRecord, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return MeterRecord{}, err
	}
	return getMeter(ctx, s.db, tenant, idOrSlug)
}

func getMeter(ctx context.Context, q db.Querier, tenant, idOrSlug string) (MeterRecord, error) {
	m, err := scanMeter(q.QueryRowContext(ctx, `SELECT `+meterCols+` FROM meters
		WHERE tenant_id = $1 AND deleted_at IS NULL AND (id = $2 OR slug = $2)`, tenant, idOrSlug))
	if errors.Is(err, sql.ErrNoRows) {
		return m, abacus.NotFound("meter", idOrSlug)
	}
	if err != nil {
		return m, fmt.Errorf("reading meter %s: %w", idOrSlug, err)
	}
	return m, nil
}

// ListMeters returns the tenant's meters ordered by id (creation order).
func (s *Service) ListMeters(ctx context.Context) ([]MeterRecord, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+meterCols+` FROM meters
		WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("listing meters: %w", err)
	}
	defer rows.Close()
	out := []MeterRecord{}
	for rows.Next() {
		m, err := scanMeter(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// UpdateMeter changes the meter's definition. The change applies to events
// processed from now on; rebuild recomputes stored usage. Errors:
// meter_not_found, invalid_meter, meter_aggregation_immutable (conflict),
// meter_managed_in_config (conflict).
func (s *Service) UpdateMeter(ctx context.Context, idOrSlug string, u MeterUpdate) (MeterRecord, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return MeterRecord{}, err
	}
	var rec MeterRecord
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		cur, err := getMeter(ctx, tx, tenant, idOrSlug)
		if err != nil {
			return err
		}
		if err := notStatic(cur); err != nil {
			return err
		}
		m := cur.Meter
		if u.Aggregation != nil && *u.Aggregation != m.Aggregation {
			return abacus.Conflict("meter_aggregation_immutable",
				"meter %s aggregates with %s; the aggregation cannot change, create a new meter instead", m.Slug, m.Aggregation).
				WithField("aggregation", "cannot change")
		}
		if u.Name != nil {
			m.Name = *u.Name
		}
		if u.Description != nil {
			m.Description = *u.Description
		}
		if u.EventType != nil {
			m.EventType = *u.EventType
		}
		if u.ValueProperty != nil {
			m.ValueProperty = *u.ValueProperty
		}
		if u.GroupBy != nil {
			m.GroupBy = u.GroupBy
		}
		if u.EventFrom != nil {
			m.EventFrom = u.EventFrom
		}
		if u.Filters != nil {
			m.Filters = u.Filters
		}
		if _, err := metering.Compile(m); err != nil {
			return err
		}
		def, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("encoding meter: %w", err)
		}
		now := s.clock.Now().Truncate(time.Microsecond)
		if _, err := tx.ExecContext(ctx, `UPDATE meters SET definition = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4`,
			string(def), db.TimeOf(now), tenant, m.ID); err != nil {
			return fmt.Errorf("updating meter: %w", err)
		}
		rec = MeterRecord{Meter: m, ManagedBy: cur.ManagedBy, CreatedAt: cur.CreatedAt, UpdatedAt: now}
		if err := bumpMeters(ctx, tx); err != nil {
			return err
		}
		_, err = MeterUpdated.Record(ctx, tx, tenant, m.ID, time.Time{}, rec)
		return err
	})
	return rec, err
}

// DeleteMeter deletes the meter: it stops counting and its slug becomes
// free. Stored usage is kept but no longer queryable. Errors:
// meter_not_found, meter_managed_in_config (conflict).
func (s *Service) DeleteMeter(ctx context.Context, idOrSlug string) error {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *db.Tx) error {
		cur, err := getMeter(ctx, tx, tenant, idOrSlug)
		if err != nil {
			return err
		}
		if err := notStatic(cur); err != nil {
			return err
		}
		now := s.clock.Now()
		if _, err := tx.ExecContext(ctx, `UPDATE meters SET deleted_at = $1, updated_at = $1 WHERE tenant_id = $2 AND id = $3`,
			db.TimeOf(now), tenant, cur.ID); err != nil {
			return fmt.Errorf("deleting meter: %w", err)
		}
		if err := bumpMeters(ctx, tx); err != nil {
			return err
		}
		_, err = MeterDeleted.Record(ctx, tx, tenant, cur.ID, time.Time{}, cur)
		return err
	})
}

// loadMeterSets compiles every live meter of every tenant.
func loadMeterSets(ctx context.Context, q db.Querier) (map[string]*metering.MeterSet, error) {
	rows, err := q.QueryContext(ctx, `SELECT tenant_id, `+meterCols+` FROM meters WHERE deleted_at IS NULL ORDER BY tenant_id, id`)
	if err != nil {
		return nil, fmt.Errorf("loading meters: %w", err)
	}
	defer rows.Close()
	byTenant := map[string][]*metering.Compiled{}
	for rows.Next() {
		var tenant string
		var m MeterRecord
		var def string
		var created, updated db.Time
		if err := rows.Scan(&tenant, &m.ID, &def, &created, &updated, &m.ManagedBy); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(def), &m.Meter); err != nil {
			return nil, fmt.Errorf("decoding meter %s: %w", m.ID, err)
		}
		c, err := metering.Compile(m.Meter)
		if err != nil {
			return nil, fmt.Errorf("compiling stored meter %s: %w", m.ID, err)
		}
		byTenant[tenant] = append(byTenant[tenant], c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make(map[string]*metering.MeterSet, len(byTenant))
	for t, ms := range byTenant {
		out[t] = metering.NewMeterSet(t, ms...)
	}
	return out, nil
}

// notStatic refuses changes through the API to a meter defined in the
// configuration file: the file would undo them at the next start.
func notStatic(m MeterRecord) error {
	if m.ManagedBy == ManagedByConfig {
		return abacus.Conflict("meter_managed_in_config",
			"meter %s is defined in the configuration file (metering.meters); change or remove it there and restart", m.Slug)
	}
	return nil
}
