package usage

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/metering"
)

// EventTypeSchema is a tenant's JSON Schema for the data of one event type.
type EventTypeSchema struct {
	EventType string          `json:"eventType"`
	Schema    json.RawMessage `json:"schema"`
	CreatedAt time.Time       `json:"createdAt"`
	UpdatedAt time.Time       `json:"updatedAt"`
}

// EventType is one event type the tenant has configured: it has a schema,
// meters that count it, or both.
type EventType struct {
	EventType string   `json:"eventType"`
	HasSchema bool     `json:"hasSchema"`
	Meters    []string `json:"meters"` // slugs of the meters counting this type
}

// PutSchema sets the JSON Schema that ingestion applies to the data of
// events of this type, replacing any previous one. It applies to events
// ingested from now on (other ingest processes within a second). Errors:
// invalid_event_type, invalid_event_schema (Fields name each problem),
// too_many_event_schemas (conflict).
func (s *Service) PutSchema(ctx context.Context, eventType string, doc []byte) (EventTypeSchema, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return EventTypeSchema{}, err
	}
	if err := metering.ValidateEventType(eventType); err != nil {
		return EventTypeSchema{}, err
	}
	if _, err := s.rules.compile(doc); err != nil {
		return EventTypeSchema{}, err
	}
	now := s.clock.Now().Truncate(time.Microsecond)
	out := EventTypeSchema{EventType: eventType, Schema: json.RawMessage(doc), CreatedAt: now, UpdatedAt: now}
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		var created db.Time
		err := tx.QueryRowContext(ctx, `SELECT created_at FROM event_type_schemas WHERE tenant_id = $1 AND event_type = $2`,
			tenant, eventType).Scan(&created)
		switch {
		case err == nil:
			out.CreatedAt = created.Time
			if _, err := tx.ExecContext(ctx, `UPDATE event_type_schemas SET schema = $1, updated_at = $2 WHERE tenant_id = $3 AND event_type = $4`,
				string(doc), db.TimeOf(now), tenant, eventType); err != nil {
				return fmt.Errorf("updating event type schema: %w", err)
			}
		case errors.Is(err, sql.ErrNoRows):
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM event_type_schemas WHERE tenant_id = $1`, tenant).Scan(&n); err != nil {
				return fmt.Errorf("counting event type schemas: %w", err)
			}
			if n >= metering.MaxSchemasPerTenant {
				return abacus.Conflict("too_many_event_schemas",
					"the tenant has %d event type schemas, the most allowed; delete one first", n)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO event_type_schemas (tenant_id, event_type, schema, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $4)`, tenant, eventType, string(doc), db.TimeOf(now)); err != nil {
				return fmt.Errorf("inserting event type schema: %w", err)
			}
		default:
			return fmt.Errorf("reading event type schema: %w", err)
		}
		return bumpRules(ctx, tx)
	})
	if err != nil {
		return EventTypeSchema{}, err
	}
	s.rules.Invalidate()
	return out, nil
}

// GetSchema returns the schema of the event type, or
// event_type_schema_not_found.
func (s *Service) GetSchema(ctx context.Context, eventType string) (EventTypeSchema, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return EventTypeSchema{}, err
	}
	var doc string
	var created, updated db.Time
	err = s.db.QueryRowContext(ctx, `SELECT schema, created_at, updated_at FROM event_type_schemas WHERE tenant_id = $1 AND event_type = $2`,
		tenant, eventType).Scan(&doc, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return EventTypeSchema{}, abacus.NotFound("event_type_schema", eventType)
	}
	if err != nil {
		return EventTypeSchema{}, fmt.Errorf("reading event type schema: %w", err)
	}
	return EventTypeSchema{EventType: eventType, Schema: json.RawMessage(doc), CreatedAt: created.Time, UpdatedAt: updated.Time}, nil
}

