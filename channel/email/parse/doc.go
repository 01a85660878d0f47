// Package parse turns one raw inbound e-mail (RFC 5322 + MIME) into the
// fields Switchboard needs: addresses and threading ids, the text and the
// new text alone (quoted history and signature stripped), sanitised HTML,
// attachments, and whether the message is automatic or a bounce
// (channels.md §5). Both the IMAP fetcher and the inbound-mail webhook feed
// it, so there is exactly one interpretation of a message.
//
// Parse never panics and is lenient: broken parts, unknown charsets and bad
// transfer encodings yield what can be read; only input without any message
// header at all is refused (ErrMalformed). Every string it returns is valid
// UTF-8 without NUL bytes (PostgreSQL text refuses NUL).
//
// Nothing here does I/O or keeps mutable package-level state; the
// sanitising policy is built once and only read afterwards.
package parse
