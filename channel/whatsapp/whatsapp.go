// Package whatsapp holds the WhatsApp Cloud API building blocks
// (research/channels.md §3): Parse turns a verified webhook body into
// messages and delivery statuses, Message.Inbound normalises a message for
// the inbound queue, MediaClient copies media before its URL expires,
// Client sends text, template and media messages (uploading the files
// first), and the policy helpers say what may be sent now (the 24-hour
// customer-service window, MediaFor's types and sizes).
//
// Webhook signatures and the GET handshake are the meta package's; verify
// the raw body with meta.ValidSignature before calling Parse.
//
// Identities: a sender's phone (messages[].from / contacts[].wa_id) becomes
// an E.164 phone identity, shared with SMS and voice; the business-scoped
// user id (contacts[].user_id, "BSUID") becomes a whatsapp_bsuid identity.
// Users who adopted a username may come with a BSUID alone.
package whatsapp

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/meta"
)

// Message types as the Cloud API names them in messages[].type.
const (
	TypeText        = "text"
	TypeImage       = "image"
	TypeAudio       = "audio"
	TypeVideo       = "video"
	TypeDocument    = "document"
	TypeSticker     = "sticker"
	TypeLocation    = "location"
	TypeContacts    = "contacts"
	TypeInteractive = "interactive"
	TypeButton      = "button"
	TypeReaction    = "reaction"
	TypeSystem      = "system"
	TypeUnsupported = "unsupported"
)

// Delivery statuses as statuses[].status names them.
const (
	StatusSent      = "sent"
	StatusDelivered = "delivered"
	StatusRead      = "read"
	StatusFailed    = "failed"
	StatusPlayed    = "played" // voice message played; implies read
)

// Events is what one webhook POST carried, in payload order.
type Events struct {
	Messages []Message
	Statuses []Status
	// Errors are problems Meta reports about the account or webhook
	// rather than about one message (value.errors); worth logging.
	Errors []ErrorDetail
}

// Message is one inbound WhatsApp message. Exactly one of the
// type-specific fields (Media, Location, …) is set for the types that have
// one; Text is always what an agent should read.
type Message struct {
	ID   string // wamid; the idempotency key
	Type string // messages[].type as sent, kept for unknown types too
	// From is the sender's wa_id as sent (digits, no +); empty for a user
	// known by BSUID alone.
	From string
	// Phone is From (or the contact's wa_id) in E.164; empty when the
	// sender's number is not shared.
	Phone string
	// UserID is the business-scoped user id (BSUID), when sent.
	UserID   string
	Name     string // contacts[].profile.name
	Username string // contacts[].profile.username, for users who set one

	// The business number the message was sent to.
	PhoneNumberID      string
	DisplayPhoneNumber string

	Timestamp time.Time // when the user sent it, per Meta
	// AcceptedAt is the now given to Parse: when the webhook arrived.
	AcceptedAt time.Time

	ContentType string // switchboard.Content*
	Text        string

	Media    *MediaRef
	Location *Location
	Reaction *Reaction
	Reply    *Reply // interactive button_reply / list_reply / nfm_reply
	Button   *Button
	Contacts []SharedContact
	System   *System

	Context  *Context        // set when the user replied to a message
	Referral json.RawMessage // the click-to-WhatsApp ad it came from, as sent
	Errors   []ErrorDetail   // why Meta could not deliver the content (unsupported)

	// Raw is this message object exactly as sent.
	Raw json.RawMessage
}

