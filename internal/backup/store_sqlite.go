package backup

import (
	"context"
	"database/sql"
	"fmt"

	_ "modernc.org/sqlite" // the driver internal/db uses
)

// vacuumInto copies the SQLite database at path into file in one read
// transaction: a consistent copy, while the server's writer goes on (WAL).
// It uses a connection of its own: the server's read pool is query-only,
// and its single writer would hold every write for the copy's length.
func vacuumInto(ctx context.Context, path, file string) error {
	c, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `VACUUM INTO ?1`, file); err != nil {
		return fmt.Errorf("copying the database (VACUUM INTO): %w", err)
	}
	return nil
}
