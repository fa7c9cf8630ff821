-- Notifications (issue 14): what to send, to whom, over which channels,
-- rendered from versioned templates, with per-channel delivery state.

-- One notification to send: recorded in the caller's transaction, so it
-- exists iff the change that caused it committed.
CREATE TABLE notifications (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    template        TEXT NOT NULL,
    locale          TEXT NOT NULL,
    recipient_kind  TEXT NOT NULL, -- end_user | staff | email
    recipient_id    TEXT NOT NULL,
    recipient_email TEXT NOT NULL,
    recipient_name  TEXT NOT NULL,
    recipient_tz    TEXT NOT NULL,
    data            TEXT NOT NULL, -- JSON object the template renders
    category        TEXT NOT NULL,
    critical        INTEGER NOT NULL,
    dedupe_key      TEXT,
    source          TEXT NOT NULL, -- api | event:<type> | module name
    subject_type    TEXT NOT NULL, -- what it is about (invoice, …), for per-object status
    subject_id      TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX notifications_tenant ON notifications (tenant_id, id);
CREATE INDEX notifications_subject ON notifications (tenant_id, subject_type, subject_id);
CREATE UNIQUE INDEX notifications_dedupe ON notifications (tenant_id, dedupe_key) WHERE dedupe_key IS NOT NULL;

CREATE TABLE notification_attachments (
    notification_id TEXT NOT NULL,
    position        INTEGER NOT NULL,
    tenant_id       TEXT NOT NULL,
    filename        TEXT NOT NULL,
    content_type    TEXT NOT NULL,
    content         BLOB NOT NULL,
    PRIMARY KEY (notification_id, position)
);

-- One row per notification and channel. State machine (notifications
-- package doc): pending → sending → sent | pending (retry) | failed;
-- pending → deferred | dropped | suppressed | digested by the policy.
CREATE TABLE notification_deliveries (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    channel         TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    due_at          BIGINT NOT NULL, -- when a pending/deferred delivery is next tried; lease end while sending
    subject         TEXT NOT NULL,   -- rendered, kept for the record
    text_body       TEXT NOT NULL,   -- kept only in development mode (links in them are credentials)
    html_body       TEXT NOT NULL,
    provider_id     TEXT NOT NULL,   -- e.g. the Message-ID of a mail
    last_error      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (state, due_at);
CREATE INDEX notification_deliveries_notification ON notification_deliveries (notification_id);
CREATE INDEX notification_deliveries_tenant ON notification_deliveries (tenant_id, channel, id);

-- A tenant's templates: the head names the current version.
CREATE TABLE notification_templates (
    tenant_id  TEXT NOT NULL,
    key        TEXT NOT NULL,
    locale     TEXT NOT NULL,
    version    INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key, locale)
);
CREATE TABLE notification_template_versions (
    tenant_id  TEXT NOT NULL,
    key        TEXT NOT NULL,
    locale     TEXT NOT NULL,
    version    INTEGER NOT NULL,
    subject    TEXT NOT NULL,
    text_body  TEXT NOT NULL,
    html_body  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key, locale, version)
);

-- A tenant's mapping of a domain event type to what is sent.
CREATE TABLE notification_triggers (
    tenant_id  TEXT NOT NULL,
    event_type TEXT NOT NULL,
    template   TEXT NOT NULL,
    recipients TEXT NOT NULL, -- JSON list of recipient rules
    channels   TEXT NOT NULL, -- JSON list
    enabled    INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, event_type)
);

-- Domain events already turned into notifications (consumption is
-- idempotent by event id).
CREATE TABLE notification_events_seen (
    event_id   TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    seen_at    BIGINT NOT NULL
);

CREATE TABLE notification_suppressions (
    tenant_id  TEXT NOT NULL,
    email      TEXT NOT NULL, -- lower-case
    reason     TEXT NOT NULL, -- manual | hard_bounce | complaint
    detail     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, email)
);

-- Sending identity and defaults per tenant.
CREATE TABLE notification_settings (
    tenant_id      TEXT PRIMARY KEY,
    from_addr      TEXT NOT NULL,
    reply_to       TEXT NOT NULL,
    default_locale TEXT NOT NULL,
    bounce_secret  TEXT NOT NULL, -- signs the bounce webhook; sealed at rest
    updated_at     BIGINT NOT NULL
);

-- How each customer wants its invoices and credit notes.
CREATE TABLE notification_customer_delivery (
    tenant_id   TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    channels    TEXT NOT NULL, -- JSON list: email, webhook
    formats     TEXT NOT NULL, -- JSON list: pdf, ubl
    emails      TEXT NOT NULL, -- JSON list of billing contacts
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, customer_id)
);
