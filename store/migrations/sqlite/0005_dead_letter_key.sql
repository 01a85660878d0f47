-- An entry that is dead-lettered again (its batch retried, the queue
-- redelivered it) is kept once.
ALTER TABLE dead_letters ADD COLUMN payload_hash TEXT;
CREATE UNIQUE INDEX dead_letters_payload ON dead_letters (channel, payload_hash);
