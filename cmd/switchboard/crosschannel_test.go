package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/meta"
	"github.com/switchboard-inbox/switchboard/channel/twilio"
	"github.com/switchboard-inbox/switchboard/channel/twilio/twiliotest"
)

// TestOnePhoneThreeChannels is the channels issue's promise: the same
// phone number writing by SMS, then by WhatsApp, then leaving a voicemail
// is one customer with one open conversation and three messages, each on
// its channel; the voicemail's audio is in the object store with its
// transcript.
func TestOnePhoneThreeChannels(t *testing.T) {
	fakeTwilio := twiliotest.New(testSID, testToken)
	twilioTS := httptest.NewTLSServer(fakeTwilio.Handler())
	fakeTwilio.SetBaseURL(twilioTS.URL)
	defer twilioTS.Close()
	defer fakeTwilio.Close()
	// Twilio keeps the recording and names it in the callback.
	wav := append([]byte("RIFF\x24\x00\x00\x00WAVEfmt "), bytes.Repeat([]byte{1}, 64)...)
	recSID, recURL := fakeTwilio.AddRecording(wav)

	addr := freeAddr(t)
	stored := make(chan int, 100)
	m := &Main{Config: Config{
		Addr: addr, PublicURL: "http://" + addr, DataDir: t.TempDir(), LogLevel: "warn", LogFormat: "text", IngestBatch: 64, OutboxMaxAttempts: 3,
		TwilioAccountSID: testSID, TwilioAuthToken: testToken, TwilioAPIURL: twilioTS.URL, TwilioFrom: ourNumber, PhoneRegion: "US",
		MetaAppSecret: metaSecret, MetaVerifyToken: metaVerify,
	}}
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	m.ProviderHTTP = twilioTS.Client()
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
	signedForm := func(path string, form url.Values) int {
		t.Helper()
		u := "http://" + addr + path
		req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set(twilio.SignatureHeader, twilio.Sign(testToken, u, form))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	// Monday: an SMS.
	resp, err := fakeTwilio.SendInbound(ctx, http.DefaultClient, m.URL()+"/webhooks/twilio/sms", twiliotest.Inbound{From: "+16505551234", To: ourNumber, Body: "Where is my parcel?"})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("SMS: %v %v", resp, err)
	}
	resp.Body.Close()
	wait()
	// Wednesday: WhatsApp from the same number.
	body := waBody("wamid.X1", "16505551234", "Sheena", `{"from":"16505551234","id":"WAMID","timestamp":"`+
		strconvUnix(time.Now())+`","type":"text","text":{"body":"Any update?"}}`)
	req, _ := http.NewRequest("POST", m.URL()+"/webhooks/meta", strings.NewReader(body))
	req.Header.Set(meta.SignatureHeader, meta.Sign(metaSecret, []byte(body)))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("WhatsApp: %v %v", resp, err)
	}
	wait()
	// Friday: a voicemail, transcribed.
	if code := signedForm("/webhooks/twilio/voice", url.Values{"CallSid": {"CA9"}, "From": {"+16505551234"}, "To": {ourNumber}}); code != 200 {
		t.Fatalf("call: %d", code)
	}
	if code := signedForm("/webhooks/twilio/recording", url.Values{"CallSid": {"CA9"}, "RecordingSid": {recSID}, "RecordingStatus": {"completed"},
		"RecordingDuration": {"7"}, "RecordingUrl": {recURL}}); code != 204 {
		t.Fatalf("recording: %d", code)
	}
	wait()
	if code := signedForm("/webhooks/twilio/transcription", url.Values{"RecordingSid": {recSID}, "TranscriptionStatus": {"completed"},
		"TranscriptionText": {"It's Sheena, call me back."}}); code != 204 {
		t.Fatalf("transcription: %d", code)
	}

	convs, _, err := storeOf(t, m).ListConversations(ctx, switchboard.ConversationFilter{})
	if err != nil || len(convs) != 1 || convs[0].Status != switchboard.StatusOpen {
		t.Fatalf("conversations: %+v %v; want one open", convs, err)
	}
	msgs, _, _ := storeOf(t, m).Timeline(ctx, convs[0].CustomerID, "", 1000)
	// WhatsApp stamps messages to the second, so within one second the
	// timeline's order may differ from the order of arrival; check the set.
	byChannel := map[switchboard.Channel]switchboard.Message{}
	for _, msg := range msgs {
		byChannel[msg.Channel] = msg
	}
	if len(msgs) != 3 || len(byChannel) != 3 || byChannel[switchboard.ChannelSMS].Text != "Where is my parcel?" ||
		byChannel[switchboard.ChannelWhatsApp].Text != "Any update?" {
		t.Fatalf("messages: %+v; want one each on sms, whatsapp and voice", msgs)
	}
	vm := byChannel[switchboard.ChannelVoice]
	if len(vm.Attachments) != 1 || vm.Attachments[0].Transcript != "It's Sheena, call me back." {
		t.Fatalf("voicemail: %+v", vm)
	}
	rc, info, err := m.Blobs.Get(ctx, vm.Attachments[0].Key)
	if err != nil {
		t.Fatalf("voicemail audio not in the object store: %v", err)
	}
	audio, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(audio, wav) || !strings.HasPrefix(info.ContentType, "audio/") {
		t.Fatalf("stored audio: %d bytes, %s", len(audio), info.ContentType)
	}
	cust, _ := storeOf(t, m).GetCustomer(ctx, convs[0].CustomerID)
	if len(cust.Identities) != 1 || cust.Identities[0].Value != "+16505551234" {
		t.Fatalf("customer identities: %v; want the one phone number", cust.Identities)
	}
}

func strconvUnix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }
