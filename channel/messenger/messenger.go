// Package messenger holds the building blocks for Facebook Messenger and
// Instagram Direct, which share Meta's Messenger Platform
// (research/channels.md §4): Parse reads a verified webhook body (object
// "page" or "instagram"), Message.Inbound normalises a message for the
// inbound queue, Client sends text and attachments (uploaded first)
// through the Page, AttachmentFor says which files may go, and SendMode
// says whether and how a reply may be sent now (24-hour window, then the
// HUMAN_AGENT tag up to 7 days).
//
// Webhook signatures and the GET handshake are the meta package's; verify
// the raw body with meta.ValidSignature before calling Parse.
package messenger

import (
	"encoding/json"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/meta"
)

// Attachment types as the webhooks name them. Instagram adds share,
// story_mention and ig_reel; others (fallback, template, …) are kept with
// their type as sent.
const (
	AttachmentImage        = "image"
	AttachmentAudio        = "audio"
	AttachmentVideo        = "video"
	AttachmentFile         = "file"
	AttachmentShare        = "share"
	AttachmentStoryMention = "story_mention"
	AttachmentReel         = "ig_reel"
)

// Events is what one webhook POST carried, in payload order per kind.
type Events struct {
	Messages   []Message
	Deliveries []Delivery
	Reads      []Read
	// Other holds events this package does not interpret (reactions,
	// referrals, opt-ins, handover notices…), kept so a caller can log
	// them rather than lose them silently.
	Other []Other
}

// Message is one message event: a customer's message, a button tap
// (Postback), or, with Echo set, a copy of a message the Page sent, which
// the caller ignores (Switchboard already has it).
type Message struct {
	Channel     switchboard.Channel // ChannelMessenger or ChannelInstagram
	ID          string              // mid; the idempotency key
	SenderID    string              // PSID / IGSID; the Page's id for an echo
	RecipientID string              // the Page or Instagram account; the customer for an echo
	AccountID   string              // entry.id: the Page or Instagram account
	Timestamp   time.Time

	ContentType string // switchboard.Content*, from the first attachment
	// Text is what an agent should read: the message text, or a short
	// description of a share, story mention or deleted message.
	Text              string
	Attachments       []Attachment
	QuickReplyPayload string
	ReplyTo           *ReplyTo
	Postback          *Postback

	Echo        bool // is_echo: sent by the Page (or an app on its behalf)
	Deleted     bool // is_deleted: the customer unsent message ID
	Unsupported bool // is_unsupported: content Meta does not forward
	Standby     bool // came in standby[]: another app has the thread

	// Raw is this messaging[] event exactly as sent.
	Raw json.RawMessage
}

// Attachment is one message attachment. URL expires: copy what is needed
// soon after the message is durable.
type Attachment struct {
	Type      string `json:"type"`
	URL       string `json:"url,omitempty"`
	Title     string `json:"title,omitempty"`
	StickerID string `json:"sticker_id,omitempty"`
}

// ReplyTo says what the customer replied to: a message, or (Instagram) a
// story.
type ReplyTo struct {
	MID      string `json:"mid,omitempty"`
	StoryURL string `json:"story_url,omitempty"`
	StoryID  string `json:"story_id,omitempty"`
}

// Postback is a tap on a button (Get Started, a persistent menu item, a
// template button).
type Postback struct {
	Title   string `json:"title"`
	Payload string `json:"payload"`
}

// Delivery says that the customer's device received the Page's messages:
// MIDs when listed, and everything sent before Watermark.
type Delivery struct {
	Channel     switchboard.Channel
	SenderID    string // the customer
	RecipientID string
	MIDs        []string
	Watermark   time.Time
	Timestamp   time.Time // zero when not sent
	Standby     bool
}

// Read says that the customer has seen the Page's messages: everything
// sent before Watermark (Messenger), or message MID (Instagram).
type Read struct {
	Channel     switchboard.Channel
	SenderID    string // the customer
	RecipientID string
	Watermark   time.Time // zero on Instagram
	MID         string    // Instagram
	Timestamp   time.Time
	Standby     bool
}

// Other is a messaging event of a kind Parse does not interpret.
type Other struct {
	Channel  switchboard.Channel
	Kind     string // the event's key, e.g. "reaction", "referral", "optin"
	SenderID string
	Standby  bool
	Raw      json.RawMessage
}

// CustomerID is the customer's PSID or IGSID: the sender, or for an echo
// the recipient.
func (m Message) CustomerID() string {
	if m.Echo {
		return m.RecipientID
	}
	return m.SenderID
}

type inboundMeta struct {
	AccountID         string       `json:"account_id,omitempty"`
	Attachments       []Attachment `json:"attachments,omitempty"`
	QuickReplyPayload string       `json:"quick_reply_payload,omitempty"`
	ReplyTo           *ReplyTo     `json:"reply_to,omitempty"`
	Postback          *Postback    `json:"postback,omitempty"`
	Echo              bool         `json:"echo,omitempty"`
	Deleted           bool         `json:"deleted,omitempty"`
	Unsupported       bool         `json:"unsupported,omitempty"`
	Standby           bool         `json:"standby,omitempty"`
}

// Inbound normalises the message for the inbound queue: the identity is
// messenger_psid or instagram_id with the customer's id, ReceivedAt the
// event's timestamp, Original the messaging event as sent. Attachments
// stay in the metadata (type and URL) until someone copies them into the
// blob store.
//
// Echoes and deletions are reported by Parse but are not new customer
// messages: a deletion repeats the mid of the message it removes, so
// enqueueing it would be a no-op at best.
func (m Message) Inbound() switchboard.Inbound {
	kind := switchboard.IdentityMessengerPSID
	if m.Channel == switchboard.ChannelInstagram {
		kind = switchboard.IdentityInstagramID
	}
	metadata, err := meta.MarshalJSON(inboundMeta{
		AccountID: m.AccountID, Attachments: m.Attachments, QuickReplyPayload: m.QuickReplyPayload,
		ReplyTo: m.ReplyTo, Postback: m.Postback,
		Echo: m.Echo, Deleted: m.Deleted, Unsupported: m.Unsupported, Standby: m.Standby,
	})
	if err != nil {
		metadata = nil // unreachable: every field is a plain value
	}
	return switchboard.Inbound{
		Channel:     m.Channel,
		ProviderID:  m.ID,
		Identities:  []switchboard.IdentityRef{{Kind: kind, Value: m.CustomerID()}},
		ContentType: m.ContentType,
		Text:        m.Text,
		Metadata:    metadata,
		Original:    m.Raw,
		ReceivedAt:  m.Timestamp.UTC(),
	}
}
