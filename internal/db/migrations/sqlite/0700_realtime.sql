-- Real-time messaging (issue 16): conversations, members, messages and
-- reactions, and each tenant's key signing connection tokens. Times are
-- unix micros. A message is identified by (conversation_id, seq): seq is
-- allocated from conversations.last_seq in the transaction that stores it.
CREATE TABLE realtime_keys (
    tenant_id  TEXT PRIMARY KEY,
    kid        TEXT NOT NULL,
    secret     TEXT NOT NULL, -- base64 of the HMAC-SHA256 key
    created_at BIGINT NOT NULL
);

CREATE TABLE conversations (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    kind         TEXT NOT NULL, -- private, group
    pair_key     TEXT,          -- private: JSON array of the two user ids, sorted; NULL for groups
    title        TEXT NOT NULL,
    metadata     TEXT NOT NULL, -- JSON object
    member_limit INTEGER NOT NULL,
    member_count INTEGER NOT NULL,
    last_seq     BIGINT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX conversations_pair ON conversations (tenant_id, pair_key);
CREATE INDEX conversations_tenant ON conversations (tenant_id, id);

CREATE TABLE conversation_members (
    tenant_id       TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    role            TEXT NOT NULL, -- owner, admin, member
    last_read_seq   BIGINT NOT NULL,
    joined_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, conversation_id, user_id)
) WITHOUT ROWID;
CREATE INDEX conversation_members_user ON conversation_members (tenant_id, user_id, conversation_id);

CREATE TABLE conversation_messages (
    tenant_id       TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    sender_id       TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    text            TEXT NOT NULL,
    attachments     TEXT NOT NULL, -- JSON array
    reply_to        BIGINT,        -- seq of the message answered
    created_at      BIGINT NOT NULL,
    edited_at       BIGINT,
    deleted_at      BIGINT,        -- a tombstone: text and attachments are emptied
    PRIMARY KEY (tenant_id, conversation_id, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX conversation_messages_client ON conversation_messages (tenant_id, conversation_id, sender_id, client_id);

CREATE TABLE message_reactions (
    tenant_id       TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    user_id         TEXT NOT NULL,
    emoji           TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, conversation_id, seq, user_id, emoji)
) WITHOUT ROWID;