// DeleteSchema removes the event type's schema: its events are no longer
// checked beyond the CloudEvents rules. Errors: event_type_schema_not_found.
func (s *Service) DeleteSchema(ctx context.Context, eventType string) error {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return err
	}
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM event_type_schemas WHERE tenant_id = $1 AND event_type = $2`, tenant, eventType)
		if err != nil {
			return fmt.Errorf("deleting event type schema: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return abacus.NotFound("event_type_schema", eventType)
		}
		return bumpRules(ctx, tx)
	})
	if err != nil {
		return err
	}
	s.rules.Invalidate()
	return nil
}

// ListEventTypes returns the event types that have a schema or a meter,
// sorted by name.
func (s *Service) ListEventTypes(ctx context.Context) ([]EventType, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	byType := map[string]*EventType{}
	get := func(t string) *EventType {
		if byType[t] == nil {
			byType[t] = &EventType{EventType: t, Meters: []string{}}
		}
		return byType[t]
	}
	rows, err := s.db.QueryContext(ctx, `SELECT event_type FROM event_type_schemas WHERE tenant_id = $1`, tenant)
	if err != nil {
		return nil, fmt.Errorf("listing event type schemas: %w", err)
	}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return nil, fmt.Errorf("listing event type schemas: %w", err)
		}
		get(t).HasSchema = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing event type schemas: %w", err)
	}
	meters, err := s.ListMeters(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range meters {
		et := get(m.EventType)
		et.Meters = append(et.Meters, m.Slug)
	}
	out := make([]EventType, 0, len(byType))
	for _, et := range byType {
		sort.Strings(et.Meters)
		out = append(out, *et)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].EventType < out[j].EventType })
	return out, nil
}

// MeteringSettings are a tenant's metering settings.
type MeteringSettings struct {
	// LateEventWindow is how old an event's time may be when ingested, as
	// a Go duration ("840h" = 35 days).
	LateEventWindow string `json:"lateEventWindow"`
	// Default is true when the tenant has not chosen and the configured
	// default applies.
	Default bool `json:"default"`
}

// MeteringSettingsUpdate changes a tenant's settings. An empty
// lateEventWindow returns to the configured default.
type MeteringSettingsUpdate struct {
	LateEventWindow string `json:"lateEventWindow" doc:"Go duration between 1h and 8784h (366 days), e.g. 2160h for 90 days; empty for the default"`
}

// GetSettings returns the tenant's metering settings.
func (s *Service) GetSettings(ctx context.Context) (MeteringSettings, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return MeteringSettings{}, err
	}
	var secs int64
	err = s.db.QueryRowContext(ctx, `SELECT late_window FROM metering_settings WHERE tenant_id = $1`, tenant).Scan(&secs)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return MeteringSettings{LateEventWindow: metering.FormatWindow(s.limits.LateWindow), Default: true}, nil
	case err != nil:
		return MeteringSettings{}, fmt.Errorf("reading metering settings: %w", err)
	}
	return MeteringSettings{LateEventWindow: metering.FormatWindow(time.Duration(secs) * time.Second)}, nil
}

// PutSettings changes the tenant's metering settings; ingestion uses them
// from now on (other ingest processes within a second). Errors:
// invalid_metering_settings.
func (s *Service) PutSettings(ctx context.Context, u MeteringSettingsUpdate) (MeteringSettings, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return MeteringSettings{}, err
	}
	var window time.Duration
	if u.LateEventWindow != "" {
		window, err = time.ParseDuration(u.LateEventWindow)
		if err != nil {
			return MeteringSettings{}, abacus.Invalid(metering.CodeInvalidSettings,
				"lateEventWindow must be a duration such as 840h (35 days) or 2160h (90 days), got %q", u.LateEventWindow).
				WithField("lateEventWindow", "is not a duration")
		}
		if err := metering.ValidateLateWindow(window); err != nil {
			return MeteringSettings{}, err
		}
	}
	now := s.clock.Now()
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM metering_settings WHERE tenant_id = $1`, tenant); err != nil {
			return fmt.Errorf("updating metering settings: %w", err)
		}
		if window != 0 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO metering_settings (tenant_id, late_window, updated_at) VALUES ($1, $2, $3)`,
				tenant, int64(window/time.Second), db.TimeOf(now)); err != nil {
				return fmt.Errorf("updating metering settings: %w", err)
			}
		}
		return bumpRules(ctx, tx)
	})
	if err != nil {
		return MeteringSettings{}, err
	}
	s.rules.Invalidate()
	if window == 0 {
		return MeteringSettings{LateEventWindow: metering.FormatWindow(s.limits.LateWindow), Default: true}, nil
	}
	return MeteringSettings{LateEventWindow: metering.FormatWindow(window)}, nil
}
