package sms

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/identity"
)

// MaxMedia is the most media items Twilio attaches to one inbound message
// (MediaUrl0..MediaUrl9).
const MaxMedia = 10

// maxMediaURLLen bounds a MediaUrlN; Twilio's are about 150 bytes.
const maxMediaURLLen = 2048

// maxSegmentsField bounds NumSegments: a concatenated SMS has at most 255
// parts (its UDH counts parts in one octet).
const maxSegmentsField = 255

// Media is a reference to an inbound media item, still at Twilio. Fetch it
// with twilio.Client.FetchMedia (Basic auth) and store it as an attachment.
type Media struct {
	URL         string `json:"url"`
	ContentType string `json:"content_type"` // lower-case type/subtype, no parameters
}

// InboundMetadata is what ParseInbound keeps in Inbound.Metadata, as JSON.
// It is stored with the message: add fields, never rename.
type InboundMetadata struct {
	To                  string      `json:"to,omitempty"` // our number, as Twilio sent it
	AccountSID          string      `json:"account_sid,omitempty"`
	MessagingServiceSID string      `json:"messaging_service_sid,omitempty"`
	NumSegments         int         `json:"num_segments,omitempty"`
	NumMedia            int         `json:"num_media"`
	FromCity            string      `json:"from_city,omitempty"`
	FromState           string      `json:"from_state,omitempty"`
	FromCountry         string      `json:"from_country,omitempty"`
	OptOutType          string      `json:"opt_out_type,omitempty"` // STOP, START or HELP with Advanced Opt-Out
	Keyword             KeywordKind `json:"keyword,omitempty"`      // Keyword(Text); the platform records opt-outs from it
	Media               []Media     `json:"media,omitempty"`
}

// ParseInbound reads Twilio's inbound SMS/MMS webhook form (channels.md §1)
// into an Inbound for the queue. The form must already have passed
// twilio.ValidateSignature. Unknown fields are ignored, since Twilio adds
// some without notice; known fields must be well-formed.
//
//   - Channel is sms; ProviderID is MessageSid (else SmsMessageSid, else
//     SmsSid), which must be 2 to 64 ASCII letters and digits.
//   - The sender's identity is the phone From in E.164 (identity.Phone,
//     national numbers read in defaultRegion; a "whatsapp:" prefix is
//     tolerated). Short codes and alphanumeric senders are refused: they
//     cannot be a customer's identity. SenderName stays empty: SMS carries
//     no name.
//   - Text is Body, which must be valid UTF-8; NUL characters are removed
//     (PostgreSQL refuses them in text, and no handset sends them).
//   - ContentType is text when the body has any non-space character or
//     there is no media; otherwise it follows the first media item: image
//     for image/*, audio for audio/*, file for anything else.
//   - Metadata is InboundMetadata as JSON. Media come from MediaUrlN and
//     MediaContentTypeN for N < NumMedia (0 to MaxMedia); every URL must be
//     absolute https without credentials. A missing or malformed content
//     type reads as application/octet-stream.
//   - ReceivedAt is now in UTC.
//
// Attachments, Original and AcceptedAt are left to the caller: it holds the
// raw body (Original is the request body exactly as received, which a
// re-encoded form would not be), downloads the media, and knows when the
// message became durable.
//
// Errors are *switchboard.Error values with code EINVALID, wrapped with
// context.
func ParseInbound(form url.Values, defaultRegion string, now time.Time) (switchboard.Inbound, error) {
	fail := func(err error) (switchboard.Inbound, error) {
		return switchboard.Inbound{}, fmt.Errorf("sms: parse inbound: %w", err)
	}
	sid := firstOf(form, "MessageSid", "SmsMessageSid", "SmsSid")
	if err := checkSID(sid); err != nil {
		return fail(err)
	}
	from := form.Get("From")
	if strings.TrimSpace(from) == "" {
		return fail(invalid("From is required"))
	}
	phone, err := identity.Phone(from, defaultRegion)
	if err != nil {
		return fail(invalid("From is not a usable phone number: %s", switchboard.ErrorMessage(err)))
	}
	body := form.Get("Body")
	if !utf8.ValidString(body) {
		return fail(invalid("Body is not valid UTF-8"))
	}
	body = strings.ReplaceAll(body, "\x00", "")

	meta := InboundMetadata{
		To:                  strings.TrimSpace(form.Get("To")),
		AccountSID:          strings.TrimSpace(form.Get("AccountSid")),
		MessagingServiceSID: strings.TrimSpace(form.Get("MessagingServiceSid")),
		FromCity:            strings.TrimSpace(form.Get("FromCity")),
		FromState:           strings.TrimSpace(form.Get("FromState")),
		FromCountry:         strings.TrimSpace(form.Get("FromCountry")),
		OptOutType:          strings.ToUpper(strings.TrimSpace(form.Get("OptOutType"))),
		Keyword:             Keyword(body),
	}
	if meta.NumSegments, err = optionalInt(form, "NumSegments", 0, maxSegmentsField); err != nil {
		return fail(err)
	}
	if meta.Media, err = MediaRefs(form); err != nil {
		return fail(err)
	}
	meta.NumMedia = len(meta.Media)
	raw, err := json.Marshal(meta)
	if err != nil { // cannot happen for these field types
		return fail(fmt.Errorf("encoding metadata: %w", err))
	}

	in := switchboard.Inbound{
		Channel:     switchboard.ChannelSMS,
		ProviderID:  sid,
		Identities:  []switchboard.IdentityRef{{Kind: switchboard.IdentityPhone, Value: phone}},
		ContentType: contentType(body, meta.Media),
		Text:        body,
		Metadata:    raw,
		ReceivedAt:  now.UTC(),
	}
	if err := in.Validate(); err != nil { // a guard against this function's own bugs
		return fail(err)
	}
	return in, nil
}

