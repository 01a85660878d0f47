-- Incoming calls, so a voicemail's recording callback (which carries only
-- the CallSid) can be tied to the caller's number.
CREATE TABLE calls (
    call_sid   TEXT PRIMARY KEY,
    caller     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Transcripts that arrived before their recording's message was stored.
CREATE TABLE pending_transcripts (
    channel     TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    transcript  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (channel, provider_id)
);
