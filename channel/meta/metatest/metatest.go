// Package metatest is a local stand-in for Meta's Graph API and webhooks,
// for tests and `switchboard demo`, following the wire formats of
// research/channels.md §3-4 (WhatsApp Cloud API, Messenger Platform).
//
// A Server answers what switchboard calls on Meta:
//
//	GET  /{media-id}                       media metadata (url, mime_type, sha256 hex, file_size)
//	GET  /media/{media-id}/download        the media bytes
//	POST /{phone-number-id}/media          WhatsApp media upload (multipart file, type, messaging_product)
//	POST /{phone-number-id}/messages       WhatsApp send (text, template, media, read receipt)
//	POST /{page-id}/message_attachments    Messenger / Instagram attachment upload (multipart message, filedata, platform)
//	POST /{page-id}/messages               Messenger / Instagram send (text or one attachment)
//
// every route optionally behind a version segment such as /v25.0, all with
// "Authorization: Bearer <token>" (or ?access_token=). Errors are Graph
// error JSON ({"error":{"message","type","code","fbtrace_id"}}).
//
// With WithOAuth it also plays Facebook Login (www.facebook.com, at the
// same base URL) and what connecting a Page takes, for one user who
// manages the given Pages:
//
//	GET  /dialog/oauth                     the Login dialog: a consent page with "Continue" and "Cancel" links
//	GET  /dialog/oauth/continue?request=…  302 to redirect_uri?code=…&state=…#_=_
//	GET  /dialog/oauth/cancel?request=…    302 to redirect_uri?error=access_denied&error_reason=user_denied&…
//	GET  /oauth/access_token               code exchange; grant_type=fb_exchange_token (60-day token)
//	GET  /me/accounts                      the Pages with Page access tokens (fields, limit, paging.next)
//	GET|POST|DELETE /{page-id}/subscribed_apps   the Page's webhook fields, with its Page token
//	GET  /debug_token?input_token=…        token metadata, for the app token {app-id}|{app-secret}
//
// Codes are single-use, bound to their redirect_uri and expire after
// CodeLifetime on the Server's clock; User tokens from a code expire
// after ShortLivedTokenLifetime, long-lived ones after
// LongLivedTokenLifetime; Page tokens got with a long-lived User token do
// not expire. A Page token is accepted, besides the token New was given,
// by the send and upload routes of its Page and the Page's Instagram
// account. RevokeToken and ExpireTokens invalidate tokens; IssuedPageToken,
// Scopes and Subscriptions show what was issued and asked for. The
// permissions asked for are recorded and reported, not enforced.
//
// With WithWebhook, sends are followed by the webhooks Meta would post,
// asynchronously and signed with X-Hub-Signature-256 over the exact bytes:
// WhatsApp statuses sent → delivered → read (or failed 131047 for a
// free-form message to a recipient whose 24-hour window is closed),
// Messenger delivery receipts, Instagram read receipts.
//
// The inbound helpers (Server.WhatsAppText, Server.SendWhatsAppText, …)
// build and post signed webhooks as a customer's message would arrive.
// Like Meta, the JSON they post escapes non-ASCII as \uXXXX and "/" as
// "\/", so a receiver that re-serialises before checking the signature
// fails.
//
// Uploads are checked against the documented types and sizes (MB read as
// 10^6 bytes) and kept (Server.Uploads); WhatsApp media uploaded can be
// read back like inbound media. Sends are recorded with their exact
// request bodies (Server.WhatsAppSends, Server.MessengerSends).
//
// Differences from Meta, on purpose: an unknown media id answers HTTP 404
// (Graph answers 400) with code 100; nothing but OAuth codes and tokens
// expires; a Login dialog refusal (bad client_id or redirect_uri) is an
// HTML page with HTTP 400; webhooks are not retried (resend one with
// Send); uploads from a URL are not modelled.
// Where Meta's answer is undocumented the stand-in refuses synchronously
// with code 100: a media message naming an unknown media or attachment
// id, or one of another type than the message; a caption on audio or a
// sticker; a file name on anything but a document; text and an
// attachment in one Messenger message; an upload over its size limit.
package metatest

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults for the account ids, taken from Meta's documentation examples.
const (
	DefaultBusinessAccountID  = "102290129340398"
	DefaultPhoneNumberID      = "106540352242922"
	DefaultDisplayPhoneNumber = "15550783881"
	DefaultPageID             = "1067280970047460"
	DefaultInstagramAccountID = "17841400000000000"
)

