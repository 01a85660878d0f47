package email

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/refusal"
)

// DefaultMaxBodyBytes bounds a posted mail: 25 MB of attachments grow by a
// third in base64, plus the text, HTML and form around them.
const DefaultMaxBodyBytes = 48 << 20

// mailgunTolerance is how far a Mailgun signature's timestamp may be from
// now; tokens seen within it are refused as replays.
const mailgunTolerance = 5 * time.Minute

// HandlerConfig configures POST /webhooks/email.
type HandlerConfig struct {
	// Secret is SWITCHBOARD_INBOUND_EMAIL_SECRET: a service sends it as
	// "Authorization: Bearer <secret>" or as the password of Basic auth
	// (SendGrid and Postmark put credentials in the webhook's URL), or
	// signs with it as Mailgun's webhook signing key.
	Secret       string
	MaxBodyBytes int64
	Clock        switchboard.Clock
	Logger       *slog.Logger
	OnAccepted   func()
	OnRejected   func(code refusal.Code)
}

// Handler serves POST /webhooks/email for inbound-mail services posting
// raw MIME: a message/rfc822 body, Mailgun's form with body-mime, or
// SendGrid's raw mode (the field email).
type Handler struct {
	ch     *Channel
	cfg    HandlerConfig
	refuse refusal.Refuser

	mu     sync.Mutex
	tokens map[string]time.Time // Mailgun tokens seen, for replay refusal
}

// Handler returns the webhook handler. With no secret configured it
// refuses every post: an unauthenticated inbox is an open door.
func (c *Channel) Handler(cfg HandlerConfig) *Handler {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Clock == nil {
		cfg.Clock = switchboard.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = c.cfg.Logger
	}
	return &Handler{ch: c, cfg: cfg, tokens: map[string]time.Time{},
		refuse: refusal.Refuser{Logger: cfg.Logger, Source: "email: webhook", OnRejected: cfg.OnRejected}}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.reject(w, r, false, refusal.MethodNotAllowed, "method not allowed", nil)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)
	raw, mailgun, code, err := h.read(r)
	if err != nil {
		h.reject(w, r, mailgun, code, err.Error(), nil)
		return
	}
	// The outcome must not depend on whether the service hangs up first.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
	defer cancel()
	// A malformed mail is accepted like any other: 2xx once it is durable,
	// so that the service does not stop retrying a mail we lost.
	out, err := h.ch.AcceptFrom(ctx, raw, "http", envelopeFrom(r))
	if err != nil {
		if switchboard.ErrorCode(err) == switchboard.EINVALID {
			h.reject(w, r, mailgun, refusal.Unprocessable, switchboard.ErrorMessage(err), err)
		} else {
			h.reject(w, r, mailgun, refusal.Unavailable, "the message could not be stored; retry", err)
		}
		return
	}
	if mailgun {
		h.spend(r.PostFormValue("token"))
	}
	if h.cfg.OnAccepted != nil {
		h.cfg.OnAccepted()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"status": string(out)})
}

// read authenticates the post and returns the raw mail in it, or the
// code to refuse it with.
func (h *Handler) read(r *http.Request) (raw []byte, mailgun bool, code refusal.Code, err error) {
	if h.cfg.Secret == "" {
		return nil, false, refusal.Forbidden, errors.New("inbound e-mail is not configured (SWITCHBOARD_INBOUND_EMAIL_SECRET)")
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	isForm := mediaType == "multipart/form-data" || mediaType == "application/x-www-form-urlencoded"
	headerAuth := h.headerAuth(r)
	if !isForm {
		if !headerAuth {
			return nil, false, refusal.Unauthorized, errors.New("missing or wrong credentials")
		}
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, false, bodyCode(err), fmt.Errorf("reading the body: %w", err)
		}
		if len(raw) == 0 {
			return nil, false, refusal.Malformed, errors.New("empty body: post the raw message as message/rfc822")
		}
		return raw, false, "", nil
	}
	var perr error
	if mediaType == "multipart/form-data" {
		// The raw mail is a form field, not a file part: allow it the
		// whole body, or a mail with a few megabytes of attachments would
		// be refused (the body is already capped by MaxBytesReader).
		perr = r.ParseMultipartForm(h.cfg.MaxBodyBytes)
	} else {
		perr = r.ParseForm()
	}
	if perr != nil {
		return nil, false, bodyCode(perr), fmt.Errorf("reading the form: %w", perr)
	}
	mailgun = r.PostFormValue("signature") != ""
	if !headerAuth {
		if !mailgun {
			return nil, false, refusal.Unauthorized, errors.New("missing or wrong credentials")
		}
		if err := h.mailgunSignature(r.PostFormValue("timestamp"), r.PostFormValue("token"), r.PostFormValue("signature")); err != nil {
			return nil, true, refusal.Unauthorized, err
		}
	}
	body := r.PostFormValue("body-mime") // Mailgun, to a URL ending in "mime"
	if body == "" {
		body = r.PostFormValue("email") // SendGrid Inbound Parse, raw mode
	}
	if body == "" {
		code := refusal.Malformed
		if mailgun {
			code = refusal.Unprocessable // retrying cannot add the field
		}
		return nil, mailgun, code, errors.New("the form has no raw message: use Mailgun's body-mime (a URL ending in mime) or SendGrid's raw mode")
	}
	return []byte(body), mailgun, "", nil
}

