-- People and places nearby (issue 17). One published location per end
-- user or place, stored snapped to the configured precision (never the
-- exact point): lat/lon are the centre of an S2 cell, cell is the S2 leaf
-- cell id of that centre (as a signed 64-bit integer; a covering cell's
-- range of leaves never crosses a face, so ranges stay ordered). End
-- users' locations expire (expires_at); places' do not.
CREATE TABLE nearby_locations (
    tenant_id    TEXT NOT NULL,
    subject_type TEXT NOT NULL, -- end_user, place
    subject_id   TEXT NOT NULL,
    kind         TEXT NOT NULL, -- end_user, or the place's kind (event, service_provider…)
    name         TEXT NOT NULL,
    tags         TEXT NOT NULL, -- JSON array of strings
    cell         BIGINT NOT NULL,
    lat          DOUBLE PRECISION NOT NULL,
    lon          DOUBLE PRECISION NOT NULL,
    updated_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    PRIMARY KEY (tenant_id, subject_type, subject_id)
);
CREATE INDEX nearby_locations_cell ON nearby_locations (tenant_id, cell);
