package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime/quotedprintable"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/email/smtptest"
	"github.com/switchboard-inbox/switchboard/channel/meta/metatest"
	"github.com/switchboard-inbox/switchboard/channel/twilio/twiliotest"
	"github.com/switchboard-inbox/switchboard/inbox"
)

// csatEnv is Switchboard with SMS, WhatsApp and e-mail on the stand-ins
// and surveys sent at once after a resolution.
type csatEnv struct {
	m      *Main
	twilio *twiliotest.Server
	graph  *metatest.Server
	smtp   *smtptest.Server
	token  string
	mu     sync.Mutex
	stored []switchboard.IngestResult
}

func newCSATEnv(t *testing.T) *csatEnv {
	t.Helper()
	e := &csatEnv{}
	addr := freeAddr(t)
	e.twilio = twiliotest.New(testSID, testToken)
	tts := httptest.NewTLSServer(e.twilio.Handler())
	e.twilio.SetBaseURL(tts.URL)
	e.graph = metatest.New(metaSecret, metaToken, metatest.WithWebhook("http://"+addr+"/webhooks/meta"))
	gts := httptest.NewServer(e.graph.Handler())
	e.graph.SetBaseURL(gts.URL)
	var err error
	if e.smtp, err = smtptest.Start(nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.twilio.Close(); tts.Close(); e.graph.Close(); gts.Close(); e.smtp.Close() })
	e.m = &Main{Config: Config{
		Addr: addr, PublicURL: "http://" + addr, DataDir: t.TempDir(), LogLevel: "warn", LogFormat: "text",
		IngestBatch: 64, OutboxMaxAttempts: 3, RoutingOff: true, CSATDelay: "0",
		TwilioAccountSID: testSID, TwilioAuthToken: testToken, TwilioAPIURL: tts.URL, TwilioFrom: ourNumber, PhoneRegion: "US",
		MetaAppSecret: metaSecret, MetaVerifyToken: metaVerify, MetaAccessToken: metaToken, GraphAPIURL: gts.URL,
		WhatsAppPhoneNumberID: e.graph.PhoneNumberID(), MessengerPageID: e.graph.PageID(),
		EmailFrom: "Acme Support <support@acme.test>", InboundEmailSecret: mailSecret,
		SMTPURL: "smtp://" + e.smtp.Addr() + "?starttls=off",
	}}
	e.m.SurveyPoll = 50 * time.Millisecond
	e.m.ProviderHTTP = tts.Client()
	e.m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	e.m.OnStored = func(_ []switchboard.Inbound, res []switchboard.IngestResult) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.stored = append(e.stored, res...)
	}
	if err := e.m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.m.Close() })
	_, e.token = addAgent(t, e.m, switchboard.Agent{Name: "Sue Visor", Email: "sue@team.example", Role: switchboard.RoleSupervisor})
	return e
}

// wait polls ok for up to 10 seconds.
func wait(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *csatEnv) result(t *testing.T, what string, ok func(switchboard.IngestResult) bool) switchboard.IngestResult {
	t.Helper()
	var got switchboard.IngestResult
	wait(t, what, func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, r := range e.stored {
			if ok(r) {
				got = r
				return true
			}
		}
		return false
	})
	return got
}

// answerAndResolve has the supervisor reply and resolve.
func (e *csatEnv) answerAndResolve(t *testing.T, conv string) {
	t.Helper()
	base := e.m.URL()
	if code := callAPI(t, base, e.token, "POST", "/api/v1/conversations/"+conv+"/messages", map[string]string{"text": "It left today."}, nil); code != http.StatusAccepted {
		t.Fatalf("reply: %d", code)
	}
	if code := callAPI(t, base, e.token, "POST", "/api/v1/conversations/"+conv+"/status", map[string]string{"status": "resolved"}, nil); code != http.StatusOK {
		t.Fatalf("resolve: %d", code)
	}
}

