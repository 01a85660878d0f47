-- Routing (DESIGN §5). assigned_by tells the router's assignments from
-- people's: the router never undoes a manual one. wait_reason is the last
-- waiting reason written to the conversation's events, so a pass that
-- finds nothing new writes nothing. held keeps a conversation out of
-- automatic routing.
ALTER TABLE conversations ADD COLUMN assigned_by TEXT NOT NULL DEFAULT '';
ALTER TABLE conversations ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN wait_reason TEXT NOT NULL DEFAULT '';
-- routed_team is the after-hours team a conversation was handed to ('' when
-- its own team, team_id, has it): team_id is never rewritten by a
-- hand-off, so the conversation goes back home when its team opens.
ALTER TABLE conversations ADD COLUMN routed_team TEXT NOT NULL DEFAULT '';
-- The automatic after-hours acknowledgement: acked_period names the closed
-- period (by its opening time) one was last sent for, acked_inbound_at is
-- the newest inbound message it answered (last_inbound_at then). Another
-- goes out only for a newer inbound message in another closed period.
ALTER TABLE conversations ADD COLUMN acked_period TEXT NOT NULL DEFAULT '';
ALTER TABLE conversations ADD COLUMN acked_inbound_at BIGINT NOT NULL DEFAULT 0;
-- Where the topic came from: 'agent' (a person), 'keyword' (a keyword rule)
-- or 'classifier' (the trained model's guess, never trained on again).
ALTER TABLE conversations ADD COLUMN topic_source TEXT NOT NULL DEFAULT '';
-- The waiting queue, in the order it is served. "COALESCE(assignee_id,
-- '') = ''" rather than "assignee_id IS NULL": SQLite would read the
-- latter as an equality on conversations_assignee_status and sort what it
-- finds there, where this index gives the queue in order.
CREATE INDEX conversations_queue ON conversations (priority DESC, created_at, id)
    WHERE COALESCE(assignee_id, '') = '' AND status <> 'resolved' AND held = 0;
-- Agents' open conversations per channel, counted at every routing pass
-- and assignment: resolved ones, the bulk of the table, are left out.
CREATE INDEX conversations_active ON conversations (assignee_id, last_channel)
    WHERE assignee_id IS NOT NULL AND status <> 'resolved';

-- When the status last changed, so the offline grace period survives
-- restarts and holds across instances; when the router last gave the
-- agent a conversation, so ties go to whoever has waited longest.
ALTER TABLE agents ADD COLUMN status_changed_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN last_routed_at BIGINT NOT NULL DEFAULT 0;

-- Agents a conversation must not be routed back to: they handed it back
-- (a supervisor's transfer does not exclude the agent it was taken from).
-- Cleared when it is resolved or merged away.
CREATE TABLE routing_exclusions (
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    agent_id        TEXT NOT NULL REFERENCES agents(id),
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, agent_id)
);

-- Routing configuration, one JSON document per key: "team:<id>" (the
-- default team is "team:") and "keywords". It replaces business_hours: a
-- team's schedule is part of its configuration.
DROP TABLE business_hours;
CREATE TABLE routing_config (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Trained topic classifiers; the newest is used.
CREATE TABLE classifiers (
    id         TEXT PRIMARY KEY,
    model      BLOB NOT NULL,
    accuracy   REAL NOT NULL,
    n          INTEGER NOT NULL,
    created_at BIGINT NOT NULL
);
