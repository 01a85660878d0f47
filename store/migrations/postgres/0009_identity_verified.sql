-- identities.verified was BOOLEAN here and INTEGER on SQLite, where a query
-- comparing it with 0 or 1 works that fails here. It is INTEGER 0 or 1 on
-- both now, like conversations.held. Nothing reads or writes it yet; the
-- change rewrites identities once.
ALTER TABLE identities
    ALTER COLUMN verified DROP DEFAULT,
    ALTER COLUMN verified TYPE INTEGER USING verified::integer,
    ALTER COLUMN verified SET DEFAULT 0;
