package voice

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/refusal"
	"github.com/switchboard-inbox/switchboard/channel/twilio"
)

const (
	token = "test_auth_token_0123456789abcdef"
	base  = "https://switchboard.example.com"
)

// memStore records what the handlers store; Caller knows no call, so the
// recording handler never reaches out for audio.
type memStore struct {
	mu          sync.Mutex
	calls       map[string]string
	transcripts map[string]string
}

func (s *memStore) RecordCall(_ context.Context, sid, caller string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[sid] = caller
	return nil
}
func (s *memStore) Caller(context.Context, string) (string, error) { return "", nil }
func (s *memStore) AttachTranscript(_ context.Context, _ switchboard.Channel, id, text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.transcripts[id] = text
	return nil
}

func serve(h http.Handler, path string, form url.Values) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set(twilio.SignatureHeader, twilio.Sign(token, base+path, form))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// FuzzHandlers signs arbitrary forms correctly and feeds them to every
// voice webhook: each answers a status below 500 or a retryable 503,
// never panics, and stores only what it validated.
func FuzzHandlers(f *testing.F) {
	f.Add("CallSid=CA1&From=%2B14155550123&To=%2B14155550100")
	f.Add("CallSid=CA1&From=anonymous")
	f.Add("RecordingSid=RE1&CallSid=CA1&RecordingStatus=completed&RecordingUrl=https%3A%2F%2Fapi.twilio.com%2Fx")
	f.Add("RecordingSid=RE1&TranscriptionStatus=completed&TranscriptionText=hello")
	f.Add("RecordingSid=&TranscriptionStatus=failed")
	f.Fuzz(func(t *testing.T, raw string) {
		form, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		st := &memStore{calls: map[string]string{}, transcripts: map[string]string{}}
		c := New(Config{AuthToken: token, PublicURL: base, Store: st, DefaultRegion: "US"})
		for path, h := range map[string]http.Handler{
			"/webhooks/twilio/voice":         c.CallHandler(),
			"/webhooks/twilio/recording":     c.RecordingHandler(),
			"/webhooks/twilio/transcription": c.TranscriptionHandler(),
		} {
			if w := serve(h, path, form); w.Code >= 500 && w.Code != http.StatusServiceUnavailable {
				t.Fatalf("%s: status %d", path, w.Code)
			}
		}
		for sid, caller := range st.calls {
			if sid == "" || !strings.HasPrefix(caller, "+") {
				t.Fatalf("stored call %q from %q", sid, caller)
			}
		}
		if _, ok := st.transcripts[""]; ok {
			t.Fatal("stored a transcript without a RecordingSid")
		}
	})
}

func TestUnsignedRefused(t *testing.T) {
	c := New(Config{AuthToken: token, PublicURL: base, Store: &memStore{calls: map[string]string{}, transcripts: map[string]string{}}})
	r := httptest.NewRequest(http.MethodPost, "/webhooks/twilio/voice", strings.NewReader("CallSid=CA1&From=%2B14155550123"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	c.CallHandler().ServeHTTP(w, r)
	if w.Code != http.StatusForbidden {
		t.Fatalf("unsigned call: %d", w.Code)
	}
}

type failingStore struct{ memStore }

func (*failingStore) RecordCall(context.Context, string, string) error {
	return errors.New("database down")
}

// TestRefusals: every refusal answers the one JSON shape, not plain text,
// with the code it is counted under.
func TestRefusals(t *testing.T) {
	var counted []refusal.Code
	c := New(Config{AuthToken: token, PublicURL: base, DefaultRegion: "US", Store: &failingStore{},
		OnRejected: func(code refusal.Code) { counted = append(counted, code) }})
	unsigned := func(path string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader("CallSid=CA1"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
	signed := func(path string, form url.Values) *http.Request {
		r := unsigned(path)
		r.Body = io.NopCloser(strings.NewReader(form.Encode()))
		r.Header.Set(twilio.SignatureHeader, twilio.Sign(token, base+path, form))
		return r
	}
	const call, rec, tr = "/webhooks/twilio/voice", "/webhooks/twilio/recording", "/webhooks/twilio/transcription"
	tests := []struct {
		name string
		h    http.Handler
		r    *http.Request
		want refusal.Code
	}{
		{"unsigned call", c.CallHandler(), unsigned(call), refusal.BadSignature},
		{"unsigned recording", c.RecordingHandler(), unsigned(rec), refusal.BadSignature},
		{"unsigned transcription", c.TranscriptionHandler(), unsigned(tr), refusal.BadSignature},
		{"oversized", c.CallHandler(), signed(call, url.Values{"CallSid": {strings.Repeat("x", 70<<10)}}), refusal.TooLarge},
		{"call without From", c.CallHandler(), signed(call, url.Values{"CallSid": {"CA1"}}), refusal.Malformed},
		{"call not recorded", c.CallHandler(), signed(call, url.Values{"CallSid": {"CA1"}, "From": {"+14155550123"}}), refusal.Unavailable},
		{"recording without CallSid", c.RecordingHandler(), signed(rec, url.Values{"RecordingSid": {"RE1"}}), refusal.Malformed},
		{"recording of an unknown call", c.RecordingHandler(), signed(rec, url.Values{"RecordingSid": {"RE1"}, "CallSid": {"CA9"}}), refusal.Malformed},
		{"transcription without RecordingSid", c.TranscriptionHandler(), signed(tr, url.Values{"TranscriptionText": {"hi"}}), refusal.Malformed},
	}
	for _, tt := range tests {
		counted = nil
		w := httptest.NewRecorder()
		tt.h.ServeHTTP(w, tt.r)
		var b refusal.Body
		if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: answer %d %q is not the refusal shape: %v", tt.name, w.Code, w.Body, err)
			continue
		}
		if w.Code != tt.want.Status() || b.Error.Code != tt.want || len(counted) != 1 || counted[0] != tt.want {
			t.Errorf("%s: answer %d %q counted %v, want %s", tt.name, w.Code, w.Body, counted, tt.want)
		}
	}
}
