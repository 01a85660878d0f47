// Package smtpout sends e-mail: it builds the MIME message (Build), signs it
// with DKIM (DKIM.Sign) and submits it to a relay over SMTP (Client.Send),
// following channels.md §5: threading headers, RFC 3834 auto-reply marks,
// relaxed/relaxed DKIM with an oversigned From, and the relay's EHLO SIZE.
//
// Errors that retrying cannot fix (invalid mail, SMTP 5xx replies, a message
// larger than the relay accepts) are marked with switchboard.Permanent; the
// rest (4xx replies, network trouble, a cancelled context) are plain errors
// the outbox retries.
package smtpout
