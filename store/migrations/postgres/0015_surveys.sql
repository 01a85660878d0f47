-- Satisfaction surveys (docs/metrics.md): one per resolved cycle, claimed
-- by the instance that sends it (the unique cycle_id), sent on the channel
-- the customer last used, answered once. An answer's message is not
-- stored as a message; its provider id is kept so that a provider's retry
-- of it is recognised as a duplicate.
CREATE TABLE surveys (
    id                 TEXT PRIMARY KEY,
    cycle_id           TEXT NOT NULL UNIQUE,
    conversation_id    TEXT NOT NULL,
    customer_id        TEXT NOT NULL,
    channel            TEXT NOT NULL DEFAULT '',
    state              TEXT NOT NULL,
    reason             TEXT NOT NULL DEFAULT '',
    created_at         BIGINT NOT NULL,
    sent_at            BIGINT,
    rating             INTEGER,
    answered_at        BIGINT,
    answer_channel     TEXT,
    answer_provider_id TEXT
);
CREATE INDEX surveys_customer ON surveys (customer_id, sent_at);
CREATE INDEX surveys_sent ON surveys (sent_at);
CREATE UNIQUE INDEX surveys_answer ON surveys (answer_channel, answer_provider_id);
