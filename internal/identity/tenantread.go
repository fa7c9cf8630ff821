package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// TenantIDs returns the ids of up to limit tenants, oldest first, so the
// first is the default tenant bootstrap created on empty data. It is the
// read API other modules and the CLI use instead of naming identity's
// tables; q may be a transaction.
func TenantIDs(ctx context.Context, q db.Querier, limit int) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT id FROM tenants ORDER BY created_at, id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("listing tenants: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("listing tenants: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// TenantExists reports whether tenant id exists; q may be a transaction.
func TenantExists(ctx context.Context, q db.Querier, id string) (bool, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM tenants WHERE id = $1`, id).Scan(&n); err != nil {
		return false, fmt.Errorf("reading tenant %s: %w", id, err)
	}
	return n > 0, nil
}

// TenantName returns tenant id's name ("" and tenant_not_found when there
// is no such tenant); q may be a transaction.
func TenantName(ctx context.Context, q db.Querier, id string) (string, error) {
	var name string
	err := q.QueryRowContext(ctx, `SELECT name FROM tenants WHERE id = $1`, id).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", abacus.NotFound("tenant", id)
	}
	if err != nil {
		return "", fmt.Errorf("reading tenant %s: %w", id, err)
	}
	return name, nil
}

// TenantRef is a tenant's id and name.
type TenantRef struct{ ID, Name string }

// FindTenants returns up to limit tenants, oldest first: every tenant when
// ref is "", else those whose id or exact name is ref (the CLI's --tenant).
func FindTenants(ctx context.Context, q db.Querier, ref string, limit int) ([]TenantRef, error) {
	query, args := `SELECT id, name FROM tenants ORDER BY created_at, id LIMIT $1`, []any{limit}
	if ref != "" {
		query, args = `SELECT id, name FROM tenants WHERE id = $1 OR name = $1 ORDER BY created_at, id LIMIT $2`, []any{ref, limit}
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("finding tenants: %w", err)
	}
	defer rows.Close()
	var ts []TenantRef
	for rows.Next() {
		var t TenantRef
		if err := rows.Scan(&t.ID, &t.Name); err != nil {
			return nil, fmt.Errorf("finding tenants: %w", err)
		}
		ts = append(ts, t)
	}
	return ts, rows.Err()
}
