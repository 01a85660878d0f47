-- Inline e-mail parts: the message's HTML refers to them as cid:content_id.
ALTER TABLE attachments ADD COLUMN content_id TEXT NOT NULL DEFAULT '';

-- Per IMAP mailbox, the UIDVALIDITY and the last UID made durable, so a
-- restart neither fetches a message twice nor skips one.
CREATE TABLE mailbox_state (
    mailbox      TEXT PRIMARY KEY,
    uid_validity BIGINT NOT NULL,
    last_uid     BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

-- Mail from robots (bounces, auto-replies) is recorded here, never as a
-- customer message; the Message-ID keeps a refetched one from counting twice.
CREATE TABLE email_receipts (
    message_id      TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    conversation_id TEXT,
    created_at      BIGINT NOT NULL
);

-- Our own automatic mails, at most one per address per day (RFC 3834 §2);
-- message_id lets a retried send of the same mail through.
CREATE TABLE auto_mail_log (
    address    TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,
    sent_at    BIGINT NOT NULL
);
