// Package backup takes and restores backups of Abacus's embedded mode: the
// SQLite database, every JetStream stream of the embedded server (with its
// consumers) and the data dir's other files (at-rest keys, the object
// store's directory), in one tar archive.
//
// Consistency rule: the database is the source of truth; the streams are
// taken after it and so hold at least everything it points at.
//
//  1. each durable consumer's ack floor is read (time T0);
//  2. the database is copied with VACUUM INTO, one read transaction,
//     while the server keeps writing (T1 > T0);
//  3. each stream is snapshotted through the server, with its consumers
//     (T2 > T1); then the other files are copied.
//
// On restore (into an empty data dir, before the server starts):
//
//   - usage: the meter workers resume from the offsets stored in the
//     database (metering_offsets) and re-read what the stream holds after
//     them; an event acknowledged before the backup began is either in the
//     database or in the stream after its partition's offset, so it is
//     counted exactly once (dedup keys catch any overlap);
//   - domain events: an outbox row not yet marked published at T1 may be
//     in the stream already; the relay publishes it again with the same
//     message id and consumers drop it by event id;
//   - consumers: each durable consumer is rewound to just after its ack
//     floor at T0, so an event whose effect committed after T1 (and is
//     missing from the database) is delivered again; effects that did
//     commit are recognised by event id (every consumer is idempotent).
//
// Every event acknowledged before T2 is in the backup; later ones may not
// be: it is the state of a moment after T2, taken without stopping the
// server (the manifest records T1 as database_at and T2 as streams_at).
package backup
