// Package webhook serves GET and POST /webhooks/meta, the one endpoint Meta
// calls for WhatsApp, Messenger and Instagram: it answers the verification
// handshake, checks X-Hub-Signature-256 over the raw body, and turns the
// events into queued messages, delivery reports and read watermarks,
// answering 200 only once all of it is durable.
package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/enqueue"
	"github.com/switchboard-inbox/switchboard/channel/fetch"
	"github.com/switchboard-inbox/switchboard/channel/messenger"
	"github.com/switchboard-inbox/switchboard/channel/meta"
	"github.com/switchboard-inbox/switchboard/channel/refusal"
	"github.com/switchboard-inbox/switchboard/channel/whatsapp"
)

// Store is what the handler records directly (the messages go through
// the queue).
type Store interface {
	ApplyDeliveryStatus(ctx context.Context, ch switchboard.Channel, providerID string, status switchboard.DeliveryStatus, errText string) (messageID, conversationID string, err error)
	ApplyWatermark(ctx context.Context, ch switchboard.Channel, id switchboard.IdentityRef, upTo time.Time, status switchboard.DeliveryStatus) (int, error)
}

// Config wires the handler.
type Config struct {
	AppSecret   string // verifies X-Hub-Signature-256
	VerifyToken string // answers the GET handshake
	Queue       switchboard.Queue
	Blobs       switchboard.BlobStore
	Store       Store
	// Media fetches WhatsApp media by id; nil drops media (logged).
	Media *whatsapp.MediaClient
	// HTTP fetches Messenger and Instagram attachment URLs, through
	// package fetch: from Meta's media hosts (AttachmentHosts) over https,
	// or from GraphAPIURL's origin when that is a stand-in (tests, the
	// demo). Its TLS settings and a shorter timeout are kept.
	HTTP *http.Client
	// GraphAPIURL is the configured Graph API base URL.
	GraphAPIURL string
	// AttachmentHosts replaces meta.DefaultMediaHosts for attachments.
	AttachmentHosts []string

	Logger        *slog.Logger
	Clock         switchboard.Clock
	MaxMediaBytes int64 // per file; default 16 MB (WhatsApp's audio/video limit)
	// Accounts, when set for Messenger or Instagram, is our Page or
	// Instagram account id: events addressed to another one (an app
	// subscribed to several) are acknowledged and ignored.
	Accounts   map[switchboard.Channel]string
	OnAccepted func(ch switchboard.Channel)
	OnRejected func(code refusal.Code)
}

// Handler serves /webhooks/meta.
type Handler struct {
	cfg         Config
	refuse      refusal.Refuser
	attachments *fetch.Fetcher
}

// New returns the handler.
func New(cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = switchboard.SystemClock{}
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.MaxMediaBytes <= 0 {
		cfg.MaxMediaBytes = 16 << 20
	}
	hosts := cfg.AttachmentHosts
	if hosts == nil {
		hosts = meta.DefaultMediaHosts()
	}
	return &Handler{
		cfg: cfg, refuse: refusal.Refuser{Logger: cfg.Logger, Source: "meta: webhook", OnRejected: cfg.OnRejected},
		attachments: fetch.New(fetch.Policy{Provider: "Meta", Hosts: hosts, StandIns: []string{cfg.GraphAPIURL}}, cfg.HTTP),
	}
}

// maxBody bounds a webhook post; Meta batches events but stays far below.
const maxBody = 4 << 20

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		challenge, ok := meta.VerifyChallenge(r.URL.Query(), h.cfg.VerifyToken)
		if !ok {
			h.refuse.Refuse(w, r, refusal.Forbidden, "verification token mismatch", nil)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, challenge)
	case http.MethodPost:
		h.post(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		h.refuse.Refuse(w, r, refusal.MethodNotAllowed, "GET or POST only", nil)
	}
}