// Server is the stand-in. Create it with New, serve Handler (for example
// with httptest.NewServer), tell it its public address with SetBaseURL,
// and Close it to wait for the webhooks still being posted. It is safe for
// concurrent use.
type Server struct {
	appSecret   string
	accessToken string

	wabaID, phoneNumberID, displayPhone string
	pageID, igAccountID                 string
	webhookURL                          string
	statusDelay                         time.Duration
	hc                                  *http.Client
	now                                 func() time.Time

	mu            sync.Mutex
	baseURL       string
	media         map[string]*mediaObject
	waClosed      map[string]bool // wa_ids whose 24-hour window is closed
	msClosed      map[string]bool // PSIDs / IGSIDs whose 24-hour window is closed
	igUsers       map[string]bool // IGSIDs seen, so replies to them are Instagram
	waSends       []WhatsAppSend
	msSends       []MessengerSend
	posted        []PostedWebhook
	closed        bool
	wg            sync.WaitGroup
	closeCtx      context.Context
	cancelWebhook context.CancelFunc

	attachments map[string]*msAttachment // Messenger and Instagram uploads by attachment_id
	uploads     []Upload

	oauth *oauthState // Facebook Login and Page connection (WithOAuth); nil when off
}

// Option configures a Server.
type Option func(*Server)

// WithWebhook makes the Server post the webhooks that follow a send
// (statuses, deliveries) to url, such as switchboard's /webhooks/meta.
func WithWebhook(url string) Option { return func(s *Server) { s.webhookURL = url } }

// WithWindowClosed marks WhatsApp users (wa_id digits) whose 24-hour
// customer-service window is closed: free-form messages to them are
// accepted (200 + wamid) and then fail asynchronously with error 131047;
// templates still deliver. A message from the user (the inbound helpers)
// reopens the window, as on WhatsApp.
func WithWindowClosed(waIDs ...string) Option {
	return func(s *Server) {
		for _, id := range waIDs {
			s.waClosed[strings.TrimPrefix(id, "+")] = true
		}
	}
}

// WithMessengerWindowClosed marks PSIDs or IGSIDs outside the 24-hour
// window: a RESPONSE or UPDATE send to them fails with code 10, subcode
// 2018278, as Meta answers; a HUMAN_AGENT tagged send is accepted. A
// message from the user (the inbound helpers) reopens the window.
func WithMessengerWindowClosed(ids ...string) Option {
	return func(s *Server) {
		for _, id := range ids {
			s.msClosed[id] = true
		}
	}
}

// WithPhoneNumber sets the WhatsApp business number: its phone_number_id
// (the send path, and webhook metadata) and display_phone_number.
func WithPhoneNumber(phoneNumberID, displayPhoneNumber string) Option {
	return func(s *Server) { s.phoneNumberID, s.displayPhone = phoneNumberID, displayPhoneNumber }
}

// WithBusinessAccountID sets the WhatsApp Business Account id, the entry
// id of WhatsApp webhooks.
func WithBusinessAccountID(id string) Option { return func(s *Server) { s.wabaID = id } }

// WithPageID sets the Facebook Page id: the Messenger send path and the
// entry and recipient id of Messenger webhooks.
func WithPageID(id string) Option { return func(s *Server) { s.pageID = id } }

