package db

// LockClause returns clause, a row-locking suffix such as " FOR UPDATE",
// " FOR SHARE" or " FOR UPDATE SKIP LOCKED", on PostgreSQL, and "" on
// SQLite, where a write transaction already excludes every other writer.
// It keeps that engine difference out of the stores that lock rows.
func (t *Tx) LockClause(clause string) string {
	if t.db.engine == Postgres {
		return clause
	}
	return ""
}
