-- Analytics rollups (docs/metrics.md, "Rollups"): per measure and UTC day,
-- that day's facts in a compact form, so that a range of months reads a
-- row a day instead of a row per cycle. A row is a cache of the cycles,
-- sessions and assignments, valid while built_gen = gen: a write that
-- changes a day older than today bumps its gen in the same transaction.
CREATE TABLE rollups (
    kind      TEXT NOT NULL,
    day       BIGINT NOT NULL,
    gen       BIGINT NOT NULL DEFAULT 0,
    built_gen BIGINT,
    data      BYTEA,
    PRIMARY KEY (kind, day)
);
