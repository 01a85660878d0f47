// Package livechat is the live-chat channel (docs/design.md §6.2): the
// visitor API the widget calls (POST /chat/sessions, GET /chat/ws, POST
// /chat/uploads), the visitors' sockets, and the sender and policy of
// agents' replies on livechat.
//
// A visitor's message is verified (a signed visitor token, the page's
// Origin among the site's origins), normalised and put on the durable
// inbound queue like every channel's; the visitor's socket echoes it once
// it is stored. Everything bound for a visitor travels on the event bus,
// so a visitor connected to one instance gets what another did.
package livechat

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/refusal"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/view"
)

// Inbox is what the channel reads and records (package inbox).
type Inbox interface {
	ChatSite(ctx context.Context, key string) (switchboard.Site, error)
	ChatOriginKnown(ctx context.Context, origin string) (bool, error)
	StartChat(ctx context.Context, site switchboard.Site, prev *switchboard.Visitor, name, email, externalID string) (switchboard.Visitor, error)
	ChatVisitor(ctx context.Context, id string) (switchboard.Visitor, error)
	TouchVisitor(ctx context.Context, id string) error
	VisitorConversation(ctx context.Context, v switchboard.Visitor) (string, error)
	VisitorHistory(ctx context.Context, v switchboard.Visitor, limit int) (string, []view.ChatMessage, error)
	VisitorUpload(ctx context.Context, v switchboard.Visitor, filename string, body io.Reader) (view.Attachment, error)
	VisitorUploads(ctx context.Context, v switchboard.Visitor, ids []string) ([]switchboard.Attachment, error)
	VisitorTyping(ctx context.Context, v switchboard.Visitor, conversationID string) error
	VisitorRead(ctx context.Context, v switchboard.Visitor, messageID string) error
	VisitorDelivered(ctx context.Context, messageID string) error
	ChatStatus(ctx context.Context, site switchboard.Site) (view.ChatStatus, error)
}

// MaxFrame is the largest frame a visitor may send; a larger one closes
// the socket.
const MaxFrame = 64 << 10

// HistoryLength is how many messages a connecting visitor is sent.
const HistoryLength = 50

// maxSessionBody bounds POST /chat/sessions.
const maxSessionBody = 16 << 10

// Config wires the visitor API. Inbox, Queue and Tokens are required.
type Config struct {
	Inbox  Inbox
	Queue  switchboard.Queue
	Tokens *Tokens
	Logger *slog.Logger
	Clock  switchboard.Clock
	// Heartbeat is how often sockets are pinged and visitors marked
	// connected (default 20 s).
	Heartbeat time.Duration
	// StatusEvery is how often the widgets' status is computed again
	// (business hours open and close; default 30 s); an agent's status
	// change recomputes it at once.
	StatusEvery time.Duration
	// Buffer is how many frames a visitor may fall behind before the
	// socket is dropped (default 256).
	Buffer int
	// WriteTimeout bounds a write to one socket (default 10 s).
	WriteTimeout time.Duration
	// Rate and Burst limit a visitor's frames: Burst at once, then Rate a
	// second (defaults 5 and 10).
	Rate  float64
	Burst int
	// OnAccepted and OnRejected count messages queued and requests
	// refused (metrics).
	OnAccepted func()
	OnRejected func(refusal.Code)
}

// Handler serves the visitor API and the visitors' sockets of one
// instance. Start Run with a bus subscription before serving.
type Handler struct {
	cfg Config
	log *slog.Logger
	rf  refusal.Refuser

	mu       sync.Mutex
	sockets  map[string]map[*socket]struct{} // visitor id -> its sockets here
	limits   map[string]*bucket              // visitor id -> its frame budget
	statuses map[string]view.ChatStatus      // site -> the status last sent
	wake     chan struct{}                   // recompute statuses now
}

// New returns the handler for cfg.
func New(cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = switchboard.SystemClock{}
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 20 * time.Second
	}
	if cfg.StatusEvery <= 0 {
		cfg.StatusEvery = 30 * time.Second
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = 256
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 5
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 10
	}
	return &Handler{
		cfg: cfg, log: cfg.Logger,
		rf:      refusal.Refuser{Logger: cfg.Logger, Source: "livechat", OnRejected: cfg.OnRejected},
		sockets: map[string]map[*socket]struct{}{}, limits: map[string]*bucket{}, statuses: map[string]view.ChatStatus{},
		wake: make(chan struct{}, 1),
	}
}

// Routes returns the handlers to mount, by pattern.
func (h *Handler) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"POST /chat/sessions":    http.HandlerFunc(h.session),
		"OPTIONS /chat/sessions": http.HandlerFunc(h.preflight),
		"GET /chat/ws":           http.HandlerFunc(h.serveSocket),
		"POST /chat/uploads":     http.HandlerFunc(h.upload),
		"OPTIONS /chat/uploads":  http.HandlerFunc(h.preflight),
	}
}

