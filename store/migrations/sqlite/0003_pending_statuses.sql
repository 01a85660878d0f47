-- Delivery reports that arrived before the send that they report on had
-- recorded its provider id; applied when it does, so none is lost.
CREATE TABLE pending_statuses (
    channel     TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    status      TEXT NOT NULL,
    error       TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);
CREATE INDEX pending_statuses_provider ON pending_statuses (channel, provider_id);
