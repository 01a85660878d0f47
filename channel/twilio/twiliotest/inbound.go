package twiliotest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard/channel/sms"
	"github.com/switchboard-inbox/switchboard/channel/twilio"
)

// IdempotencyHeader carries a webhook's idempotency token; Twilio repeats
// it when it retries a webhook.
const IdempotencyHeader = "I-Twilio-Idempotency-Token"

// userAgent is what Twilio's webhook requests identify as.
const userAgent = "TwilioProxy/1.1"

// MediaFile is one attachment of an inbound MMS.
type MediaFile struct {
	ContentType string // such as "image/jpeg"
	Data        []byte
}

// Inbound is a message a customer sends to one of our numbers.
type Inbound struct {
	From, To, Body string
	Media          []MediaFile // at most 10
	// MessageSid is generated when empty: "MM" and 32 hex digits with
	// media, "SM" and 32 hex digits without.
	MessageSid string
	// MessagingServiceSid is sent when set, as Twilio does for a number in
	// a messaging service.
	MessagingServiceSid string
	// Geography Twilio adds from the numbers. FromCountry and ToCountry
	// default to the country of the calling code for common codes; the
	// others are sent empty unless set, as Twilio does when it does not
	// know them.
	FromCity, FromState, FromZip, FromCountry string
	ToCity, ToState, ToZip, ToCountry         string
	// Extra holds more fields (OptOutType, say, or anything Twilio may add
	// without notice); a name here replaces the generated field's values.
	Extra url.Values
}

// Webhook is a signed webhook request ready to post: what SendInbound
// sends, kept so that it can be sent again as a provider retry (same form,
// same MessageSid, same signature and idempotency token) or tampered with.
type Webhook struct {
	URL              string // requested and signed, without fragment
	Form             url.Values
	Signature        string // X-Twilio-Signature
	IdempotencyToken string // I-Twilio-Idempotency-Token
}

// WithBadSignature returns a copy of w whose signature is well-formed but
// made with the wrong key, which a receiver must refuse.
func (w Webhook) WithBadSignature() Webhook {
	w.Form = cloneValues(w.Form)
	w.Signature = twilio.Sign("not-the-auth-token", w.URL, w.Form)
	return w
}

// InboundWebhook builds and signs the inbound SMS/MMS webhook Twilio would
// post to webhookURL for p (channels.md §1), and keeps p's media so that
// its MediaUrlN can be fetched from this server. Like Twilio, it records an
// opt-out keyword from p.From (later sends to it fail with 21610) and an
// opt-in keyword lifts it.
func (s *Server) InboundWebhook(webhookURL string, p Inbound) (Webhook, error) {
	if !httpURL(webhookURL) {
		return Webhook{}, fmt.Errorf("twiliotest: inbound: webhook URL %q is not an absolute http(s) URL", webhookURL)
	}
	if len(p.Media) > sms.MaxMedia {
		return Webhook{}, fmt.Errorf("twiliotest: inbound: %d media, Twilio delivers at most %d", len(p.Media), sms.MaxMedia)
	}
	sid := p.MessageSid
	if sid == "" {
		prefix := "SM"
		if len(p.Media) > 0 {
			prefix = "MM"
		}
		sid = newSID(prefix)
	}
	f := url.Values{}
	f.Set("MessageSid", sid)
	f.Set("SmsSid", sid)
	f.Set("SmsMessageSid", sid)
	f.Set("AccountSid", s.accountSID)
	if p.MessagingServiceSid != "" {
		f.Set("MessagingServiceSid", p.MessagingServiceSid)
	}
	f.Set("From", p.From)
	f.Set("To", p.To)
	f.Set("Body", p.Body)
	f.Set("NumMedia", strconv.Itoa(len(p.Media)))
	f.Set("NumSegments", strconv.Itoa(max(sms.Segments(p.Body).Segments, 1)))
	setPlace(f, "From", p.From, p.FromCity, p.FromState, p.FromZip, p.FromCountry)
	setPlace(f, "To", p.To, p.ToCity, p.ToState, p.ToZip, p.ToCountry)
	f.Set("SmsStatus", "received")
	f.Set("ApiVersion", APIVersion)

	s.mu.Lock()
	base := s.baseURL
	for i, m := range p.Media {
		mediaSID := newSID("ME")
		ct := m.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		s.media[sid+"/"+mediaSID] = MediaFile{ContentType: ct, Data: bytes.Clone(m.Data)}
		f.Set(fmt.Sprintf("MediaUrl%d", i), base+"/"+APIVersion+"/Accounts/"+url.PathEscape(s.accountSID)+
			"/Messages/"+url.PathEscape(sid)+"/Media/"+mediaSID)
		f.Set(fmt.Sprintf("MediaContentType%d", i), ct)
	}
	switch sms.Keyword(p.Body) {
	case sms.KeywordOptOut:
		s.unsubscribed[p.From] = true
	case sms.KeywordOptIn:
		delete(s.unsubscribed, p.From)
	}
	s.mu.Unlock()

	for k, vs := range p.Extra {
		f[k] = append([]string(nil), vs...)
	}
	target := stripFragment(webhookURL)
	return Webhook{
		URL:              target,
		Form:             f,
		Signature:        twilio.Sign(s.authToken, target, f),
		IdempotencyToken: newIdempotencyToken(),
	}, nil
}

