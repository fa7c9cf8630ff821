-- Metering storage for throughput (issue 4, performance). Raw events move
-- from one row per event to blocks of encoded events, and the per-event
-- dedup key becomes two integers, so the hot path inserts one narrow index
-- entry per event instead of a wide row behind a text key. usage_events
-- never shipped in a release; it is dropped here.

-- One entry per stored event whose client sent a time: (event time in
-- unix micros, 64-bit SHA-256 prefix of tenant, source and id). A retry
-- carries the same time and hash and conflicts. Time first, so inserts
-- land at the right edge of the tree.
CREATE TABLE usage_event_keys (
    time BIGINT NOT NULL,
    h    BIGINT NOT NULL,
    PRIMARY KEY (time, h)
);

-- New events of one tenant from one meter round (at most a few thousand
-- per block), encoded with metering.EncodeBatch. Listing and rebuilds
-- decode blocks; max_time orders them newest first.
CREATE TABLE usage_event_blocks (
    tenant_id  TEXT NOT NULL,
    max_time   BIGINT NOT NULL,
    partition  INTEGER NOT NULL,
    stream_seq BIGINT NOT NULL,
    part       INTEGER NOT NULL,
    min_time   BIGINT NOT NULL,
    events     INTEGER NOT NULL,
    data       BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, max_time, partition, stream_seq, part)
);
-- pglz cost ~2.6 µs per event here, lz4 ~0.3 µs and a smaller result; a
-- server built without lz4 stores blocks uncompressed (~0.9 µs).
DO $$
BEGIN
    ALTER TABLE usage_event_blocks ALTER COLUMN data SET COMPRESSION lz4;
EXCEPTION WHEN OTHERS THEN
    ALTER TABLE usage_event_blocks ALTER COLUMN data SET STORAGE EXTERNAL;
END
$$;

DROP TABLE usage_events;
