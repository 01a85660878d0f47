package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/meta"
	"github.com/switchboard-inbox/switchboard/channel/meta/metatest"
	"github.com/switchboard-inbox/switchboard/channel/twilio"
	"github.com/switchboard-inbox/switchboard/channel/twilio/twiliotest"
)

// internalSecret is what an internal service answers; it must never be
// stored.
const internalSecret = "internal-service-secret-3f9a1c"

// internalService stands for what lives beside Switchboard (cloud
// metadata, an admin API): TLS, with the stand-ins' certificate, so that
// only the fetch policy, not a certificate error, keeps it out of reach.
// It counts the requests that reached it.
func internalService(t *testing.T) (tlsURL, plainURL string, hits *atomic.Int32) {
	t.Helper()
	hits = &atomic.Int32{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "image/png")
		io.WriteString(w, internalSecret)
	})
	ts, plain := httptest.NewTLSServer(h), httptest.NewServer(h)
	t.Cleanup(func() { ts.Close(); plain.Close() })
	return ts.URL, plain.URL, hits
}

// secretStoredIn reports the files under dir holding internalSecret: the
// object store, the database and the queue all live there.
func secretStoredIn(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(internalSecret)) {
				found = append(found, p)
			}
		}
		return nil
	})
	return found
}

// TestMediaFetchesStayWithProviders: signed webhooks that name an
// internal service as their media, through the real Main. A recording
// callback or an MMS naming it directly is refused with 422 and a reason,
// and nothing of it is stored; a Twilio URL that redirects there keeps
// the voicemail without audio (as any recording that cannot be fetched);
// a Messenger attachment pointing there is dropped and its message kept
// (Meta batches events, and a refusal would have it redeliver the batch).
// The internal service is never reached and its answer never stored,
// while the configured stand-ins' media still arrive.
func TestMediaFetchesStayWithProviders(t *testing.T) {
	internalTLS, internalPlain, hits := internalService(t)
	fakeTwilio := twiliotest.New(testSID, testToken)
	mux := http.NewServeMux()
	mux.Handle("/", fakeTwilio.Handler())
	// A Twilio URL that redirects inside, as a compromised CDN answer might.
	mux.HandleFunc("/redirect/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, internalTLS+"/latest/meta-data/", http.StatusFound)
	})
	twilioTS := httptest.NewTLSServer(mux)
	fakeTwilio.SetBaseURL(twilioTS.URL)
	t.Cleanup(func() { fakeTwilio.Close(); twilioTS.Close() })
	graph := metatest.New(metaSecret, metaToken)
	graphTS := httptest.NewServer(graph.Handler())
	graph.SetBaseURL(graphTS.URL)
	t.Cleanup(func() { graph.Close(); graphTS.Close() })

	addr := freeAddr(t)
	stored := make(chan int, 100)
	m := &Main{Config: Config{MetricsToken: "ops",
		Addr: addr, PublicURL: "http://" + addr, DataDir: t.TempDir(), LogLevel: "warn", LogFormat: "text", IngestBatch: 64, OutboxMaxAttempts: 3,
		TwilioAccountSID: testSID, TwilioAuthToken: testToken, TwilioAPIURL: twilioTS.URL, TwilioFrom: ourNumber, PhoneRegion: "US",
		MetaAppSecret: metaSecret, MetaVerifyToken: metaVerify, MetaAccessToken: metaToken, GraphAPIURL: graphTS.URL,
	}}
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	m.ProviderHTTP = twilioTS.Client() // trusts the internal service's certificate too
	m.OnStored = func(_ []switchboard.Inbound, res []switchboard.IngestResult) { stored <- len(res) }
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	wait := func() {
		t.Helper()
		select {
		case <-stored:
		case <-time.After(10 * time.Second):
			t.Fatal("nothing stored within 10s")
		}
	}
	type answer struct {
		code int
		body struct {
			Error struct{ Code, Message string }
		}
	}
	postTwilio := func(path string, form url.Values) answer {
		t.Helper()
		u := m.URL() + path
		req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set(twilio.SignatureHeader, twilio.Sign(testToken, u, form))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		a := answer{code: resp.StatusCode}
		json.NewDecoder(resp.Body).Decode(&a.body)
		return a
	}
	recording := func(sid, recURL string) answer {
		t.Helper()
		return postTwilio("/webhooks/twilio/recording", url.Values{"CallSid": {"CA1"}, "RecordingSid": {sid}, "RecordingStatus": {"completed"},
			"RecordingDuration": {"7"}, "RecordingUrl": {recURL}, "AccountSid": {testSID}})
	}

	if a := postTwilio("/webhooks/twilio/voice", url.Values{"CallSid": {"CA1"}, "From": {"+14155550123"}, "To": {ourNumber}, "AccountSid": {testSID}}); a.code != 200 {
		t.Fatalf("call: %d", a.code)
	}
	// Named directly: refused, saying why.
	for _, u := range []string{internalTLS + "/latest/meta-data/", internalPlain + "/admin", "http://169.254.169.254/latest/meta-data/"} {
		a := recording("RE1", u)
		if a.code != http.StatusUnprocessableEntity || a.body.Error.Code != "unprocessable" ||
			!strings.Contains(a.body.Error.Message, "RecordingUrl is not a Twilio recording URL") {
			t.Fatalf("recording at %s: %d %+v", u, a.code, a.body)
		}
	}
	// Redirected there from Twilio's side: the voicemail without audio.
	if a := recording("RE2", twilioTS.URL+"/redirect/2010-04-01/Accounts/"+testSID+"/Recordings/RE2"); a.code != http.StatusNoContent {
		t.Fatalf("redirected recording: %d %+v", a.code, a.body)
	}
	wait()
	// The stand-in's own recording arrives.
	wav := append([]byte("RIFF\x24\x00\x00\x00WAVEfmt "), bytes.Repeat([]byte{7}, 64)...)
	recSID, recURL := fakeTwilio.AddRecording(wav)
	if a := recording(recSID, recURL); a.code != http.StatusNoContent {
		t.Fatalf("recording: %d %+v", a.code, a.body)
	}
	wait()

	// An MMS whose MediaUrl0 names the internal service, signed.
	wh, err := fakeTwilio.InboundWebhook(m.URL()+"/webhooks/twilio/sms", twiliotest.Inbound{From: "+14155550123", To: ourNumber, Body: "photo",
		Media: []twiliotest.MediaFile{{ContentType: "image/png", Data: []byte("\x89PNG\r\n\x1a\n")}}})
	if err != nil {
		t.Fatal(err)
	}
	wh.Form.Set("MediaUrl0", internalTLS+"/secret.png")
	wh.Signature = twilio.Sign(testToken, wh.URL, wh.Form)
	resp, err := fakeTwilio.SendWebhook(ctx, http.DefaultClient, wh)
	if err != nil {
		t.Fatal(err)
	}
	var mms answer
	json.NewDecoder(resp.Body).Decode(&mms.body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(mms.body.Error.Message, "MediaUrl0 is not a Twilio media URL") {
		t.Fatalf("MMS: %d %+v", resp.StatusCode, mms.body)
	}

	// A Messenger attachment pointing there, beside a text in the batch.
	mBody := fmt.Sprintf(`{"object":"page","entry":[{"id":"1067280970047460","time":1749416383512,"messaging":[{"sender":{"id":"6922891234567890"},"recipient":{"id":"1067280970047460"},"timestamp":1749416383201,"message":{"mid":"m_SSRF1","text":"look","attachments":[{"type":"image","payload":{"url":%q}}]}}]}]}`,
		internalTLS+"/secret.jpg")
	req, _ := http.NewRequest("POST", m.URL()+"/webhooks/meta", strings.NewReader(mBody))
	req.Header.Set(meta.SignatureHeader, meta.Sign(metaSecret, []byte(mBody)))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("Messenger: %v %v", resp, err)
	}
	wait()

	if n := hits.Load(); n != 0 {
		t.Fatalf("the internal service was reached %d times", n)
	}
	if files := secretStoredIn(t, m.Config.DataDir); len(files) != 0 {
		t.Fatalf("the internal service's answer was stored in %v", files)
	}
	convs, _, err := storeOf(t, m).ListConversations(ctx, switchboard.ConversationFilter{Limit: 10})
	if err != nil || len(convs) != 2 {
		t.Fatalf("conversations: %d %v; want the caller's and the Messenger customer's", len(convs), err)
	}
	byID := map[string]switchboard.Message{}
	for _, c := range convs {
		msgs, _, _ := storeOf(t, m).Timeline(ctx, c.CustomerID, "", 1000)
		for _, msg := range msgs {
			byID[msg.ProviderID] = msg
		}
	}
	if len(byID) != 3 {
		t.Fatalf("stored %v; want RE2, the stand-in's recording and m_SSRF1 only", byID)
	}
	if v := byID["RE2"]; len(v.Attachments) != 0 || !strings.Contains(v.Text, "could not be retrieved") {
		t.Fatalf("redirected voicemail: %+v", v)
	}
	if v := byID[recSID]; len(v.Attachments) != 1 || v.Attachments[0].Size != int64(len(wav)) {
		t.Fatalf("voicemail: %+v", v)
	}
	if v := byID["m_SSRF1"]; len(v.Attachments) != 0 || v.Text != "look" {
		t.Fatalf("Messenger message: %+v", v)
	}
	req, _ = http.NewRequest("GET", m.URL()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer ops")
	metrics, _ := http.DefaultClient.Do(req)
	mb, _ := io.ReadAll(metrics.Body)
	metrics.Body.Close()
	for _, want := range []string{
		`switchboard_rejected_total{channel="voice",reason="unprocessable"} 3`,
		`switchboard_rejected_total{channel="sms",reason="unprocessable"} 1`,
	} {
		if !bytes.Contains(mb, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestBinaryRefusesInternalRecordingURL: the built binary, configured
// through its environment against a plain-http Twilio stand-in, answers a
// signed recording callback naming an internal service with 422 and never
// reaches it, and still fetches the stand-in's own recording.
func TestBinaryRefusesInternalRecordingURL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process; skipped with -short")
	}
	_, internalPlain, hits := internalService(t)
	fakeTwilio := twiliotest.New(testSID, testToken)
	api := httptest.NewServer(fakeTwilio.Handler())
	fakeTwilio.SetBaseURL(api.URL)
	t.Cleanup(func() { fakeTwilio.Close(); api.Close() })
	addr, dir := freeAddr(t), t.TempDir()
	c := startServe(t, addr, []string{
		"SWITCHBOARD_DATA_DIR=" + dir, "SWITCHBOARD_PUBLIC_URL=http://" + addr,
		"SWITCHBOARD_TWILIO_ACCOUNT_SID=" + testSID, "SWITCHBOARD_TWILIO_AUTH_TOKEN=" + testToken,
		"SWITCHBOARD_TWILIO_API_URL=" + api.URL, "SWITCHBOARD_TWILIO_FROM=" + ourNumber,
	})
	post := func(path string, form url.Values) (int, string) {
		t.Helper()
		u := "http://" + addr + path
		req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set(twilio.SignatureHeader, twilio.Sign(testToken, u, form))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("/webhooks/twilio/voice", url.Values{"CallSid": {"CA1"}, "From": {"+14155550123"}, "To": {ourNumber}}); code != 200 {
		t.Fatalf("call: %d %s", code, body)
	}
	code, body := post("/webhooks/twilio/recording", url.Values{"CallSid": {"CA1"}, "RecordingSid": {"RE1"}, "RecordingStatus": {"completed"},
		"RecordingDuration": {"7"}, "RecordingUrl": {internalPlain + "/latest/meta-data/"}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, `"code":"unprocessable"`) || !strings.Contains(body, "refused by the host rule") {
		t.Fatalf("recording naming an internal service: %d %s", code, body)
	}
	recSID, recURL := fakeTwilio.AddRecording([]byte("RIFF\x24\x00\x00\x00WAVEfmt a recording"))
	if code, body := post("/webhooks/twilio/recording", url.Values{"CallSid": {"CA1"}, "RecordingSid": {recSID}, "RecordingStatus": {"completed"},
		"RecordingDuration": {"7"}, "RecordingUrl": {recURL}}); code != http.StatusNoContent {
		t.Fatalf("recording from the stand-in: %d %s", code, body)
	}
	for deadline := time.Now().Add(10 * time.Second); c.queueDepth() != 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the voicemail was not stored within 10s")
		}
	}
	c.stop()
	if n := hits.Load(); n != 0 {
		t.Fatalf("the internal service was reached %d times", n)
	}
	if files := secretStoredIn(t, dir); len(files) != 0 {
		t.Fatalf("the internal service's answer was stored in %v", files)
	}
}
