-- Metering (issue 4). Times are unix micros, decimals TEXT, JSON TEXT.

-- Meters: a slug is unique per tenant among meters that are not deleted.
CREATE TABLE meters (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    slug        TEXT NOT NULL,
    definition  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    deleted_at  BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX meters_slug ON meters (tenant_id, slug) WHERE deleted_at IS NULL;

-- One row: bumped when any meter changes (meters) or rollups are rebuilt
-- (epoch), so meter workers reload definitions and drop cached rollups.
CREATE TABLE metering_versions (
    name    TEXT PRIMARY KEY,
    meters  BIGINT NOT NULL,
    epoch   BIGINT NOT NULL
);
INSERT INTO metering_versions (name, meters, epoch) VALUES ('global', 0, 0);

-- Raw events. The primary key is the dedup key: event time first, so
-- inserts land at the right edge of the tree; a retry carries the same time.
CREATE TABLE usage_events (
    tenant_id       TEXT NOT NULL,
    time            BIGINT NOT NULL,
    source          TEXT NOT NULL,
    id              TEXT NOT NULL,
    type            TEXT NOT NULL,
    subject         TEXT NOT NULL,
    data            TEXT,
    datacontenttype TEXT,
    dataschema      TEXT,
    received_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, time, source, id)
);

-- Identities of events whose time the server assigned (the client sent
-- none): their retries carry another time, so (tenant, source, id) alone
-- must be unique.
CREATE TABLE usage_event_ids (
    tenant_id TEXT NOT NULL,
    source    TEXT NOT NULL,
    id        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, source, id)
);

-- Rollups at three resolutions (res: 60 minute, 3600 hour, 86400 day
-- seconds; start is unix seconds, UTC-aligned).
CREATE TABLE usage_rollups (
    tenant_id     TEXT NOT NULL,
    meter_id      TEXT NOT NULL,
    res           INTEGER NOT NULL,
    subject       TEXT NOT NULL,
    start         BIGINT NOT NULL,
    group_key     TEXT NOT NULL,
    count         BIGINT NOT NULL,
    sum           TEXT NOT NULL,
    min           TEXT NOT NULL,
    max           TEXT NOT NULL,
    latest        TEXT NOT NULL,
    latest_at     BIGINT NOT NULL,
    latest_source TEXT NOT NULL,
    latest_id     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, meter_id, res, subject, start, group_key)
);

-- Distinct values of UNIQUE_COUNT meters per rollup row.
CREATE TABLE usage_rollup_values (
    tenant_id TEXT NOT NULL,
    meter_id  TEXT NOT NULL,
    res       INTEGER NOT NULL,
    subject   TEXT NOT NULL,
    start     BIGINT NOT NULL,
    group_key TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, meter_id, res, subject, start, group_key, value)
);

-- The last bus message (stream sequence) applied per partition, committed
-- with the rows it produced: a redelivered message is applied once.
CREATE TABLE metering_offsets (
    partition  INTEGER PRIMARY KEY,
    stream_seq BIGINT NOT NULL
);