func (h *Handler) post(w http.ResponseWriter, r *http.Request) {
	// The signature covers the raw bytes: read them once and never
	// re-encode before checking.
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		h.refuse.Refuse(w, r, refusal.TooLarge, "body too large", err)
		return
	case err != nil:
		h.refuse.Refuse(w, r, refusal.Malformed, "body unreadable", err)
		return
	}
	if !meta.ValidSignature(h.cfg.AppSecret, raw, r.Header.Get(meta.SignatureHeader)) {
		h.refuse.Refuse(w, r, refusal.BadSignature, "invalid or missing X-Hub-Signature-256", nil)
		return
	}
	env, err := meta.ParseEnvelope(raw)
	if err != nil {
		h.refuse.Refuse(w, r, refusal.Malformed, switchboard.ErrorMessage(err), err)
		return
	}
	ch, ok := env.Channel()
	if !ok {
		// Signed, but for a product we do not handle: acknowledge, or Meta
		// retries it for days.
		h.cfg.Logger.Info("meta: webhook for an unhandled object ignored", "object", env.Object)
		w.WriteHeader(http.StatusOK)
		return
	}
	// Meta retries until it gets a 200; finish the work even if it hangs up.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 60*time.Second)
	defer cancel()
	if ch == switchboard.ChannelWhatsApp {
		err = h.whatsapp(ctx, raw)
	} else {
		err = h.messenger(ctx, raw)
	}
	if err != nil {
		if switchboard.ErrorCode(err) == switchboard.EINVALID {
			h.refuse.Refuse(w, r, refusal.Malformed, switchboard.ErrorMessage(err), err)
			return
		}
		h.refuse.Refuse(w, r, refusal.Unavailable, "could not be stored; retry", err, "object", env.Object)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *Handler) whatsapp(ctx context.Context, raw []byte) error {
	evs, err := whatsapp.Parse(raw, h.cfg.Clock.Now())
	if err != nil {
		return err
	}
	for _, m := range evs.Messages {
		in := m.Inbound()
		if m.Media != nil {
			a, err := h.whatsappMedia(ctx, m)
			if err != nil {
				return err
			}
			if a != nil {
				in.Attachments = append(in.Attachments, *a)
			}
		}
		if err := h.enqueue(ctx, in); err != nil {
			return err
		}
	}
	for _, st := range evs.Statuses {
		status := st.Delivery()
		if switchboard.DeliveryRank(status) == 0 {
			continue // "played" and the like: nothing to record
		}
		var errText string
		for _, e := range st.Errors {
			errText = fmt.Sprintf("%d %s", e.Code, firstNonEmpty(e.Details, e.Message, e.Title))
			break
		}
		if _, _, err := h.cfg.Store.ApplyDeliveryStatus(ctx, switchboard.ChannelWhatsApp, st.ID, status, errText); err != nil {
			return err
		}
	}
	return nil
}

// whatsappMedia copies a message's media into the object store, checked
// against its sha256. Media that can never be fetched is dropped (logged)
// so the message itself is not lost; a passing failure asks Meta to retry.
func (h *Handler) whatsappMedia(ctx context.Context, m whatsapp.Message) (*switchboard.Attachment, error) {
	if h.cfg.Media == nil || h.cfg.Blobs == nil {
		h.cfg.Logger.Warn("meta: WhatsApp media dropped: no media client or object store", "wamid", m.ID)
		return nil, nil
	}
	data, ctype, err := h.cfg.Media.Fetch(ctx, m.Media.ID, h.cfg.MaxMediaBytes)
	if code := switchboard.ErrorCode(err); switchboard.IsPermanent(err) || code == switchboard.ETOOLARGE || code == switchboard.EINVALID {
		h.cfg.Logger.Warn("meta: WhatsApp media dropped", "wamid", m.ID, "err", err)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fetch WhatsApp media: %w", err)
	}
	if base, _, perr := mime.ParseMediaType(ctype); perr == nil {
		ctype = base
	}
	name := m.Media.Filename
	if name == "" {
		name = m.Media.ID
	}
	key := "media/whatsapp/" + m.Media.ID
	if err := h.cfg.Blobs.Put(ctx, key, bytes.NewReader(data), int64(len(data)), ctype); err != nil {
		return nil, fmt.Errorf("store WhatsApp media: %w", err)
	}
	return &switchboard.Attachment{Key: key, ContentType: ctype, Size: int64(len(data)), Name: name}, nil
}

