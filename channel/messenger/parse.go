package messenger

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/meta"
)

// maxUnixMilli is 9999-12-31T23:59:59.999Z: a later timestamp is not a
// time.
const maxUnixMilli = 253402300799999

type wireBody struct {
	Object string `json:"object"`
	Entry  []struct {
		ID        string            `json:"id"`
		Messaging []json.RawMessage `json:"messaging"`
		Standby   []json.RawMessage `json:"standby"`
	} `json:"entry"`
}

type wireID struct {
	ID string `json:"id"`
}

type wireEvent struct {
	Sender    wireID          `json:"sender"`
	Recipient wireID          `json:"recipient"`
	Timestamp json.RawMessage `json:"timestamp"`
	Message   *wireMessage    `json:"message"`
	Delivery  *struct {
		MIDs      []string        `json:"mids"`
		Watermark json.RawMessage `json:"watermark"`
	} `json:"delivery"`
	Read *struct {
		Watermark json.RawMessage `json:"watermark"`
		MID       string          `json:"mid"`
	} `json:"read"`
	Postback *struct {
		MID     string `json:"mid"`
		Title   string `json:"title"`
		Payload string `json:"payload"`
	} `json:"postback"`
}

type wireMessage struct {
	MID           string `json:"mid"`
	Text          string `json:"text"`
	IsEcho        bool   `json:"is_echo"`
	IsDeleted     bool   `json:"is_deleted"`
	IsUnsupported bool   `json:"is_unsupported"`
	QuickReply    *struct {
		Payload string `json:"payload"`
	} `json:"quick_reply"`
	ReplyTo *struct {
		MID   string `json:"mid"`
		Story *struct {
			URL string `json:"url"`
			ID  string `json:"id"`
		} `json:"story"`
	} `json:"reply_to"`
	Attachments []struct {
		Type    string `json:"type"`
		URL     string `json:"url"`   // fallback attachments carry it here
		Title   string `json:"title"` // …and this
		Payload *struct {
			URL       string          `json:"url"`
			Title     string          `json:"title"`
			StickerID json.RawMessage `json:"sticker_id"`
		} `json:"payload"`
	} `json:"attachments"`
}

// Parse reads a Messenger (object "page") or Instagram (object
// "instagram") webhook body; verify its signature first. Entries may be
// batched; each messaging[] and standby[] event becomes a Message,
// Delivery, Read or Other.
//
// The error, an EINVALID *switchboard.Error wrapped with where it was
// found, covers malformed JSON, another object, and a message without a
// mid, a customer id or a readable timestamp.
func Parse(body []byte) (Events, error) {
	var w wireBody
	if err := json.Unmarshal(body, &w); err != nil {
		return Events{}, invalid("messenger webhook: malformed JSON: %v", err)
	}
	var ch switchboard.Channel
	switch w.Object {
	case meta.ObjectPage:
		ch = switchboard.ChannelMessenger
	case meta.ObjectInstagram:
		ch = switchboard.ChannelInstagram
	default:
		return Events{}, invalid("messenger webhook: object is %q, want %q or %q", w.Object, meta.ObjectPage, meta.ObjectInstagram)
	}
	var ev Events
	for ei, e := range w.Entry {
		for _, list := range []struct {
			name    string
			events  []json.RawMessage
			standby bool
		}{{"messaging", e.Messaging, false}, {"standby", e.Standby, true}} {
			for i, raw := range list.events {
				if err := parseEvent(&ev, ch, e.ID, raw, list.standby); err != nil {
					return Events{}, fmt.Errorf("%s webhook: entry %d, %s %d: %w", ch, ei, list.name, i, err)
				}
			}
		}
	}
	return ev, nil
}

