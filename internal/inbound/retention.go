package inbound

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// Retention: a tenant keeps received documents for DocumentSettings.RetentionYears
// (default 10, the common legal archiving period). Each document's
// RetainUntil is fixed when it is received; a later change of the setting
// applies to documents received afterwards. Before RetainUntil the
// original cannot be deleted (Delete answers conflict "retention_active")
// and is served only while its bytes still hash to ContentHash.

// DefaultRetentionYears is the retention of a tenant that never set one.
const DefaultRetentionYears = 10

// DocumentSettings are a tenant's settings for received documents.
type DocumentSettings struct {
	RetentionYears int       `json:"retention_years" example:"10" doc:"how long received documents are kept (legal archiving); fixed per document when it is received"`
	UpdatedAt      time.Time `json:"updated_at,omitzero"`
}

// DocumentSettingsInput replaces a tenant's settings.
type DocumentSettingsInput struct {
	RetentionYears int `json:"retention_years" minimum:"1" maximum:"30" example:"10"`
}

func (s *Service) retentionYears(ctx context.Context, tenant string) (int, error) {
	st, err := loadSettings(ctx, s.db, tenant)
	return st.RetentionYears, err
}

// GetSettings returns the tenant's settings (the defaults when never set).
func (s *Service) GetSettings(ctx context.Context) (DocumentSettings, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return DocumentSettings{}, err
	}
	return loadSettings(ctx, s.db, tenant)
}

// SetSettings replaces the tenant's settings. Errors: invalid
// "invalid_document_settings" naming retention_years (1 to 30).
func (s *Service) SetSettings(ctx context.Context, in DocumentSettingsInput) (DocumentSettings, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return DocumentSettings{}, err
	}
	var v abacus.Validation
	if in.RetentionYears < 1 || in.RetentionYears > 30 {
		v.Add("retention_years", "must be 1 to 30 years")
	}
	if err := v.Err("invalid_document_settings"); err != nil {
		return DocumentSettings{}, err
	}
	st := DocumentSettings{RetentionYears: in.RetentionYears, UpdatedAt: s.clock.Now().UTC().Truncate(time.Microsecond)}
	_, err = s.db.ExecContext(ctx, `INSERT INTO inbound_settings (tenant_id, retention_years, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id) DO UPDATE SET retention_years = $2, updated_at = $3`, tenant, st.RetentionYears, db.TimeOf(st.UpdatedAt))
	if err != nil {
		return DocumentSettings{}, fmt.Errorf("saving document settings: %w", err)
	}
	return st, nil
}

func loadSettings(ctx context.Context, q db.Querier, tenant string) (DocumentSettings, error) {
	st := DocumentSettings{RetentionYears: DefaultRetentionYears}
	var at db.Time
	err := q.QueryRowContext(ctx, `SELECT retention_years, updated_at FROM inbound_settings WHERE tenant_id = $1`, tenant).Scan(&st.RetentionYears, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("loading document settings: %w", err)
	}
	st.UpdatedAt = at.Time.UTC()
	return st, nil
}

// Delete removes a received document and its original once its retention
// has ended. Errors: not found "inbound_document_not_found"; conflict
// "retention_active" before RetainUntil.
func (s *Service) Delete(ctx context.Context, id string) error {
	d, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	if now := s.clock.Now(); now.Before(d.RetainUntil) {
		return abacus.Conflict("retention_active", "document %s is kept until %s (the retention when it was received); its original cannot be deleted before",
			id, d.RetainUntil.Format(time.DateOnly))
	}
	tenant, _ := abacus.TenantFrom(ctx) // Get checked it
	if _, err := s.db.ExecContext(ctx, `DELETE FROM inbound_documents WHERE tenant_id = $1 AND id = $2`, tenant, id); err != nil {
		return fmt.Errorf("deleting inbound document %s: %w", id, err)
	}
	// The row goes first: a crash between leaves an object nobody points
	// at, never a row without its original.
	if err := s.blobs.Delete(ctx, d.blobKey); err != nil {
		return fmt.Errorf("deleting the original of %s: %w", id, err)
	}
	s.log.InfoContext(ctx, "document deleted after its retention", "tenant", tenant, "id", id, "retained_until", d.RetainUntil)
	return nil
}
