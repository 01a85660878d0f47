package twilio

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/fetch"
)

// DefaultBaseURL is Twilio's REST API; Client.BaseURL overrides it so tests
// and the demo can point at a local stand-in.
const DefaultBaseURL = "https://api.twilio.com"

// Limits the Messages API documents (channels.md §1).
const (
	MaxBodyChars = 1600
	MaxMediaURLs = 10
)

// DefaultMaxMediaBytes bounds FetchMedia when it is given no limit. Carriers
// cap MMS far lower; this only stops a runaway download.
const DefaultMaxMediaBytes = 20 << 20

// Twilio error codes the platform reacts to.
const (
	// ErrUnsubscribed: the recipient replied STOP; sending again needs
	// their START. The platform records it as an opt-out.
	ErrUnsubscribed = 21610
	// ErrInvalidTo: the To number is not a valid phone number.
	ErrInvalidTo = 21211
	// ErrTooManyRequests: the account's API concurrency limit was hit.
	ErrTooManyRequests = 20429
)

// maxResponseBytes bounds how much of an API answer is read: a message
// resource or an error is a few kilobytes.
const maxResponseBytes = 1 << 20

// Client calls the Twilio REST API for one account. The zero HTTP uses
// http.DefaultClient; give it one with a timeout in production. A Client is
// safe for concurrent use; set its fields before the first call.
type Client struct {
	BaseURL    string // DefaultBaseURL when empty
	AccountSID string
	AuthToken  string
	HTTP       *http.Client
	// MessagingBaseURL is the Messaging API, where Messaging Services
	// are. When empty: BaseURL if that is set to another host than
	// Twilio's (a stand-in serves both), else DefaultMessagingBaseURL.
	MessagingBaseURL string
	// MediaHosts replaces DefaultMediaHosts as the hosts FetchMedia may
	// fetch from and be redirected to (to add a storage bucket of your
	// own, say). BaseURL's origin is allowed too.
	MediaHosts []string

	fetchOnce sync.Once
	fetcher   *fetch.Fetcher
}

// SendParams is one outbound message. To, and From or MessagingServiceSID,
// are required (both are passed on when set: Twilio then sends from From
// within the service), as is a Body or at least one MediaURL. StatusCallback, when set, is the URL Twilio posts delivery
// statuses to.
type SendParams struct {
	To                  string
	From                string
	MessagingServiceSID string
	Body                string
	MediaURLs           []string
	StatusCallback      string
}

// Message is the part of Twilio's message resource the platform keeps.
type Message struct {
	SID          string
	Status       string // queued, accepted, scheduled, ... as Twilio says it
	NumSegments  int
	ErrorCode    int // 0 when none
	ErrorMessage string
}

