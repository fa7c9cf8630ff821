// Package usage runs the metering pipeline on the database and the bus:
// the ingest role's HTTP endpoint and group-committing publisher, the
// meter role's exactly-once workers that turn bus messages into raw events
// and rollups, the meters API, usage queries and rebuilds, event-type
// schemas, tenant metering settings and static meters (docs/metering.md). The pure rules
// (decoding, meters, aggregation, windows, the bus encoding) live in the
// parent package metering.
//
//	POST /api/v1/events ─DecodeEvents─▶ partition hash(tenant, subject) % P
//	   ─▶ per-partition batcher: requests coalesced into one JetStream
//	      message (subject abacus.usage.<p>, stream ABACUS_USAGE) ─▶ ack ─▶ 204
//	      (no batcher goroutine: a request finding its partition idle
//	      publishes at once; the ack callback completes the requests and
//	      publishes what queued meanwhile, or Linger does)
//	meter-<p> consumer ─▶ one DB transaction per round:
//	      skip messages at or below the stored offset (a session first
//	      checks the stream still holds the offset's message: startAt)
//	      claim each new event's dedup key and learn which are new
//	      store the new events in blocks (one tenant per block)
//	      fold only new events into minute/hour/day rollups (merged in Go)
//	      store the offset ─▶ commit ─▶ ack
//
// Exactly once. An event is (tenant, source, id). Its dedup key is
// usage_event_keys (time, h): the event time in microseconds and a 64-bit
// SHA-256 prefix of (tenant, source, id); a client retry carries the same
// time and conflicts, so it is dropped and not folded (events.go explains
// the hash). Events without a client time get the server's receive time,
// which differs on a retry, so they claim (tenant, source, id) exactly in
// usage_event_ids instead. The remaining edge: a client that re-sends the
// same id with a different explicit time (or first without a time and then
// with one) is counted as a new event. Keys are never purged, so
// duplicates are recognised across any tenant's late-event window (up to
// metering.MaxLateWindow) and beyond.
//
// Tenant rules. Ingestion also applies each tenant's late-event window and
// JSON Schemas per event type (event_type_schemas, metering_settings).
// Rules caches them per tenant (a tenant without rules costs one map
// lookup per request); a change drops the cache at once in its process
// and, through metering_rules_version, within a second in the others.
//
// Static meters. Meters listed in the configuration (metering.meters) are
// applied at start by ApplyStaticMeters and marked managed_by = 'config';
// the API refuses to change or delete them.
//
// Throughput. Keys, encoded blocks and rollup deltas are prepared before
// the transaction for the common case (every event new); each key chunk is
// one plain INSERT, and if it meets a stored key the round is rolled back
// and redone carefully (RETURNING tells which keys are new). Raw events are
// stored as blocks of metering.EncodeBatch, not a row each; listing and
// rebuilds decode them. Multi-row statements take a few power-of-two sizes
// so they stay prepared on the SQLite writer (db.Tx.ExecPrepared) instead
// of being parsed every round. A rollup row missing from the worker's
// cache is read back only if it can exist: the worker knows, per (tenant,
// meter, resolution, subject), the latest start stored (read once, then
// moved by its own writes; only its partition writes its subjects' rows),
// and a row starting later is new and is inserted without conflict
// handling. Events spread over time (or live traffic entering a new
// minute) so cost no read. Load (`abacus bench load-usage`) stores events
// through the same code without the bus, for benchmarks over a large
// history.
//
// A crash anywhere loses nothing (an unacked message is delivered again;
// on start a worker resumes from its stored offset) and counts nothing
// twice (the offset commits with the rows). Each partition must have one
// active worker: on PostgreSQL meter processes share the partitions under
// session advisory locks (a member slot each, a lock per partition; see
// coordinate in partition_postgres.go), a dead process's partitions move
// to the survivors within a second or two and back when it returns, and
// every round checks the owner token in metering_offsets under the row
// lock so a process that lost a partition cannot commit beside its new
// owner; on SQLite the data-dir lock ensures one process.
//
// Meter definitions are read inside each round's transaction when the
// metering_versions row says they changed, so a round counts with the
// definitions committed before it. A rebuild runs in one transaction that
// holds the same row exclusively: worker rounds wait for it and then drop
// their cached rollups.
package usage
