package meta

import (
	"encoding/json"

	"github.com/switchboard-inbox/switchboard"
)

// Values of the webhook's top-level "object".
const (
	ObjectWhatsApp  = "whatsapp_business_account"
	ObjectPage      = "page" // Messenger
	ObjectInstagram = "instagram"
)

// Envelope is the top level every Meta webhook POST shares:
// {"object": "...", "entry": [...]}. The entries are left raw for the
// product's own parser.
type Envelope struct {
	Object string            `json:"object"`
	Entry  []json.RawMessage `json:"entry"`
}

// ParseEnvelope decodes the top level of a webhook body (already verified
// with ValidSignature). It fails on malformed JSON or a missing object,
// but not on an object it does not know: Channel reports that, and the
// handler decides (acknowledging it stops Meta retrying a subscription
// nobody handles).
func ParseEnvelope(body []byte) (Envelope, error) {
	var env Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return Envelope{}, invalid("meta webhook: malformed JSON: %v", err)
	}
	if env.Object == "" {
		return Envelope{}, invalid(`meta webhook: "object" is missing`)
	}
	return env, nil
}

// Channel returns the channel the envelope's object belongs to: WhatsApp,
// Messenger (object "page") or Instagram; ok is false for any other.
func (e Envelope) Channel() (ch switchboard.Channel, ok bool) {
	return ObjectChannel(e.Object)
}

// ObjectChannel maps a webhook object to its channel; ok is false for an
// object Switchboard does not handle.
func ObjectChannel(object string) (ch switchboard.Channel, ok bool) {
	switch object {
	case ObjectWhatsApp:
		return switchboard.ChannelWhatsApp, true
	case ObjectPage:
		return switchboard.ChannelMessenger, true
	case ObjectInstagram:
		return switchboard.ChannelInstagram, true
	}
	return "", false
}

// invalid returns a *switchboard.Error with code EINVALID, so callers can
// map parse failures to 400 with errors.As / switchboard.ErrorCode.
func invalid(format string, args ...any) error {
	return switchboard.Errorf(switchboard.EINVALID, format, args...)
}