// MediaRef points at media held by Meta; MediaClient.Fetch copies it.
type MediaRef struct {
	ID       string `json:"id"`
	MimeType string `json:"mime_type,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	Caption  string `json:"caption,omitempty"`
	Filename string `json:"filename,omitempty"`
	Voice    bool   `json:"voice,omitempty"` // a voice note recorded in the app
}

// Location is a shared location pin.
type Location struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
	Name      string  `json:"name,omitempty"`
	Address   string  `json:"address,omitempty"`
	URL       string  `json:"url,omitempty"`
}

// Reaction is an emoji put on (or, with Emoji empty, taken off) an
// earlier message.
type Reaction struct {
	MessageID string `json:"message_id"` // the wamid reacted to
	Emoji     string `json:"emoji"`
}

// Reply is the user's answer to an interactive message.
type Reply struct {
	Type         string `json:"type"` // button_reply, list_reply, nfm_reply
	ID           string `json:"id,omitempty"`
	Title        string `json:"title,omitempty"`
	Description  string `json:"description,omitempty"`
	ResponseJSON string `json:"response_json,omitempty"` // nfm_reply (Flows)
}

// Button is a tap on a template's quick-reply button.
type Button struct {
	Payload string `json:"payload"`
	Text    string `json:"text"`
}

// SharedContact is one contact card the user sent.
type SharedContact struct {
	Name   string   `json:"name"`
	Phones []string `json:"phones,omitempty"`
}

// System is a notice from WhatsApp, such as a user changing number.
type System struct {
	Type    string `json:"type"` // user_changed_number, user_changed_user_id, …
	Body    string `json:"body"`
	NewWAID string `json:"new_wa_id,omitempty"`
}

// Context says which message the user replied to or forwarded.
type Context struct {
	From                string `json:"from,omitempty"`
	ID                  string `json:"id,omitempty"`
	Forwarded           bool   `json:"forwarded,omitempty"`
	FrequentlyForwarded bool   `json:"frequently_forwarded,omitempty"`
}

// ErrorDetail is one entry of a webhook's errors[].
type ErrorDetail struct {
	Code    int    `json:"code"`
	Title   string `json:"title,omitempty"`
	Message string `json:"message,omitempty"`
	Details string `json:"details,omitempty"` // error_data.details
}

func (e ErrorDetail) String() string {
	s := fmt.Sprintf("%d %s", e.Code, e.Title)
	if e.Details != "" {
		s += ": " + e.Details
	}
	return s
}

// Status is a delivery status of a message the business sent.
type Status struct {
	ID              string // wamid of our message
	Status          string // sent, delivered, read, failed, played
	Timestamp       time.Time
	RecipientID     string // wa_id, or the BSUID when sent to one
	RecipientUserID string // BSUID, when sent
	PhoneNumberID   string // the business number that sent it
	Errors          []ErrorDetail
	Raw             json.RawMessage
}

// Delivery maps the status to switchboard's delivery statuses; "" for a
// status it does not know. played (a voice note) counts as read.
func (s Status) Delivery() switchboard.DeliveryStatus {
	switch s.Status {
	case StatusSent:
		return switchboard.DeliverySent
	case StatusDelivered:
		return switchboard.DeliveryDelivered
	case StatusRead, StatusPlayed:
		return switchboard.DeliveryRead
	case StatusFailed:
		return switchboard.DeliveryFailed
	}
	return ""
}

// inboundMeta is the Inbound's metadata: everything an agent or a later
// stage (media copy, reply threading) may need that has no Inbound field.
type inboundMeta struct {
	Type               string          `json:"type"`
	PhoneNumberID      string          `json:"phone_number_id,omitempty"`
	DisplayPhoneNumber string          `json:"display_phone_number,omitempty"`
	Username           string          `json:"username,omitempty"`
	WAID               string          `json:"wa_id,omitempty"` // only when it was not a usable phone
	Context            *Context        `json:"context,omitempty"`
	Media              *MediaRef       `json:"media,omitempty"`
	Location           *Location       `json:"location,omitempty"`
	Reaction           *Reaction       `json:"reaction,omitempty"`
	Reply              *Reply          `json:"reply,omitempty"`
	Button             *Button         `json:"button,omitempty"`
	Contacts           []SharedContact `json:"contacts,omitempty"`
	System             *System         `json:"system,omitempty"`
	Referral           json.RawMessage `json:"referral,omitempty"`
	Errors             []ErrorDetail   `json:"errors,omitempty"`
}

// Inbound normalises the message for the inbound queue. Identities are the
// phone (E.164) and the BSUID, whichever are known; Original is the
// message object as sent (not the whole body, which may carry other
// customers' messages). A timestamp ahead of AcceptedAt is clamped to it,
// so a skewed provider clock cannot sort the message after later replies.
func (m Message) Inbound() switchboard.Inbound {
	ids := make([]switchboard.IdentityRef, 0, 2)
	if m.Phone != "" {
		ids = append(ids, switchboard.IdentityRef{Kind: switchboard.IdentityPhone, Value: m.Phone})
	}
	if m.UserID != "" {
		ids = append(ids, switchboard.IdentityRef{Kind: switchboard.IdentityWhatsAppBSUID, Value: m.UserID})
	}
	md := inboundMeta{
		Type: m.Type, PhoneNumberID: m.PhoneNumberID, DisplayPhoneNumber: m.DisplayPhoneNumber,
		Username: m.Username, Context: m.Context, Media: m.Media, Location: m.Location,
		Reaction: m.Reaction, Reply: m.Reply, Button: m.Button, Contacts: m.Contacts,
		System: m.System, Referral: m.Referral, Errors: m.Errors,
	}
	if m.Phone == "" && m.From != "" {
		md.WAID = m.From
	}
	if len(md.Referral) > 0 && !json.Valid(md.Referral) {
		md.Referral = nil // only Parse fills it, always valid; guard hand-built values
	}
	metadata, err := meta.MarshalJSON(md)
	if err != nil {
		metadata = nil // unreachable: every field is a plain value
	}
	received := m.Timestamp
	if !m.AcceptedAt.IsZero() && received.After(m.AcceptedAt) {
		received = m.AcceptedAt
	}
	return switchboard.Inbound{
		Channel:     switchboard.ChannelWhatsApp,
		ProviderID:  m.ID,
		SenderName:  m.Name,
		Identities:  ids,
		ContentType: m.ContentType,
		Text:        m.Text,
		Metadata:    metadata,
		Original:    m.Raw,
		ReceivedAt:  received.UTC(),
		AcceptedAt:  m.AcceptedAt.UTC(),
	}
}
