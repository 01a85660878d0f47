package sms

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/enqueue"
	"github.com/switchboard-inbox/switchboard/channel/refusal"
	"github.com/switchboard-inbox/switchboard/channel/twilio"
)

// OptOuts is where the channel records and reads customers' opt-outs.
type OptOuts interface {
	RecordOptOut(ctx context.Context, id switchboard.IdentityRef, ch switchboard.Channel, keyword string) error
	ClearOptOut(ctx context.Context, id switchboard.IdentityRef, ch switchboard.Channel) error
	OptOut(ctx context.Context, id switchboard.IdentityRef, ch switchboard.Channel) (string, error)
}

// Statuses is where delivery reports go.
type Statuses interface {
	ApplyDeliveryStatus(ctx context.Context, ch switchboard.Channel, providerID string, status switchboard.DeliveryStatus, errText string) (messageID, conversationID string, err error)
}

// Config wires the SMS channel.
type Config struct {
	AuthToken string         // Twilio auth token: verifies webhooks
	PublicURL string         // the base URL Twilio calls (SWITCHBOARD_PUBLIC_URL)
	Client    *twilio.Client // fetches MMS media and sends replies
	From      string         // our number, E.164 (or use MessagingServiceSID)
	// MessagingServiceSID sends through a Messaging Service instead of From.
	MessagingServiceSID string
	Queue               switchboard.Queue
	Blobs               switchboard.BlobStore
	OptOuts             OptOuts
	Statuses            Statuses
	Logger              *slog.Logger
	Clock               switchboard.Clock
	DefaultRegion       string
	// MaxMediaBytes bounds each MMS attachment (default 5 MB, Twilio's
	// own limit for a message's media).
	MaxMediaBytes int64
	// PricePerSegment is shown by the composer (default 0.0079).
	PricePerSegment float64
	// OnAccepted and OnRejected, when set, count webhooks for metrics.
	OnAccepted func()
	OnRejected func(code refusal.Code)
}

// Channel is the SMS channel: webhooks, sender and policy.
type Channel struct {
	cfg    Config
	refuse refusal.Refuser
}

// New returns the SMS channel.
func New(cfg Config) *Channel {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = switchboard.SystemClock{}
	}
	if cfg.MaxMediaBytes <= 0 {
		cfg.MaxMediaBytes = 5 << 20
	}
	if cfg.PricePerSegment == 0 {
		cfg.PricePerSegment = 0.0079
	}
	cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	return &Channel{cfg: cfg, refuse: refusal.Refuser{Logger: cfg.Logger, Source: "sms: webhook", OnRejected: cfg.OnRejected}}
}

// readSigned reads and verifies a Twilio form post. It answers the error
// itself and returns ok=false when the request must go no further.
func (c *Channel) readSigned(w http.ResponseWriter, r *http.Request) (raw []byte, form url.Values, ok bool) {
	raw, form, code, reason := twilio.ReadSigned(w, r, c.cfg.AuthToken, c.cfg.PublicURL)
	if code != "" {
		c.refuse.Refuse(w, r, code, reason, nil)
		return nil, nil, false
	}
	return raw, form, true
}

