-- Times are microseconds since the Unix epoch, UTC, written from the
-- application's clock so both dialects store and compare them identically.
CREATE TABLE customers (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    merged_into TEXT REFERENCES customers(id)
);

CREATE TABLE identities (
    kind        TEXT NOT NULL,
    value       TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    verified    INTEGER NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (kind, value)
);
CREATE INDEX identities_customer ON identities (customer_id);

CREATE TABLE teams (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE agents (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL DEFAULT '',
    role          TEXT NOT NULL DEFAULT 'agent',
    status        TEXT NOT NULL DEFAULT 'offline',
    skills        TEXT NOT NULL DEFAULT '[]',
    teams         TEXT NOT NULL DEFAULT '[]',
    cap_chat      INTEGER NOT NULL DEFAULT 6,
    cap_email     INTEGER NOT NULL DEFAULT 15,
    created_at    BIGINT NOT NULL
);

-- API tokens are stored as SHA-256 hashes; the token itself is shown once.
CREATE TABLE agent_tokens (
    token_hash TEXT PRIMARY KEY,
    agent_id   TEXT NOT NULL REFERENCES agents(id),
    created_at BIGINT NOT NULL
);

CREATE TABLE agent_sessions (
    agent_id   TEXT NOT NULL REFERENCES agents(id),
    started_at BIGINT NOT NULL,
    ended_at   BIGINT
);
CREATE INDEX agent_sessions_agent ON agent_sessions (agent_id, started_at);

CREATE TABLE business_hours (
    team_id  TEXT PRIMARY KEY REFERENCES teams(id),
    tz       TEXT NOT NULL,
    schedule TEXT NOT NULL DEFAULT '{}',
    holidays TEXT NOT NULL DEFAULT '[]'
);

CREATE TABLE conversations (
    id                TEXT PRIMARY KEY,
    customer_id       TEXT NOT NULL REFERENCES customers(id),
    status            TEXT NOT NULL,
    assignee_id       TEXT REFERENCES agents(id),
    team_id           TEXT REFERENCES teams(id),
    topic             TEXT NOT NULL DEFAULT '',
    priority          INTEGER NOT NULL DEFAULT 0,
    last_channel      TEXT NOT NULL,
    last_message_at   BIGINT NOT NULL,
    last_inbound_at   BIGINT,
    first_response_at BIGINT,
    resolved_at       BIGINT,
    created_at        BIGINT NOT NULL
);
CREATE INDEX conversations_customer ON conversations (customer_id);
CREATE INDEX conversations_assignee_status ON conversations (assignee_id, status);
CREATE INDEX conversations_status_last ON conversations (status, last_message_at DESC, id DESC);
CREATE INDEX conversations_last ON conversations (last_message_at DESC, id DESC);
-- At most one conversation that is not resolved per customer.
CREATE UNIQUE INDEX conversations_one_open ON conversations (customer_id) WHERE status <> 'resolved';

CREATE TABLE conversation_channels (
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    channel         TEXT NOT NULL,
    PRIMARY KEY (conversation_id, channel)
);
CREATE INDEX conversation_channels_channel ON conversation_channels (channel, conversation_id);

CREATE TABLE messages (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    direction       TEXT NOT NULL,
    channel         TEXT NOT NULL,
    provider_id     TEXT,
    sender          TEXT NOT NULL DEFAULT '',
    content_type    TEXT NOT NULL DEFAULT 'text',
    subject         TEXT NOT NULL DEFAULT '',
    text            TEXT NOT NULL DEFAULT '',
    html            TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL,
    error           TEXT NOT NULL DEFAULT '',
    metadata        TEXT NOT NULL DEFAULT '{}',
    created_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX messages_provider ON messages (channel, provider_id);
CREATE INDEX messages_conversation ON messages (conversation_id, created_at);

-- Full-text index over message text, kept in step by triggers. It keys on
-- the message id rather than the rowid, which VACUUM may renumber.
CREATE VIRTUAL TABLE messages_fts USING fts5(text, message_id UNINDEXED);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(text, message_id) VALUES (new.text, new.id);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    DELETE FROM messages_fts WHERE message_id = old.id;
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN
    DELETE FROM messages_fts WHERE message_id = old.id;
    INSERT INTO messages_fts(text, message_id) VALUES (new.text, new.id);
END;

-- The message exactly as the provider sent it, kept apart so lists stay lean.
CREATE TABLE message_originals (
    message_id TEXT PRIMARY KEY REFERENCES messages(id),
    body       BLOB NOT NULL
);

CREATE TABLE attachments (
    id           TEXT PRIMARY KEY,
    message_id   TEXT NOT NULL REFERENCES messages(id),
    object_key   TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    name         TEXT NOT NULL DEFAULT '',
    transcript   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX attachments_message ON attachments (message_id);

CREATE TABLE events (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    type            TEXT NOT NULL,
    agent_id        TEXT,
    data            TEXT NOT NULL DEFAULT '{}',
    created_at      BIGINT NOT NULL
);
CREATE INDEX events_conversation ON events (conversation_id, created_at);
CREATE INDEX events_type ON events (type, created_at);

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    message_id      TEXT NOT NULL UNIQUE REFERENCES messages(id),
    channel         TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

-- Inbound entries that could not be stored, kept for an operator to inspect.
CREATE TABLE dead_letters (
    id         TEXT PRIMARY KEY,
    channel    TEXT NOT NULL,
    payload    BLOB NOT NULL,
    error      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE opt_outs (
    identity_kind  TEXT NOT NULL,
    identity_value TEXT NOT NULL,
    channel        TEXT NOT NULL,
    keyword        TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (identity_kind, identity_value, channel)
);

CREATE TABLE wa_templates (
    name     TEXT NOT NULL,
    language TEXT NOT NULL,
    category TEXT NOT NULL DEFAULT '',
    body     TEXT NOT NULL,
    status   TEXT NOT NULL,
    PRIMARY KEY (name, language)
);

CREATE TABLE csat (
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    channel         TEXT NOT NULL,
    score           INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment         TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL
);
CREATE INDEX csat_conversation ON csat (conversation_id);
