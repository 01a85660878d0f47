-- Routing (DESIGN §5). assigned_by tells the router's assignments from
-- people's: the router never undoes a manual one. wait_reason is the last
-- waiting reason written to the conversation's events, so a pass that
-- finds nothing new writes nothing. acked_period names the closed period
-- (its opening time) an automatic acknowledgement was sent for. held keeps
-- a conversation out of automatic routing.
ALTER TABLE conversations ADD COLUMN assigned_by TEXT NOT NULL DEFAULT '';
ALTER TABLE conversations ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN wait_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE conversations ADD COLUMN acked_period TEXT NOT NULL DEFAULT '';
-- The waiting queue, in the order it is served.
CREATE INDEX conversations_queue ON conversations (priority DESC, created_at, id)
    WHERE assignee_id IS NULL AND status <> 'resolved';

-- When the status last changed, so the offline grace period survives
-- restarts and holds across instances; when the router last gave the
-- agent a conversation, so ties go to whoever has waited longest.
ALTER TABLE agents ADD COLUMN status_changed_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN last_routed_at BIGINT NOT NULL DEFAULT 0;

-- Agents a conversation must not be routed back to: they handed it back,
-- or a supervisor took it from them. Cleared when it is resolved.
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
