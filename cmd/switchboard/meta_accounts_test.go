package main

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/meta/metatest"
)

// TestMetaEventsForOtherAccountsIgnored: with the Page and Instagram
// account configured, a signed event addressed to another Instagram
// account (an app subscribed to several) is acknowledged and stored
// nowhere, while ours are stored.
func TestMetaEventsForOtherAccountsIgnored(t *testing.T) {
	addr := freeAddr(t)
	graph := metatest.New(metaSecret, metaToken, metatest.WithWebhook("http://"+addr+"/webhooks/meta"))
	ts := httptest.NewServer(graph.Handler())
	graph.SetBaseURL(ts.URL)
	t.Cleanup(func() { graph.Close(); ts.Close() })
	stored := make(chan []switchboard.IngestResult, 10)
	m := &Main{Config: Config{
		Addr: addr, PublicURL: "http://" + addr, DataDir: t.TempDir(), LogLevel: "warn", LogFormat: "text", IngestBatch: 64, OutboxMaxAttempts: 3,
		MetaAppSecret: metaSecret, MetaVerifyToken: metaVerify, MetaAccessToken: metaToken, GraphAPIURL: ts.URL,
		MessengerPageID: graph.PageID(), InstagramAccountID: "17841499999999999", RoutingOff: true,
	}}
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	m.OnStored = func(_ []switchboard.Inbound, res []switchboard.IngestResult) { stored <- res }
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	hook := m.URL() + "/webhooks/meta"
	// The stand-in's Instagram account is not the one configured.
	if _, resp, err := graph.SendInstagramText(context.Background(), nil, hook, "5566778899", "for another account"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("Instagram event for another account: %v %v, want 200", resp, err)
	}
	if _, resp, err := graph.SendMessengerText(context.Background(), nil, hook, "6922891234567890", "for our page"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("Messenger event: %v %v", resp, err)
	}
	select {
	case res := <-stored:
		if len(res) != 1 {
			t.Fatalf("stored %d messages, want the Messenger one only", len(res))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the Messenger message was not stored")
	}
	convs, _, _ := storeOf(t, m).ListConversations(context.Background(), switchboard.ConversationFilter{})
	if len(convs) != 1 || convs[0].LastChannel != switchboard.ChannelMessenger {
		t.Fatalf("conversations: %+v, want the Messenger one only", convs)
	}
}