// MediaRefs returns the media of an inbound form: MediaUrlN and
// MediaContentTypeN for N from 0 to NumMedia-1, with the rules given in
// ParseInbound. A missing NumMedia means none; MediaUrlN beyond NumMedia
// are ignored. Errors are EINVALID *switchboard.Error values.
func MediaRefs(form url.Values) ([]Media, error) {
	n, err := optionalInt(form, "NumMedia", 0, MaxMedia)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	out := make([]Media, 0, n)
	for i := range n {
		key := fmt.Sprintf("MediaUrl%d", i)
		raw := strings.TrimSpace(form.Get(key))
		if err := checkMediaURL(raw); err != nil {
			return nil, invalid("%s %s", key, err.Error())
		}
		out = append(out, Media{URL: raw, ContentType: mediaType(form.Get(fmt.Sprintf("MediaContentType%d", i)))})
	}
	return out, nil
}

func checkMediaURL(raw string) error {
	switch {
	case raw == "":
		return fmt.Errorf("is missing")
	case len(raw) > maxMediaURLLen:
		return fmt.Errorf("is longer than %d bytes", maxMediaURLLen)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("is not a URL")
	case u.Scheme != "https" || u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("is not an absolute https URL")
	case u.User != nil:
		return fmt.Errorf("must not carry credentials")
	}
	return nil
}

// mediaType normalises a MediaContentTypeN to "type/subtype".
func mediaType(raw string) string {
	mt, _, err := mime.ParseMediaType(raw)
	if err != nil || !strings.Contains(mt, "/") {
		return "application/octet-stream"
	}
	return mt // ParseMediaType lower-cases it
}

func contentType(body string, media []Media) string {
	if strings.TrimSpace(body) != "" || len(media) == 0 {
		return switchboard.ContentText
	}
	switch t := media[0].ContentType; {
	case strings.HasPrefix(t, "image/"):
		return switchboard.ContentImage
	case strings.HasPrefix(t, "audio/"):
		return switchboard.ContentAudio
	}
	return switchboard.ContentFile
}

// firstOf returns the first non-empty value among keys, trimmed. Twilio's
// legacy names (SmsSid, SmsStatus) repeat the current ones.
func firstOf(form url.Values, keys ...string) string {
	for _, k := range keys {
		if v := strings.TrimSpace(form.Get(k)); v != "" {
			return v
		}
	}
	return ""
}

// checkSID accepts Twilio's SIDs (two letters and 32 hex digits) and the
// similar ids of stand-ins; the SID is the idempotency key, so it must be
// present and plain.
func checkSID(sid string) error {
	if sid == "" {
		return invalid("MessageSid is required")
	}
	if len(sid) < 2 || len(sid) > 64 {
		return invalid("MessageSid must be 2 to 64 characters long")
	}
	for i := 0; i < len(sid); i++ {
		c := sid[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return invalid("MessageSid must contain only ASCII letters and digits")
		}
	}
	return nil
}

// optionalInt reads a decimal field in [min, max]; absent or empty is 0.
// Only plain digits are accepted: strconv.Atoi would also take "+3".
func optionalInt(form url.Values, key string, min, max int) (int, error) {
	s := strings.TrimSpace(form.Get(key))
	if s == "" {
		return 0, nil
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' || n > max {
			return 0, invalid("%s must be a whole number from %d to %d", key, min, max)
		}
		n = n*10 + int(c-'0')
	}
	if n < min || n > max {
		return 0, invalid("%s must be a whole number from %d to %d", key, min, max)
	}
	return n, nil
}

func invalid(format string, args ...any) error {
	return switchboard.Errorf(switchboard.EINVALID, format, args...)
}

// truncate shortens s to at most n bytes without splitting a character,
// for echoing provider values in error messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
