// Package voice takes voicemails through Twilio Voice: an incoming call is
// answered with TwiML that greets the caller and records a message; the
// recording callback stores the audio and queues it as a message in the
// caller's conversation; the transcription callback attaches the text to
// it, whichever of the two arrives first.
package voice

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/enqueue"
	"github.com/switchboard-inbox/switchboard/channel/refusal"
	"github.com/switchboard-inbox/switchboard/channel/twilio"
	"github.com/switchboard-inbox/switchboard/identity"
)

// Store keeps what the callbacks need between them.
type Store interface {
	RecordCall(ctx context.Context, callSID, caller string) error
	Caller(ctx context.Context, callSID string) (string, error)
	AttachTranscript(ctx context.Context, ch switchboard.Channel, providerID, transcript string) error
}

// Config wires the channel.
type Config struct {
	AuthToken     string
	PublicURL     string
	Client        *twilio.Client // fetches recordings
	Greeting      string         // spoken before the tone
	MaxLength     int            // seconds of recording (default 120)
	Queue         switchboard.Queue
	Blobs         switchboard.BlobStore
	Store         Store
	Logger        *slog.Logger
	Clock         switchboard.Clock
	DefaultRegion string
	OnAccepted    func()
	OnRejected    func(code refusal.Code) // counts refusals for metrics
}

// Channel serves the three Twilio Voice webhooks.
type Channel struct {
	cfg    Config
	refuse refusal.Refuser
}

// New returns the voicemail channel.
func New(cfg Config) *Channel {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = switchboard.SystemClock{}
	}
	if cfg.Greeting == "" {
		cfg.Greeting = "Thank you for calling. Please leave a message after the tone."
	}
	if cfg.MaxLength <= 0 {
		cfg.MaxLength = 120
	}
	cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	return &Channel{cfg: cfg, refuse: refusal.Refuser{Logger: cfg.Logger, Source: "voice: webhook", OnRejected: cfg.OnRejected}}
}

// NoTranscript is the transcript of a voicemail Twilio could not transcribe.
const NoTranscript = "(no transcription: Twilio could not transcribe this recording)"

func (c *Channel) read(w http.ResponseWriter, r *http.Request) (form map[string][]string, ok bool) {
	_, f, code, reason := twilio.ReadSigned(w, r, c.cfg.AuthToken, c.cfg.PublicURL)
	if code != "" {
		c.refuse.Refuse(w, r, code, reason, nil)
		return nil, false
	}
	return f, true
}

type twiml struct {
	XMLName xml.Name  `xml:"Response"`
	Say     string    `xml:"Say,omitempty"`
	Record  *record   `xml:"Record,omitempty"`
	Hangup  *struct{} `xml:"Hangup,omitempty"`
}

type record struct {
	MaxLength              int    `xml:"maxLength,attr"`
	Action                 string `xml:"action,attr"`
	RecordingStatusCB      string `xml:"recordingStatusCallback,attr"`
	RecordingStatusCBEvent string `xml:"recordingStatusCallbackEvent,attr"`
	Transcribe             bool   `xml:"transcribe,attr"`
	TranscribeCallback     string `xml:"transcribeCallback,attr"`
}

func writeTwiML(w http.ResponseWriter, t twiml) {
	w.Header().Set("Content-Type", "text/xml")
	io.WriteString(w, xml.Header)
	xml.NewEncoder(w).Encode(t)
}

// CallHandler serves POST /webhooks/twilio/voice. The first request of a
// call answers with a greeting and a <Record>; Twilio posts again to the
// same URL with ?step=done after recording, and that is answered with a
// hang-up.
func (c *Channel) CallHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		form, ok := c.read(w, r)
		if !ok {
			return
		}
		if r.URL.Query().Get("step") == "done" {
			writeTwiML(w, twiml{Hangup: &struct{}{}})
			return
		}
		callSID, from := first(form, "CallSid"), first(form, "From")
		if callSID == "" || from == "" {
			c.refuse.Refuse(w, r, refusal.Malformed, "CallSid and From are required", nil)
			return
		}
		phone, err := identity.Phone(from, c.cfg.DefaultRegion)
		if err != nil {
			// A withheld number ("anonymous") cannot become a customer:
			// say so rather than record a message nobody can answer.
			writeTwiML(w, twiml{Say: "Sorry, we cannot take messages from a withheld number. Please call again without hiding your number.", Hangup: &struct{}{}})
			return
		}
		if err := c.cfg.Store.RecordCall(context.WithoutCancel(r.Context()), callSID, phone); err != nil {
			c.refuse.Refuse(w, r, refusal.Unavailable, "the call could not be recorded; retry", fmt.Errorf("record call: %w", err), "call_sid", callSID)
			return
		}
		writeTwiML(w, twiml{Say: c.cfg.Greeting, Record: &record{
			MaxLength: c.cfg.MaxLength, Action: c.cfg.PublicURL + "/webhooks/twilio/voice?step=done",
			RecordingStatusCB: c.cfg.PublicURL + "/webhooks/twilio/recording", RecordingStatusCBEvent: "completed",
			Transcribe: true, TranscribeCallback: c.cfg.PublicURL + "/webhooks/twilio/transcription",
		}})
	})
}

