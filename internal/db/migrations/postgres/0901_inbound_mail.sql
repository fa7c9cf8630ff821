-- Receiving e-documents by e-mail (issue 22). Each tenant has one secret
-- inbound address, <token>@<inbound.domain>; rotating it replaces the token.
CREATE TABLE inbound_addresses (
    tenant_id  TEXT PRIMARY KEY,
    token      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX inbound_addresses_token ON inbound_addresses (token);

-- Each message the SMTP receiver accepted for a tenant. The raw message is
-- in the object store under blob_key and this row is committed before the
-- receiver answers 250, so a crash leaves it 'received' and the role
-- processes it again (the attachments are deduplicated by content hash).
CREATE TABLE inbound_messages (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    content_hash TEXT NOT NULL, -- sha256 of the raw message, hex
    blob_key     TEXT NOT NULL,
    size         BIGINT NOT NULL,
    mail_from    TEXT NOT NULL, -- the envelope sender
    rcpt_to      TEXT NOT NULL, -- the tenant's address it was sent to
    subject      TEXT NOT NULL,
    message_id   TEXT NOT NULL, -- the Message-ID header, or ''
    status       TEXT NOT NULL, -- received, processed or rejected
    documents    TEXT NOT NULL, -- JSON array of inbound document ids
    notes        TEXT NOT NULL, -- JSON array: attachments skipped and why
    error        TEXT NOT NULL, -- why it was rejected, or ''
    received_at  BIGINT NOT NULL,
    processed_at BIGINT
);
CREATE UNIQUE INDEX inbound_messages_hash ON inbound_messages (tenant_id, content_hash);
CREATE INDEX inbound_messages_tenant ON inbound_messages (tenant_id, id);
CREATE INDEX inbound_messages_status ON inbound_messages (status, received_at);