func parseEvent(ev *Events, ch switchboard.Channel, accountID string, raw json.RawMessage, standby bool) error {
	var w wireEvent
	if err := json.Unmarshal(raw, &w); err != nil {
		return invalid("malformed event: %v", err)
	}
	switch {
	case w.Message != nil:
		m, err := parseMessage(ch, accountID, &w, raw, standby)
		if err != nil {
			return err
		}
		ev.Messages = append(ev.Messages, m)
	case w.Postback != nil:
		m, err := parsePostback(ch, accountID, &w, raw, standby)
		if err != nil {
			return err
		}
		ev.Messages = append(ev.Messages, m)
	case w.Delivery != nil:
		d := Delivery{Channel: ch, SenderID: w.Sender.ID, RecipientID: w.Recipient.ID, MIDs: w.Delivery.MIDs, Standby: standby}
		var err error
		if d.Watermark, err = optionalMillis(w.Delivery.Watermark, "delivery watermark"); err != nil {
			return err
		}
		if d.Timestamp, err = optionalMillis(w.Timestamp, "timestamp"); err != nil {
			return err
		}
		ev.Deliveries = append(ev.Deliveries, d)
	case w.Read != nil:
		r := Read{Channel: ch, SenderID: w.Sender.ID, RecipientID: w.Recipient.ID, MID: w.Read.MID, Standby: standby}
		var err error
		if r.Watermark, err = optionalMillis(w.Read.Watermark, "read watermark"); err != nil {
			return err
		}
		if r.Timestamp, err = optionalMillis(w.Timestamp, "timestamp"); err != nil {
			return err
		}
		ev.Reads = append(ev.Reads, r)
	default:
		ev.Other = append(ev.Other, Other{Channel: ch, Kind: otherKind(raw), SenderID: w.Sender.ID, Standby: standby, Raw: raw})
	}
	return nil
}

func parseMessage(ch switchboard.Channel, accountID string, w *wireEvent, raw json.RawMessage, standby bool) (Message, error) {
	wm := w.Message
	m := Message{
		Channel: ch, ID: wm.MID, SenderID: w.Sender.ID, RecipientID: w.Recipient.ID, AccountID: accountID,
		Text: wm.Text, Echo: wm.IsEcho, Deleted: wm.IsDeleted, Unsupported: wm.IsUnsupported,
		Standby: standby, Raw: raw,
	}
	if err := m.check(w.Timestamp); err != nil {
		return Message{}, err
	}
	if wm.QuickReply != nil {
		m.QuickReplyPayload = wm.QuickReply.Payload
	}
	if r := wm.ReplyTo; r != nil {
		rt := ReplyTo{MID: r.MID}
		if r.Story != nil {
			rt.StoryURL, rt.StoryID = r.Story.URL, r.Story.ID
		}
		if rt != (ReplyTo{}) {
			m.ReplyTo = &rt
		}
	}
	for _, a := range wm.Attachments {
		att := Attachment{Type: a.Type, URL: a.URL, Title: a.Title}
		if p := a.Payload; p != nil {
			if p.URL != "" {
				att.URL = p.URL
			}
			if p.Title != "" {
				att.Title = p.Title
			}
			if id, ok := meta.NumberText(p.StickerID); ok {
				att.StickerID = id
			}
		}
		m.Attachments = append(m.Attachments, att)
	}
	m.ContentType, m.Text = content(&m)
	return m, nil
}

// parsePostback turns a button tap into a Message so it reaches the inbox
// like any customer action. Older Messenger postbacks have no mid; the
// sender and millisecond timestamp then make a stable id, so a redelivery
// stays a duplicate.
func parsePostback(ch switchboard.Channel, accountID string, w *wireEvent, raw json.RawMessage, standby bool) (Message, error) {
	pb := w.Postback
	m := Message{
		Channel: ch, ID: pb.MID, SenderID: w.Sender.ID, RecipientID: w.Recipient.ID, AccountID: accountID,
		ContentType: switchboard.ContentText, Text: pb.Title,
		Postback: &Postback{Title: pb.Title, Payload: pb.Payload}, Standby: standby, Raw: raw,
	}
	if m.ID == "" {
		if ms, ok := meta.NumberText(w.Timestamp); ok && strings.TrimSpace(w.Sender.ID) != "" {
			m.ID = "postback:" + w.Sender.ID + ":" + ms
		}
	}
	if err := m.check(w.Timestamp); err != nil {
		return Message{}, err
	}
	if m.Text == "" {
		m.Text = "[Button: " + pb.Payload + "]"
	}
	return m, nil
}

