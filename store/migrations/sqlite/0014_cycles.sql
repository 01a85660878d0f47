-- Response cycles, what first response and resolution times are measured
-- on (docs/metrics.md). A cycle starts with a customer message that
-- creates or reopens a conversation, gets its first response from the
-- first agent reply (automatic messages and notes do not count) and ends
-- when the conversation is resolved. Kept as the conversation changes, so
-- analytics read one row per cycle by time, never the messages.
CREATE TABLE cycles (
    id                TEXT PRIMARY KEY,
    conversation_id   TEXT NOT NULL,
    channel           TEXT NOT NULL,
    started_at        BIGINT NOT NULL,
    first_response_at BIGINT,
    responder_id      TEXT,
    resolved_at       BIGINT,
    topic             TEXT NOT NULL DEFAULT ''
);
CREATE INDEX cycles_conversation ON cycles (conversation_id, resolved_at);
-- Covering indexes: a measure over months reads one index, in time
-- order, and never the table.
CREATE INDEX cycles_started ON cycles (started_at, channel, first_response_at);
CREATE INDEX cycles_resolved ON cycles (resolved_at, channel, topic, started_at);

-- Conversations stored before cycles were kept: one cycle each, from the
-- conversation's start (its first response and resolution as recorded).
INSERT INTO cycles (id, conversation_id, channel, started_at, first_response_at, resolved_at, topic)
SELECT id, id, last_channel, created_at, first_response_at,
       CASE WHEN status = 'resolved' THEN resolved_at END, topic
FROM conversations WHERE last_inbound_at IS NOT NULL;

-- Who had which conversation when: utilisation counts an agent busy while
-- online with at least one. Kept beside the assignment events (addEvent),
-- in their transaction.
CREATE TABLE assignments (
    conversation_id TEXT NOT NULL,
    agent_id        TEXT NOT NULL,
    started_at      BIGINT NOT NULL,
    ended_at        BIGINT
);
CREATE INDEX assignments_open ON assignments (conversation_id, ended_at);
CREATE INDEX assignments_ended ON assignments (ended_at);
CREATE INDEX agent_sessions_ended ON agent_sessions (ended_at);

INSERT INTO assignments (conversation_id, agent_id, started_at)
SELECT id, assignee_id, last_message_at FROM conversations WHERE assignee_id IS NOT NULL AND status <> 'resolved';
