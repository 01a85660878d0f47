// Package webform receives the website's contact form (docs/design.md §4,
// POST /forms/{form}) and puts each submission on the inbound queue as a
// switchboard.Inbound on the webform channel.
//
// There is no provider signature to check, so abuse is kept down by a
// honeypot field, a per-client rate limit and an optional Origin check. A
// post is answered with success only once it is on the queue.
package webform

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/enqueue"
	"github.com/switchboard-inbox/switchboard/channel/refusal"
	"github.com/switchboard-inbox/switchboard/identity"
	"github.com/switchboard-inbox/switchboard/internal/netaddr"
)

// Defaults for Config's zero values.
const (
	DefaultMaxBodyBytes = 64 << 10
	DefaultRateInterval = 6 * time.Second // 10 posts a minute
	DefaultRateBurst    = 5
	DefaultRegion       = "US"
	// DefaultFormID is the form that exists out of the box (docs/design.md §4).
	DefaultFormID = "contact"
)

// IdempotencyHeader carries a client-chosen key that makes retries of one
// submission store a single message.
const IdempotencyHeader = "Idempotency-Key"

const (
	maxIdempotencyKeyLen = 128
	maxUserAgentLen      = 512
	maxFormIDLen         = 64
	// enqueueTimeout bounds an enqueue that outlives its client: the
	// enqueue is detached from the request so that a client hanging up
	// half-way does not leave the outcome to chance.
	enqueueTimeout = 10 * time.Second
)

// Form is one contact form a website posts to /forms/{ID}.
type Form struct {
	// ID is the path segment; letters, digits, '-' and '_'.
	ID string
	// ThankYouURL is where browser posts are redirected (303) on success,
	// and on error with ?error=<code> added, code being a refusal.Code.
	// Empty: a minimal HTML page.
	ThankYouURL string
	// AllowedOrigins ("https://www.example.com") restricts which pages may
	// post. Empty: any origin. When set, a post without an Origin header is
	// refused too; every current browser sends Origin with a POST.
	AllowedOrigins []string
}

// RateLimit is a token bucket per client IP address (per /64 for IPv6,
// which clients get whole): Burst posts at once, then one per Interval.
type RateLimit struct {
	Interval time.Duration // default DefaultRateInterval
	Burst    int           // default DefaultRateBurst
	Disabled bool
}

// Config configures a Handler. Only Queue is required.
type Config struct {
	Queue switchboard.Queue
	// Forms by ID. The key is the ID; Form.ID may be left empty. A nil map
	// means the default form DefaultFormID alone; an empty map, no forms.
	Forms  map[string]Form
	Clock  switchboard.Clock // default switchboard.SystemClock
	Logger *slog.Logger      // default: discard
	// MaxBodyBytes limits the request body; default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	RateLimit    RateLimit
	// TrustProxy takes the client address from the last X-Forwarded-For
	// entry, the one added by the proxy. Set it only when exactly one
	// reverse proxy that appends to X-Forwarded-For sits in front:
	// otherwise clients choose their own address and evade the limit.
	TrustProxy bool
	// DefaultRegion reads phone numbers given without a country code;
	// default DefaultRegion.
	DefaultRegion string
	// OnAccepted and OnRejected, when set, are called for metrics after each
	// post is decided. They run on the request's goroutine and must be fast
	// and safe for concurrent use. code is the refusal code, or Honeypot.
	OnAccepted func(form, providerID string)
	OnRejected func(form string, code refusal.Code)
}

// Honeypot is the code OnRejected reports for a post dropped because its
// honeypot field was filled. Such a post is answered as a success, so that
// the bot learns nothing; that is why it is not one of refusal's codes.
const Honeypot refusal.Code = "honeypot"

// Handler serves POST /forms/{form}. It is safe for concurrent use.
type Handler struct {
	queue      switchboard.Queue
	forms      map[string]form
	clock      switchboard.Clock
	log        *slog.Logger
	maxBody    int64
	limiter    *limiter // nil when rate limiting is off
	trustProxy bool
	region     string
	onAccepted func(form, providerID string)
	onRejected func(form string, code refusal.Code)
}

type form struct {
	Form
	origins map[string]bool
}