// SendInbound posts p to webhookURL as Twilio posts an inbound SMS/MMS
// (see InboundWebhook) with client (the server's client when nil). The
// caller closes the response body. To retry the same message or send a bad
// signature, build the request with InboundWebhook and post it with
// SendWebhook.
func (s *Server) SendInbound(ctx context.Context, client *http.Client, webhookURL string, p Inbound) (*http.Response, error) {
	wh, err := s.InboundWebhook(webhookURL, p)
	if err != nil {
		return nil, err
	}
	return s.SendWebhook(ctx, client, wh)
}

// SendWebhook posts wh exactly as built, as Twilio posts its webhooks:
// form-encoded, with X-Twilio-Signature and I-Twilio-Idempotency-Token.
// Posting the same Webhook again is a provider retry. client defaults to
// the server's. The caller closes the response body.
func (s *Server) SendWebhook(ctx context.Context, client *http.Client, wh Webhook) (*http.Response, error) {
	if client == nil {
		client = s.client
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, wh.URL, strings.NewReader(wh.Form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("twiliotest: webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(twilio.SignatureHeader, wh.Signature)
	if wh.IdempotencyToken != "" {
		req.Header.Set(IdempotencyHeader, wh.IdempotencyToken)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("twiliotest: webhook: %w", err)
	}
	return resp, nil
}

// setPlace sets {prefix}City, State, Zip and Country, the country
// defaulting to the one of number's calling code.
func setPlace(f url.Values, prefix, number, city, state, zip, country string) {
	if country == "" {
		country = countryOf(number)
	}
	f.Set(prefix+"City", city)
	f.Set(prefix+"State", state)
	f.Set(prefix+"Zip", zip)
	f.Set(prefix+"Country", country)
}

// callingCodes maps common calling codes to the ISO country Twilio
// reports (+1 reads as US).
var callingCodes = map[string]string{
	"1": "US", "7": "RU", "20": "EG", "27": "ZA", "30": "GR", "31": "NL", "32": "BE", "33": "FR",
	"34": "ES", "36": "HU", "39": "IT", "40": "RO", "41": "CH", "43": "AT", "44": "GB", "45": "DK",
	"46": "SE", "47": "NO", "48": "PL", "49": "DE", "51": "PE", "52": "MX", "54": "AR", "55": "BR",
	"56": "CL", "57": "CO", "60": "MY", "61": "AU", "62": "ID", "63": "PH", "64": "NZ", "65": "SG",
	"66": "TH", "81": "JP", "82": "KR", "84": "VN", "86": "CN", "90": "TR", "91": "IN", "92": "PK",
	"234": "NG", "254": "KE", "351": "PT", "353": "IE", "358": "FI", "420": "CZ", "852": "HK",
	"971": "AE", "972": "IL",
}

func countryOf(number string) string {
	if !isE164(number) {
		return ""
	}
	for n := 3; n >= 1; n-- {
		if c, ok := callingCodes[number[1:1+n]]; ok {
			return c
		}
	}
	return ""
}

// handleMedia serves inbound media: GET (and HEAD) returns the bytes with
// their Content-Type, DELETE removes them (204), as Twilio's media
// resource does. Basic auth is required.
func (s *Server) handleMedia(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r) {
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodDelete:
	default:
		w.Header().Set("Allow", "GET, HEAD, DELETE")
		writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "Method not allowed")
		return
	}
	key := r.PathValue("MessageSid") + "/" + r.PathValue("MediaSid")
	s.mu.Lock()
	m, ok := s.media[key]
	if ok && r.Method == http.MethodDelete {
		delete(s.media, key)
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, CodeNotFound, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	if r.Method == http.MethodDelete {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", m.ContentType)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(m.Data))
}