func (h *Handler) messenger(ctx context.Context, raw []byte) error {
	evs, err := messenger.Parse(raw)
	if err != nil {
		return err
	}
	for _, m := range evs.Messages {
		if m.Echo || m.Deleted {
			continue // our own sends coming back; unsends are not stored
		}
		if !h.ours(m.Channel, m.AccountID) {
			h.cfg.Logger.Info("meta: message for another account ignored", "channel", m.Channel, "account", m.AccountID, "mid", m.ID)
			continue
		}
		in := m.Inbound()
		for i, a := range m.Attachments {
			att, err := h.attachment(ctx, m, i, a)
			if err != nil {
				return err
			}
			if att != nil {
				in.Attachments = append(in.Attachments, *att)
			}
		}
		if err := h.enqueue(ctx, in); err != nil {
			return err
		}
	}
	for _, d := range evs.Deliveries {
		if !h.ours(d.Channel, d.RecipientID) {
			continue
		}
		for _, mid := range d.MIDs {
			if _, _, err := h.cfg.Store.ApplyDeliveryStatus(ctx, d.Channel, mid, switchboard.DeliveryDelivered, ""); err != nil {
				return err
			}
		}
		if !d.Watermark.IsZero() {
			if _, err := h.cfg.Store.ApplyWatermark(ctx, d.Channel, customerID(d.Channel, d.SenderID), d.Watermark, switchboard.DeliveryDelivered); err != nil {
				return err
			}
		}
	}
	for _, rd := range evs.Reads {
		if !h.ours(rd.Channel, rd.RecipientID) {
			continue
		}
		var err error
		switch {
		case rd.MID != "":
			_, _, err = h.cfg.Store.ApplyDeliveryStatus(ctx, rd.Channel, rd.MID, switchboard.DeliveryRead, "")
		case !rd.Watermark.IsZero():
			_, err = h.cfg.Store.ApplyWatermark(ctx, rd.Channel, customerID(rd.Channel, rd.SenderID), rd.Watermark, switchboard.DeliveryRead)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ours reports whether an event addressed to account on ch is for us.
func (h *Handler) ours(ch switchboard.Channel, account string) bool {
	want := h.cfg.Accounts[ch]
	return want == "" || account == want
}

func customerID(ch switchboard.Channel, id string) switchboard.IdentityRef {
	if ch == switchboard.ChannelInstagram {
		return switchboard.IdentityRef{Kind: switchboard.IdentityInstagramID, Value: id}
	}
	return switchboard.IdentityRef{Kind: switchboard.IdentityMessengerPSID, Value: id}
}

// attachment copies a Messenger or Instagram attachment, whose URL
// expires, into the object store. Kinds without a file (shares, stickers
// without a URL) are left to the message's metadata.
func (h *Handler) attachment(ctx context.Context, m messenger.Message, i int, a messenger.Attachment) (*switchboard.Attachment, error) {
	if a.URL == "" || h.cfg.Blobs == nil {
		return nil, nil
	}
	switch a.Type {
	case messenger.AttachmentImage, messenger.AttachmentAudio, messenger.AttachmentVideo, messenger.AttachmentFile:
	default:
		return nil, nil
	}
	// The URL is the customer's attachment as Meta re-hosts it, but the
	// payload is only as trustworthy as the app secret: anything package
	// fetch refuses (another host, an internal address, too large) drops
	// the attachment and keeps the message. Only a passing failure asks
	// Meta to retry.
	resp, err := h.attachments.Get(ctx, a.URL, nil, h.cfg.MaxMediaBytes)
	switch {
	case fetch.IsRefusal(err):
		h.cfg.Logger.Warn("meta: attachment refused", "mid", m.ID, "err", err)
		return nil, nil
	case switchboard.ErrorCode(err) == switchboard.ETOOLARGE:
		h.cfg.Logger.Warn("meta: attachment dropped: too large", "mid", m.ID)
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("fetch attachment: %w", err)
	case resp.StatusCode != http.StatusOK:
		h.cfg.Logger.Warn("meta: attachment dropped", "mid", m.ID, "status", resp.StatusCode)
		return nil, nil
	}
	data := resp.Body
	ctype := http.DetectContentType(data)
	if base, _, err := mime.ParseMediaType(ctype); err == nil {
		ctype = base
	}
	key := fmt.Sprintf("media/%s/%s/%d", m.Channel, m.ID, i)
	if err := h.cfg.Blobs.Put(ctx, key, bytes.NewReader(data), int64(len(data)), ctype); err != nil {
		return nil, fmt.Errorf("store attachment: %w", err)
	}
	return &switchboard.Attachment{Key: key, ContentType: ctype, Size: int64(len(data)), Name: fmt.Sprintf("%s-%d", a.Type, i)}, nil
}

func (h *Handler) enqueue(ctx context.Context, in switchboard.Inbound) error {
	in.AcceptedAt = h.cfg.Clock.Now()
	if err := enqueue.Inbound(ctx, h.cfg.Queue, in.Channel, &in); err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	if h.cfg.OnAccepted != nil {
		h.cfg.OnAccepted(in.Channel)
	}
	return nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