// refuse answers a refused request in the channels' shape.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, code refusal.Code, msg string, err error) {
	w.Header().Set("Cache-Control", "no-store")
	h.rf.Refuse(w, r, code, msg, err, "origin", r.Header.Get("Origin"))
}

// refuseErr refuses for an inbox error.
func (h *Handler) refuseErr(w http.ResponseWriter, r *http.Request, err error) {
	switch switchboard.ErrorCode(err) {
	case switchboard.EINVALID:
		h.refuse(w, r, refusal.Malformed, switchboard.ErrorMessage(err), nil)
	case switchboard.ETOOLARGE:
		h.refuse(w, r, refusal.TooLarge, switchboard.ErrorMessage(err), nil)
	case switchboard.ENOTFOUND:
		h.refuse(w, r, refusal.NotFound, switchboard.ErrorMessage(err), nil)
	case switchboard.EFORBIDDEN:
		h.refuse(w, r, refusal.Forbidden, switchboard.ErrorMessage(err), nil)
	default:
		h.refuse(w, r, refusal.Internal, "internal error", err)
	}
}

// allowOrigin reports whether the request may use the site: a page of
// one of the site's origins, which may then read the answer (CORS), or a
// client that is no browser. Browsers send Origin with every POST and
// every socket handshake, so a request without one comes from an app or
// a server; the check exists to keep other pages from chatting through
// a visitor's browser, and such a client could send any Origin anyway.
func allowOrigin(w http.ResponseWriter, r *http.Request, site switchboard.Site) bool {
	origin := strings.ToLower(r.Header.Get("Origin"))
	if origin == "" {
		return true
	}
	for _, o := range site.Origins {
		if o == origin {
			w.Header().Set("Access-Control-Allow-Origin", r.Header.Get("Origin"))
			w.Header().Add("Vary", "Origin")
			return true
		}
	}
	return false
}

// preflight answers the CORS preflight of POST /chat/sessions and /chat/uploads:
// the site is not known yet (no body, no credentials), so an origin of
// any site may go on; the request itself is checked against its site.
func (h *Handler) preflight(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	ok, err := h.cfg.Inbox.ChatOriginKnown(r.Context(), origin)
	if err != nil {
		h.refuse(w, r, refusal.Unavailable, "try again shortly", err)
		return
	}
	if origin == "" || !ok {
		h.refuse(w, r, refusal.Forbidden, "the chat does not run on this page", nil)
		return
	}
	hd := w.Header()
	hd.Set("Access-Control-Allow-Origin", origin)
	hd.Add("Vary", "Origin")
	hd.Set("Access-Control-Allow-Methods", "POST")
	hd.Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
	hd.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// UserHash is what a host app sends to prove its user's id: hex
// HMAC-SHA256 of the id under the site's secret.
func UserHash(secret, userID string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(userID))
	return hex.EncodeToString(m.Sum(nil))
}

// sessionRequest is POST /chat/sessions's body. visitor_token, like an
// Authorization: Bearer header, names the visitor of an earlier session.
type sessionRequest struct {
	Site         string `json:"site"`
	Name         string `json:"name"`
	Email        string `json:"email"`
	UserID       string `json:"user_id"`
	UserHash     string `json:"user_hash"`
	VisitorToken string `json:"visitor_token"`
}

