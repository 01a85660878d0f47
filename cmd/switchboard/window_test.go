package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/meta/metatest"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
)

// TestWhatsAppWindowThroughAPI drives the 24-hour customer-service window
// through the HTTP API with the injected clock: one clock for the
// webhook's timestamps, the store, the policy and the sender. Free text is
// accepted at 23 h 59 min after the customer's message and refused with
// the channel's reason at 24 h 01 min, where the composer offers the
// templates instead.
func TestWhatsAppWindowThroughAPI(t *testing.T) {
	clock := testenv.NewClock(time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC))
	addr := freeAddr(t)
	graph := metatest.New(metaSecret, metaToken, metatest.WithWebhook("http://"+addr+"/webhooks/meta"), metatest.WithClock(clock.Now))
	ts := httptest.NewServer(graph.Handler())
	graph.SetBaseURL(ts.URL)
	t.Cleanup(func() { graph.Close(); ts.Close() })
	stored := make(chan int, 10)
	m := &Main{Config: Config{
		Addr: addr, PublicURL: "http://" + addr, DataDir: t.TempDir(), LogLevel: "warn", LogFormat: "text", IngestBatch: 64, OutboxMaxAttempts: 3,
		MetaAppSecret: metaSecret, MetaVerifyToken: metaVerify, MetaAccessToken: metaToken, GraphAPIURL: ts.URL,
		WhatsAppPhoneNumberID: graph.PhoneNumberID(), RoutingOff: true,
	}}
	m.Clock = clock
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	m.OnStored = func(_ []switchboard.Inbound, res []switchboard.IngestResult) { stored <- len(res) }
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	_, token := addAgent(t, m, switchboard.Agent{Name: "Sam", Email: "sam@team.example"})
	if _, resp, err := graph.SendWhatsAppText(context.Background(), http.DefaultClient, m.URL()+"/webhooks/meta", "16505551234", "Sheena", "Is it in stock?"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("WhatsApp inbound: %v %v", resp, err)
	}
	select {
	case <-stored:
	case <-time.After(10 * time.Second):
		t.Fatal("inbound not stored")
	}
	api := func(method, path, body string, out any) int {
		t.Helper()
		return callAPI(t, m.URL(), token, method, path, body, out)
	}
	var list struct {
		Conversations []struct {
			ID            string `json:"id"`
			LastInboundAt string `json:"last_inbound_at"`
		} `json:"conversations"`
	}
	if api("GET", "/api/v1/conversations", "", &list) != 200 || len(list.Conversations) != 1 {
		t.Fatalf("conversations: %+v", list)
	}
	if want := clock.Now().Format(time.RFC3339); list.Conversations[0].LastInboundAt != want {
		t.Fatalf("last inbound at %s, want the injected clock's %s", list.Conversations[0].LastInboundAt, want)
	}
	id := list.Conversations[0].ID
	type refusal struct {
		Error struct {
			Code    string         `json:"code"`
			Message string         `json:"message"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}

	clock.Advance(23*time.Hour + 59*time.Minute)
	var sent struct {
		Channel string `json:"channel"`
		Status  string `json:"status"`
	}
	if code := api("POST", "/api/v1/conversations/"+id+"/messages", `{"text":"Yes, in blue and green."}`, &sent); code != http.StatusAccepted || sent.Channel != "whatsapp" {
		t.Fatalf("free text at 23h59m: %d %+v, want 202 on whatsapp", code, sent)
	}

	clock.Advance(2 * time.Minute)
	var compose struct {
		Allowed bool   `json:"allowed"`
		Reason  string `json:"reason"`
	}
	if code := api("GET", "/api/v1/conversations/"+id+"/compose?channel=whatsapp", "", &compose); code != 200 || compose.Allowed || !strings.Contains(compose.Reason, "24-hour window closed") {
		t.Fatalf("composer at 24h01m: %d %+v, want refused with the window's reason", code, compose)
	}
	var refused refusal
	if code := api("POST", "/api/v1/conversations/"+id+"/messages", `{"text":"Still there?"}`, &refused); code != http.StatusUnprocessableEntity ||
		refused.Error.Code != "channel_policy" || !strings.Contains(refused.Error.Message, "24-hour window closed") {
		t.Fatalf("free text at 24h01m: %d %+v, want 422 channel_policy", code, refused)
	}
	var detail struct {
		Messages []struct{ Text string } `json:"messages"`
	}
	api("GET", "/api/v1/conversations/"+id, "", &detail)
	if len(detail.Messages) != 2 || detail.Messages[1].Text != "Yes, in blue and green." {
		t.Fatalf("messages after the refusal: %+v, want the inbound and the accepted reply only", detail.Messages)
	}
}
