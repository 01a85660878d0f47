package imap

import (
	"context"

	"github.com/emersion/go-imap/v2/imapclient"
)

// Dial connects to mb's server and secures the connection exactly as a
// Fetcher does (implicit TLS, STARTTLS required or when offered, or clear
// text as mb.TLS says) and returns the client once the server has greeted
// it. It is for connection tests (channel/email/check); opts may be nil.
// ctx bounds the dial and the handshake only: the caller closes the client
// to stop later commands.
func Dial(ctx context.Context, mb Mailbox, opts *imapclient.Options) (*imapclient.Client, error) {
	if opts == nil {
		opts = &imapclient.Options{}
	}
	return dial(ctx, mb, opts)
}

// Login logs c in as mb's user exactly as a Fetcher does: AUTHENTICATE
// PLAIN when offered, else LOGIN. The server's refusal is wrapped in the
// error as an *imap.Error (github.com/emersion/go-imap/v2); the error never
// contains the password.
func Login(c *imapclient.Client, mb Mailbox) error {
	return login(c, mb)
}
