package nearby

import (
	"context"
	"database/sql"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
)

// row is a row of nearby_locations.
type row struct {
	Type, ID, Kind, Name string
	Tags                 []string
	Cell                 int64
	Lat, Lon             float64
	UpdatedAt            time.Time
	ExpiresAt            *time.Time
}

func (r row) location() Location {
	l := Location{Lat: r.Lat, Lon: r.Lon, Tags: r.Tags, UpdatedAt: r.UpdatedAt.UTC()}
	if r.ExpiresAt != nil {
		e := r.ExpiresAt.UTC()
		l.ExpiresAt = &e
	}
	if r.Type == TypeEndUser {
		l.EndUserID = r.ID
	} else {
		l.PlaceID = r.ID
	}
	return l
}

func (r row) place() Place {
	return Place{ID: r.ID, Name: r.Name, Kind: r.Kind, Tags: r.Tags, Lat: r.Lat, Lon: r.Lon, UpdatedAt: r.UpdatedAt.UTC()}
}

func upsert(ctx context.Context, tx *db.Tx, tenant string, r row) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO nearby_locations (tenant_id, subject_type, subject_id, kind, name, tags, cell, lat, lon, updated_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (tenant_id, subject_type, subject_id) DO UPDATE SET kind = EXCLUDED.kind, name = EXCLUDED.name, tags = EXCLUDED.tags,
		cell = EXCLUDED.cell, lat = EXCLUDED.lat, lon = EXCLUDED.lon, updated_at = EXCLUDED.updated_at, expires_at = EXCLUDED.expires_at`,
		tenant, r.Type, r.ID, r.Kind, r.Name, tagsJSON(r.Tags), r.Cell, r.Lat, r.Lon, db.TimeOf(r.UpdatedAt), db.NullTimeOf(r.ExpiresAt))
	return err
}

func remove(ctx context.Context, tx *db.Tx, tenant, typ, id string) error {
	_, err := removeN(ctx, tx, tenant, typ, id)
	return err
}

func removeN(ctx context.Context, tx *db.Tx, tenant, typ, id string) (int64, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM nearby_locations WHERE tenant_id = $1 AND subject_type = $2 AND subject_id = $3`, tenant, typ, id)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

const rowCols = `subject_type, subject_id, kind, name, tags, cell, lat, lon, updated_at, expires_at`

type scanner interface{ Scan(dest ...any) error }

func scanRow(s scanner) (row, error) {
	var r row
	var tags string
	var at db.Time
	var exp db.NullTime
	if err := s.Scan(&r.Type, &r.ID, &r.Kind, &r.Name, &tags, &r.Cell, &r.Lat, &r.Lon, &at, &exp); err != nil {
		return r, err
	}
	r.UpdatedAt, r.ExpiresAt = at.Time, exp.Ptr()
	r.Tags = decodeTags(tags)
	return r, nil
}

// candidate is a live location a radius query read: only the columns a
// hit shows, tags still JSON (decoded for the hits a page returns).
type candidate struct {
	Type, ID, Kind, Name, Tags string
	Lat, Lon                   float64
}

// candidates returns the live locations in the cell ranges: one range
// scan of (tenant_id, cell) per range, joined with UNION ALL (an OR of
// ranges is not always planned as separate range scans). Every column
// read is in the scanned structure (SQLite: the table's key; PostgreSQL:
// the index's INCLUDE columns), so no row is looked up elsewhere. The
// expiry test is a COALESCE, not "IS NULL OR >": SQLite plans an OR once
// per branch, which cost about a third of a small query's CPU.
func candidates(ctx context.Context, q db.Querier, tenant string, ranges []cellRange, kind string, now time.Time) ([]candidate, error) {
	var b strings.Builder
	args := make([]any, 0, 3+2*len(ranges))
	args = append(args, tenant, db.TimeOf(now))
	filter := ""
	if kind != "" {
		args = append(args, kind)
		filter = " AND kind = $3"
	}
	for i, r := range ranges {
		if i > 0 {
			b.WriteString(" UNION ALL ")
		}
		n := len(args)
		b.WriteString(`SELECT subject_type, subject_id, kind, name, tags, lat, lon FROM nearby_locations WHERE tenant_id = $1 AND cell BETWEEN $` +
			strconv.Itoa(n+1) + ` AND $` + strconv.Itoa(n+2) + ` AND COALESCE(expires_at, 9223372036854775807) > $2` + filter)
		args = append(args, r.lo, r.hi)
	}
	rows, err := q.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]candidate, 0, 256)
	for rows.Next() {
		var c candidate
		if err := rows.Scan(&c.Type, &c.ID, &c.Kind, &c.Name, &c.Tags, &c.Lat, &c.Lon); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// decodeTags reads a tags column; an unreadable one is no tags.
func decodeTags(s string) []string {
	var tags []string
	if s != "[]" && s != "" {
		_ = json.Unmarshal([]byte(s), &tags)
	}
	if tags == nil {
		tags = []string{}
	}
	return tags
}

// scanAll reads every row of a query of rowCols.
func scanAll(rows *sql.Rows, err error) ([]row, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []row
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func listPlaces(ctx context.Context, q db.Querier, tenant, after string, limit int) ([]row, error) {
	return scanAll(q.QueryContext(ctx, `SELECT `+rowCols+` FROM nearby_locations WHERE tenant_id = $1 AND subject_type = 'place' AND subject_id > $2
		ORDER BY subject_id LIMIT $3`, tenant, after, limit))
}
