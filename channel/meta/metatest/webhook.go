package metatest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/switchboard-inbox/switchboard/channel/meta"
)

// maxResponseBody bounds how much of a receiver's answer Send keeps.
const maxResponseBody = 1 << 20

// Webhook is one signed webhook POST: the exact body and its
// X-Hub-Signature-256 value. Post it with Send, as often as needed (Meta
// retries with the same body).
type Webhook struct {
	URL       string
	Body      []byte
	Signature string // X-Hub-Signature-256: "sha256=<hex>"
	// LegacySignature is the X-Hub-Signature (SHA-1) Meta also sends;
	// empty omits the header.
	LegacySignature string
}

// WithBadSignature returns a copy signed with the wrong secret.
func (wh Webhook) WithBadSignature() Webhook {
	wh.Signature = meta.Sign("not-the-app-secret", wh.Body)
	wh.LegacySignature = ""
	return wh
}

// WithBody returns a copy with another body but the old signatures, as a
// body tampered with in transit.
func (wh Webhook) WithBody(body []byte) Webhook {
	wh.Body = append([]byte(nil), body...)
	return wh
}

// Send posts wh as Meta does (Content-Type application/json, the
// signature headers) with hc (nil: http.DefaultClient). The response body
// has been read (up to 1 MiB) and can still be read from resp.Body;
// closing it is optional.
func Send(ctx context.Context, hc *http.Client, wh Webhook) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, wh.URL, bytes.NewReader(wh.Body))
	if err != nil {
		return nil, fmt.Errorf("metatest: webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "facebookexternalua")
	if wh.Signature != "" {
		req.Header.Set(meta.SignatureHeader, wh.Signature)
	}
	if wh.LegacySignature != "" {
		req.Header.Set("X-Hub-Signature", wh.LegacySignature)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metatest: webhook: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return nil, fmt.Errorf("metatest: webhook: reading response: %w", err)
	}
	io.Copy(io.Discard, resp.Body) // let the connection be reused
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// webhook encodes v the way Meta does and signs it.
func (s *Server) webhook(url string, v any) Webhook {
	body := metaJSON(v)
	return Webhook{
		URL: url, Body: body,
		Signature:       meta.Sign(s.appSecret, body),
		LegacySignature: sha1Signature(s.appSecret, body),
	}
}

// metaJSON encodes v as Meta's webhooks do: compact, non-ASCII as \uXXXX
// (UTF-16 surrogate pairs above the BMP) and "/" as "\/".
func metaJSON(v any) []byte {
	raw, err := json.Marshal(v)
	if err != nil {
		panic("metatest: encoding webhook: " + err.Error()) // only plain structs are encoded
	}
	var b bytes.Buffer
	b.Grow(len(raw) + len(raw)/8)
	// Outside strings encoding/json writes only ASCII and no '/', so
	// every byte rewritten here is string content.
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '/':
			b.WriteString(`\/`)
			i++
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			i++
		default:
			r, n := utf8.DecodeRune(raw[i:])
			if r >= 0x10000 {
				r -= 0x10000
				fmt.Fprintf(&b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
			i += n
		}
	}
	return b.Bytes()
}

// WhatsApp webhook shapes, fields in the order Meta sends them.

type waEnvelope struct {
	Object string    `json:"object"`
	Entry  []waEntry `json:"entry"`
}

type waEntry struct {
	ID      string     `json:"id"`
	Changes []waChange `json:"changes"`
}

type waChange struct {
	Value waValue `json:"value"`
	Field string  `json:"field"`
}

type waValue struct {
	MessagingProduct string      `json:"messaging_product"`
	Metadata         waMetadata  `json:"metadata"`
	Contacts         []waContact `json:"contacts,omitempty"`
	Messages         []waMessage `json:"messages,omitempty"`
	Statuses         []waStatus  `json:"statuses,omitempty"`
}

type waMetadata struct {
	DisplayPhoneNumber string `json:"display_phone_number"`
	PhoneNumberID      string `json:"phone_number_id"`
}

type waContact struct {
	Profile struct {
		Name string `json:"name"`
	} `json:"profile"`
	WAID string `json:"wa_id"`
}

type waMessage struct {
	From      string   `json:"from"`
	ID        string   `json:"id"`
	Timestamp string   `json:"timestamp"`
	Type      string   `json:"type"`
	Text      *waText  `json:"text,omitempty"`
	Image     *waMedia `json:"image,omitempty"`
	Audio     *waMedia `json:"audio,omitempty"`
	Video     *waMedia `json:"video,omitempty"`
	Document  *waMedia `json:"document,omitempty"`
	Sticker   *waMedia `json:"sticker,omitempty"`
}

type waText struct {
	Body string `json:"body"`
}

type waMedia struct {
	Caption  string `json:"caption,omitempty"`
	Filename string `json:"filename,omitempty"`
	MimeType string `json:"mime_type"`
	SHA256   string `json:"sha256"`
	ID       string `json:"id"`
	Voice    bool   `json:"voice,omitempty"`
	Animated *bool  `json:"animated,omitempty"`
}

type waStatus struct {
	ID           string          `json:"id"`
	Status       string          `json:"status"`
	Timestamp    string          `json:"timestamp"`
	RecipientID  string          `json:"recipient_id"`
	Conversation *waConversation `json:"conversation,omitempty"`
	Pricing      *waPricing      `json:"pricing,omitempty"`
	Errors       []waError       `json:"errors,omitempty"`
}

type waConversation struct {
	ID     string `json:"id"`
	Origin struct {
		Type string `json:"type"`
	} `json:"origin"`
}

type waPricing struct {
	Billable     bool   `json:"billable"`
	PricingModel string `json:"pricing_model"`
	Category     string `json:"category"`
}

type waError struct {
	Code      int       `json:"code"`
	Title     string    `json:"title"`
	Message   string    `json:"message"`
	ErrorData errorData `json:"error_data"`
	Href      string    `json:"href"`
}

func (s *Server) waWebhook(url string, v waValue) Webhook {
	v.MessagingProduct = "whatsapp"
	v.Metadata = waMetadata{DisplayPhoneNumber: s.displayPhone, PhoneNumberID: s.phoneNumberID}
	return s.webhook(url, waEnvelope{
		Object: meta.ObjectWhatsApp,
		Entry:  []waEntry{{ID: s.wabaID, Changes: []waChange{{Value: v, Field: "messages"}}}},
	})
}

// Messenger / Instagram webhook shapes.

type msEnvelope struct {
	Object string    `json:"object"`
	Entry  []msEntry `json:"entry"`
}

type msEntry struct {
	ID        string    `json:"id"`
	Time      int64     `json:"time"`
	Messaging []msEvent `json:"messaging"`
}

type msID struct {
	ID string `json:"id"`
}

type msEvent struct {
	Sender    msID        `json:"sender"`
	Recipient msID        `json:"recipient"`
	Timestamp int64       `json:"timestamp,omitempty"`
	Message   *msMessage  `json:"message,omitempty"`
	Delivery  *msDelivery `json:"delivery,omitempty"`
	Read      *msRead     `json:"read,omitempty"`
}

type msMessage struct {
	MID  string `json:"mid"`
	Text string `json:"text"`
}

type msDelivery struct {
	MIDs      []string `json:"mids"`
	Watermark int64    `json:"watermark"`
}

type msRead struct {
	MID       string `json:"mid,omitempty"`
	Watermark int64  `json:"watermark,omitempty"`
}

func (s *Server) msWebhook(url, object, accountID string, ev msEvent) Webhook {
	return s.webhook(url, msEnvelope{
		Object: object,
		Entry:  []msEntry{{ID: accountID, Time: s.now().UnixMilli(), Messaging: []msEvent{ev}}},
	})
}

// digitsOnly reports whether s is a non-empty run of ASCII digits.
func digitsOnly(s string) bool {
	if s == "" {
		return false
	}
	return strings.Trim(s, "0123456789") == ""
}
