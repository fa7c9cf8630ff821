// Package metering is the pure core of usage metering: it decodes and
// validates CloudEvents, defines meters and extracts their values from raw
// event data, folds events into mergeable per-minute rollups, turns rollups
// into query windows and encodes validated batches for the bus. It also
// compiles tenants' JSON Schemas for event data (CompileSchema) and checks
// events against them while decoding (DecodeEventsChecked).
//
// It touches no database, network or clock of its own: callers pass "now".
//
// The hot path, per event:
//
//	body ──DecodeEvents──▶ []Event ──EncodeBatch──▶ one bus message
//	bus message ──DecodeBatch──▶ []Event ──Aggregator.Add──▶ []Rollup deltas ──▶ store
//	stored rows ──Windows──▶ QueryResult
//
// Event data is kept as the raw JSON bytes the client sent (checked to be a
// JSON object); it is never unmarshalled into maps. Meter values are read
// from those bytes with a small JSONPath subset and parsed as exact decimals
// from their JSON text, never through float64.
package metering