// WithInstagramAccountID sets the Instagram professional account id, the
// entry and recipient id of Instagram webhooks. Sends to it (as well as
// through the Page) reach Instagram users.
func WithInstagramAccountID(id string) Option { return func(s *Server) { s.igAccountID = id } }

// WithHTTPClient sets the client webhooks are posted with (default: one
// with a 10-second timeout).
func WithHTTPClient(hc *http.Client) Option { return func(s *Server) { s.hc = hc } }

// WithStatusDelay waits d before each status or delivery webhook (default
// none; they are posted in order either way).
func WithStatusDelay(d time.Duration) Option { return func(s *Server) { s.statusDelay = d } }

// WithClock sets the clock for webhook timestamps (default time.Now).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// New returns a Server that signs webhooks with appSecret and accepts
// accessToken as the bearer token.
func New(appSecret, accessToken string, opts ...Option) *Server {
	s := &Server{
		appSecret: appSecret, accessToken: accessToken,
		wabaID: DefaultBusinessAccountID, phoneNumberID: DefaultPhoneNumberID,
		displayPhone: DefaultDisplayPhoneNumber, pageID: DefaultPageID,
		igAccountID: DefaultInstagramAccountID,
		hc:          &http.Client{Timeout: 10 * time.Second},
		now:         time.Now,
		media:       map[string]*mediaObject{},
		attachments: map[string]*msAttachment{},
		waClosed:    map[string]bool{},
		msClosed:    map[string]bool{},
		igUsers:     map[string]bool{},
	}
	s.closeCtx, s.cancelWebhook = context.WithCancel(context.Background())
	for _, o := range opts {
		o(s)
	}
	s.oauthDefaults()
	return s
}

// SetBaseURL tells the Server the address it is served at (e.g. an
// httptest.Server's URL); media URLs point there. Unset, they are built
// from the request's Host.
func (s *Server) SetBaseURL(u string) {
	s.mu.Lock()
	s.baseURL = strings.TrimRight(u, "/")
	s.mu.Unlock()
}

// BaseURL is what SetBaseURL set.
func (s *Server) BaseURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL
}

// PhoneNumberID, BusinessAccountID, PageID and InstagramAccountID are the
// configured account ids.
func (s *Server) PhoneNumberID() string      { return s.phoneNumberID }
func (s *Server) BusinessAccountID() string  { return s.wabaID }
func (s *Server) PageID() string             { return s.pageID }
func (s *Server) InstagramAccountID() string { return s.igAccountID }

// SetWindowClosed opens or closes a WhatsApp user's 24-hour window (see
// WithWindowClosed).
func (s *Server) SetWindowClosed(waID string, closed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waClosed[strings.TrimPrefix(waID, "+")] = closed
}

// Close stops posting new webhooks and waits for those under way.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.wg.Wait()
	s.cancelWebhook()
}

// WhatsAppSends returns the WhatsApp messages accepted so far, in order.
func (s *Server) WhatsAppSends() []WhatsAppSend {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]WhatsAppSend(nil), s.waSends...)
}

// MessengerSends returns the Messenger and Instagram messages accepted so
// far, in order.
func (s *Server) MessengerSends() []MessengerSend {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]MessengerSend(nil), s.msSends...)
}

// PostedWebhook is one asynchronous webhook the Server posted.
type PostedWebhook struct {
	Webhook
	StatusCode int   // the receiver's answer; 0 when Err is set
	Err        error // the POST failed
}

// Posted returns the asynchronous webhooks posted so far (statuses and
// deliveries), in the order they completed.
func (s *Server) Posted() []PostedWebhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]PostedWebhook(nil), s.posted...)
}

// async runs f in the background unless the Server is closed or no
// webhook URL is configured.
func (s *Server) async(f func(ctx context.Context)) {
	if s.webhookURL == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f(s.closeCtx)
	}()
}

