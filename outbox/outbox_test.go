package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/inbox/inboxtest"
	"github.com/switchboard-inbox/switchboard/outbox"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

// flakySender fails the first failures calls for each message, then
// succeeds, recording every successful delivery.
type flakySender struct {
	mu        sync.Mutex
	failures  int
	calls     map[string]int
	delivered map[string]int
	delay     time.Duration
}

func newFlaky(failures int) *flakySender {
	return &flakySender{failures: failures, calls: map[string]int{}, delivered: map[string]int{}}
}

func (s *flakySender) Send(ctx context.Context, m *switchboard.Outbound) (string, error) {
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[m.MessageID]++
	if s.calls[m.MessageID] <= s.failures {
		return "", errors.New("provider unavailable")
	}
	s.delivered[m.MessageID]++
	return "P-" + m.MessageID, nil
}

// nopSender lets the inbox accept replies on a channel; the workers under
// test send them with senders of their own.
type nopSender struct{}

func (nopSender) Send(context.Context, *switchboard.Outbound) (string, error) { return "", nil }

// setup stores replies queued for sending to an SMS customer.
func setup(t *testing.T, backend string, replies int) (*inboxtest.DB, []string) {
	t.Helper()
	ctx := context.Background()
	db := inboxtest.Open(t, backend, inbox.Config{})
	db.SetChannel(switchboard.ChannelSMS, nil, nopSender{})
	agent, _, err := db.AddAgent(ctx, switchboard.System, switchboard.Agent{Name: "sam", Email: "sam@team.example"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.Ingest(ctx, []switchboard.Inbound{{Channel: switchboard.ChannelSMS, ProviderID: "SM1", Text: "hi",
		Identities: []switchboard.IdentityRef{{Kind: switchboard.IdentityPhone, Value: "+14155550100"}}}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("ingest: %v %v", err, res)
	}
	var ids []string
	for i := 0; i < replies; i++ {
		m, err := db.Reply(ctx, agent.Actor(), switchboard.Reply{ConversationID: res[0].ConversationID, Text: fmt.Sprint("reply ", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	return db, ids
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestRetriesThenSent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		db, ids := setup(t, backend, 1)
		s := newFlaky(2)
		w := &outbox.Worker{Inbox: db, Senders: outbox.SenderMap{switchboard.ChannelSMS: s},
			BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Logger: quiet()}
		deadline := time.Now().Add(10 * time.Second)
		for {
			m, err := db.Message(ctx, switchboard.System, ids[0])
			if err != nil {
				t.Fatal(err)
			}
			if m.Status == switchboard.DeliverySent {
				if m.ProviderID != "P-"+ids[0] {
					t.Fatalf("provider id = %q", m.ProviderID)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("message still %s after 10s", m.Status)
			}
			if _, err := w.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			time.Sleep(3 * time.Millisecond)
		}
		if s.calls[ids[0]] != 3 || s.delivered[ids[0]] != 1 {
			t.Fatalf("calls %d, deliveries %d; want 3 calls and exactly 1 delivery", s.calls[ids[0]], s.delivered[ids[0]])
		}
		state, attempts, _, _ := db.Inspect(t).OutboxState(ids[0])
		if state != "done" || attempts != 3 {
			t.Fatalf("outbox row %s after %d attempts", state, attempts)
		}
		// Done rows are not sent again.
		if n, _ := w.RunOnce(ctx); n != 0 {
			t.Fatalf("claimed %d rows after completion", n)
		}
	})
}

func TestDeadAfterMaxAttempts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		db, ids := setup(t, backend, 1)
		w := &outbox.Worker{Inbox: db, Senders: outbox.SenderMap{switchboard.ChannelSMS: newFlaky(100)},
			MaxAttempts: 3, BaseBackoff: time.Millisecond, MaxBackoff: time.Millisecond, Logger: quiet()}
		for i := 0; i < 50; i++ {
			w.RunOnce(ctx)
			time.Sleep(3 * time.Millisecond)
		}
		m, _ := db.Message(ctx, switchboard.System, ids[0])
		state, attempts, _, _ := db.Inspect(t).OutboxState(ids[0])
		if m.Status != switchboard.DeliveryFailed || m.Error != "provider unavailable" || state != "dead" || attempts != 3 {
			t.Fatalf("message %s %q, outbox %s after %d attempts; want failed and dead after 3", m.Status, m.Error, state, attempts)
		}
	})
}

func TestMissingSenderFailsAtOnce(t *testing.T) {
	ctx := context.Background()
	db, ids := setup(t, "sqlite", 1)
	w := &outbox.Worker{Inbox: db, Logger: quiet()}
	if _, err := w.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	m, _ := db.Message(ctx, switchboard.System, ids[0])
	if m.Status != switchboard.DeliveryFailed || m.Error != "no sender is configured for channel sms" {
		t.Fatalf("message %s %q", m.Status, m.Error)
	}
}

func TestTwoWorkersNeverSendTwice(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		const n = 40
		db, ids := setup(t, backend, n)
		// Two workers, as two instances would run them, each with its own
		// connection pool to the same database.
		s := newFlaky(0)
		s.delay = 2 * time.Millisecond
		var wg sync.WaitGroup
		for i := 0; i < 2; i++ {
			var wdb outbox.Inbox = db
			if backend == "postgres" && i == 1 {
				other, err := inbox.Open(ctx, inbox.Config{DatabaseURL: db.URL})
				if err != nil {
					t.Fatal(err)
				}
				defer other.Close()
				wdb = other
			}
			w := &outbox.Worker{Inbox: wdb, Senders: outbox.SenderMap{switchboard.ChannelSMS: s},
				Poll: 5 * time.Millisecond, BatchSize: 3, Logger: quiet()}
			wg.Add(1)
			go func() { defer wg.Done(); w.Run(ctx) }()
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			s.mu.Lock()
			done := len(s.delivered)
			s.mu.Unlock()
			if done == n || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		wg.Wait()
		for _, id := range ids {
			if s.delivered[id] != 1 {
				t.Fatalf("message %s delivered %d times, want 1", id, s.delivered[id])
			}
		}
	})
}
