// Package identity normalises the values customers are recognised by, so
// that the same person typing their address or number differently on two
// channels resolves to one identity (docs/design.md §3: e-mail addresses are
// lower-cased, phone numbers are E.164).
//
// Every function returns either the normalised value or an error that is a
// *switchboard.Error with code switchboard.EINVALID and a message safe to
// show to the customer. Messages never echo the input: they end up in logs,
// and the caller already knows what it sent.
//
// Normalisation is idempotent: feeding a returned value back in returns it
// unchanged, which is what lets the store key identities on the value.
package identity

import "github.com/switchboard-inbox/switchboard"

func invalid(format string, args ...any) error {
	return switchboard.Errorf(switchboard.EINVALID, format, args...)
}