// RecordingHandler serves POST /webhooks/twilio/recording: it copies the
// audio into the object store and queues the voicemail, keyed by
// RecordingSid so that Twilio's retries are stored once.
func (c *Channel) RecordingHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		form, ok := c.read(w, r)
		if !ok {
			return
		}
		sid, callSID, recURL := first(form, "RecordingSid"), first(form, "CallSid"), first(form, "RecordingUrl")
		if sid == "" || callSID == "" {
			c.refuse.Refuse(w, r, refusal.Malformed, "RecordingSid and CallSid are required", nil)
			return
		}
		if st := first(form, "RecordingStatus"); st != "" && st != "completed" {
			c.cfg.Logger.Info("voice: recording not completed", "recording_sid", sid, "status", st)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 60*time.Second)
		defer cancel()
		caller, err := c.cfg.Store.Caller(ctx, callSID)
		if err != nil {
			c.refuse.Refuse(w, r, refusal.Unavailable, "the call could not be looked up; retry", fmt.Errorf("look up caller: %w", err), "recording_sid", sid, "call_sid", callSID)
			return
		}
		if caller == "" {
			c.refuse.Refuse(w, r, refusal.Malformed, "unknown call: a recording for a call we never answered", nil, "recording_sid", sid, "call_sid", callSID)
			return
		}
		secs, _ := strconv.Atoi(first(form, "RecordingDuration"))
		meta, _ := json.Marshal(map[string]any{"call_sid": callSID, "duration": secs})
		now := c.cfg.Clock.Now()
		in := switchboard.Inbound{
			Channel: switchboard.ChannelVoice, ProviderID: sid, ContentType: switchboard.ContentAudio,
			Identities: []switchboard.IdentityRef{{Kind: switchboard.IdentityPhone, Value: caller}},
			Text:       fmt.Sprintf("Voicemail (%d s)", secs),
			Metadata:   meta, ReceivedAt: now, AcceptedAt: now,
		}
		// A RecordingUrl Twilio never sends (another host, http, an
		// internal address named directly) means a forged or misrouted
		// callback: refuse it and keep nothing. A missing one, or one
		// refused only while fetching, keeps the voicemail without audio
		// below.
		if recURL != "" {
			if err := c.cfg.Client.CheckMediaURL(recURL); err != nil {
				c.refuse.Refuse(w, r, refusal.Unprocessable, "RecordingUrl is not a Twilio recording URL: "+switchboard.ErrorMessage(err), err, "recording_sid", sid)
				return
			}
		}
		data, ctype, err := c.cfg.Client.FetchMedia(ctx, recURL, 50<<20)
		switch {
		case switchboard.IsPermanent(err):
			// Retrying cannot bring it back: keep the voicemail, say why.
			c.cfg.Logger.Warn("voice: recording cannot be fetched", "recording_sid", sid, "err", err)
			in.ContentType, in.Text = switchboard.ContentText, in.Text+": the recording could not be retrieved from Twilio"
		case err != nil:
			c.refuse.Refuse(w, r, refusal.Unavailable, "recording could not be fetched; retry", fmt.Errorf("fetch recording: %w", err), "recording_sid", sid)
			return
		default:
			if base, _, err := mime.ParseMediaType(ctype); err == nil {
				ctype = base
			}
			if !strings.HasPrefix(ctype, "audio/") {
				ctype = "audio/wav" // Twilio serves WAV unless asked for MP3
			}
			key := "media/voice/" + sid
			if err := c.cfg.Blobs.Put(ctx, key, bytes.NewReader(data), int64(len(data)), ctype); err != nil {
				c.refuse.Refuse(w, r, refusal.Unavailable, "recording could not be stored; retry", fmt.Errorf("store recording: %w", err), "recording_sid", sid)
				return
			}
			in.Attachments = []switchboard.Attachment{{Key: key, ContentType: ctype, Size: int64(len(data)), Name: sid + ".wav"}}
		}
		if err := enqueue.Inbound(ctx, c.cfg.Queue, switchboard.ChannelVoice, &in); err != nil {
			c.refuse.Refuse(w, r, refusal.Unavailable, "voicemail could not be stored; retry", fmt.Errorf("enqueue: %w", err), "recording_sid", sid)
			return
		}
		if c.cfg.OnAccepted != nil {
			c.cfg.OnAccepted()
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// TranscriptionHandler serves POST /webhooks/twilio/transcription.
func (c *Channel) TranscriptionHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		form, ok := c.read(w, r)
		if !ok {
			return
		}
		sid := first(form, "RecordingSid")
		if sid == "" {
			c.refuse.Refuse(w, r, refusal.Malformed, "RecordingSid is required", nil)
			return
		}
		text := strings.TrimSpace(first(form, "TranscriptionText"))
		if first(form, "TranscriptionStatus") != "completed" || text == "" {
			text = NoTranscript
		}
		if err := c.cfg.Store.AttachTranscript(context.WithoutCancel(r.Context()), switchboard.ChannelVoice, sid, text); err != nil {
			c.refuse.Refuse(w, r, refusal.Unavailable, "the transcript could not be stored; retry", fmt.Errorf("attach transcript: %w", err), "recording_sid", sid)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func first(form map[string][]string, key string) string {
	if v := form[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}
