package livechat

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/switchboard-inbox/switchboard"
)

// Limits of a visitor's frames beside MaxFrame.
const (
	MaxClientID    = 128
	MaxText        = 16 << 10 // bytes of one message's text
	MaxAttachments = 10
)

// Frame is one frame a visitor sends (docs/design.md §6.2).
type Frame struct {
	Type        string   `json:"type"`
	ClientID    string   `json:"client_id"`
	Text        string   `json:"text"`
	Attachments []string `json:"attachments"`
	MessageID   string   `json:"message_id"`
}

// DecodeFrame reads and checks a visitor's frame: a JSON object of a
// known type with the fields that type needs. Its errors are EINVALID,
// with a message the visitor's widget can show a developer.
func DecodeFrame(b []byte) (Frame, error) {
	var f Frame
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return f, switchboard.Errorf(switchboard.EINVALID, "a frame is a JSON object")
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return Frame{}, switchboard.Errorf(switchboard.EINVALID, "malformed JSON: %v", err)
	}
	switch f.Type {
	case "message":
		if f.ClientID == "" || len(f.ClientID) > MaxClientID {
			return Frame{}, switchboard.Errorf(switchboard.EINVALID, "a message needs a client_id of 1 to %d characters", MaxClientID)
		}
		for i := 0; i < len(f.ClientID); i++ {
			if f.ClientID[i] < '!' || f.ClientID[i] > '~' {
				return Frame{}, switchboard.Errorf(switchboard.EINVALID, "client_id must be visible ASCII characters")
			}
		}
		if len(f.Text) > MaxText {
			return Frame{}, switchboard.Errorf(switchboard.EINVALID, "text is limited to %d bytes", MaxText)
		}
		if !utf8.ValidString(f.Text) {
			return Frame{}, switchboard.Errorf(switchboard.EINVALID, "text must be UTF-8")
		}
		if len(f.Attachments) > MaxAttachments {
			return Frame{}, switchboard.Errorf(switchboard.EINVALID, "at most %d attachments", MaxAttachments)
		}
		for _, id := range f.Attachments {
			if !plainID(id) {
				return Frame{}, switchboard.Errorf(switchboard.EINVALID, "attachments are the ids POST /chat/uploads answered")
			}
		}
		if strings.TrimSpace(switchboard.CleanText(f.Text)) == "" && len(f.Attachments) == 0 {
			return Frame{}, switchboard.Errorf(switchboard.EINVALID, "a message needs text or attachments")
		}
	case "typing":
	case "read":
		if !plainID(f.MessageID) {
			return Frame{}, switchboard.Errorf(switchboard.EINVALID, "a read frame needs the message_id of an agent's message")
		}
	case "":
		return Frame{}, switchboard.Errorf(switchboard.EINVALID, `a frame needs a "type": message, typing or read`)
	default:
		return Frame{}, switchboard.Errorf(switchboard.EINVALID, "unknown frame type %q: message, typing or read", switchboard.CleanText(truncate(f.Type, 64)))
	}
	return f, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
