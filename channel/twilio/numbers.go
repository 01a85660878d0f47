package twilio

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/switchboard-inbox/switchboard"
)

// DefaultMessagingBaseURL is Twilio's Messaging API (v1), where Messaging
// Services live; the phone numbers are on the REST API (DefaultBaseURL).
const DefaultMessagingBaseURL = "https://messaging.twilio.com"

const (
	// listPageSize is the most a Twilio list page holds
	// (https://www.twilio.com/docs/usage/twilios-response#pagination).
	listPageSize = 1000
	// maxListPages bounds paging: 50 pages of 1000 is far more numbers or
	// services than an inbox serves, and a server that keeps answering
	// next pages must not keep us looping.
	maxListPages = 50
	// maxListResponseBytes bounds one list page: a phone number resource
	// is 2-3 KB of JSON, so a full page of 1000 is several megabytes.
	maxListResponseBytes = 16 << 20
)

// PhoneNumber is the part of Twilio's IncomingPhoneNumber resource that
// says where the number's webhooks point
// (https://www.twilio.com/docs/phone-numbers/api/incomingphonenumber-resource).
type PhoneNumber struct {
	SID            string // PN...
	PhoneNumber    string // E.164
	FriendlyName   string
	SmsURL         string
	SmsMethod      string
	VoiceURL       string
	VoiceMethod    string
	StatusCallback string
	// StatusCallbackMethod is how StatusCallback is called.
	StatusCallbackMethod string
	// SmsApplicationSID and VoiceApplicationSID name a TwiML App that
	// handles the number instead: Twilio then ignores SmsURL (VoiceURL),
	// so pointing the URL alone changes nothing. "" when none.
	SmsApplicationSID   string
	VoiceApplicationSID string
}

// WebhookURLs are the URLs of this deployment that a number should call.
// An empty field means "leave that setting of the number alone".
type WebhookURLs struct {
	SmsURL         string // incoming SMS/MMS
	StatusCallback string // the number's status callback
	VoiceURL       string // incoming calls (voicemail)
}

// MessagingService is the part of Twilio's Messaging Service resource
// (Messaging API v1) that decides where inbound messages go: with
// UseInboundWebhookOnNumber false, messages to the service's numbers go to
// InboundRequestURL, not to each number's SmsURL
// (https://www.twilio.com/docs/messaging/api/service-resource).
type MessagingService struct {
	SID                       string // MG...
	FriendlyName              string
	InboundRequestURL         string // "" when inbound messages are off
	StatusCallback            string
	UseInboundWebhookOnNumber bool
}

// phoneNumberResource is the wire form of an IncomingPhoneNumber. Unset
// URLs and application SIDs come as "" or null; both decode to "".
type phoneNumberResource struct {
	SID                  string `json:"sid"`
	PhoneNumber          string `json:"phone_number"`
	FriendlyName         string `json:"friendly_name"`
	SmsURL               string `json:"sms_url"`
	SmsMethod            string `json:"sms_method"`
	SmsApplicationSID    string `json:"sms_application_sid"`
	VoiceURL             string `json:"voice_url"`
	VoiceMethod          string `json:"voice_method"`
	VoiceApplicationSID  string `json:"voice_application_sid"`
	StatusCallback       string `json:"status_callback"`
	StatusCallbackMethod string `json:"status_callback_method"`
}

func (r phoneNumberResource) phoneNumber() PhoneNumber {
	return PhoneNumber{
		SID: r.SID, PhoneNumber: r.PhoneNumber, FriendlyName: r.FriendlyName,
		SmsURL: r.SmsURL, SmsMethod: r.SmsMethod, VoiceURL: r.VoiceURL, VoiceMethod: r.VoiceMethod,
		StatusCallback: r.StatusCallback, StatusCallbackMethod: r.StatusCallbackMethod, SmsApplicationSID: r.SmsApplicationSID, VoiceApplicationSID: r.VoiceApplicationSID,
	}
}

