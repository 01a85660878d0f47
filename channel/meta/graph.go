package meta

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/switchboard-inbox/switchboard"
)

// MaxReplyBytes bounds a Graph API JSON reply read into memory; real
// replies are a few hundred bytes.
const MaxReplyBytes = 1 << 20

// DefaultMediaHosts are where Meta serves what its webhooks and the Graph
// API point at, fetched over https only: the Graph API itself
// (graph.facebook.com: a WhatsApp media id's metadata), fbsbx.com
// (lookaside.fbsbx.com: WhatsApp media URLs and Instagram attachments;
// cdn.fbsbx.com: Messenger audio and files), Facebook's CDN
// (scontent.*.fbcdn.net and video.*.fbcdn.net: Messenger images and video)
// and Instagram's (*.cdninstagram.com). See research/channels.md §3-4 and
// the webhook bodies in channel/messenger/testdata.
func DefaultMediaHosts() []string {
	return []string{"graph.facebook.com", "*.fbsbx.com", "*.fbcdn.net", "*.cdninstagram.com"}
}

// maxSnippet bounds how much of a non-Graph error body goes into an error
// message (a proxy's HTML page, a stand-in's "404 page not found").
const maxSnippet = 200

// APIError is a Graph API error reply,
// {"error":{"message","type","code","error_subcode","fbtrace_id",…}}, plus
// the HTTP status it came with. Senders return it wrapped with
// switchboard.Permanent when Permanent reports true; use errors.As to get
// at it either way.
type APIError struct {
	StatusCode  int    `json:"-"`
	Message     string `json:"message"`
	Type        string `json:"type"`
	Code        int    `json:"code"`
	Subcode     int    `json:"error_subcode"`
	FBTraceID   string `json:"fbtrace_id"`
	Transient   bool   `json:"is_transient"`
	UserTitle   string `json:"error_user_title"`
	UserMessage string `json:"error_user_msg"`
	// Details is error_data.details, where WhatsApp explains the code.
	Details string `json:"-"`
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "graph api: HTTP %d", e.StatusCode)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Details != "" {
		b.WriteString(": ")
		b.WriteString(e.Details)
	}
	if e.Code != 0 {
		fmt.Fprintf(&b, " (code %d", e.Code)
		if e.Subcode != 0 {
			fmt.Fprintf(&b, ", subcode %d", e.Subcode)
		}
		if e.FBTraceID != "" {
			fmt.Fprintf(&b, ", fbtrace_id %s", e.FBTraceID)
		}
		b.WriteString(")")
	}
	return b.String()
}

// RateLimited reports whether the error asks the caller to slow down: HTTP
// 429, or a Graph code for app, user or page call limits (4, 17, 32, 613),
// WhatsApp account and throughput limits (80007, 130429) or WhatsApp's
// per-recipient pair rate limit (131056), which come with a 400.
func (e *APIError) RateLimited() bool {
	if e.StatusCode == http.StatusTooManyRequests {
		return true
	}
	switch e.Code {
	case 4, 17, 32, 613, 80007, 130429, 131056:
		return true
	}
	return false
}

// Permanent reports whether sending the same request again cannot succeed:
// a 4xx that is neither a rate limit nor flagged is_transient. 5xx replies
// and Graph's "service temporarily unavailable" (code 2) are retried.
func (e *APIError) Permanent() bool {
	switch {
	case e.Transient, e.RateLimited(), e.Code == 2:
		return false
	}
	return e.StatusCode >= 400 && e.StatusCode < 500
}

// DecodeAPIError builds the *APIError for a non-2xx reply. A body that is
// not a Graph error still yields an APIError carrying the status and the
// start of the body.
func DecodeAPIError(status int, body []byte) *APIError {
	var w struct {
		Error *struct {
			APIError
			ErrorData json.RawMessage `json:"error_data"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &w); err == nil && w.Error != nil {
		e := w.Error.APIError
		e.StatusCode = status
		var data struct {
			Details string `json:"details"`
		}
		if len(w.Error.ErrorData) > 0 && json.Unmarshal(w.Error.ErrorData, &data) == nil {
			e.Details = data.Details
		}
		return &e
	}
	msg := http.StatusText(status)
	if s := snippet(body); s != "" {
		msg += ": " + strconv.Quote(s)
	}
	return &APIError{StatusCode: status, Message: msg}
}

func snippet(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > maxSnippet {
		b = b[:maxSnippet] // a rune cut in half is escaped by strconv.Quote
	}
	return string(b)
}

// Endpoint joins a configured base URL ("https://graph.facebook.com/v25.0",
// or a stand-in's) and path segments, escaping each segment so that an id
// cannot reach another path. The base must be an absolute http(s) URL
// without query or fragment.
func Endpoint(base string, segments ...string) (string, error) {
	u, err := url.Parse(base)
	switch {
	case err != nil:
		return "", switchboard.Errorf(switchboard.EINVALID, "graph api base URL is not a URL: %v", err)
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return "", switchboard.Errorf(switchboard.EINVALID, "graph api base URL %q must be an absolute http(s) URL", base)
	case u.RawQuery != "" || u.Fragment != "":
		return "", switchboard.Errorf(switchboard.EINVALID, "graph api base URL %q must not have a query or fragment", base)
	}
	var b strings.Builder
	b.WriteString(strings.TrimRight(base, "/"))
	for _, s := range segments {
		if s == "" {
			return "", switchboard.Errorf(switchboard.EINVALID, "graph api path segment is empty")
		}
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String(), nil
}

// Call makes one Graph API request with a bearer token. in, when not nil,
// is sent as JSON; a 2xx reply is decoded into out when out is not nil.
// hc nil means http.DefaultClient; ctx bounds the whole call.
//
// A non-2xx reply returns an *APIError, wrapped with switchboard.Permanent
// when APIError.Permanent says so. Transport failures are returned as they
// are (retryable). A request that cannot even be built, and a 2xx reply
// that cannot be decoded, are permanent: the latter was accepted, and a
// retry would send it twice.
func Call(ctx context.Context, hc *http.Client, method, endpoint, token string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := MarshalJSON(in)
		if err != nil {
			return switchboard.Permanent(fmt.Errorf("graph api: encoding request: %w", err))
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, endpoint, body)
	if err != nil {
		return switchboard.Permanent(fmt.Errorf("graph api: %w", err))
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return do(hc, req, token, out)
}

// do sends req with the bearer token and handles the reply as Call
// documents.
func do(hc *http.Client, req *http.Request, token string, out any) error {
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("graph api: %s: %w", req.Method, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxReplyBytes+1))
	if err != nil {
		return fmt.Errorf("graph api: reading reply: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		apiErr := DecodeAPIError(resp.StatusCode, data)
		if apiErr.Permanent() {
			return switchboard.Permanent(apiErr)
		}
		return apiErr
	}
	if len(data) > MaxReplyBytes {
		return fmt.Errorf("graph api: reply is larger than %d bytes", MaxReplyBytes)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			// Meta accepted the request; sending it again would repeat it.
			return switchboard.Permanent(fmt.Errorf("graph api: decoding reply: %w", err))
		}
	}
	return nil
}

// MarshalJSON encodes v as compact JSON without HTML escaping, so that
// request bodies read as documented ("<", ">" and "&" stay literal).
func MarshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// AsAPIError returns the *APIError in err's chain, if any.
func AsAPIError(err error) (*APIError, bool) {
	var e *APIError
	ok := errors.As(err, &e)
	return e, ok
}
