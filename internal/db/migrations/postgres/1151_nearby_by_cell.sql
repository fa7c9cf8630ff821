-- Radius queries read every location in a few ranges of cell ids. The
-- index on (tenant_id, cell) now carries every column a query reads, so
-- a range is an index-only scan instead of a heap fetch per row (1M
-- locations: p99 of a 5 km query 185 ms before, see docs/benchmarks.md).
-- Index-only scans need the visibility map, which VACUUM keeps: locations
-- change often, so autovacuum visits the table after 1% of its rows
-- changed instead of 20%.
DROP INDEX nearby_locations_cell;
CREATE INDEX nearby_locations_cell ON nearby_locations (tenant_id, cell)
    INCLUDE (expires_at, subject_type, subject_id, kind, lat, lon, name, tags);
ALTER TABLE nearby_locations SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_insert_scale_factor = 0.01);
