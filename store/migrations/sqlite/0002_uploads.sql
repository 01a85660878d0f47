-- Files agents upload to attach to replies; a reply names them by id.
CREATE TABLE uploads (
    id           TEXT PRIMARY KEY,
    agent_id     TEXT NOT NULL REFERENCES agents(id),
    object_key   TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    name         TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
