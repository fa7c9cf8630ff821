-- Metering rules per tenant (issue 4, functional gaps): JSON Schemas for
-- event data by event type, the late-event window, and meters managed in
-- the configuration file.

-- A tenant's JSON Schema for the data of one event type; ingestion
-- validates every event of that type against it.
CREATE TABLE event_type_schemas (
    tenant_id   TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    schema      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, event_type)
);

-- A tenant's metering settings; no row means the configured defaults.
-- late_window is in seconds.
CREATE TABLE metering_settings (
    tenant_id   TEXT PRIMARY KEY,
    late_window BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- One row, bumped when any schema or setting changes, so ingest processes
-- drop their cached rules. Kept apart from metering_versions, which a
-- rebuild holds locked for its whole run.
CREATE TABLE metering_rules_version (
    name    TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO metering_rules_version (name, version) VALUES ('global', 0);

-- 'config' for meters defined in the configuration file (read-only
-- through the API), 'api' for the others.
ALTER TABLE meters ADD COLUMN managed_by TEXT NOT NULL DEFAULT 'api';
