package media

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

type scanner interface{ Scan(dest ...any) error }

const fileCols = `hash, status, format, width, height, frames, upload_bytes, stored_bytes, renditions, attempts, updated_at`

func scanFile(r scanner) (file, error) {
	var f file
	var rend string
	var at db.Time
	if err := r.Scan(&f.Hash, &f.Status, &f.Format, &f.Width, &f.Height, &f.Frames, &f.UploadBytes, &f.StoredBytes, &rend, &f.Attempts, &at); err != nil {
		return f, err
	}
	f.UpdatedAt = at.Time
	if err := json.Unmarshal([]byte(rend), &f.Renditions); err != nil {
		return f, fmt.Errorf("reading the renditions of %s: %w", f.Hash, err)
	}
	return f, nil
}

// insertFile adds a pending file unless the tenant has it; it reports
// whether it was added.
func insertFile(ctx context.Context, tx *db.Tx, tenant string, h Header, hash string, size int64, at time.Time) (bool, error) {
	w, hh := h.Oriented()
	res, err := tx.ExecContext(ctx, `INSERT INTO media_files (tenant_id, hash, status, format, width, height, frames, upload_bytes, stored_bytes,
		renditions, attempts, last_error, created_at, updated_at) VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, 0, '{}', 0, '', $8, $8)
		ON CONFLICT (tenant_id, hash) DO NOTHING`, tenant, hash, string(h.Format), w, hh, h.Frames, size, db.TimeOf(at))
	if err != nil {
		return false, fmt.Errorf("storing media file: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func loadFile(ctx context.Context, q db.Querier, tenant, hash string) (file, error) {
	f, err := scanFile(q.QueryRowContext(ctx, `SELECT `+fileCols+` FROM media_files WHERE tenant_id = $1 AND hash = $2`, tenant, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return f, abacus.NotFound("media_file", hash)
	}
	return f, err
}

// markReady turns a pending file ready; false when it was not pending.
func markReady(ctx context.Context, tx *db.Tx, tenant, hash string, rend map[string]renditionMeta, stored int64, at time.Time) (bool, error) {
	b, _ := json.Marshal(rend)
	res, err := tx.ExecContext(ctx, `UPDATE media_files SET status = 'ready', renditions = $3, stored_bytes = $4, last_error = '', updated_at = $5
		WHERE tenant_id = $1 AND hash = $2 AND status = 'pending'`, tenant, hash, string(b), stored, db.TimeOf(at))
	if err != nil {
		return false, fmt.Errorf("marking media file ready: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// claimPending takes a pending file for rendering: it bumps attempts and
// updated_at if updated_at is still what the caller saw (one claimant
// wins across nodes).
func claimPending(ctx context.Context, d *db.DB, tenant, hash string, seen, at time.Time) (bool, error) {
	res, err := d.ExecContext(ctx, `UPDATE media_files SET attempts = attempts + 1, updated_at = $4
		WHERE tenant_id = $1 AND hash = $2 AND status = 'pending' AND updated_at = $3`, tenant, hash, db.TimeOf(seen), db.TimeOf(at))
	if err != nil {
		return false, fmt.Errorf("claiming media file: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func noteFailure(ctx context.Context, d *db.DB, tenant, hash, msg string) error {
	_, err := d.ExecContext(ctx, `UPDATE media_files SET last_error = $3 WHERE tenant_id = $1 AND hash = $2`, tenant, hash, msg)
	return err
}

type pendingRef struct {
	Tenant, Hash string
	UpdatedAt    time.Time
}

// stalePending lists pending files of every tenant untouched since before
// (a system sweep: files a crash or a full queue left behind).
func stalePending(ctx context.Context, d *db.DB, before time.Time, limit int) ([]pendingRef, error) {
	rows, err := d.QueryContext(ctx, `SELECT tenant_id, hash, updated_at FROM media_files WHERE status = 'pending' AND updated_at < $1
		ORDER BY updated_at LIMIT $2`, db.TimeOf(before), limit)
	if err != nil {
		return nil, fmt.Errorf("listing pending media: %w", err)
	}
	defer rows.Close()
	var out []pendingRef
	for rows.Next() {
		var p pendingRef
		var at db.Time
		if err := rows.Scan(&p.Tenant, &p.Hash, &at); err != nil {
			return nil, err
		}
		p.UpdatedAt = at.Time
		out = append(out, p)
	}
	return out, rows.Err()
}

// mediumRow is a row of media.
type mediumRow struct {
	ID, Hash, OwnerID, ConversationID, UploadedBy string
	CreatedAt                                     time.Time
}

const mediumCols = `id, hash, owner_id, conversation_id, uploaded_by, created_at`

func scanMedium(r scanner) (mediumRow, error) {
	var m mediumRow
	var at db.Time
	err := r.Scan(&m.ID, &m.Hash, &m.OwnerID, &m.ConversationID, &m.UploadedBy, &at)
	m.CreatedAt = at.Time
	return m, err
}

func insertMedium(ctx context.Context, tx *db.Tx, tenant string, m mediumRow) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO media (id, tenant_id, hash, owner_id, conversation_id, uploaded_by, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, m.ID, tenant, m.Hash, m.OwnerID, m.ConversationID, m.UploadedBy, db.TimeOf(m.CreatedAt))
	if err != nil {
		return fmt.Errorf("storing medium: %w", err)
	}
	return nil
}

// loadMedium returns a medium that is not deleted.
func loadMedium(ctx context.Context, q db.Querier, tenant, id string) (mediumRow, error) {
	m, err := scanMedium(q.QueryRowContext(ctx, `SELECT `+mediumCols+` FROM media WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL`, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return m, abacus.NotFound("medium", id)
	}
	return m, err
}

// findUpload returns the live medium with the same bytes, owner and
// conversation (a repeated upload), if any.
func findUpload(ctx context.Context, q db.Querier, tenant, hash, owner, conv string) (mediumRow, bool, error) {
	m, err := scanMedium(q.QueryRowContext(ctx, `SELECT `+mediumCols+` FROM media WHERE tenant_id = $1 AND hash = $2 AND owner_id = $3
		AND conversation_id = $4 AND deleted_at IS NULL ORDER BY id LIMIT 1`, tenant, hash, owner, conv))
	if errors.Is(err, sql.ErrNoRows) {
		return m, false, nil
	}
	return m, err == nil, err
}

// deleteUploadsOf removes every medium of a file (an unreadable image:
// nothing of it is kept).
func deleteUploadsOf(ctx context.Context, tx *db.Tx, tenant, hash string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM media WHERE tenant_id = $1 AND hash = $2`, tenant, hash); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM media_files WHERE tenant_id = $1 AND hash = $2`, tenant, hash)
	return err
}

// markDeleted hides media matching where (owner_id or id) and schedules
// their bytes; it returns the ids it hid.
func markDeleted(ctx context.Context, tx *db.Tx, tenant, column, value string, at, due time.Time) ([]mediumRow, error) {
	if column != "id" && column != "owner_id" && column != "conversation_id" {
		return nil, fmt.Errorf("markDeleted: unknown column %s", column)
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+mediumCols+` FROM media WHERE tenant_id = $1 AND `+column+` = $2 AND deleted_at IS NULL`, tenant, value)
	if err != nil {
		return nil, err
	}
	var hidden []mediumRow
	for rows.Next() {
		m, err := scanMedium(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		hidden = append(hidden, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	_, err = tx.ExecContext(ctx, `UPDATE media SET deleted_at = $3, delete_at = $4 WHERE tenant_id = $1 AND `+column+` = $2 AND deleted_at IS NULL`,
		tenant, value, db.TimeOf(at), db.TimeOf(due))
	return hidden, err
}

type dueRef struct{ Tenant, ID, Hash, Owner string }

// dueDeletions lists deleted media of every tenant whose retention ended.
func dueDeletions(ctx context.Context, d *db.DB, now time.Time, limit int) ([]dueRef, error) {
	rows, err := d.QueryContext(ctx, `SELECT tenant_id, id, hash, owner_id FROM media WHERE delete_at IS NOT NULL AND delete_at <= $1 ORDER BY delete_at LIMIT $2`,
		db.TimeOf(now), limit)
	if err != nil {
		return nil, fmt.Errorf("listing media due for deletion: %w", err)
	}
	defer rows.Close()
	var out []dueRef
	for rows.Next() {
		var r dueRef
		if err := rows.Scan(&r.Tenant, &r.ID, &r.Hash, &r.Owner); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// purgeMedium deletes a medium's row; when no other row uses its file it
// deletes the file's row too and reports that its bytes may go.
func purgeMedium(ctx context.Context, tx *db.Tx, r dueRef) (lastUse bool, err error) {
	if _, err := tx.ExecContext(ctx, `DELETE FROM media WHERE tenant_id = $1 AND id = $2`, r.Tenant, r.ID); err != nil {
		return false, err
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM media WHERE tenant_id = $1 AND hash = $2`, r.Tenant, r.Hash).Scan(&n); err != nil {
		return false, err
	}
	if n > 0 {
		return false, nil
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM media_files WHERE tenant_id = $1 AND hash = $2`, r.Tenant, r.Hash)
	return err == nil, err
}

// MediaSettings are a tenant's media settings.
type MediaSettings struct {
	Limits
	RetentionHours int `json:"retention_hours" doc:"hours between a deletion (of an image, its message or its owner) and its bytes being erased"`
}

func loadSettings(ctx context.Context, q db.Querier, tenant string) (MediaSettings, bool, error) {
	var s MediaSettings
	err := q.QueryRowContext(ctx, `SELECT max_bytes, max_pixels, max_frames, retention_hours FROM media_settings WHERE tenant_id = $1`, tenant).
		Scan(&s.MaxBytes, &s.MaxPixels, &s.MaxFrames, &s.RetentionHours)
	if errors.Is(err, sql.ErrNoRows) {
		return s, false, nil
	}
	return s, err == nil, err
}

func saveSettings(ctx context.Context, tx *db.Tx, tenant string, s MediaSettings, at time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO media_settings (tenant_id, max_bytes, max_pixels, max_frames, retention_hours, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id) DO UPDATE SET max_bytes = EXCLUDED.max_bytes, max_pixels = EXCLUDED.max_pixels,
		max_frames = EXCLUDED.max_frames, retention_hours = EXCLUDED.retention_hours, updated_at = EXCLUDED.updated_at`,
		tenant, s.MaxBytes, s.MaxPixels, s.MaxFrames, s.RetentionHours, db.TimeOf(at))
	return err
}
