-- Channel settings an admin edits in the workspace (docs/design.md §4.2).
-- A setting given in the environment wins and is never stored here.
-- Secrets are sealed by the service (AES-256-GCM, the setting's name as
-- associated data) before they reach this table: a copy of the database
-- holds no token in clear.
CREATE TABLE settings (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    secret     BOOLEAN NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Who changed what, and when: settings, channel connections, provider
-- registrations. A secret's value is never written here. Ids sort by
-- time (newID), so the log reads newest first by its primary key.
CREATE TABLE audit_log (
    id       TEXT PRIMARY KEY,
    at       BIGINT NOT NULL,
    actor_id TEXT NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL,
    detail   TEXT NOT NULL
);

-- Facebook Login in progress: the state parameter (its SHA-256) is bound
-- to the admin's session, used once, and short-lived; result keeps the
-- Pages offered (sealed: they carry tokens) until the admin picks one.
CREATE TABLE oauth_states (
    state_hash   TEXT PRIMARY KEY,
    session_hash TEXT NOT NULL,
    agent_id     TEXT NOT NULL,
    provider     TEXT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT,
    result       TEXT NOT NULL
);
