-- Identities a sender merely claims (a web form's phone number, a chat
-- visitor's typed e-mail) never link threads: they are kept here, per
-- customer, shown to agents with a merge suggestion, and never looked up
-- to pick a customer. Only identities a channel proves live in identities.
CREATE TABLE identity_claims (
    customer_id TEXT NOT NULL REFERENCES customers (id),
    kind        TEXT NOT NULL,
    value       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (customer_id, kind, value)
);
CREATE INDEX identity_claims_value ON identity_claims (kind, value);

-- Phone numbers that came in as a form's second identity were linked
-- before this rule: a phone that never wrote or called is such a claim.
INSERT INTO identity_claims (customer_id, kind, value, created_at)
SELECT i.customer_id, i.kind, i.value, i.created_at FROM identities i
WHERE i.kind = 'phone' AND NOT EXISTS (
    SELECT 1 FROM messages m JOIN conversations c ON c.id = m.conversation_id
    WHERE c.customer_id = i.customer_id AND m.direction = 'in' AND m.sender = i.value);
DELETE FROM identities WHERE kind = 'phone' AND EXISTS (
    SELECT 1 FROM identity_claims ic WHERE ic.customer_id = identities.customer_id AND ic.kind = identities.kind AND ic.value = identities.value);

-- verified: the channel authenticated the identity (a provider's phone
-- number or platform id, a widget's signed user id); an e-mail address is
-- linked on the sender's word.
UPDATE identities SET verified = CASE WHEN kind = 'email' THEN 0 ELSE 1 END;
UPDATE identities SET verified = CASE WHEN kind = 'email' THEN 0 ELSE 1 END;

-- What each merge moved, so that an agent's merge can be undone.
CREATE TABLE merges (
    id         TEXT PRIMARY KEY,
    keep_id    TEXT NOT NULL REFERENCES customers (id),
    other_id   TEXT NOT NULL REFERENCES customers (id),
    agent_id   TEXT,
    record     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    undone_at  BIGINT
);
CREATE INDEX merges_pair ON merges (keep_id, other_id, created_at);
