package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

// whitespaceFirstMail is the mail the review reported: its first line is
// whitespace, a continuation line before any header field, which a strict
// reader refuses. run makes its addresses and Message-ID unique.
func whitespaceFirstMail(run string) string {
	return " \r\n" +
		"Received: from mail.customer.test (mail.customer.test [203.0.113.5])\r\n" +
		"\tby mx.acme.test (Postfix) with ESMTPS id 4T1x2y3z; Tue, 16 Jan 2024 09:12:44 +0000 (UTC)\r\n" +
		"From: Paulo Santos <paulo-" + run + "@customer.test>\r\n" +
		"To: support@acme.test\r\n" +
		"Subject: =?UTF-8?Q?N=C3=A3o_consigo_entrar?=\r\n" +
		"Message-ID: <ws." + run + "@customer.test>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" +
		"Olá, I can't log in since this morning.\r\n"
}

const malformedText = "Olá, I can't log in since this morning."

// postMail posts a raw mail to /webhooks/email as a service does.
func postMail(t *testing.T, m *Main, raw string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", m.URL()+"/webhooks/email", strings.NewReader(raw))
	req.Header.Set("Content-Type", "message/rfc822")
	req.Header.Set("Authorization", "Bearer "+mailSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// checkMalformedStored checks the one message of the one conversation: the
// recovered text shown to agents, the malformed mark in its metadata, and
// its original served back byte for byte.
func checkMalformedStored(t *testing.T, e *smsEnv, raw string) {
	t.Helper()
	var list struct {
		Conversations []struct{ ID string } `json:"conversations"`
	}
	e.api("GET", "/api/v1/conversations", nil, &list)
	if len(list.Conversations) != 1 {
		t.Fatalf("%d conversations, want 1", len(list.Conversations))
	}
	var c struct {
		Messages []struct {
			ID   string `json:"id"`
			Text string `json:"text"`
		} `json:"messages"`
	}
	e.api("GET", "/api/v1/conversations/"+list.Conversations[0].ID, nil, &c)
	if len(c.Messages) != 1 || c.Messages[0].Text != malformedText {
		t.Fatalf("messages = %+v, want the recovered text", c.Messages)
	}
	id := c.Messages[0].ID
	msg, err := storeOf(t, e.m).GetMessage(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	json.Unmarshal(msg.Metadata, &meta)
	if meta["malformed"] != "whitespace before the first header" {
		t.Errorf("metadata = %s, want it marked malformed", msg.Metadata)
	}
	req, _ := http.NewRequest("GET", e.m.URL()+"/api/v1/messages/"+id+"/original", nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(got) != raw {
		t.Errorf("original: %d, %q; want the posted mail byte for byte", resp.StatusCode, got)
	}
}

// TestEmailWebhookKeepsMalformedMail: the reported mail posted to the real
// server is answered 2xx and stored with its text, marked malformed, its
// original intact; a mail naming no sender at all is answered 2xx too,
// kept as a dead letter.
func TestEmailWebhookKeepsMalformedMail(t *testing.T) {
	m, stored := mailBenchMain(t, "")
	e := &smsEnv{t: t, m: m}
	_, e.token = addAgent(t, m, switchboard.Agent{Name: "Sam", Email: "sam@team.example"})
	raw := whitespaceFirstMail("http")
	if code, body := postMail(t, m, raw); code != http.StatusOK || !strings.Contains(body, `"queued"`) {
		t.Fatalf("post: %d %s", code, body)
	}
	for deadline := time.Now().Add(10 * time.Second); stored.Load() < 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("not stored")
		}
	}
	checkMalformedStored(t, e, raw)

	if code, body := postMail(t, m, "\r\nno header and no sender: nothing to file it under\r\n"); code != http.StatusOK || !strings.Contains(body, `"dead_letter"`) {
		t.Fatalf("post without a sender: %d %s", code, body)
	}
	if n := storetest.InspectURL(t, m.Config.DatabaseURL).DeadLetters(); n != 1 {
		t.Errorf("%d dead letters, want the mail without a sender", n)
	}
}

// TestEmailIMAPKeepsMalformedMail: the reported mail in a real IMAP
// mailbox is stored like the webhook's, not set aside as a dead letter.
func TestEmailIMAPKeepsMalformedMail(t *testing.T) {
	e := newMailEnv(t, t.TempDir())
	raw := whitespaceFirstMail(e.run)
	e.deliver(raw)
	e.conversation(func(c mailConv) bool { return len(c.Messages) >= 1 })
	checkMalformedStored(t, &e.smsEnv, raw)
	if n := storetest.InspectURL(t, e.m.Config.DatabaseURL).DeadLetters(); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
}
