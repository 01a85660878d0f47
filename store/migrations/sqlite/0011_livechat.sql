-- Live chat (docs/design.md §6.2). A site embeds the widget: its key is
-- public, its secret signs the host app's user ids (user_hash), its
-- origins (a JSON array) are the pages the widget may run on, and team
-- names whose agents and hours make the widget's status.
CREATE TABLE chat_sites (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    secret     TEXT NOT NULL,
    origins    TEXT NOT NULL,
    team       TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One browser chatting through a site. external_id is set only when the
-- site's secret proved it; email is what the visitor typed (a claim).
-- last_seen_at is renewed while a socket is open and set when the last
-- one closes: replies to a visitor gone long enough go by e-mail.
CREATE TABLE chat_visitors (
    id           TEXT PRIMARY KEY,
    site_id      TEXT NOT NULL REFERENCES chat_sites (id),
    name         TEXT NOT NULL DEFAULT '',
    email        TEXT NOT NULL DEFAULT '',
    external_id  TEXT NOT NULL DEFAULT '',
    last_seen_at BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX chat_visitors_site ON chat_visitors (site_id, external_id);

-- Files visitors upload to attach to their next message: only the
-- visitor who uploaded one may attach it.
CREATE TABLE chat_uploads (
    id           TEXT PRIMARY KEY,
    visitor_id   TEXT NOT NULL REFERENCES chat_visitors (id),
    object_key   TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    name         TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

-- The widget's typical response time reads the last 7 days of
-- conversations by creation time.
CREATE INDEX conversations_created ON conversations (created_at);
