package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/bus"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/inbox/inboxtest"
	"github.com/switchboard-inbox/switchboard/ingest"
	"github.com/switchboard-inbox/switchboard/metrics"
	"github.com/switchboard-inbox/switchboard/queue"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

func payload(t *testing.T, in switchboard.Inbound) []byte {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func form(id, email, text string) switchboard.Inbound {
	return switchboard.Inbound{Channel: switchboard.ChannelWebform, ProviderID: id, Text: text, ContentType: switchboard.ContentText,
		Identities: []switchboard.IdentityRef{{Kind: switchboard.IdentityEmail, Value: email}}, AcceptedAt: time.Now()}
}

// TestPipeline runs the real pipeline over the real queue and store: good
// messages are stored and announced, a redelivered one is counted as a
// duplicate, and entries that cannot be stored are dead-lettered without
// holding back the rest of their batch.
func TestPipeline(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		b := bus.NewMemory()
		db := inboxtest.Open(t, backend, inbox.Config{Bus: b})
		q, err := queue.OpenSQLite(ctx, filepath.Join(t.TempDir(), "q.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		events, err := b.Subscribe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := metrics.New()
		stored := make(chan []switchboard.IngestResult, 10)
		p := &ingest.Pipeline{Queue: q, Inbox: db, Metrics: m, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			OnStored: func(_ []switchboard.Inbound, r []switchboard.IngestResult) { stored <- r }}

		for i := 0; i < 3; i++ {
			q.Enqueue(ctx, switchboard.ChannelWebform, payload(t, form(fmt.Sprint("p", i), "ana@example.com", fmt.Sprint("message ", i))))
		}
		q.Enqueue(ctx, switchboard.ChannelWebform, []byte(`{not json`))
		bad := form("p-bad", "", "no sender")
		q.Enqueue(ctx, switchboard.ChannelWebform, payload(t, bad))
		q.Enqueue(ctx, switchboard.ChannelWebform, payload(t, form("p0", "ana@example.com", "message 0"))) // a provider retry
		go p.Run(ctx)

		total := 0
		deadline := time.After(10 * time.Second)
		// The invalid entry is dead-lettered before the store sees it.
		for total < 4 {
			select {
			case r := <-stored:
				total += len(r)
			case <-deadline:
				t.Fatalf("pipeline reported %d of 4 valid entries", total)
			}
		}
		if got := m.Ingested.Get("webform"); got != 3 {
			t.Fatalf("ingested = %d, want 3", got)
		}
		if got := m.Deduplicated.Get("webform"); got != 1 {
			t.Fatalf("deduplicated = %d, want 1", got)
		}
		if got := m.DeadLetters.Get("webform"); got != 2 {
			t.Fatalf("dead letters = %d, want 2 (undecodable and invalid)", got)
		}
		if n := db.Inspect(t).DeadLetters(); n != 2 {
			t.Fatalf("dead_letters rows = %d; want 2", n)
		}
		if d, _ := q.Depth(ctx); d != 0 {
			t.Fatalf("queue depth %d after processing, want 0 (all acked)", d)
		}
		counts := db.Inspect(t).MessagesByText("message %")
		if len(counts) != 3 || counts["message 0"] != 1 {
			t.Fatalf("stored messages = %v", counts)
		}
		created := 0
		timeout := time.After(5 * time.Second)
		for created < 3 {
			select {
			case ev := <-events:
				if ev.Type == switchboard.BusMessageCreated {
					if ev.ConversationID == "" {
						t.Fatalf("event without conversation: %+v", ev)
					}
					created++
				}
			case <-timeout:
				t.Fatalf("%d message.created events, want 3", created)
			}
		}
	})
}
