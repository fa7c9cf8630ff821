-- Received e-documents (issue 22). The original bytes live in the object
-- store (internal/blob) under blob_key; a row exists only once the
-- original is durable there, so a crash leaves a document either stored
-- and processed or absent and re-processable from its source. Times are
-- unix micros; amounts are decimal text.
CREATE TABLE inbound_documents (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    content_hash  TEXT NOT NULL, -- sha256 of the original, hex
    blob_key      TEXT NOT NULL,
    size          BIGINT NOT NULL,
    format        TEXT NOT NULL, -- detected input format: ubl, cii, facturx, json
    source        TEXT NOT NULL, -- api or email
    status        TEXT NOT NULL, -- valid or invalid (breaks a rule; see report)
    kind          TEXT NOT NULL,
    number        TEXT NOT NULL,
    issue_date    TEXT NOT NULL, -- YYYY-MM-DD
    supplier_key  TEXT NOT NULL, -- seller VAT id, else legal id, else electronic address, else name
    supplier_name TEXT NOT NULL,
    currency      TEXT NOT NULL,
    payable       TEXT NOT NULL,
    duplicate_of  TEXT NOT NULL, -- an earlier document with the same supplier, number and date, or ''
    report        TEXT NOT NULL, -- JSON validation report
    received_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX inbound_documents_hash ON inbound_documents (tenant_id, content_hash);
CREATE INDEX inbound_documents_tenant ON inbound_documents (tenant_id, id);
CREATE INDEX inbound_documents_business_key ON inbound_documents (tenant_id, supplier_key, number, issue_date);