// emptyTwiML answers an inbound message without an automatic reply.
const emptyTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response/>`

// InboundHandler serves POST /webhooks/twilio/sms: it verifies, parses,
// copies MMS media into the object store, records opt-out keywords, and
// answers 200 only once the message is on the durable queue. A retry of
// the same MessageSid is stored once by the ingest pipeline.
func (c *Channel) InboundHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, form, ok := c.readSigned(w, r)
		if !ok {
			return
		}
		now := c.cfg.Clock.Now()
		in, err := ParseInbound(form, c.cfg.DefaultRegion, now)
		if err != nil {
			c.refuse.Refuse(w, r, refusal.Malformed, switchboard.ErrorMessage(err), err)
			return
		}
		if reason, err := c.checkMedia(form); err != nil {
			c.refuse.Refuse(w, r, refusal.Unprocessable, reason, err, "message_sid", in.ProviderID)
			return
		}
		// Finish even if Twilio hangs up: the work is idempotent, and an
		// answer lost now only means Twilio retries.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
		defer cancel()
		if in.Attachments, err = c.copyMedia(ctx, in.ProviderID, form); err != nil {
			c.refuse.Refuse(w, r, refusal.Unavailable, "media could not be stored; retry", fmt.Errorf("copy media: %w", err), "message_sid", in.ProviderID)
			return
		}
		if err := c.applyKeyword(ctx, in); err != nil {
			c.refuse.Refuse(w, r, refusal.Unavailable, "could not record the opt-out; retry", fmt.Errorf("record keyword: %w", err), "message_sid", in.ProviderID)
			return
		}
		in.Original = raw
		in.AcceptedAt = c.cfg.Clock.Now()
		if err := enqueue.Inbound(ctx, c.cfg.Queue, switchboard.ChannelSMS, &in); err != nil {
			c.refuse.Refuse(w, r, refusal.Unavailable, "message could not be stored; retry", fmt.Errorf("enqueue: %w", err), "message_sid", in.ProviderID)
			return
		}
		if c.cfg.OnAccepted != nil {
			c.cfg.OnAccepted()
		}
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, emptyTwiML)
	})
}

// applyKeyword records STOP-style opt-outs and clears them on START. The
// message itself is kept either way, so agents see it in the thread.
func (c *Channel) applyKeyword(ctx context.Context, in switchboard.Inbound) error {
	if c.cfg.OptOuts == nil || len(in.Identities) == 0 {
		return nil
	}
	id := in.Identities[0]
	switch Keyword(in.Text) {
	case KeywordOptOut:
		return c.cfg.OptOuts.RecordOptOut(ctx, id, switchboard.ChannelSMS, strings.ToUpper(strings.TrimSpace(in.Text)))
	case KeywordOptIn:
		return c.cfg.OptOuts.ClearOptOut(ctx, id, switchboard.ChannelSMS)
	}
	return nil
}

// mediaTypes are the MMS content types kept; anything else is refused
// rather than stored where an agent's browser might open it.
var mediaTypes = map[string]bool{
	"image/jpeg": true, "image/png": true, "image/gif": true, "image/webp": true,
	"audio/mpeg": true, "audio/ogg": true, "audio/amr": true, "audio/mp4": true,
	"video/mp4": true, "video/3gpp": true, "application/pdf": true, "text/vcard": true, "text/x-vcard": true,
}

// checkMedia refuses the whole message when a MediaUrlN is one Twilio
// never sends (another host, http, an internal address named directly):
// such a webhook is forged with a leaked token or misrouted, and nothing
// of it is kept. What can only be refused while fetching (a Twilio host
// resolving to an internal address, a redirect elsewhere) drops that
// media and keeps the message, as any media that cannot be fetched.
func (c *Channel) checkMedia(form url.Values) (reason string, err error) {
	if c.cfg.Client == nil {
		return "", nil // copyMedia says what is missing
	}
	refs, _ := MediaRefs(form) // ParseInbound has checked them
	for i, m := range refs {
		if err := c.cfg.Client.CheckMediaURL(m.URL); err != nil {
			return fmt.Sprintf("MediaUrl%d is not a Twilio media URL: %s", i, switchboard.ErrorMessage(err)), err
		}
	}
	return "", nil
}

// copyMedia fetches each MediaUrlN (Twilio wants Basic auth) into the
// object store under a key derived from the MessageSid, so a retried
// webhook overwrites rather than duplicates.
func (c *Channel) copyMedia(ctx context.Context, sid string, form url.Values) ([]switchboard.Attachment, error) {
	refs, err := MediaRefs(form)
	if err != nil || len(refs) == 0 {
		return nil, err
	}
	if c.cfg.Blobs == nil || c.cfg.Client == nil {
		return nil, errors.New("MMS media arrived but no object store or Twilio client is configured")
	}
	var out []switchboard.Attachment
	for i, m := range refs {
		data, ctype, err := c.cfg.Client.FetchMedia(ctx, m.URL, c.cfg.MaxMediaBytes)
		if switchboard.IsPermanent(err) {
			// Too large, gone, refused: retrying cannot help, so keep the
			// message and say what was left out.
			c.cfg.Logger.Warn("sms: media dropped", "message_sid", sid, "media", i, "err", err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("fetch media %d: %w", i, err)
		}
		ctype, _, _ = mime.ParseMediaType(ctype)
		if !mediaTypes[ctype] {
			// Keep the message, say what was dropped.
			c.cfg.Logger.Warn("sms: media type refused", "message_sid", sid, "content_type", ctype)
			continue
		}
		key := fmt.Sprintf("media/sms/%s/%d-%s", sid, i, path.Base(m.URL))
		if err := c.cfg.Blobs.Put(ctx, key, strings.NewReader(string(data)), int64(len(data)), ctype); err != nil {
			return nil, fmt.Errorf("store media %d: %w", i, err)
		}
		out = append(out, switchboard.Attachment{Key: key, ContentType: ctype, Size: int64(len(data)), Name: path.Base(m.URL)})
	}
	return out, nil
}

// StatusHandler serves POST /webhooks/twilio/status: delivery reports for
// our sends, applied so that a message never moves backwards, and kept
// when they arrive before the send recorded its MessageSid. A call's
// status (the number's own StatusCallback points here too, so that Twilio
// has one place to report to) is acknowledged and not recorded.
func (c *Channel) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, form, ok := c.readSigned(w, r)
		if !ok {
			return
		}
		if form.Get("CallSid") != "" && form.Get("MessageSid") == "" && form.Get("SmsSid") == "" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		st, err := ParseStatus(form)
		if err != nil {
			c.refuse.Refuse(w, r, refusal.Malformed, switchboard.ErrorMessage(err), err)
			return
		}
		ctx := context.WithoutCancel(r.Context())
		if st.Delivery == "" || switchboard.DeliveryRank(st.Delivery) == 0 {
			w.WriteHeader(http.StatusNoContent) // e.g. "receiving": nothing to record
			return
		}
		errText := st.ErrorMessage
		if st.ErrorCode != 0 {
			errText = strings.TrimSpace(fmt.Sprintf("%d %s", st.ErrorCode, firstNonEmpty(st.ErrorMessage, ErrorText(st.ErrorCode))))
		}
		if st.ErrorCode == twilio.ErrUnsubscribed && c.cfg.OptOuts != nil && st.To != "" {
			if to, err := normalisePhone(st.To, c.cfg.DefaultRegion); err == nil {
				// Twilio retries a failed callback: losing the opt-out would
				// have us text someone who asked us to stop.
				if err := c.cfg.OptOuts.RecordOptOut(ctx, to, switchboard.ChannelSMS, "21610"); err != nil {
					c.refuse.Refuse(w, r, refusal.Unavailable, "opt-out could not be stored; retry", fmt.Errorf("record opt-out: %w", err), "message_sid", st.MessageSID)
					return
				}
			}
		}
		_, _, err = c.cfg.Statuses.ApplyDeliveryStatus(ctx, switchboard.ChannelSMS, st.MessageSID, st.Delivery, errText)
		if err != nil {
			c.refuse.Refuse(w, r, refusal.Unavailable, "status could not be stored; retry", fmt.Errorf("apply status: %w", err), "message_sid", st.MessageSID)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