// conversation returns the conversation's status and its messages' texts.
func (e *csatEnv) conversation(t *testing.T, conv string) (string, []string) {
	t.Helper()
	var c struct {
		Status string `json:"status"`
	}
	callAPI(t, e.m.URL(), e.token, "GET", "/api/v1/conversations/"+conv, nil, &c)
	var page struct {
		Messages []struct {
			Direction string `json:"direction"`
			Text      string `json:"text"`
		} `json:"messages"`
	}
	callAPI(t, e.m.URL(), e.token, "GET", "/api/v1/conversations/"+conv+"/messages?limit=100", nil, &page)
	var texts []string
	for _, m := range page.Messages {
		texts = append(texts, m.Direction+": "+m.Text)
	}
	return c.Status, texts
}

type csatRow struct {
	Channel      string         `json:"channel"`
	Surveys      int            `json:"surveys"`
	Responses    int            `json:"responses"`
	Average      *float64       `json:"average"`
	Distribution map[string]int `json:"distribution"`
}

func (e *csatEnv) csat(t *testing.T, ch string) csatRow {
	t.Helper()
	var a struct {
		Rows []csatRow `json:"rows"`
	}
	if code := callAPI(t, e.m.URL(), e.token, "GET", "/api/v1/analytics/csat?range=today", nil, &a); code != http.StatusOK {
		t.Fatalf("csat: %d", code)
	}
	for _, r := range a.Rows {
		if r.Channel == ch {
			return r
		}
	}
	return csatRow{}
}

