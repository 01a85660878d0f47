package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/twilio/twiliotest"
)

const (
	testSID   = "AC0123456789abcdef0123456789abcdef"
	testToken = "test_auth_token_0123456789abcdef"
	ourNumber = "+14155550100"
)

// smsEnv runs a real Switchboard (embedded) against the local Twilio
// stand-in, which serves over TLS as Twilio does.
type smsEnv struct {
	t      *testing.T
	m      *Main
	twilio *twiliotest.Server
	ts     *httptest.Server
	token  string
	stored chan int
}

func newSMSEnv(t *testing.T) *smsEnv {
	t.Helper()
	e := &smsEnv{t: t, stored: make(chan int, 100)}
	e.twilio = twiliotest.New(testSID, testToken)
	e.ts = httptest.NewTLSServer(e.twilio.Handler())
	e.twilio.SetBaseURL(e.ts.URL)
	t.Cleanup(func() { e.twilio.Close(); e.ts.Close() })

	addr := freeAddr(t)
	e.m = &Main{Config: Config{
		Addr: addr, PublicURL: "http://" + addr, DataDir: t.TempDir(), LogLevel: "warn", LogFormat: "text",
		IngestBatch: 64, OutboxMaxAttempts: 3, FormRatePerMinute: 0,
		TwilioAccountSID: testSID, TwilioAuthToken: testToken, TwilioAPIURL: e.ts.URL, TwilioFrom: ourNumber, PhoneRegion: "US",
	}}
	e.m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	e.m.ProviderHTTP = e.ts.Client()
	e.m.OnStored = func(_ []switchboard.Inbound, res []switchboard.IngestResult) { e.stored <- len(res) }
	if err := e.m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.m.Close() })
	_, e.token = addAgent(t, e.m, switchboard.Agent{Name: "Sam", Email: "sam@team.example"})
	return e
}

func (e *smsEnv) waitStored() {
	e.t.Helper()
	select {
	case <-e.stored:
	case <-time.After(10 * time.Second):
		e.t.Fatal("nothing was stored within 10s")
	}
}

func (e *smsEnv) sms(from, body string, media ...twiliotest.MediaFile) (twiliotest.Webhook, int) {
	e.t.Helper()
	wh, err := e.twilio.InboundWebhook(e.m.URL()+"/webhooks/twilio/sms", twiliotest.Inbound{From: from, To: ourNumber, Body: body, Media: media})
	if err != nil {
		e.t.Fatal(err)
	}
	return wh, e.send(wh)
}

