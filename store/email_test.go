package store_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
	"github.com/switchboard-inbox/switchboard/store"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

func mailIn(providerID, text, from string) switchboard.Inbound {
	in := inbound(switchboard.ChannelEmail, providerID, text, email(from))
	in.Subject = "Order 7"
	in.Metadata = json.RawMessage(`{"message_id":"` + providerID + `","references":["root@x"]}`)
	return in
}

// sendReply stores an agent's e-mail reply and completes its send with
// Message-ID msgID, as the outbox does.
func sendReply(t *testing.T, db *store.DB, conv, agentID, msgID string) switchboard.Message {
	t.Helper()
	ctx := context.Background()
	m, err := db.CreateReply(ctx, store.Reply{ConversationID: conv, AgentID: agentID, Channel: switchboard.ChannelEmail, Text: "reply"})
	if err != nil {
		t.Fatal(err)
	}
	items, err := db.ClaimOutbox(ctx, 10, time.Minute)
	if err != nil || len(items) != 1 {
		t.Fatalf("claim: %v %d", err, len(items))
	}
	if err := db.CompleteOutbox(ctx, items[0].ID, msgID); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestEmailThreading(t *testing.T) {
	eachPath(t, func(t *testing.T, backend string, opts store.IngestOptions) {
		ctx := context.Background()
		clock := testenv.NewClock(t0)
		db := storetest.Open(t, backend, clock)
		agent := mustAgent(t, db, "sarah")

		first := mustIngestOpts(t, db, opts, mailIn("c1@mail.example", "hello", "ann@example.com"))[0]
		th, err := db.EmailThread(ctx, first.ConversationID)
		if err != nil || th.Subject != "Order 7" || th.InReplyTo != "c1@mail.example" || len(th.References) != 2 || th.References[1] != "c1@mail.example" {
			t.Fatalf("thread = %+v, %v", th, err)
		}
		sendReply(t, db, first.ConversationID, agent.ID, "sb.out1@acme.test")
		if _, err := db.SetStatus(ctx, first.ConversationID, switchboard.StatusResolved, agent.ID); err != nil {
			t.Fatal(err)
		}
		// Well past the reopen window, the customer writes about something
		// else: a new conversation.
		clock.Advance(30 * 24 * time.Hour)
		second := mustIngestOpts(t, db, opts, mailIn("c2@mail.example", "new topic", "ann@example.com"))[0]
		if !second.NewConversation || second.ConversationID == first.ConversationID {
			t.Fatalf("a fresh mail after the window joined %s", second.ConversationID)
		}
		// A reply to our old mail (In-Reply-To only) goes to the open
		// conversation: a customer has one open conversation at a time.
		r := mailIn("c3@mail.example", "about the old order", "ann@example.com")
		r.InReplyTo = []string{"sb.out1@acme.test"}
		got := mustIngestOpts(t, db, opts, r)[0]
		if got.ConversationID != second.ConversationID {
			t.Errorf("reply to a resolved thread while another is open went to %s, want the open %s", got.ConversationID, second.ConversationID)
		}
		if _, err := db.SetStatus(ctx, second.ConversationID, switchboard.StatusResolved, agent.ID); err != nil {
			t.Fatal(err)
		}
		clock.Advance(30 * 24 * time.Hour)
		// With nothing open, a reply by reference reopens its own thread,
		// however old, and so does one that names it by token only.
		r = mailIn("c4@mail.example", "still about order 7", "ann@example.com")
		r.InReplyTo = []string{"unknown@x", "sb.out1@acme.test"}
		got = mustIngestOpts(t, db, opts, r)[0]
		if got.ConversationID != first.ConversationID || !got.Reopened {
			t.Errorf("reply by References: %+v, want the first conversation reopened", got)
		}
		// A colleague CC'd on the thread answers from another address
		// with the token: it lands in the thread, not in a new one.
		r = mailIn("c5@mail.example", "I am Ann's colleague", "bob@example.com")
		r.ConversationHint = first.ConversationID
		got = mustIngestOpts(t, db, opts, r)[0]
		if got.ConversationID != first.ConversationID || got.NewConversation {
			t.Errorf("token reply from a colleague: %+v", got)
		}
		// Without the token, a stranger quoting Ann's Message-IDs does not
		// get into her conversation.
		r = mailIn("c5b@mail.example", "let me in", "mallory@example.com")
		r.InReplyTo = []string{"sb.out1@acme.test", "c1@mail.example"}
		if got = mustIngestOpts(t, db, opts, r)[0]; got.ConversationID == first.ConversationID || !got.NewConversation {
			t.Errorf("a stranger's reference threaded into Ann's conversation: %+v", got)
		}
		// An unknown token (a deleted conversation) falls back to the
		// sender's own threading.
		r = mailIn("c6@mail.example", "x", "carol@example.com")
		r.ConversationHint = "no-such-conversation"
		if got = mustIngestOpts(t, db, opts, r)[0]; !got.NewConversation {
			t.Errorf("unknown token: %+v", got)
		}
		// The same mail again is a duplicate.
		if dup := mustIngestOpts(t, db, opts, mailIn("c1@mail.example", "hello", "ann@example.com"))[0]; !dup.Duplicate {
			t.Errorf("second copy: %+v", dup)
		}
	})
}

func TestEmailRobots(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		clock := testenv.NewClock(t0)
		db := storetest.Open(t, backend, clock)
		agent := mustAgent(t, db, "sarah")
		first := mustIngest(t, db, mailIn("c1@mail.example", "hello", "ann@example.com"))[0]
		m := sendReply(t, db, first.ConversationID, agent.ID, "sb.out1@acme.test")
		if _, err := db.SetStatus(ctx, first.ConversationID, switchboard.StatusResolved, agent.ID); err != nil {
			t.Fatal(err)
		}

		ooo := switchboard.AutoReply{MessageID: "ooo@x", InReplyTo: []string{"sb.out1@acme.test"}, From: email("ann@example.com"), Subject: "Away", Reason: "Auto-Submitted: auto-replied"}
		for i := 0; i < 2; i++ {
			conv, isNew, err := db.RecordAutoReply(ctx, ooo)
			if err != nil || conv != first.ConversationID || isNew != (i == 0) {
				t.Fatalf("auto-reply %d: %q %v %v", i, conv, isNew, err)
			}
		}
		c, _ := db.GetConversation(ctx, first.ConversationID)
		if c.Status != switchboard.StatusResolved {
			t.Errorf("an auto-reply reopened the conversation: %s", c.Status)
		}
		// A bounce for a Cc'd address is noted but does not fail the
		// message to the customer.
		cc := switchboard.Bounce{MessageID: "dsn-cc@x", Original: "sb.out1@acme.test", Permanent: true, Diagnostic: "5.1.1 boss@example.com", Recipients: []string{"boss@example.com"}}
		if mid, _, err := db.RecordBounce(ctx, cc); err != nil || mid != m.ID {
			t.Fatalf("cc bounce: %q %v", mid, err)
		}
		if got, _ := db.GetMessage(ctx, m.ID); got.Status == switchboard.DeliveryFailed {
			t.Error("a Cc's bounce failed the message to the customer")
		}
		b := switchboard.Bounce{MessageID: "dsn@x", Original: "sb.out1@acme.test", Permanent: true, Diagnostic: "5.1.1 ann@example.com user unknown", Recipients: []string{"ann@example.com"}}
		for i := 0; i < 2; i++ {
			mid, conv, err := db.RecordBounce(ctx, b)
			if err != nil || mid != m.ID || conv != first.ConversationID {
				t.Fatalf("bounce %d: %q %q %v", i, mid, conv, err)
			}
		}
		got, _ := db.GetMessage(ctx, m.ID)
		if got.Status != switchboard.DeliveryFailed || got.Error != b.Diagnostic {
			t.Errorf("bounced message: %s %q", got.Status, got.Error)
		}
		events, _ := db.Events(ctx, first.ConversationID)
		counts := map[switchboard.EventType]int{}
		for _, e := range events {
			counts[e.Type]++
		}
		if counts[switchboard.EventAutoReply] != 1 || counts[switchboard.EventBounce] != 2 {
			t.Errorf("events = %v, want one auto_reply and two bounces", counts)
		}
		msgs, _, _ := db.Timeline(ctx, first.CustomerID, "", 1000)
		if len(msgs) != 2 {
			t.Errorf("timeline has %d messages, want the customer's and ours only", len(msgs))
		}
		if mid, _, err := db.RecordBounce(ctx, switchboard.Bounce{MessageID: "dsn2@x", Original: "never-sent@x", Permanent: true}); err != nil || mid != "" {
			t.Errorf("bounce for an unknown mail: %q %v", mid, err)
		}

		// One automatic mail per address per window.
		ok1, _ := db.TryAutoMail(ctx, "Ann@Example.com", "m1", 24*time.Hour)
		retry, _ := db.TryAutoMail(ctx, "ann@example.com", "m1", 24*time.Hour)
		ok2, _ := db.TryAutoMail(ctx, "ann@example.com", "m2", 24*time.Hour)
		clock.Advance(25 * time.Hour)
		ok3, _ := db.TryAutoMail(ctx, "ann@example.com", "m3", 24*time.Hour)
		if !ok1 || !retry || ok2 || !ok3 {
			t.Errorf("auto mail allowed: %v %v %v %v, want true true false true", ok1, retry, ok2, ok3)
		}

		// Mailbox positions.
		if v, u, err := db.MailboxState(ctx, "u@h/INBOX"); v != 0 || u != 0 || err != nil {
			t.Errorf("unknown mailbox: %d %d %v", v, u, err)
		}
		db.SaveMailboxState(ctx, "u@h/INBOX", 7, 10)
		db.SaveMailboxState(ctx, "u@h/INBOX", 7, 12)
		if v, u, _ := db.MailboxState(ctx, "u@h/INBOX"); v != 7 || u != 12 {
			t.Errorf("mailbox state = %d %d", v, u)
		}
	})
}

func TestAutoReplyIsNotAFirstResponse(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		db := storetest.Open(t, backend, testenv.NewClock(t0))
		r := mustIngest(t, db, mailIn("c1@mail.example", "hello", "ann@example.com"))[0]
		m, err := db.CreateReply(ctx, store.Reply{ConversationID: r.ConversationID, Auto: true, Text: "We are closed."})
		if err != nil {
			t.Fatal(err)
		}
		if m.Sender != store.SystemSender || string(m.Metadata) != `{"auto":true}` {
			t.Errorf("auto reply = %q %s", m.Sender, m.Metadata)
		}
		c, _ := db.GetConversation(ctx, r.ConversationID)
		if !c.FirstResponseAt.IsZero() {
			t.Error("an automatic acknowledgement counted as the first response")
		}
		if _, err := db.CreateReply(ctx, store.Reply{ConversationID: r.ConversationID, AgentID: "nobody", Text: "x"}); switchboard.ErrorCode(err) != switchboard.ENOTFOUND {
			t.Errorf("unknown agent: %v", err)
		}
	})
}
