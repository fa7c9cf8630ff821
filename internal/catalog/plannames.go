package catalog

import (
	"context"
	"fmt"

	"github.com/abacusbilling/abacus/internal/db"
)

// PlanNames returns the names of a tenant's plans by id, read through q
// (billing prints them on invoices).
func PlanNames(ctx context.Context, q db.Querier, tenant string) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, name FROM plans WHERE tenant_id = $1`, tenant)
	if err != nil {
		return nil, fmt.Errorf("reading plan names: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, err
		}
		out[id] = name
	}
	return out, rows.Err()
}