// TestSurveyRoundTrips: a resolved conversation gets its survey on the
// channel the customer used, in that channel's form; the customer's
// answer is recorded as CSAT, is not a message of the conversation and
// does not reopen it; a provider's retry of the answer changes nothing.
func TestSurveyRoundTrips(t *testing.T) {
	e := newCSATEnv(t)
	ctx := context.Background()
	base := e.m.URL()

	t.Run("SMS", func(t *testing.T) {
		const customer = "+14155552671"
		resp, err := e.twilio.SendInbound(ctx, http.DefaultClient, base+"/webhooks/twilio/sms", twiliotest.Inbound{From: customer, To: ourNumber, Body: "Where is my order?"})
		if err != nil || resp.StatusCode/100 != 2 {
			t.Fatalf("inbound SMS: %v %v", resp, err)
		}
		resp.Body.Close()
		conv := e.result(t, "the SMS", func(r switchboard.IngestResult) bool { return r.Stored() && r.Message.Text == "Where is my order?" }).ConversationID
		e.answerAndResolve(t, conv)
		wait(t, "the SMS survey", func() bool {
			for _, m := range e.twilio.Messages() {
				if m.To == customer && m.Body == inbox.SurveyText {
					return true
				}
			}
			return false
		})
		answer, err := e.twilio.InboundWebhook(base+"/webhooks/twilio/sms", twiliotest.Inbound{From: customer, To: ourNumber, Body: "4"})
		if err != nil {
			t.Fatal(err)
		}
		post := func(wh twiliotest.Webhook) {
			t.Helper()
			resp, err := e.twilio.SendWebhook(ctx, http.DefaultClient, wh)
			if err != nil || resp.StatusCode/100 != 2 {
				t.Fatalf("webhook: %v %v", resp, err)
			}
			resp.Body.Close()
		}
		post(answer)
		r := e.result(t, "the rating", func(r switchboard.IngestResult) bool { return r.Rating != 0 && r.ConversationID == conv })
		if r.Rating != 4 || r.Stored() {
			t.Fatalf("answer result %+v: want rating 4, not stored", r)
		}
		// Twilio retries the answer once it was recorded: a duplicate,
		// whether the queue or the ingest recognises it. A message that
		// follows it is stored after it, so once that one is stored the
		// retry has been handled.
		post(answer)
		later, err := e.twilio.InboundWebhook(base+"/webhooks/twilio/sms", twiliotest.Inbound{From: "+14155552699", To: ourNumber, Body: "after the retry"})
		if err != nil {
			t.Fatal(err)
		}
		post(later)
		e.result(t, "the message after the retry", func(r switchboard.IngestResult) bool { return r.Stored() && r.Message.Text == "after the retry" })
		e.mu.Lock()
		ratings := 0
		for _, r := range e.stored {
			if r.Rating != 0 {
				ratings++
			}
			if r.Stored() && r.Message.Text == "4" {
				t.Errorf("the retry was stored as a message: %+v", r)
			}
		}
		e.mu.Unlock()
		if ratings != 1 {
			t.Errorf("%d ratings recorded, want the one (the retry is a duplicate)", ratings)
		}
		status, texts := e.conversation(t, conv)
		if status != "resolved" {
			t.Errorf("the conversation is %s after the rating, want resolved", status)
		}
		for _, tx := range texts {
			if tx == "in: 4" {
				t.Errorf("the rating is a message of the conversation: %v", texts)
			}
		}
		if row := e.csat(t, "sms"); row.Surveys != 1 || row.Responses != 1 || row.Average == nil || *row.Average != 4 || row.Distribution["4"] != 1 {
			t.Errorf("csat for sms: %+v", row)
		}
	})

	t.Run("Email", func(t *testing.T) {
		raw := "From: Bo <bo@example.com>\r\nTo: support@acme.test\r\nSubject: Invoice\r\nMessage-ID: <inv-1@example.com>\r\nDate: " +
			time.Now().Format(time.RFC1123Z) + "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nCan I have my invoice?\r\n"
		req, _ := http.NewRequest("POST", base+"/webhooks/email", strings.NewReader(raw))
		req.Header.Set("Content-Type", "message/rfc822")
		req.Header.Set("Authorization", "Bearer "+mailSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("inbound e-mail: %v %v", resp, err)
		}
		resp.Body.Close()
		conv := e.result(t, "the e-mail", func(r switchboard.IngestResult) bool {
			return r.Stored() && r.Message.Channel == switchboard.ChannelEmail
		}).ConversationID
		e.answerAndResolve(t, conv)
		var survey string
		wait(t, "the e-mail survey", func() bool {
			for _, m := range e.smtp.Messages() {
				if strings.Contains(string(m.Raw), "/csat/") {
					survey = string(m.Raw)
					return true
				}
			}
			return false
		})
		if !strings.Contains(survey, "List-Unsubscribe: <"+base+"/csat/") || !strings.Contains(survey, "List-Unsubscribe-Post: List-Unsubscribe=One-Click") {
			t.Errorf("the survey lacks the one-click unsubscribe headers:\n%.1500s", survey)
		}
		body, _ := io.ReadAll(quotedprintable.NewReader(strings.NewReader(survey)))
		link := regexp.MustCompile(`http://[^\s"<>]+/csat/[A-Za-z0-9._-]+\?r=5`).FindString(string(body))
		if link == "" {
			t.Fatalf("no rating link for 5 in the survey:\n%s", survey)
		}
		resp, page := getPage(t, link)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, "rating of 5 out of 5 is recorded") {
			t.Fatalf("the rating link: %d %.300s", resp.StatusCode, page)
		}
		if _, page := getPage(t, link); !strings.Contains(page, "already answered") {
			t.Errorf("a second click: %.300s", page)
		}
		forged := regexp.MustCompile(`\.[A-Za-z0-9_-]+\?`).ReplaceAllString(link, ".forged?")
		if resp, _ := getPage(t, forged); resp.StatusCode != http.StatusNotFound {
			t.Errorf("a forged link: %d, want 404", resp.StatusCode)
		}
		if row := e.csat(t, "email"); row.Responses != 1 || row.Average == nil || *row.Average != 5 {
			t.Errorf("csat for e-mail: %+v", row)
		}
		// RFC 8058's one-click unsubscribe.
		unsub := regexp.MustCompile(`List-Unsubscribe: <([^>]+)>`).FindStringSubmatch(survey)[1]
		resp, err = http.Post(unsub, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("one-click unsubscribe: %v %v", resp, err)
		}
		resp.Body.Close()
		// E-mail health counts the reply and the survey sent, and the
		// address that unsubscribed.
		var health struct {
			Rows []struct {
				Sent, Bounced int
				OptOuts       int     `json:"opt_outs"`
				OptOutRate    float64 `json:"opt_out_rate"`
			} `json:"rows"`
		}
		callAPI(t, base, e.token, "GET", "/api/v1/analytics/email_health?range=today", nil, &health)
		if len(health.Rows) != 1 || health.Rows[0].Sent != 2 || health.Rows[0].OptOuts != 1 || health.Rows[0].OptOutRate != 0.5 {
			t.Errorf("e-mail health %+v: want 2 sent, 1 opt-out", health.Rows)
		}
	})

	t.Run("WhatsApp", func(t *testing.T) {
		const wa = "14155552672"
		if _, resp, err := e.graph.SendWhatsAppText(ctx, nil, base+"/webhooks/meta", wa, "Lu", "Is it in stock?"); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("inbound WhatsApp: %v %v", resp, err)
		}
		conv := e.result(t, "the WhatsApp message", func(r switchboard.IngestResult) bool { return r.Stored() && r.Message.Text == "Is it in stock?" }).ConversationID
		e.answerAndResolve(t, conv)
		wait(t, "the WhatsApp survey", func() bool {
			for _, s := range e.graph.WhatsAppSends() {
				if s.To == wa && s.Text == inbox.SurveyText {
					return true
				}
			}
			return false
		})
		if _, resp, err := e.graph.SendWhatsAppText(ctx, nil, base+"/webhooks/meta", wa, "Lu", "5"); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("the answer: %v %v", resp, err)
		}
		e.result(t, "the WhatsApp rating", func(r switchboard.IngestResult) bool { return r.Rating == 5 && r.ConversationID == conv })
		if status, _ := e.conversation(t, conv); status != "resolved" {
			t.Errorf("the conversation is %s after the rating", status)
		}
		if row := e.csat(t, "whatsapp"); row.Responses != 1 || row.Distribution["5"] != 1 {
			t.Errorf("csat for WhatsApp: %+v", row)
		}
	})
}