// envelopeFrom is the envelope sender a service posts beside the mail:
// Mailgun's sender field, SendGrid's envelope JSON; "" for a raw post.
// Only a form already parsed and authenticated by read is looked at.
func envelopeFrom(r *http.Request) string {
	if r.PostForm == nil {
		return ""
	}
	if s := r.PostForm.Get("sender"); s != "" {
		return s
	}
	var env struct {
		From string `json:"from"`
	}
	if v := r.PostForm.Get("envelope"); v != "" && json.Unmarshal([]byte(v), &env) == nil {
		return env.From
	}
	return ""
}

func (h *Handler) headerAuth(r *http.Request) bool {
	secret := []byte(h.cfg.Secret)
	if _, pass, ok := r.BasicAuth(); ok {
		return subtle.ConstantTimeCompare([]byte(pass), secret) == 1
	}
	auth := r.Header.Get("Authorization")
	if token, ok := strings.CutPrefix(auth, "Bearer "); ok {
		return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), secret) == 1
	}
	return false
}

// mailgunSignature checks Mailgun's webhook signature: hex HMAC-SHA256 of
// timestamp+token under the signing key, a fresh timestamp, and a token
// not seen before.
func (h *Handler) mailgunSignature(timestamp, token, signature string) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || token == "" {
		return errors.New("malformed Mailgun signature fields")
	}
	m := hmac.New(sha256.New, []byte(h.cfg.Secret))
	m.Write([]byte(timestamp + token))
	want := hex.EncodeToString(m.Sum(nil))
	if !hmac.Equal([]byte(strings.ToLower(signature)), []byte(want)) {
		return errors.New("wrong Mailgun signature")
	}
	now := h.cfg.Clock.Now()
	if d := now.Sub(time.Unix(ts, 0)); d > mailgunTolerance || d < -mailgunTolerance {
		return errors.New("stale Mailgun signature")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for t, at := range h.tokens {
		if now.Sub(at) > 2*mailgunTolerance {
			delete(h.tokens, t)
		}
	}
	if _, seen := h.tokens[token]; seen {
		return errors.New("replayed Mailgun token")
	}
	return nil
}

// spend records a Mailgun token once its post was stored, so that a post
// that failed may be retried with it but a stored one not replayed.
func (h *Handler) spend(token string) {
	if token == "" {
		return
	}
	h.mu.Lock()
	h.tokens[token] = h.cfg.Clock.Now()
	h.mu.Unlock()
}

func bodyCode(err error) refusal.Code {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return refusal.TooLarge
	}
	return refusal.Malformed
}

// reject answers a refusal. Mailgun retries anything but 406 for hours, so
// what retrying cannot fix is answered 406 to it.
func (h *Handler) reject(w http.ResponseWriter, r *http.Request, mailgun bool, code refusal.Code, reason string, err error) {
	status := code.Status()
	if mailgun && code == refusal.Unprocessable {
		status = http.StatusNotAcceptable
	}
	h.refuse.RefuseStatus(w, r, status, code, reason, err, "remote", r.RemoteAddr)
}