// New returns a Handler for cfg. It panics when cfg.Queue is nil. Forms
// with an invalid ID are logged and left out, so that one bad setting does
// not take the server down.
func New(cfg Config) *Handler {
	if cfg.Queue == nil {
		panic("webform: New: Config.Queue is nil")
	}
	h := &Handler{
		queue:      cfg.Queue,
		clock:      cfg.Clock,
		log:        cfg.Logger,
		maxBody:    cfg.MaxBodyBytes,
		trustProxy: cfg.TrustProxy,
		region:     cfg.DefaultRegion,
		onAccepted: cfg.OnAccepted,
		onRejected: cfg.OnRejected,
		forms:      map[string]form{},
	}
	if h.clock == nil {
		h.clock = switchboard.SystemClock{}
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.region == "" {
		h.region = DefaultRegion
	}
	if !identity.ValidRegion(h.region) {
		// Customers would be told about a setting they cannot fix; read
		// only international numbers instead, whose error message is true.
		h.log.Error("webform: DefaultRegion is not a known region; phone numbers must start with +",
			slog.String("region", h.region))
		h.region = ""
	}
	if rl := cfg.RateLimit; !rl.Disabled {
		if rl.Interval <= 0 {
			rl.Interval = DefaultRateInterval
		}
		if rl.Burst <= 0 {
			rl.Burst = DefaultRateBurst
		}
		h.limiter = newLimiter(rl.Interval, rl.Burst)
	}

	forms := cfg.Forms
	if forms == nil {
		forms = map[string]Form{DefaultFormID: {ID: DefaultFormID}}
	}
	for id, f := range forms {
		if !ValidFormID(id) || (f.ID != "" && f.ID != id) {
			h.log.Error("webform: form left out: its id must be 1-64 letters, digits, '-' or '_' and match its key",
				slog.String("form", id), slog.String("form_id", f.ID))
			continue
		}
		f.ID = id
		// Copied so that the caller changing its slice later cannot race.
		f.AllowedOrigins = append([]string(nil), f.AllowedOrigins...)
		ff := form{Form: f, origins: map[string]bool{}}
		for _, o := range f.AllowedOrigins {
			ff.origins[normaliseOrigin(o)] = true
		}
		h.forms[id] = ff
	}
	return h
}

// ValidFormID reports whether id can name a form. The alphabet keeps ids
// unambiguous inside provider ids ("webform:<form>:<key>") and URLs.
func ValidFormID(id string) bool {
	if id == "" || len(id) > maxFormIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// request is what the handler knows about one post while deciding it.
type request struct {
	w        http.ResponseWriter
	r        *http.Request
	form     *form // nil when the form is unknown
	formID   string
	clientIP string
	json     bool // answer in JSON rather than with redirects and HTML
}

// ServeHTTP handles POST /forms/{form}, and the CORS preflight OPTIONS for
// forms with AllowedOrigins (mount "OPTIONS /forms/{form}" too when pages
// on other origins post with fetch and JSON).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	receivedAt := h.clock.Now()
	req := &request{w: w, r: r, formID: r.PathValue("form"), json: wantsJSON(r)}
	ip, ipKey := h.clientIP(r)
	req.clientIP = ip
	w.Header().Set("Cache-Control", "no-store")

	f, ok := h.forms[req.formID]
	if !ok {
		h.reject(req, refusal.NotFound, "no such form", nil)
		return
	}
	req.form = &f
	originOK := h.checkOrigin(req)
	if r.Method == http.MethodOptions {
		h.preflight(req, originOK)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		h.reject(req, refusal.MethodNotAllowed, "use POST", nil)
		return
	}
	if h.limiter != nil {
		if ok, wait := h.limiter.allow(ipKey, receivedAt); !ok {
			secs := int64((wait + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
			h.reject(req, refusal.RateLimited, "too many posts; try again later", nil)
			return
		}
	}
	if !originOK {
		h.reject(req, refusal.Forbidden, "this form does not accept posts from this page", nil,
			slog.String("origin", r.Header.Get("Origin")))
		return
	}
	providerID, err := h.providerID(req)
	if err != nil {
		h.rejectErr(req, err)
		return
	}

	r.Body = http.MaxBytesReader(w, r.Body, h.maxBody)
	sub, err := ParseSubmission(r, h.maxBody, h.region)
	if err != nil {
		h.rejectErr(req, err)
		return
	}
	if sub.Honeypot {
		h.log.LogAttrs(r.Context(), slog.LevelInfo, "webform: honeypot filled; dropped",
			slog.String("form", req.formID), slog.String("client_ip", req.clientIP))
		if h.onRejected != nil {
			h.onRejected(req.formID, Honeypot)
		}
		h.succeed(req, providerID)
		return
	}

	in, err := h.inbound(req, sub, providerID, receivedAt)
	if err != nil {
		h.reject(req, refusal.Internal, "internal error", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), enqueueTimeout)
	err = enqueue.Inbound(ctx, h.queue, switchboard.ChannelWebform, in)
	cancel()
	if err != nil {
		h.reject(req, refusal.Unavailable, "the message could not be stored; try again shortly",
			fmt.Errorf("webform: enqueue %s: %w", providerID, err), slog.String("provider_id", providerID))
		return
	}
	h.log.LogAttrs(r.Context(), slog.LevelDebug, "webform: accepted",
		slog.String("form", req.formID), slog.String("provider_id", providerID), slog.String("client_ip", req.clientIP))
	if h.onAccepted != nil {
		h.onAccepted(req.formID, providerID)
	}
	h.succeed(req, providerID)
}

// providerID is "webform:<form>:<key>" when the client sent an idempotency
// key, so that its retries share one id and the store keeps one message;
// otherwise "webform:" and 128 random bits.
func (h *Handler) providerID(req *request) (string, error) {
	keys := req.r.Header.Values(IdempotencyHeader)
	switch len(keys) {
	case 0:
		var b [16]byte
		rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
		return "webform:" + hex.EncodeToString(b[:]), nil
	case 1:
	default:
		return "", switchboard.Errorf(switchboard.EINVALID, "%s is given more than once", IdempotencyHeader)
	}
	key := keys[0]
	if key == "" || len(key) > maxIdempotencyKeyLen {
		return "", switchboard.Errorf(switchboard.EINVALID, "%s must be 1 to %d characters", IdempotencyHeader, maxIdempotencyKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < '!' || key[i] > '~' {
			return "", switchboard.Errorf(switchboard.EINVALID, "%s must be visible ASCII characters", IdempotencyHeader)
		}
	}
	return "webform:" + req.formID + ":" + key, nil
}

func (h *Handler) inbound(req *request, sub Submission, providerID string, receivedAt time.Time) (*switchboard.Inbound, error) {
	meta, err := json.Marshal(struct {
		Form      string `json:"form"`
		ClientIP  string `json:"client_ip"`
		UserAgent string `json:"user_agent,omitempty"`
	}{req.formID, req.clientIP, truncate(req.r.UserAgent(), maxUserAgentLen)})
	if err != nil {
		return nil, fmt.Errorf("webform: encoding metadata: %w", err)
	}
	// The e-mail address picks the customer: replies go to it, so a false
	// one reaches only its owner. The phone number is only a claim: linked,
	// anyone could write into someone else's thread by SMS (docs/design.md §3).
	var claims []switchboard.IdentityRef
	if sub.Phone != "" {
		claims = append(claims, switchboard.IdentityRef{Kind: switchboard.IdentityPhone, Value: sub.Phone})
	}
	in := &switchboard.Inbound{
		Channel:     switchboard.ChannelWebform,
		ProviderID:  providerID,
		SenderName:  sub.Name,
		Identities:  []switchboard.IdentityRef{{Kind: switchboard.IdentityEmail, Value: sub.Email}},
		Claims:      claims,
		ContentType: switchboard.ContentText,
		Subject:     sub.Subject,
		Text:        sub.Message,
		Metadata:    meta,
		ReceivedAt:  receivedAt,
		AcceptedAt:  h.clock.Now(),
	}
	if err := in.Validate(); err != nil {
		return nil, fmt.Errorf("webform: inbound message: %w", err)
	}
	return in, nil
}

// checkOrigin reports whether the post's Origin may post to the form, and
// sets the CORS headers that let a page on that origin read the answer.
func (h *Handler) checkOrigin(req *request) bool {
	if len(req.form.origins) == 0 {
		return true
	}
	origin := req.r.Header.Get("Origin")
	if origin == "" || !req.form.origins[normaliseOrigin(origin)] {
		return false
	}
	hdr := req.w.Header()
	hdr.Set("Access-Control-Allow-Origin", origin)
	hdr.Add("Vary", "Origin")
	return true
}

func (h *Handler) preflight(req *request, originOK bool) {
	if len(req.form.origins) == 0 || !originOK {
		h.reject(req, refusal.Forbidden, "this form does not accept posts from this page", nil,
			slog.String("origin", req.r.Header.Get("Origin")))
		return
	}
	hdr := req.w.Header()
	hdr.Set("Access-Control-Allow-Methods", "POST")
	hdr.Set("Access-Control-Allow-Headers", "Content-Type, Accept, "+IdempotencyHeader)
	hdr.Set("Access-Control-Max-Age", "600")
	req.w.WriteHeader(http.StatusNoContent)
}

func normaliseOrigin(o string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(o), "/"))
}

// clientIP returns the client's address for logs and metadata, and the key
// it is rate limited under.
func (h *Handler) clientIP(r *http.Request) (addr, key string) {
	return netaddr.Client(r, h.trustProxy)
}

// wantsJSON reports whether the client is a script rather than a browser
// navigating: it posted JSON or asked for JSON back.
func wantsJSON(r *http.Request) bool {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == "application/json" {
		return true
	}
	for _, a := range r.Header.Values("Accept") {
		for _, part := range strings.Split(a, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
				continue
			}
			if q, err := strconv.ParseFloat(params["q"], 64); err == nil && q <= 0 {
				continue
			}
			return true
		}
	}
	return false
}

// refusals maps the codes of the errors ParseSubmission and providerID
// return to refusal codes.
var refusals = map[string]refusal.Code{
	switchboard.EINVALID:     refusal.Malformed,
	switchboard.ETOOLARGE:    refusal.TooLarge,
	CodeUnsupportedMediaType: refusal.UnsupportedMediaType,
}

// rejectErr refuses a post for err, whose message is shown when it is one
// the caller can act on.
func (h *Handler) rejectErr(req *request, err error) {
	if code, ok := refusals[switchboard.ErrorCode(err)]; ok {
		h.reject(req, code, switchboard.ErrorMessage(err), nil)
		return
	}
	h.reject(req, refusal.Internal, "internal error", err)
}

// reject logs and counts why a post was refused and answers it: JSON for a
// script, a redirect or an HTML page for a browser.
func (h *Handler) reject(req *request, code refusal.Code, msg string, err error, attrs ...any) {
	rf := refusal.Refuser{Logger: h.log, Source: "webform: post"}
	if h.onRejected != nil {
		rf.OnRejected = func(c refusal.Code) { h.onRejected(req.formID, c) }
	}
	attrs = append(attrs, slog.String("form", req.formID), slog.String("client_ip", req.clientIP))
	switch {
	case req.json:
		rf.Refuse(req.w, req.r, code, msg, err, attrs...)
	case req.form != nil && req.form.ThankYouURL != "":
		rf.Record(req.r, code, msg, err, attrs...)
		http.Redirect(req.w, req.r, withQuery(req.form.ThankYouURL, "error", string(code)), http.StatusSeeOther)
	default:
		rf.Record(req.r, code, msg, err, attrs...)
		writeHTML(req.w, code.Status(), "Your message was not sent", msg+". Please go back and try again.")
	}
}

func (h *Handler) succeed(req *request, providerID string) {
	switch {
	case req.json:
		writeJSON(req.w, http.StatusAccepted, map[string]string{"status": "accepted", "id": providerID})
	case req.form.ThankYouURL != "":
		http.Redirect(req.w, req.r, req.form.ThankYouURL, http.StatusSeeOther)
	default:
		writeHTML(req.w, http.StatusOK, "Thank you", "Your message has been received. We will get back to you soon.")
	}
}

// withQuery adds key=value to the query of u, which is configuration and
// parsed here only to place the parameter right.
func withQuery(u, key, value string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	q := p.Query()
	q.Set(key, value)
	p.RawQuery = q.Encode()
	return p.String()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeHTML(w http.ResponseWriter, status int, title, text string) {
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>%[1]s</title><style>body{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em}</style></head>
<body><h1>%[1]s</h1><p>%[2]s</p></body></html>
`, html.EscapeString(title), html.EscapeString(text))
}

// truncate cuts s to at most n bytes on a rune boundary and makes it valid
// UTF-8, for header values copied into metadata.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