// TestSurveyMessengerQuickReplies: on Messenger the survey's ratings
// are quick-reply buttons; the tapped number is recorded as the rating.
func TestSurveyMessengerQuickReplies(t *testing.T) {
	e := newCSATEnv(t)
	ctx := context.Background()
	hook := e.m.URL() + "/webhooks/meta"
	const psid = "6922891234567890"
	if _, resp, err := e.graph.SendMessengerText(ctx, nil, hook, psid, "Do you have it in blue?"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("inbound Messenger: %v %v", resp, err)
	}
	conv := e.result(t, "the Messenger message", func(r switchboard.IngestResult) bool {
		return r.Stored() && r.Message.Text == "Do you have it in blue?"
	}).ConversationID
	e.answerAndResolve(t, conv)
	var body string
	wait(t, "the Messenger survey", func() bool {
		for _, s := range e.graph.MessengerSends() {
			if s.RecipientID == psid && s.Text == inbox.SurveyText {
				body = string(s.Body)
				return true
			}
		}
		return false
	})
	for n := 1; n <= 5; n++ {
		if want := fmt.Sprintf(`{"content_type":"text","title":"%d","payload":"SB_%d"}`, n, n); !strings.Contains(body, want) {
			t.Errorf("the survey's request lacks the quick reply %s:\n%s", want, body)
		}
	}
	if _, resp, err := e.graph.SendMessengerText(ctx, nil, hook, psid, "3"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the tap: %v %v", resp, err)
	}
	e.result(t, "the Messenger rating", func(r switchboard.IngestResult) bool { return r.Rating == 3 && r.ConversationID == conv })
	if row := e.csat(t, "messenger"); row.Responses != 1 || row.Distribution["3"] != 1 {
		t.Errorf("csat for Messenger: %+v", row)
	}
}

func getPage(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}
