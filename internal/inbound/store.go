package inbound

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/document"
)

const docCols = `id, content_hash, blob_key, size, format, source, status, kind, number, issue_date, supplier_key, supplier_name, currency, payable, duplicate_of, report, received_at, retain_until`

type scanner interface{ Scan(dest ...any) error }

func scanDocument(r scanner) (Document, error) {
	var d Document
	var report string
	var at, keep db.Time
	if err := r.Scan(&d.ID, &d.ContentHash, &d.blobKey, &d.Size, &d.Format, &d.Source, &d.Status, &d.Kind, &d.Number, &d.IssueDate,
		&d.SupplierKey, &d.SupplierName, &d.Currency, &d.Payable, &d.DuplicateOf, &report, &at, &keep); err != nil {
		return d, err
	}
	d.ReceivedAt, d.RetainUntil = at.Time.UTC(), keep.Time.UTC()
	d.Report = &document.Report{}
	if err := json.Unmarshal([]byte(report), d.Report); err != nil {
		return d, fmt.Errorf("reading the report of %s: %w", d.ID, err)
	}
	return d, nil
}

func insertDocument(ctx context.Context, tx *db.Tx, tenant string, d *Document) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO inbound_documents (`+docCols+`, tenant_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
		d.ID, d.ContentHash, d.blobKey, d.Size, string(d.Format), string(d.Source), string(d.Status), d.Kind, d.Number, d.IssueDate,
		d.SupplierKey, d.SupplierName, d.Currency, d.Payable, d.DuplicateOf, reportJSON(d.Report), db.TimeOf(d.ReceivedAt), db.TimeOf(d.RetainUntil), tenant)
	if err != nil {
		return fmt.Errorf("storing inbound document: %w", err)
	}
	return nil
}

// one scans the row a query answered; no row is NotFound(what, key).
func one[T any](scan func(scanner) (T, error), row *sql.Row, what, key string) (T, error) {
	v, err := scan(row)
	if errors.Is(err, sql.ErrNoRows) {
		return v, abacus.NotFound(what, key)
	}
	return v, err
}

func loadDocument(ctx context.Context, q db.Querier, tenant, id string) (Document, error) {
	return one(scanDocument, q.QueryRowContext(ctx, `SELECT `+docCols+` FROM inbound_documents WHERE tenant_id = $1 AND id = $2`, tenant, id),
		"inbound_document", id)
}

func loadByHash(ctx context.Context, q db.Querier, tenant, hash string) (Document, error) {
	return one(scanDocument, q.QueryRowContext(ctx, `SELECT `+docCols+` FROM inbound_documents WHERE tenant_id = $1 AND content_hash = $2`, tenant, hash),
		"inbound_document", hash)
}

// findDuplicate returns the first document of tenant with the same
// supplier, number and issue date, or "".
func findDuplicate(ctx context.Context, q db.Querier, tenant, supplier, number, date string) (string, error) {
	var id string
	err := q.QueryRowContext(ctx, `SELECT id FROM inbound_documents WHERE tenant_id = $1 AND supplier_key = $2 AND number = $3 AND issue_date = $4
		ORDER BY received_at, id LIMIT 1`, tenant, supplier, number, date).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("looking for duplicates: %w", err)
	}
	return id, nil
}

// listDocuments returns up to f.Limit+1 documents after f.Cursor.
func listDocuments(ctx context.Context, q db.Querier, tenant string, f ListFilter) ([]Document, error) {
	query := `SELECT ` + docCols + ` FROM inbound_documents WHERE tenant_id = $1 AND id > $2`
	args := []any{tenant, f.Cursor}
	if f.Status != "" {
		args = append(args, string(f.Status))
		query += fmt.Sprintf(" AND status = $%d", len(args))
	}
	if f.Duplicate != nil {
		if *f.Duplicate {
			query += " AND duplicate_of <> ''"
		} else {
			query += " AND duplicate_of = ''"
		}
	}
	args = append(args, f.Limit+1)
	query += fmt.Sprintf(" ORDER BY id LIMIT $%d", len(args))
	return all(ctx, q, scanDocument, "inbound documents", query, args...)
}

// all scans every row query answers; what names them in errors.
func all[T any](ctx context.Context, q db.Querier, scan func(scanner) (T, error), what, query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", what, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