// PhoneNumbers lists the account's phone numbers: GET {BaseURL}/2010-04-01/
// Accounts/{sid}/IncomingPhoneNumbers.json, following next_page_uri (a
// path on the API host) for at most 50 pages of 1000. Errors are *APIError
// for an error answer (20003 for wrong credentials), wrapped with context.
func (c *Client) PhoneNumbers(ctx context.Context) ([]PhoneNumber, error) {
	const op = "twilio: list phone numbers"
	if err := c.checkCredentials(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	first := c.base() + c.accountPath() + "/IncomingPhoneNumbers.json?PageSize=" + fmt.Sprint(listPageSize)
	var out []PhoneNumber
	err := c.listPages(ctx, op, first, func(body []byte) (string, error) {
		var raw struct {
			Numbers     []phoneNumberResource `json:"incoming_phone_numbers"`
			NextPageURI string                `json:"next_page_uri"` // null on the last page
		}
		if err := json.Unmarshal(body, &raw); err != nil {
			return "", fmt.Errorf("decoding the answer: %w", err)
		}
		for _, r := range raw.Numbers {
			out = append(out, r.phoneNumber())
		}
		if raw.NextPageURI == "" {
			return "", nil
		}
		return c.nextPageURI(raw.NextPageURI)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// listPages GETs first and each next page that page names (it returns ""
// on the last), for at most maxListPages, refusing a page that repeats.
func (c *Client) listPages(ctx context.Context, op, first string, page func(body []byte) (next string, err error)) error {
	seen := map[string]bool{}
	for n, next := 0, first; next != ""; n++ {
		if n == maxListPages {
			return fmt.Errorf("%s: more than %d pages", op, maxListPages)
		}
		if seen[next] {
			return fmt.Errorf("%s: page %d repeats %s", op, n, next)
		}
		seen[next] = true
		body, err := c.call(ctx, http.MethodGet, next, nil, maxListResponseBytes)
		if err != nil {
			return fmt.Errorf("%s: page %d: %w", op, n, err)
		}
		if next, err = page(body); err != nil {
			return fmt.Errorf("%s: page %d: %w", op, n, err)
		}
	}
	return nil
}

// nextPageURI resolves Twilio's next_page_uri, a path on the API host, on
// the configured base. Anything else (another host) is refused: the next
// request carries the account's credentials.
func (c *Client) nextPageURI(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(uri, "/") || strings.HasPrefix(uri, "//") {
		return "", fmt.Errorf("next_page_uri %q is not a path on the API host", uri)
	}
	return c.base() + uri, nil
}

// PointNumber points the number numberSID (PN followed by 32 hex digits)
// at u: POST {BaseURL}/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers/
// {numberSID}.json with SmsUrl, VoiceUrl and StatusCallback, each with its
// method set to POST (Switchboard's webhooks take POST only). Fields of u
// left empty are not sent, so the number keeps those settings. It returns
// the number as Twilio answers it after the update.
//
// A malformed SID or URL is refused before any request with an EINVALID
// error; Twilio's refusals are *APIError (20404 for a number not on the
// account), wrapped with context.
func (c *Client) PointNumber(ctx context.Context, numberSID string, u WebhookURLs) (PhoneNumber, error) {
	const op = "twilio: point phone number"
	if !validSID(numberSID, "PN") {
		return PhoneNumber{}, fmt.Errorf("%s: %w", op,
			switchboard.Errorf(switchboard.EINVALID, "%q is not a phone number SID (PN and 32 hex digits)", numberSID))
	}
	form := url.Values{}
	for _, p := range []struct{ url, urlParam, methodParam, what string }{
		{u.SmsURL, "SmsUrl", "SmsMethod", "SMS webhook"},
		{u.VoiceURL, "VoiceUrl", "VoiceMethod", "voice webhook"},
		{u.StatusCallback, "StatusCallback", "StatusCallbackMethod", "status callback"},
	} {
		if p.url == "" {
			continue
		}
		if !isHTTPURL(p.url) {
			return PhoneNumber{}, fmt.Errorf("%s: %w", op,
				switchboard.Errorf(switchboard.EINVALID, "the %s %q is not an absolute http(s) URL", p.what, p.url))
		}
		form.Set(p.urlParam, p.url)
		form.Set(p.methodParam, http.MethodPost)
	}
	if len(form) == 0 {
		return PhoneNumber{}, fmt.Errorf("%s: %w", op, switchboard.Errorf(switchboard.EINVALID, "no webhook URL to set"))
	}
	if err := c.checkCredentials(); err != nil {
		return PhoneNumber{}, fmt.Errorf("%s: %w", op, err)
	}
	endpoint := c.base() + c.accountPath() + "/IncomingPhoneNumbers/" + numberSID + ".json"
	body, err := c.call(ctx, http.MethodPost, endpoint, form, maxResponseBytes)
	if err != nil {
		return PhoneNumber{}, fmt.Errorf("%s %s: %w", op, numberSID, err)
	}
	var raw phoneNumberResource
	if err := json.Unmarshal(body, &raw); err != nil {
		return PhoneNumber{}, fmt.Errorf("%s %s: decoding the answer: %w", op, numberSID, err)
	}
	if raw.SID == "" {
		return PhoneNumber{}, fmt.Errorf("%s %s: the answer has no sid", op, numberSID)
	}
	return raw.phoneNumber(), nil
}

// MessagingServices lists the account's Messaging Services: GET
// {MessagingBaseURL}/v1/Services, following meta.next_page_url (a full
// URL) only on the same scheme and host, for at most 50 pages of 1000.
// Errors as for PhoneNumbers.
func (c *Client) MessagingServices(ctx context.Context) ([]MessagingService, error) {
	const op = "twilio: list messaging services"
	if err := c.checkCredentials(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	base := c.messagingBase()
	origin, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("%s: messaging base URL: %w", op, err)
	}
	first := base + "/v1/Services?PageSize=" + fmt.Sprint(listPageSize)
	var out []MessagingService
	err = c.listPages(ctx, op, first, func(body []byte) (string, error) {
		var raw struct {
			Services []struct {
				SID                       string `json:"sid"`
				FriendlyName              string `json:"friendly_name"`
				InboundRequestURL         string `json:"inbound_request_url"`
				StatusCallback            string `json:"status_callback"`
				UseInboundWebhookOnNumber bool   `json:"use_inbound_webhook_on_number"`
			} `json:"services"`
			Meta struct {
				NextPageURL string `json:"next_page_url"` // null on the last page
			} `json:"meta"`
		}
		if err := json.Unmarshal(body, &raw); err != nil {
			return "", fmt.Errorf("decoding the answer: %w", err)
		}
		for _, s := range raw.Services {
			out = append(out, MessagingService(s))
		}
		next := raw.Meta.NextPageURL
		if next == "" {
			return "", nil
		}
		// The next request carries the account's credentials: only to
		// the host asked first.
		u, err := url.Parse(next)
		if err != nil || !strings.EqualFold(u.Scheme, origin.Scheme) || !strings.EqualFold(u.Host, origin.Host) {
			return "", fmt.Errorf("next_page_url %q is not on %s", next, origin.Scheme+"://"+origin.Host)
		}
		return next, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Mismatches reports, in words an admin page can show, how the number's
// webhooks differ from u: one sentence per difference, none when every
// non-empty field of u is what the number calls, with POST.
func (p PhoneNumber) Mismatches(u WebhookURLs) []string {
	var out []string
	check := func(what, have, method, want, appSID string) {
		switch {
		case want == "":
			return
		case appSID != "":
			out = append(out, fmt.Sprintf("%s is overridden by the TwiML App %s; Twilio calls that app, not %s", what, appSID, want))
		case have == "":
			out = append(out, fmt.Sprintf("%s is not set; it should be %s", what, want))
		case have != want:
			out = append(out, fmt.Sprintf("%s points at %s, not %s", what, have, want))
		case method != "" && !strings.EqualFold(method, http.MethodPost):
			out = append(out, fmt.Sprintf("%s is called with %s, not POST", what, strings.ToUpper(method)))
		}
	}
	check("SMS webhook", p.SmsURL, p.SmsMethod, u.SmsURL, p.SmsApplicationSID)
	check("voice webhook", p.VoiceURL, p.VoiceMethod, u.VoiceURL, p.VoiceApplicationSID)
	check("status callback", p.StatusCallback, p.StatusCallbackMethod, u.StatusCallback, "")
	return out
}

// messagingBase is MessagingBaseURL, else BaseURL when that was set to
// something other than Twilio (a stand-in serves both APIs), else
// DefaultMessagingBaseURL.
func (c *Client) messagingBase() string {
	if c.MessagingBaseURL != "" {
		return strings.TrimRight(c.MessagingBaseURL, "/")
	}
	if b := c.base(); b != DefaultBaseURL {
		return b
	}
	return DefaultMessagingBaseURL
}

func (c *Client) accountPath() string {
	return "/2010-04-01/Accounts/" + url.PathEscape(c.AccountSID)
}

func (c *Client) checkCredentials() error {
	if c.AccountSID == "" || c.AuthToken == "" {
		return switchboard.Errorf(switchboard.EINVALID, "Twilio account SID and auth token are not configured")
	}
	return nil
}

// call makes one authenticated request (form-encoded when form is not
// nil) and returns a 2xx answer's body, at most limit bytes; an error
// answer comes back as *APIError.
func (c *Client) call(ctx context.Context, method, endpoint string, form url.Values, limit int64) ([]byte, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, endpoint, body)
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(c.AccountSID, c.AuthToken)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	// One byte over the limit tells a cut answer from a whole one, which
	// would otherwise fail later as bad JSON.
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, decodeAPIError(resp.StatusCode, data)
	}
	if int64(len(data)) > limit {
		return nil, switchboard.Errorf(switchboard.ETOOLARGE, "the answer is larger than %d bytes", limit)
	}
	return data, nil
}

// validSID accepts prefix followed by 32 hex digits, the shape of every
// Twilio SID.
func validSID(sid, prefix string) bool {
	if len(sid) != len(prefix)+32 || !strings.HasPrefix(sid, prefix) {
		return false
	}
	_, err := hex.DecodeString(sid[len(prefix):])
	return err == nil
}

func isHTTPURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