// post sends one webhook after the status delay and records the outcome.
func (s *Server) post(ctx context.Context, wh Webhook) {
	if s.statusDelay > 0 {
		t := time.NewTimer(s.statusDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	p := PostedWebhook{Webhook: wh}
	resp, err := Send(ctx, s.hc, wh)
	if err != nil {
		p.Err = err
	} else {
		p.StatusCode = resp.StatusCode
	}
	s.mu.Lock()
	s.posted = append(s.posted, p)
	s.mu.Unlock()
}

// Handler serves the Graph API routes.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

var versionSegment = regexp.MustCompile(`^v[0-9]+(\.[0-9]+)?$`)

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(segs) > 0 && versionSegment.MatchString(segs[0]) {
		segs = segs[1:]
	}
	if s.oauth != nil && s.serveOAuth(w, r, segs) {
		return
	}
	if !s.authorized(r) {
		if e, ok := s.pageAuthorized(r, segs); !ok {
			unauthorized(w, e)
			return
		}
	}
	switch {
	case len(segs) == 3 && segs[0] == "media" && segs[2] == "download" && r.Method == http.MethodGet:
		s.serveDownload(w, segs[1])
	case len(segs) == 1 && segs[0] != "" && r.Method == http.MethodGet:
		s.serveMediaInfo(w, r, segs[0])
	case len(segs) == 2 && segs[1] == "messages" && r.Method == http.MethodPost:
		s.serveSend(w, r, segs[0])
	case len(segs) == 2 && segs[1] == "media" && r.Method == http.MethodPost:
		s.serveWhatsAppUpload(w, r, segs[0])
	case len(segs) == 2 && segs[1] == "message_attachments" && r.Method == http.MethodPost:
		s.serveMessengerUpload(w, r, segs[0])
	case len(segs) == 2 && segs[1] == "messages", len(segs) == 1:
		graphError(w, http.StatusBadRequest, graphErr{
			Message: fmt.Sprintf("Unsupported %s request.", strings.ToLower(r.Method)), Type: "GraphMethodException", Code: 100,
		})
	default:
		graphError(w, http.StatusBadRequest, graphErr{
			Message: "Unknown path components: /" + strings.Join(segs, "/"), Type: "OAuthException", Code: 2500,
		})
	}
}

func (s *Server) authorized(r *http.Request) bool {
	tok := r.URL.Query().Get("access_token")
	if h := r.Header.Get("Authorization"); h != "" {
		const p = "bearer "
		if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
			return false
		}
		tok = strings.TrimSpace(h[len(p):])
	}
	return s.accessToken != "" && hmac.Equal([]byte(tok), []byte(s.accessToken))
}

// graphErr is the "error" object of a Graph API error reply.
type graphErr struct {
	Message   string     `json:"message"`
	Type      string     `json:"type"`
	Code      int        `json:"code"`
	Subcode   int        `json:"error_subcode,omitempty"`
	ErrorData *errorData `json:"error_data,omitempty"`
	FBTraceID string     `json:"fbtrace_id"`
}

type errorData struct {
	MessagingProduct string `json:"messaging_product,omitempty"`
	Details          string `json:"details"`
}

func graphError(w http.ResponseWriter, status int, e graphErr) {
	e.FBTraceID = "A" + randomToken(15)
	writeJSON(w, status, struct {
		Error graphErr `json:"error"`
	}{e})
}

// invalidParam is Graph's code 100 answer to a bad request body.
func invalidParam(w http.ResponseWriter, details string) {
	graphError(w, http.StatusBadRequest, graphErr{
		Message: "(#100) Invalid parameter", Type: "OAuthException", Code: 100,
		ErrorData: &errorData{Details: details},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// readBody reads a request body of at most 1 MiB.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20+1))
	if err != nil {
		return nil, err
	}
	if len(b) > 1<<20 {
		return nil, errors.New("request body is larger than 1 MiB")
	}
	return b, nil
}

// sha1Signature is the legacy X-Hub-Signature Meta still sends alongside.
func sha1Signature(secret string, body []byte) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write(body)
	return "sha1=" + hex.EncodeToString(m.Sum(nil))
}
