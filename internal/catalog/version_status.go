package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// CurrentVersionStatus reads a plan version's status from the database,
// never from LoadVersion's cache: another node may have archived a version
// this process still holds as published. It returns "plan_version_not_found".
func CurrentVersionStatus(ctx context.Context, q db.Querier, tenant, id string) (VersionStatus, error) {
	var status string
	err := q.QueryRowContext(ctx, `SELECT status FROM plan_versions WHERE tenant_id = $1 AND id = $2`, tenant, id).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return "", abacus.Errorf(abacus.KindNotFound, "plan_version_not_found", "plan version %q does not exist", id)
	}
	if err != nil {
		return "", fmt.Errorf("reading version status: %w", err)
	}
	return VersionStatus(status), nil
}
