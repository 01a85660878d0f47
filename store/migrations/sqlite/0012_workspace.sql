-- The browser workspace (docs/design.md §6.3). A signed-in browser holds
-- a session cookie; only its SHA-256 is stored, with the CSRF token its
-- pages carry. Changing a password deletes the agent's sessions.
CREATE TABLE web_sessions (
    id_hash      TEXT PRIMARY KEY,
    agent_id     TEXT NOT NULL REFERENCES agents (id),
    csrf         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX web_sessions_agent ON web_sessions (agent_id);

-- Failed sign-ins, by account ("a:<email>") and by address ("ip:<addr>"):
-- the throttle counts them over a window, on every instance alike.
CREATE TABLE login_failures (
    subject TEXT NOT NULL,
    at  BIGINT NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (subject, at);

-- One-time links an admin sends to invite an agent; only the SHA-256 of
-- the link's token is stored.
CREATE TABLE invites (
    token_hash TEXT PRIMARY KEY,
    email      TEXT NOT NULL,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    invited_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

-- Canned responses agents insert with "/shortcut" in the composer.
CREATE TABLE canned_responses (
    id         TEXT PRIMARY KEY,
    shortcut   TEXT NOT NULL UNIQUE,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
