// Package parse turns one raw inbound e-mail (RFC 5322 + MIME) into the
// fields Switchboard needs: addresses and threading ids, the text and the
// new text alone (quoted history and signature stripped), sanitised HTML
// with that history and signature marked for folding (FoldHTML),
// attachments, and whether the message is automatic or a bounce
// (channels.md §5). Both the IMAP fetcher and the inbound-mail webhook feed
// it, so there is exactly one interpretation of a message.
//
// Parse never panics and never refuses a mail: broken parts, unknown
// charsets and bad transfer encodings yield what can be read, and a mail a
// strict reader refuses (whitespace before the header, header lines
// without a colon, control characters, no header at all) is recovered as
// far as it goes and marked in Email.Malformed, so that the caller keeps
// it and its raw bytes. Only empty input fails (ErrEmpty). Every string it
// returns is valid UTF-8 without NUL bytes (PostgreSQL text refuses NUL),
// and text from text/plain parts has no control characters but tab and
// newline.
//
// Nothing here does I/O or keeps mutable package-level state; the
// sanitising policy is built once and only read afterwards.
package parse
