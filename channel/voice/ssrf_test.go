package voice

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/switchboard-inbox/switchboard/channel/fetch/fetchtest"
	"github.com/switchboard-inbox/switchboard/channel/refusal"
	"github.com/switchboard-inbox/switchboard/channel/twilio"
)

type knownCaller struct{ memStore }

func (*knownCaller) Caller(context.Context, string) (string, error) { return "+14155550123", nil }

// TestRecordingURLStaysWithTwilio: a signed recording callback naming an
// internal service is refused with a reason and nothing is fetched or
// kept; a Twilio URL that redirects to one keeps the voicemail without its
// audio, as any recording that cannot be fetched; the configured API's
// own recording is stored.
func TestRecordingURLStaysWithTwilio(t *testing.T) {
	internal := fetchtest.NewInternal(t, "audio/x-wav")
	wav := []byte("RIFF\x24\x00\x00\x00WAVEfmt the caller's message")
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, internal.TLS.URL+"/latest/meta-data/", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "audio/x-wav")
		w.Write(wav)
	}))
	defer api.Close()

	sink := fetchtest.NewSink(t)
	c := New(Config{AuthToken: token, PublicURL: base, DefaultRegion: "US", Queue: sink.Queue, Blobs: sink.Blobs,
		Store:  &knownCaller{memStore{calls: map[string]string{}, transcripts: map[string]string{}}},
		Client: &twilio.Client{BaseURL: api.URL, AccountSID: "AC1", AuthToken: token, HTTP: api.Client()},
	})
	post := func(sid, recURL string) (int, refusal.Body) {
		t.Helper()
		w := serve(c.RecordingHandler(), "/webhooks/twilio/recording", url.Values{"CallSid": {"CA1"}, "RecordingSid": {sid},
			"RecordingStatus": {"completed"}, "RecordingDuration": {"7"}, "RecordingUrl": {recURL}})
		var b refusal.Body
		json.Unmarshal(w.Body.Bytes(), &b)
		return w.Code, b
	}
	for _, u := range []string{internal.TLS.URL + "/latest/meta-data/", internal.Plain.URL + "/admin", "http://169.254.169.254/latest/meta-data/"} {
		code, b := post("RE1", u)
		if code != http.StatusUnprocessableEntity || b.Error.Code != refusal.Unprocessable || !strings.Contains(b.Error.Message, "RecordingUrl is not a Twilio recording URL") {
			t.Fatalf("%s: %d %+v", u, code, b)
		}
	}
	if code, _ := post("RE2", api.URL+"/redirect"); code != http.StatusNoContent {
		t.Fatalf("redirected recording: %d", code)
	}
	if code, _ := post("RE3", api.URL+"/2010-04-01/Accounts/AC1/Recordings/RE3"); code != http.StatusNoContent {
		t.Fatalf("recording: %d", code)
	}

	got := sink.Queued(t)
	if len(got) != 2 {
		t.Fatalf("queued %d voicemails, want RE2 and RE3 only", len(got))
	}
	if in := got["RE2"]; len(in.Attachments) != 0 || !strings.Contains(in.Text, "could not be retrieved") {
		t.Errorf("redirected recording: %+v", in)
	}
	if in := got["RE3"]; len(in.Attachments) != 1 || in.Attachments[0].Size != int64(len(wav)) {
		t.Errorf("recording: %+v", in)
	}
	sink.Untouched(t, internal)
}
