package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/email/smtptest"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/route"
	"github.com/switchboard-inbox/switchboard/store"
)

// TestAfterHoursAcknowledgement runs the whole stack outside business
// hours: a customer's e-mail gets one automatic acknowledgement through the
// real e-mail sender (marked automatic, never the first response), a second
// mail in the same closed period gets none, and the customer's
// out-of-office answer to the acknowledgement is no message and earns no
// acknowledgement of its own.
func TestAfterHoursAcknowledgement(t *testing.T) {
	relay, err := smtptest.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	addr := freeAddr(t)
	m := &Main{Config: Config{MetricsToken: "ops-token",
		Addr: addr, PublicURL: "http://" + addr, DataDir: t.TempDir(), LogLevel: "warn", LogFormat: "text",
		IngestBatch: 64, OutboxMaxAttempts: 3, ReopenWindow: 7 * 24 * time.Hour,
		EmailFrom: "Acme Support <support@acme.test>", SMTPURL: "smtp://" + relay.Addr() + "?starttls=off", InboundEmailSecret: mailSecret,
	}}
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	ctx := context.Background()
	_, token := addAgent(t, m, switchboard.Agent{Name: "Sam", Email: "sam@team.example", Status: switchboard.AgentOnline})
	e := &smsEnv{t: t, m: m, token: token}

	// Open only one minute a week, on a day that is not today: closed now.
	day := strings.ToLower(time.Now().UTC().Add(72 * time.Hour).Weekday().String()[:3])
	team, _ := json.Marshal(map[string]any{
		"hours": map[string]any{"tz": "UTC", "week": map[string]any{day: [][]string{{"09:00", "09:01"}}}},
		"ack":   map[string]string{"email": "Thanks, we're closed; back {next_open}."},
	})
	var tc route.TeamConfig
	if err := json.Unmarshal(team, &tc); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Inbox.PutRoutingConfig(ctx, switchboard.System, inbox.RoutingConfig{Teams: map[string]route.TeamConfig{"": tc}}); err != nil {
		t.Fatal(err)
	}
	post := func(raw string) {
		t.Helper()
		req, _ := http.NewRequest("POST", m.URL()+"/webhooks/email", strings.NewReader(raw))
		req.Header.Set("Content-Type", "message/rfc822")
		req.Header.Set("Authorization", "Bearer "+mailSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("post: %v %v", err, resp)
		}
		resp.Body.Close()
	}
	waitMails := func(n int) []smtptest.Message {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if got := relay.Messages(); len(got) >= n {
				return got
			}
		}
		t.Fatalf("%d mails reached the relay, want %d", len(relay.Messages()), n)
		return nil
	}
	post("From: Ann <ann@example.com>\r\nTo: support@acme.test\r\nSubject: help\r\nMessage-ID: <a1@example.com>\r\n\r\nMy order is late.\r\n")
	acks := waitMails(1)
	ack, err := mail.ReadMessage(bytes.NewReader(acks[0].Raw))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(ack.Body)
	if ack.Header.Get("Auto-Submitted") != "auto-replied" || acks[0].From != "" || !strings.Contains(string(body), "we're closed; back") {
		t.Errorf("acknowledgement: Auto-Submitted %q, envelope from %q, body %q", ack.Header.Get("Auto-Submitted"), acks[0].From, body)
	}
	if ack.Header.Get("In-Reply-To") != "<a1@example.com>" {
		t.Errorf("acknowledgement In-Reply-To %q", ack.Header.Get("In-Reply-To"))
	}

	// Another mail in the same closed period, and Ann's out-of-office
	// answering our acknowledgement.
	post("From: Ann <ann@example.com>\r\nTo: support@acme.test\r\nSubject: Re: help\r\nMessage-ID: <a2@example.com>\r\n\r\nAlso, the address changed.\r\n")
	post(fmt.Sprintf("From: Ann <ann@example.com>\r\nTo: %s\r\nSubject: Automatic reply\r\nMessage-ID: <ooo@example.com>\r\nIn-Reply-To: %s\r\nAuto-Submitted: auto-replied\r\n\r\nI am away.\r\n",
		ack.Header.Get("Reply-To"), ack.Header.Get("Message-ID")))
	var c struct {
		ID       string `json:"id"`
		Assignee *struct {
			ID string `json:"id"`
		} `json:"assignee"`
		QueuePosition int `json:"queue_position"`
		Messages      []struct {
			Direction string `json:"direction"`
			Sender    string `json:"sender"`
			Text      string `json:"text"`
		} `json:"messages"`
		Events []struct {
			Type switchboard.EventType `json:"type"`
			Data map[string]any        `json:"data"`
		} `json:"events"`
	}
	var list struct {
		Conversations []struct{ ID string } `json:"conversations"`
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		e.api("GET", "/api/v1/conversations", nil, &list)
		if len(list.Conversations) == 1 {
			e.api("GET", "/api/v1/conversations/"+list.Conversations[0].ID, nil, &c)
			var auto bool
			for _, ev := range c.Events {
				auto = auto || ev.Type == switchboard.EventAutoReply
			}
			if auto && len(c.Messages) >= 3 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("conversation never got both mails and the out-of-office: %+v", c)
		}
	}
	time.Sleep(1500 * time.Millisecond) // a router pass or two more
	if got := len(relay.Messages()); got != 1 {
		t.Errorf("%d mails sent, want the one acknowledgement", got)
	}
	if len(c.Messages) != 3 || c.Messages[1].Direction != "out" || c.Messages[1].Sender != store.SystemSender {
		t.Errorf("timeline = %+v, want mail, acknowledgement, mail", c.Messages)
	}
	if c.Assignee != nil || c.QueuePosition != 1 {
		t.Errorf("after hours the conversation should wait first in the queue: assignee %v, position %d", c.Assignee, c.QueuePosition)
	}
	conv, _ := storeOf(t, m).GetConversation(ctx, c.ID)
	if !conv.FirstResponseAt.IsZero() {
		t.Error("the acknowledgement counted as the first response")
	}
	req, _ := http.NewRequest("GET", m.URL()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+m.Config.MetricsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "\nswitchboard_routing_waiting 1\n") {
		t.Errorf("metrics do not show the one waiting conversation:\n%s", metrics)
	}
}
