package usage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/identity"
	"github.com/abacusbilling/abacus/internal/metering"
	"github.com/abacusbilling/abacus/internal/outbox"
)

// StaticResult says what ApplyStaticMeters changed.
type StaticResult struct {
	Created, Updated, Unchanged, Released []string // slugs
}

// DefaultTenant returns the tenant static meters belong to when none is
// configured: the first tenant created (the one bootstrap creates on empty
// data). Errors: tenant_not_found when there is no tenant.
func DefaultTenant(ctx context.Context, q db.Querier) (string, error) {
	ids, err := identity.TenantIDs(ctx, q, 1)
	if err != nil {
		return "", fmt.Errorf("finding the default tenant: %w", err)
	}
	if len(ids) == 0 {
		return "", abacus.NotFound("tenant", "(first)")
	}
	return ids[0], nil
}

// ApplyStaticMeters makes the tenant's meters managed in the configuration
// file equal to meters, in one transaction: a missing meter is created, a
// changed one updated (a meter of the same slug made through the API is
// taken over), an equal one left alone, so applying the same list again
// changes nothing. A meter that was managed in config and is no longer
// listed (in any tenant) is released: it keeps counting and becomes an API meter that can
// be changed or deleted. Errors: tenant_not_found; invalid_meter with
// fields prefixed "metering.meters[i]."; meter_aggregation_immutable when
// a listed meter's aggregation differs from the stored one.
func (s *Service) ApplyStaticMeters(ctx context.Context, tenant string, meters []metering.Meter) (StaticResult, error) {
	if err := metering.ValidateMeterList("metering.meters", meters); err != nil {
		return StaticResult{}, err
	}
	for attempt := 1; ; attempt++ {
		res, err := s.applyStaticMeters(ctx, tenant, meters)
		// Processes starting together may insert the same slug; the loser
		// finds the winner's meter on the next attempt.
		if err != nil && db.IsUniqueViolation(err) && attempt < 3 {
			continue
		}
		return res, err
	}
}

func (s *Service) applyStaticMeters(ctx context.Context, tenant string, meters []metering.Meter) (StaticResult, error) {
	var res StaticResult
	now := s.clock.Now().Truncate(time.Microsecond)
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		exists, err := identity.TenantExists(ctx, tx, tenant)
		if err != nil {
			return err
		}
		if !exists {
			return abacus.NotFound("tenant", tenant)
		}
		listed := map[string]bool{}
		changed := false
		record := func(event outbox.Kind[MeterRecord], rec MeterRecord) error {
			changed = true
			_, err := event.Record(ctx, tx, tenant, rec.ID, time.Time{}, rec)
			return err
		}
		for i, m := range meters {
			listed[m.Slug] = true
			cur, err := getMeter(ctx, tx, tenant, m.Slug)
			var nf *abacus.Error
			if errors.As(err, &nf) && nf.Kind == abacus.KindNotFound {
				m.ID = abacus.NewID("mtr")
				def, err := json.Marshal(m)
				if err != nil {
					return fmt.Errorf("encoding meter: %w", err)
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO meters (tenant_id, id, slug, definition, created_at, updated_at, managed_by)
					VALUES ($1, $2, $3, $4, $5, $5, $6)`, tenant, m.ID, m.Slug, string(def), db.TimeOf(now), ManagedByConfig); err != nil {
					return fmt.Errorf("inserting meter %s: %w", m.Slug, err)
				}
				res.Created = append(res.Created, m.Slug)
				if err := record(MeterCreated, MeterRecord{Meter: m, ManagedBy: ManagedByConfig, CreatedAt: now, UpdatedAt: now}); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return err
			}
			m.ID = cur.ID
			if cur.ManagedBy == ManagedByConfig && reflect.DeepEqual(normalMeter(cur.Meter), normalMeter(m)) {
				res.Unchanged = append(res.Unchanged, m.Slug)
				continue
			}
			if m.Aggregation != cur.Aggregation {
				return abacus.Conflict("meter_aggregation_immutable",
					"meter %s aggregates with %s; the aggregation cannot change: give the configured meter another slug", m.Slug, cur.Aggregation).
					WithField(fmt.Sprintf("metering.meters[%d].aggregation", i), "cannot change from "+string(cur.Aggregation))
			}
			def, err := json.Marshal(m)
			if err != nil {
				return fmt.Errorf("encoding meter: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE meters SET definition = $1, updated_at = $2, managed_by = $3 WHERE tenant_id = $4 AND id = $5`,
				string(def), db.TimeOf(now), ManagedByConfig, tenant, cur.ID); err != nil {
				return fmt.Errorf("updating meter %s: %w", m.Slug, err)
			}
			res.Updated = append(res.Updated, m.Slug)
			if err := record(MeterUpdated, MeterRecord{Meter: m, ManagedBy: ManagedByConfig, CreatedAt: cur.CreatedAt, UpdatedAt: now}); err != nil {
				return err
			}
		}
		// Configured meters no longer listed (in this tenant, or in another
		// one the file named before) are released.
		rows, err := tx.QueryContext(ctx, `SELECT tenant_id, slug FROM meters WHERE managed_by = $1 AND deleted_at IS NULL`, ManagedByConfig)
		if err != nil {
			return fmt.Errorf("reading configured meters: %w", err)
		}
		type owned struct{ tenant, slug string }
		var released []owned
		for rows.Next() {
			var o owned
			if err := rows.Scan(&o.tenant, &o.slug); err != nil {
				rows.Close()
				return fmt.Errorf("reading configured meters: %w", err)
			}
			if o.tenant != tenant || !listed[o.slug] {
				released = append(released, o)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading configured meters: %w", err)
		}
		for _, o := range released {
			if _, err := tx.ExecContext(ctx, `UPDATE meters SET managed_by = $1, updated_at = $2 WHERE tenant_id = $3 AND slug = $4 AND deleted_at IS NULL`,
				ManagedByAPI, db.TimeOf(now), o.tenant, o.slug); err != nil {
				return fmt.Errorf("releasing meter %s: %w", o.slug, err)
			}
			res.Released = append(res.Released, o.slug)
			changed = true
		}
		if !changed {
			return nil
		}
		return bumpMeters(ctx, tx)
	})
	if err != nil {
		return StaticResult{}, err
	}
	return res, nil
}

// normalMeter makes equal definitions compare equal (nil and empty maps
// and slices, times in one location).
func normalMeter(m metering.Meter) metering.Meter {
	if len(m.GroupBy) == 0 {
		m.GroupBy = nil
	}
	if len(m.Filters) == 0 {
		m.Filters = nil
	}
	if m.EventFrom != nil {
		t := m.EventFrom.UTC()
		m.EventFrom = &t
	}
	return m
}
