-- Images (issue 17). A file is one image's bytes in a tenant, by the
-- SHA-256 of the upload: the upload itself and its renditions (original
-- re-encoded without metadata, thumbnail, medium, large) live in the
-- object store under media/<tenant>/<hash>/. A file is 'pending' until
-- every rendition is durable, then 'ready' in one update: a crash leaves
-- it pending, and pending files are processed again on start.
CREATE TABLE media_files (
    tenant_id    TEXT NOT NULL,
    hash         TEXT NOT NULL, -- sha256 of the upload, hex
    status       TEXT NOT NULL, -- pending, ready
    format       TEXT NOT NULL, -- detected: jpeg, png, gif, webp
    width        INTEGER NOT NULL, -- oriented
    height       INTEGER NOT NULL,
    frames       INTEGER NOT NULL,
    upload_bytes BIGINT NOT NULL,
    stored_bytes BIGINT NOT NULL, -- every rendition, once ready
    renditions   TEXT NOT NULL, -- JSON: name -> {content_type, width, height, bytes, etag}
    attempts     INTEGER NOT NULL,
    last_error   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, hash)
);
CREATE INDEX media_files_pending ON media_files (status, updated_at);

-- One upload of a file: by an end user (owner_id) or the tenant's backend,
-- for a conversation (its members may see it) or not (an avatar: anyone
-- in the tenant). delete_at is set when it is deleted (or its owner or
-- message is): it disappears at once and its bytes go at delete_at, once
-- the tenant's retention window has passed and no other upload uses them.
CREATE TABLE media (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    hash            TEXT NOT NULL,
    owner_id        TEXT NOT NULL, -- end user, or ''
    conversation_id TEXT NOT NULL, -- or ''
    uploaded_by     TEXT NOT NULL, -- principal kind:id
    created_at      BIGINT NOT NULL,
    deleted_at      BIGINT,
    delete_at       BIGINT
);
CREATE INDEX media_tenant ON media (tenant_id, id);
CREATE INDEX media_owner ON media (tenant_id, owner_id);
CREATE INDEX media_conversation ON media (tenant_id, conversation_id);
CREATE INDEX media_hash ON media (tenant_id, hash);
CREATE INDEX media_delete_at ON media (delete_at);

-- A tenant's upload limits and retention window (defaults until set).
CREATE TABLE media_settings (
    tenant_id       TEXT PRIMARY KEY,
    max_bytes       BIGINT NOT NULL,
    max_pixels      BIGINT NOT NULL,
    max_frames      INTEGER NOT NULL,
    retention_hours INTEGER NOT NULL,
    updated_at      BIGINT NOT NULL
);