// check validates what every Message needs and sets its Timestamp.
func (m *Message) check(rawTS json.RawMessage) error {
	if strings.TrimSpace(m.ID) == "" {
		return invalid("message has no mid")
	}
	if strings.TrimSpace(m.CustomerID()) == "" {
		who := "sender"
		if m.Echo {
			who = "recipient"
		}
		return invalid("message %s has no %s id", m.ID, who)
	}
	ts, err := parseMillis(rawTS)
	if err != nil {
		return fmt.Errorf("message %s: %w", m.ID, err)
	}
	m.Timestamp = ts
	return nil
}

// content picks the content type from the first attachment and, when the
// customer wrote nothing, a text an agent can read.
func content(m *Message) (contentType, text string) {
	contentType, text = switchboard.ContentText, m.Text
	if len(m.Attachments) > 0 {
		switch m.Attachments[0].Type {
		case AttachmentImage:
			contentType = switchboard.ContentImage
		case AttachmentAudio:
			contentType = switchboard.ContentAudio
		case AttachmentVideo, AttachmentFile:
			contentType = switchboard.ContentFile
		}
	}
	if strings.TrimSpace(text) != "" {
		return contentType, text
	}
	switch {
	case m.Deleted:
		return switchboard.ContentText, "[Message unsent by the customer]"
	case m.Unsupported:
		return switchboard.ContentText, "[Unsupported message: open " + platformName(m.Channel) + " to see it]"
	}
	var parts []string
	for _, a := range m.Attachments {
		var s string
		switch a.Type {
		case AttachmentImage, AttachmentAudio, AttachmentVideo, AttachmentFile:
			continue // the attachment is the content
		case AttachmentShare:
			s = "Shared a post"
		case AttachmentStoryMention:
			s = "Mentioned you in their story"
		case AttachmentReel:
			s = "Shared a reel"
			if a.Title != "" {
				s += " \u201c" + a.Title + "\u201d"
			}
		default:
			s = "[" + a.Type + " attachment]"
			if a.Type == "" {
				s = "[attachment]"
			}
		}
		if a.URL != "" {
			s += ": " + a.URL
		}
		parts = append(parts, s)
	}
	return contentType, strings.Join(parts, "\n")
}

func platformName(ch switchboard.Channel) string {
	if ch == switchboard.ChannelInstagram {
		return "Instagram"
	}
	return "Messenger"
}

// otherKind names an uninterpreted event by its first key that is not
// sender, recipient or timestamp.
func otherKind(raw json.RawMessage) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return "unknown"
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		switch k {
		case "sender", "recipient", "timestamp":
		default:
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return "unknown"
	}
	sort.Strings(keys)
	return keys[0]
}

func parseMillis(raw json.RawMessage) (time.Time, error) {
	s, ok := meta.NumberText(raw)
	if !ok {
		if meta.IsNull(raw) {
			return time.Time{}, invalid("timestamp is missing")
		}
		return time.Time{}, invalid("timestamp %s is not a number", raw)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, invalid("timestamp %q is not unix milliseconds", s)
	}
	if n <= 0 || n > maxUnixMilli {
		return time.Time{}, invalid("timestamp %d is out of range", n)
	}
	return time.UnixMilli(n).UTC(), nil
}

// optionalMillis is parseMillis for fields receipts may leave out.
func optionalMillis(raw json.RawMessage, what string) (time.Time, error) {
	if meta.IsNull(raw) {
		return time.Time{}, nil
	}
	t, err := parseMillis(raw)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", what, err)
	}
	return t, nil
}

func invalid(format string, args ...any) error {
	return switchboard.Errorf(switchboard.EINVALID, format, args...)
}
