-- Notifications (issue 14): the in-app inbox, Web Push subscriptions and
-- keys, and each recipient's preferences, quiet hours and digests
-- (packages notifications/inapp, push and prefs).

-- One row per in-app delivery: what the inbox shows, with its state.
CREATE TABLE notification_inbox (
    id              TEXT PRIMARY KEY,  -- time-ordered: the SSE event id and the list cursor
    tenant_id       TEXT NOT NULL,
    recipient_kind  TEXT NOT NULL,     -- end_user | staff
    recipient_id    TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    delivery_id     TEXT NOT NULL,     -- a retried delivery stores one row
    category        TEXT NOT NULL,
    template        TEXT NOT NULL,
    title           TEXT NOT NULL,
    body            TEXT NOT NULL,
    data            TEXT NOT NULL,     -- JSON object the template rendered
    created_at      BIGINT NOT NULL,
    seen_at         BIGINT,
    read_at         BIGINT,
    archived_at     BIGINT
);
CREATE UNIQUE INDEX notification_inbox_delivery ON notification_inbox (delivery_id);
CREATE INDEX notification_inbox_recipient ON notification_inbox (tenant_id, recipient_kind, recipient_id, id);

-- A tenant's VAPID key pair; the private key is sealed (AES-GCM) at rest.
CREATE TABLE notification_push_keys (
    tenant_id          TEXT PRIMARY KEY,
    public_key         TEXT NOT NULL,
    private_key_sealed TEXT NOT NULL,
    created_at         BIGINT NOT NULL
);

-- One row per device that asked for push.
CREATE TABLE notification_push_subscriptions (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    recipient_kind TEXT NOT NULL,
    recipient_id   TEXT NOT NULL,
    provider       TEXT NOT NULL, -- web | fcm | apns
    endpoint       TEXT NOT NULL, -- push service URL (web) or device token
    p256dh         TEXT NOT NULL,
    auth           TEXT NOT NULL,
    user_agent     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    last_sent_at   BIGINT
);
CREATE UNIQUE INDEX notification_push_subscriptions_endpoint ON notification_push_subscriptions (tenant_id, endpoint);
CREATE INDEX notification_push_subscriptions_recipient ON notification_push_subscriptions (tenant_id, recipient_kind, recipient_id);

-- Per recipient, category and channel: on, off or digest.
CREATE TABLE notification_preferences (
    tenant_id      TEXT NOT NULL,
    recipient_kind TEXT NOT NULL,
    recipient_id   TEXT NOT NULL,
    category       TEXT NOT NULL,
    channel        TEXT NOT NULL,
    mode           TEXT NOT NULL, -- on | off | digest
    digest_seconds INTEGER NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, recipient_kind, recipient_id, category, channel)
);

-- Per recipient: quiet hours as minutes of the day in a time zone.
CREATE TABLE notification_quiet_hours (
    tenant_id      TEXT NOT NULL,
    recipient_kind TEXT NOT NULL,
    recipient_id   TEXT NOT NULL,
    start_minute   INTEGER NOT NULL,
    end_minute     INTEGER NOT NULL,
    time_zone      TEXT NOT NULL, -- empty: the recipient's own
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, recipient_kind, recipient_id)
);

-- Deliveries held for a digest; a group (recipient, category, channel) is
-- sent as one notification when its window ends.
CREATE TABLE notification_digest_items (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    recipient_kind  TEXT NOT NULL,
    recipient_id    TEXT NOT NULL,
    recipient_email TEXT NOT NULL,
    recipient_name  TEXT NOT NULL,
    recipient_tz    TEXT NOT NULL,
    category        TEXT NOT NULL,
    channel         TEXT NOT NULL,
    delivery_id     TEXT NOT NULL,
    template        TEXT NOT NULL,
    locale          TEXT NOT NULL,
    data            TEXT NOT NULL,
    due_at          BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    flushed_at      BIGINT
);
CREATE UNIQUE INDEX notification_digest_items_delivery ON notification_digest_items (delivery_id);
CREATE INDEX notification_digest_items_due ON notification_digest_items (due_at) WHERE flushed_at IS NULL;