// session serves POST /chat/sessions: it checks the page's origin, the
// user_hash when a user id is given, and the earlier token when there is
// one, and answers the visitor's token, conversation and the status.
func (h *Handler) session(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	w.Header().Set("Cache-Control", "no-store")
	var req sessionRequest
	r.Body = http.MaxBytesReader(w, r.Body, maxSessionBody)
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.refuse(w, r, refusal.TooLarge, "the session request is too large", nil)
			return
		}
		h.refuse(w, r, refusal.Malformed, "a JSON object {\"site\", ...} is expected", nil)
		return
	}
	if !plainID(req.Site) {
		h.refuse(w, r, refusal.Malformed, `"site" is the site's key, from the script tag's data-site`, nil)
		return
	}
	site, err := h.cfg.Inbox.ChatSite(ctx, req.Site)
	if err != nil {
		h.refuseErr(w, r, err)
		return
	}
	if !allowOrigin(w, r, site) {
		h.refuse(w, r, refusal.Forbidden, "the chat of this site does not run on this page", nil)
		return
	}
	switch {
	case req.UserID == "" && req.UserHash != "":
		h.refuse(w, r, refusal.Malformed, "user_hash needs the user_id it signs", nil)
		return
	case req.UserID != "" && !hmac.Equal([]byte(strings.ToLower(req.UserHash)), []byte(UserHash(site.Secret, req.UserID))):
		h.refuse(w, r, refusal.Forbidden, "user_hash does not match user_id: it is hex HMAC-SHA256(user_id) under the site's secret", nil)
		return
	}
	token := req.VisitorToken
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		token = strings.TrimSpace(bearer)
	}
	var prev *switchboard.Visitor
	if token != "" {
		siteKey, visitorID, ok := h.cfg.Tokens.Parse(token)
		switch {
		case !ok:
			h.refuse(w, r, refusal.Unauthorized, "the visitor token is not valid; start a session without it", nil)
			return
		case siteKey != site.Key:
			h.refuse(w, r, refusal.Forbidden, "the visitor token is another site's", nil)
			return
		}
		v, err := h.cfg.Inbox.ChatVisitor(ctx, visitorID)
		if err != nil && switchboard.ErrorCode(err) != switchboard.ENOTFOUND {
			h.refuseErr(w, r, err)
			return
		}
		if err == nil {
			prev = &v
		}
	}
	v, err := h.cfg.Inbox.StartChat(ctx, site, prev, req.Name, req.Email, req.UserID)
	if err != nil {
		h.refuseErr(w, r, err)
		return
	}
	conv, err := h.cfg.Inbox.VisitorConversation(ctx, v)
	if err != nil {
		h.refuseErr(w, r, err)
		return
	}
	status, err := h.cfg.Inbox.ChatStatus(ctx, site)
	if err != nil {
		h.refuseErr(w, r, err)
		return
	}
	var convID *string
	if conv != "" {
		convID = &conv
	}
	writeJSON(w, http.StatusOK, map[string]any{"visitor_token": h.cfg.Tokens.Make(site.Key, v.ID), "conversation_id": convID, "status": status})
}

// visitorOf returns the site and visitor a token names; it refuses the
// request itself when there are none.
func (h *Handler) visitorOf(w http.ResponseWriter, r *http.Request, token string) (switchboard.Site, switchboard.Visitor, bool) {
	siteKey, visitorID, ok := h.cfg.Tokens.Parse(token)
	if !ok {
		h.refuse(w, r, refusal.Unauthorized, "a valid visitor token is required (POST /chat/sessions gives one)", nil)
		return switchboard.Site{}, switchboard.Visitor{}, false
	}
	site, err := h.cfg.Inbox.ChatSite(r.Context(), siteKey)
	if err == nil && !allowOrigin(w, r, site) {
		h.refuse(w, r, refusal.Forbidden, "the chat of this site does not run on this page", nil)
		return site, switchboard.Visitor{}, false
	}
	var v switchboard.Visitor
	if err == nil {
		v, err = h.cfg.Inbox.ChatVisitor(r.Context(), visitorID)
	}
	if err == nil && v.SiteKey != site.Key {
		err = switchboard.Errorf(switchboard.ENOTFOUND, "visitor not found")
	}
	if switchboard.ErrorCode(err) == switchboard.ENOTFOUND {
		h.refuse(w, r, refusal.Unauthorized, "the visitor token names no visitor; start a session again", nil)
		return site, v, false
	}
	if err != nil {
		h.refuseErr(w, r, err)
		return site, v, false
	}
	return site, v, true
}

// upload serves POST /chat/uploads: one multipart "file", under the
// agents' upload rules, owned by the visitor.
func (h *Handler) upload(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	_, v, ok := h.visitorOf(w, r, strings.TrimSpace(token))
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, inbox.MaxUploadBytes+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		h.refuse(w, r, refusal.Malformed, `a multipart/form-data body with a "file" field is expected`, nil)
		return
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			h.refuse(w, r, refusal.Malformed, `no "file" field in the form`, nil)
			return
		}
		if err != nil {
			h.refuseErr(w, r, inbox.UploadReadError(err))
			return
		}
		if part.FormName() != "file" || part.FileName() == "" {
			part.Close()
			continue
		}
		a, err := h.cfg.Inbox.VisitorUpload(r.Context(), v, part.FileName(), part)
		part.Close()
		if err != nil {
			h.refuseErr(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, a)
		return
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// bucket is a visitor's frame budget: a token bucket.
type bucket struct {
	tokens float64
	at     time.Time
}

// allow takes a token from the visitor's bucket.
func (h *Handler) allow(visitorID string) bool {
	now := h.cfg.Clock.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.limits[visitorID]
	if b == nil {
		b = &bucket{tokens: float64(h.cfg.Burst), at: now}
		h.limits[visitorID] = b
	}
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(float64(h.cfg.Burst), b.tokens+d.Seconds()*h.cfg.Rate)
		b.at = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