// APIError is an error answer from the Twilio API: HTTP status, Twilio's
// error code (0 when the body was not Twilio's JSON) and its message.
// Reach it with errors.As.
type APIError struct {
	Status   int
	Code     int
	Message  string
	MoreInfo string
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "twilio: HTTP %d", e.Status)
	if e.Code != 0 {
		fmt.Fprintf(&b, ", error %d", e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.MoreInfo != "" {
		fmt.Fprintf(&b, " (%s)", e.MoreInfo)
	}
	return b.String()
}

// Retryable reports whether sending the same request later may succeed:
// rate limiting (429) and server errors. Other 4xx answers will not change.
func (e *APIError) Retryable() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// IsUnsubscribed reports whether err is Twilio's 21610: the recipient has
// opted out, which the platform must record like a STOP.
func IsUnsubscribed(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Code == ErrUnsubscribed
}

// SendMessage creates a message: POST {BaseURL}/2010-04-01/Accounts/{sid}/
// Messages.json, form-encoded, with Basic auth.
//
// Errors: an *APIError for an error answer, wrapped with
// switchboard.Permanent when retrying cannot help (4xx other than 429);
// 429, 5xx, network and context errors are returned unwrapped, for the
// outbox to retry. Invalid params are refused before any request, as a
// permanent EINVALID. A 2xx answer that cannot be read is permanent too:
// Twilio has most likely accepted the message, and retrying would send it
// twice.
func (c *Client) SendMessage(ctx context.Context, p SendParams) (Message, error) {
	if err := p.validate(); err != nil {
		return Message{}, switchboard.Permanent(fmt.Errorf("twilio: send message: %w", err))
	}
	if c.AccountSID == "" || c.AuthToken == "" {
		return Message{}, switchboard.Permanent(fmt.Errorf("twilio: send message: %w",
			switchboard.Errorf(switchboard.EINVALID, "Twilio account SID and auth token are not configured")))
	}
	form := url.Values{}
	form.Set("To", p.To)
	if p.MessagingServiceSID != "" {
		form.Set("MessagingServiceSid", p.MessagingServiceSID)
	}
	if p.From != "" {
		form.Set("From", p.From)
	}
	if p.Body != "" {
		form.Set("Body", p.Body)
	}
	for _, m := range p.MediaURLs {
		form.Add("MediaUrl", m)
	}
	if p.StatusCallback != "" {
		form.Set("StatusCallback", p.StatusCallback)
	}

	endpoint := c.base() + "/2010-04-01/Accounts/" + url.PathEscape(c.AccountSID) + "/Messages.json"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return Message{}, switchboard.Permanent(fmt.Errorf("twilio: send message: %w", err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(c.AccountSID, c.AuthToken)

	resp, err := c.httpClient().Do(req)
	if err != nil {
		return Message{}, fmt.Errorf("twilio: send message: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		if resp.StatusCode/100 == 2 {
			return Message{}, switchboard.Permanent(fmt.Errorf("twilio: send message: reading the answer: %w", err))
		}
		return Message{}, fmt.Errorf("twilio: send message: reading the answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return Message{}, classify(fmt.Errorf("twilio: send message: %w", decodeAPIError(resp.StatusCode, body)))
	}

	var raw struct {
		SID          string  `json:"sid"`
		Status       string  `json:"status"`
		NumSegments  flexInt `json:"num_segments"`
		ErrorCode    flexInt `json:"error_code"`
		ErrorMessage *string `json:"error_message"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return Message{}, switchboard.Permanent(fmt.Errorf("twilio: send message: decoding the %d answer: %w", resp.StatusCode, err))
	}
	if raw.SID == "" {
		return Message{}, switchboard.Permanent(fmt.Errorf("twilio: send message: the %d answer has no sid", resp.StatusCode))
	}
	m := Message{SID: raw.SID, Status: raw.Status, NumSegments: int(raw.NumSegments), ErrorCode: int(raw.ErrorCode)}
	if raw.ErrorMessage != nil {
		m.ErrorMessage = *raw.ErrorMessage
	}
	return m, nil
}

func (p SendParams) validate() error {
	switch {
	case strings.TrimSpace(p.To) == "":
		return switchboard.Errorf(switchboard.EINVALID, "a To number is required")
	case p.From == "" && p.MessagingServiceSID == "":
		return switchboard.Errorf(switchboard.EINVALID, "a From number or a messaging service is required")
	case p.Body == "" && len(p.MediaURLs) == 0:
		return switchboard.Errorf(switchboard.EINVALID, "a body or media is required")
	case !utf8.ValidString(p.Body):
		return switchboard.Errorf(switchboard.EINVALID, "the body is not valid UTF-8")
	case utf8.RuneCountInString(p.Body) > MaxBodyChars:
		return switchboard.Errorf(switchboard.EINVALID, "the body is longer than %d characters", MaxBodyChars)
	case len(p.MediaURLs) > MaxMediaURLs:
		return switchboard.Errorf(switchboard.EINVALID, "at most %d media URLs can be sent", MaxMediaURLs)
	}
	return nil
}

// DefaultMediaHosts are where Twilio serves inbound media and recordings
// (https only): its API hosts, api.twilio.com and the regional
// api.*.twilio.com, which MediaUrlN and RecordingUrl name, and the hosts
// those redirect to: mms.twiliocdn.com and the rest of twiliocdn.com
// when media auth is enforced, s3-external-1.amazonaws.com for media
// stored without it (https://www.twilio.com/docs/messaging/api/media-resource,
// https://help.twilio.com/articles/223183748).
func DefaultMediaHosts() []string {
	return []string{"*.twilio.com", "*.twiliocdn.com", "s3-external-1.amazonaws.com"}
}

// CheckMediaURL reports whether FetchMedia may fetch rawURL at all: https
// on one of the media hosts, or the configured BaseURL's origin when that
// is a stand-in. It does not connect, so the address rule is left to the
// fetch. The error wraps a *fetch.Refusal.
func (c *Client) CheckMediaURL(rawURL string) error {
	if err := c.media().Check(rawURL); err != nil {
		return fmt.Errorf("twilio: media URL: %w", err)
	}
	return nil
}

// FetchMedia downloads an inbound media file (a MediaUrlN or RecordingUrl)
// and returns its bytes and Content-Type (application/octet-stream when the
// answer has none), through package fetch: https from Twilio's media hosts
// (MediaHosts) or from the BaseURL's origin, public addresses only unless
// that origin is a configured stand-in, redirects (Twilio serves media from
// a CDN) held to the same rules.
//
// Credentials go only where they belong: Basic auth is sent when the URL
// has the same scheme and host as the API base (api.twilio.com, or the
// stand-in), and is dropped on a redirect to any other scheme, host or
// port. Twilio answers media requests without auth when media auth is off.
//
// More than maxBytes (DefaultMaxMediaBytes when maxBytes <= 0) is refused
// with an ETOOLARGE error, before reading when Content-Length says so. Error
// answers come back as *APIError. Like the other refusals that will not
// change (too large, a URL or address the policy refuses, which is a
// *fetch.Refusal), 4xx other than 429 are wrapped with
// switchboard.Permanent.
func (c *Client) FetchMedia(ctx context.Context, mediaURL string, maxBytes int64) (body []byte, contentType string, err error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxMediaBytes
	}
	f := c.media()
	if err := f.Check(mediaURL); err != nil {
		return nil, "", switchboard.Permanent(fmt.Errorf("twilio: fetch media: %w", err))
	}
	var header http.Header
	if u, err := url.Parse(mediaURL); err == nil && c.sameOrigin(u) && c.AccountSID != "" {
		header = http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(c.AccountSID+":"+c.AuthToken))}}
	}
	resp, err := f.Get(ctx, mediaURL, header, maxBytes)
	switch {
	case fetch.IsRefusal(err), switchboard.ErrorCode(err) == switchboard.ETOOLARGE:
		return nil, "", switchboard.Permanent(fmt.Errorf("twilio: fetch media: %w", err))
	case err != nil:
		return nil, "", fmt.Errorf("twilio: fetch media: %w", err)
	case !resp.OK():
		return nil, "", classify(fmt.Errorf("twilio: fetch media: %w", decodeAPIError(resp.StatusCode, resp.Body)))
	}
	contentType = strings.TrimSpace(resp.Header.Get("Content-Type"))
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	return resp.Body, contentType, nil
}

// media returns the fetcher for this client's media, made on first use
// from MediaHosts, BaseURL and HTTP.
func (c *Client) media() *fetch.Fetcher {
	c.fetchOnce.Do(func() {
		hosts := c.MediaHosts
		if hosts == nil {
			hosts = DefaultMediaHosts()
		}
		c.fetcher = fetch.New(fetch.Policy{Provider: "Twilio", Hosts: hosts, StandIns: []string{c.base()}}, c.HTTP)
	})
	return c.fetcher
}

func (c *Client) base() string {
	if c.BaseURL == "" {
		return DefaultBaseURL
	}
	return strings.TrimRight(c.BaseURL, "/")
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) sameOrigin(u *url.URL) bool {
	b, err := url.Parse(c.base())
	return err == nil && strings.EqualFold(b.Scheme, u.Scheme) && strings.EqualFold(b.Host, u.Host)
}

// classify marks err permanent unless the *APIError in it is retryable.
func classify(err error) error {
	var e *APIError
	if errors.As(err, &e) && !e.Retryable() {
		return switchboard.Permanent(err)
	}
	return err
}

// decodeAPIError reads Twilio's error JSON {code, message, more_info,
// status}. Anything else (a proxy's HTML page, say) keeps the HTTP status
// and a short excerpt of the body as the message.
func decodeAPIError(status int, body []byte) *APIError {
	e := &APIError{Status: status}
	var raw struct {
		Code     flexInt `json:"code"`
		Message  string  `json:"message"`
		MoreInfo string  `json:"more_info"`
	}
	if json.Unmarshal(body, &raw) == nil && (raw.Code != 0 || raw.Message != "") {
		e.Code, e.Message, e.MoreInfo = int(raw.Code), raw.Message, raw.MoreInfo
		return e
	}
	text := strings.TrimSpace(strings.ToValidUTF8(string(body), "\uFFFD"))
	if len(text) > 200 {
		text = text[:200]
		for !utf8.ValidString(text) {
			text = text[:len(text)-1]
		}
		text += "…"
	}
	if text == "" {
		text = http.StatusText(status)
	}
	e.Message = text
	return e
}

// flexInt reads a JSON number, a numeric string or null: Twilio sends
// num_segments as "1" and error_code as a number or null.
type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*f = 0
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			*f = 0
			return nil
		}
		b = []byte(s)
	}
	n, err := strconv.Atoi(string(b))
	if err != nil {
		return fmt.Errorf("not an integer: %q", b)
	}
	*f = flexInt(n)
	return nil
}
