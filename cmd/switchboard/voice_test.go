package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/twilio"
	"github.com/switchboard-inbox/switchboard/channel/voice"
)

// TestVoicemail: a caller known from the web form leaves two voicemails;
// the audio lands in their conversation with its transcript whether the
// transcription callback comes before or after the recording, and a failed
// transcription says so.
func TestVoicemail(t *testing.T) {
	wav := append([]byte("RIFF\x24\x00\x00\x00WAVEfmt "), bytes.Repeat([]byte{0}, 200)...)
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != testSID || p != testToken {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"code":20003,"message":"Authenticate","status":401}`)
			return
		}
		if !strings.HasPrefix(r.URL.Path, "/2010-04-01/Accounts/"+testSID+"/Recordings/RE") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "audio/x-wav")
		w.Write(wav)
	}))
	defer api.Close()

	addr := freeAddr(t)
	stored := make(chan int, 100)
	m := &Main{Config: Config{
		Addr: addr, PublicURL: "http://" + addr, DataDir: t.TempDir(), LogLevel: "warn", LogFormat: "text", IngestBatch: 64, OutboxMaxAttempts: 3,
		TwilioAccountSID: testSID, TwilioAuthToken: testToken, TwilioAPIURL: api.URL, TwilioFrom: ourNumber, PhoneRegion: "US",
		VoiceGreeting: "Hello from the test",
	}}
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	m.ProviderHTTP = api.Client()
	m.OnStored = func(_ []switchboard.Inbound, res []switchboard.IngestResult) { stored <- len(res) }
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	wait := func() {
		t.Helper()
		select {
		case <-stored:
		case <-time.After(10 * time.Second):
			t.Fatal("nothing stored within 10s")
		}
	}
	post := func(path string, form url.Values, sign bool) (int, string) {
		t.Helper()
		u := "http://" + addr + path
		req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		sig := "bad"
		if sign {
			sig = twilio.Sign(testToken, u, form)
		}
		req.Header.Set(twilio.SignatureHeader, sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	form, _ := json.Marshal(map[string]string{"name": "Ana", "email": "ana@example.com", "phone": "+14155550123", "message": "Order #1042?"})
	if resp, err := http.Post(m.URL()+"/forms/contact", "application/json", bytes.NewReader(form)); err != nil || resp.StatusCode != 202 {
		t.Fatalf("form: %v %v", resp, err)
	}
	wait()

	call := func(callSID string) {
		t.Helper()
		code, body := post("/webhooks/twilio/voice", url.Values{"CallSid": {callSID}, "From": {"+14155550123"}, "To": {ourNumber},
			"CallStatus": {"ringing"}, "Direction": {"inbound"}, "AccountSid": {testSID}}, true)
		if code != 200 || !strings.Contains(body, "<Say>Hello from the test</Say>") || !strings.Contains(body, `transcribe="true"`) ||
			!strings.Contains(body, `recordingStatusCallback="http://`+addr+`/webhooks/twilio/recording"`) {
			t.Fatalf("voice answer: %d %s", code, body)
		}
	}
	recording := func(callSID, sid string) {
		t.Helper()
		code, _ := post("/webhooks/twilio/recording", url.Values{"CallSid": {callSID}, "RecordingSid": {sid}, "RecordingStatus": {"completed"},
			"RecordingDuration": {"12"}, "RecordingUrl": {api.URL + "/2010-04-01/Accounts/" + testSID + "/Recordings/" + sid}, "AccountSid": {testSID}}, true)
		if code != 204 {
			t.Fatalf("recording callback: %d", code)
		}
	}
	transcription := func(sid, status, text string) {
		t.Helper()
		code, _ := post("/webhooks/twilio/transcription", url.Values{"RecordingSid": {sid}, "TranscriptionSid": {"TR" + sid[2:]},
			"TranscriptionStatus": {status}, "TranscriptionText": {text}, "From": {"+14155550123"}, "AccountSid": {testSID}}, true)
		if code != 204 {
			t.Fatalf("transcription callback: %d", code)
		}
	}
	if code, _ := post("/webhooks/twilio/voice", url.Values{"CallSid": {"CA1"}, "From": {"+14155550123"}}, false); code != 403 {
		t.Fatalf("unsigned call webhook: %d", code)
	}

	call("CA1")
	transcription("RE1", "completed", "Hi, please call me back about my parcel.")
	recording("CA1", "RE1")
	wait()
	recording("CA1", "RE1") // Twilio retrying
	wait()
	call("CA2")
	recording("CA2", "RE2")
	wait()
	transcription("RE2", "failed", "")

	// The form only claimed the phone: merged by a supervisor, one thread.
	mergeClaimed(t, m, "ana@example.com", "+14155550123")
	convs, _, _ := storeOf(t, m).ListConversations(context.Background(), switchboard.ConversationFilter{Status: switchboard.StatusOpen})
	if len(convs) != 1 {
		t.Fatalf("%d open conversations, want the form and the voicemails in one", len(convs))
	}
	msgs, _, _ := storeOf(t, m).Timeline(context.Background(), convs[0].CustomerID, "", 1000)
	got := map[string]switchboard.Message{}
	for _, msg := range msgs {
		got[msg.ProviderID] = msg
	}
	if len(msgs) != 3 {
		t.Fatalf("%d messages, want the form and two voicemails", len(msgs))
	}
	for sid, want := range map[string]string{"RE1": "Hi, please call me back about my parcel.", "RE2": voice.NoTranscript} {
		v := got[sid]
		if v.Channel != switchboard.ChannelVoice || v.ContentType != switchboard.ContentAudio || len(v.Attachments) != 1 ||
			v.Attachments[0].Transcript != want || v.Attachments[0].Size != int64(len(wav)) || !strings.HasPrefix(v.Attachments[0].ContentType, "audio/") {
			t.Fatalf("voicemail %s: %+v", sid, v)
		}
	}
}