func (e *smsEnv) send(wh twiliotest.Webhook) int {
	e.t.Helper()
	resp, err := e.twilio.SendWebhook(context.Background(), http.DefaultClient, wh)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (e *smsEnv) api(method, path string, body any, out any) int {
	e.t.Helper()
	return callAPI(e.t, e.m.URL(), e.token, method, path, body, out)
}

type convJSON struct {
	ID       string   `json:"id"`
	Channels []string `json:"channels"`
	Messages []struct {
		ID, Channel, Text, Status, Error string
		Attachments                      []struct {
			URL         string `json:"url"`
			ContentType string `json:"content_type"`
		}
	} `json:"messages"`
}

func (e *smsEnv) conversation() convJSON {
	e.t.Helper()
	var list struct{ Conversations []convJSON }
	e.api("GET", "/api/v1/conversations?status=open", nil, &list)
	if len(list.Conversations) != 1 {
		e.t.Fatalf("%d open conversations, want 1", len(list.Conversations))
	}
	var c convJSON
	e.api("GET", "/api/v1/conversations/"+list.Conversations[0].ID, nil, &c)
	return c
}

// TestSMSEndToEnd: a web-form customer texts from the phone the form
// gave, with a photo, and is merged in by a supervisor; a retry is stored
// once; a forged request is refused; the agent's
// reply goes out through the stand-in and its delivery reports arrive;
// STOP blocks SMS replies before any call to Twilio and START lifts it.
func TestSMSEndToEnd(t *testing.T) {
	e := newSMSEnv(t)
	form, _ := json.Marshal(map[string]string{"name": "Ana", "email": "ana@example.com", "phone": "(415) 555-0123", "message": "Order #1042?"})
	resp, err := http.Post(e.m.URL()+"/forms/contact", "application/json", bytes.NewReader(form))
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("form post: %v %v", resp, err)
	}
	e.waitStored()

	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{1}, 300)...)
	wh, code := e.sms("+14155550123", "Here is the broken lid", twiliotest.MediaFile{ContentType: "image/png", Data: png})
	if code != http.StatusOK {
		t.Fatalf("inbound SMS: status %d", code)
	}
	e.waitStored()
	if code := e.send(wh); code != http.StatusOK { // Twilio retrying the same MessageSid
		t.Fatalf("retry: status %d", code)
	}
	e.waitStored()
	if code := e.send(wh.WithBadSignature()); code != http.StatusForbidden {
		t.Fatalf("forged signature: status %d, want 403", code)
	}
	// The form only claimed the phone: the SMS is another customer until a
	// supervisor merges them.
	mergeClaimed(t, e.m, "ana@example.com", "+14155550123")

	c := e.conversation()
	if len(c.Messages) != 2 || strings.Join(c.Channels, ",") != "sms,webform" {
		t.Fatalf("conversation: %d messages on %v; want the form and one SMS in one thread", len(c.Messages), c.Channels)
	}
	smsMsg := c.Messages[1]
	if smsMsg.Channel != "sms" || smsMsg.Text != "Here is the broken lid" || len(smsMsg.Attachments) != 1 || smsMsg.Attachments[0].ContentType != "image/png" {
		t.Fatalf("SMS message: %+v", smsMsg)
	}
	got, err := http.Get(smsMsg.Attachments[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if !bytes.Equal(body, png) {
		t.Fatalf("stored media differs from what the customer sent (%d bytes)", len(body))
	}

	// A reply goes back by SMS, the last channel, and its reports arrive.
	var msg struct{ ID, Channel, Status string }
	if code := e.api("POST", "/api/v1/conversations/"+c.ID+"/messages", map[string]string{"text": "A new lid is on its way."}, &msg); code != 202 || msg.Channel != "sms" {
		t.Fatalf("reply: %d %+v", code, msg)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := storeOf(t, e.m).GetMessage(context.Background(), msg.ID)
		if err == nil && m.Status == switchboard.DeliveryDelivered {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reply status %q after 10s, want delivered", m.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	sent := e.twilio.Messages()
	if len(sent) != 1 || sent[0].To != "+14155550123" || sent[0].From != ourNumber || sent[0].Body != "A new lid is on its way." {
		t.Fatalf("stand-in received %+v", sent)
	}

	// STOP: recorded, the composer says why, the send path refuses with
	// 422 and stores nothing, and Twilio is never called.
	if _, code := e.sms("+14155550123", " stop "); code != http.StatusOK {
		t.Fatalf("STOP: %d", code)
	}
	e.waitStored()
	var dec switchboard.Decision
	e.api("GET", "/api/v1/conversations/"+c.ID+"/compose?channel=sms", nil, &dec)
	if dec.Allowed || !strings.Contains(dec.Reason, "opted out") {
		t.Fatalf("compose after STOP: %+v", dec)
	}
	var apiErr struct {
		Error struct{ Code, Message string }
	}
	if code := e.api("POST", "/api/v1/conversations/"+c.ID+"/messages", map[string]string{"text": "Are you there?"}, &apiErr); code != 422 || apiErr.Error.Code != "channel_policy" {
		t.Fatalf("reply after STOP: %d %+v", code, apiErr)
	}
	if n := len(e.conversation().Messages); n != 4 {
		t.Fatalf("%d messages after the refused reply, want 4 (form, SMS, reply, STOP)", n)
	}
	if len(e.twilio.Messages()) != 1 {
		t.Fatal("Twilio was called for a refused reply")
	}

	// START lifts it.
	e.sms("+14155550123", "START")
	e.waitStored()
	if code := e.api("POST", "/api/v1/conversations/"+c.ID+"/messages", map[string]string{"text": "Welcome back."}, &msg); code != 202 {
		t.Fatalf("reply after START: %d", code)
	}
	deadline = time.Now().Add(10 * time.Second)
	for len(e.twilio.Messages()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the reply after START never reached Twilio")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The composer counts segments and cost.
	e.api("GET", "/api/v1/conversations/"+c.ID+"/compose?channel=sms&text="+strings.Repeat("a", 161), nil, &dec)
	if !dec.Allowed || dec.Segments != 2 || dec.Encoding != "GSM-7" || dec.Cost <= 0 {
		t.Fatalf("compose for 161 GSM characters: %+v", dec)
	}
}
