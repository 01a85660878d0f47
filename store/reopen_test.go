package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
	"github.com/switchboard-inbox/switchboard/route"
	"github.com/switchboard-inbox/switchboard/store"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

// A reopened conversation stays with its agent while they are online (as
// the router's assignment, no longer a manual one) and goes back to the
// queue when they are not.
func TestReopenSettlesTheAssignee(t *testing.T) {
	eachPath(t, func(t *testing.T, backend string, opts store.IngestOptions) {
		ctx := context.Background()
		clock := testenv.NewClock(t0)
		db := storetest.Open(t, backend, clock)
		sue, max := mustAgent(t, db, "sue"), mustAgent(t, db, "max")
		for _, a := range []switchboard.Agent{sue, max} {
			if _, err := db.SetAgentStatus(ctx, a.ID, switchboard.AgentOnline); err != nil {
				t.Fatal(err)
			}
		}
		a := mustIngestOpts(t, db, opts, inbound(switchboard.ChannelSMS, "a1", "hi", phone("+14155550001")))[0]
		b := mustIngestOpts(t, db, opts, inbound(switchboard.ChannelSMS, "b1", "hi", phone("+14155550002")))[0]
		h := mustIngestOpts(t, db, opts, inbound(switchboard.ChannelSMS, "h1", "hi", phone("+14155550003")))[0]
		if err := db.SetHeld(ctx, h.ConversationID, true, sue.ID); err != nil {
			t.Fatal(err)
		}
		for conv, agent := range map[string]string{a.ConversationID: sue.ID, b.ConversationID: max.ID, h.ConversationID: sue.ID} {
			if _, err := db.Assign(ctx, conv, agent, agent, "manual", "took it"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.SetStatus(ctx, conv, switchboard.StatusResolved, agent); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.SetAgentStatus(ctx, sue.ID, switchboard.AgentOffline); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Hour)
		ra := mustIngestOpts(t, db, opts, inbound(switchboard.ChannelSMS, "a2", "again", phone("+14155550001")))[0]
		rb := mustIngestOpts(t, db, opts, inbound(switchboard.ChannelSMS, "b2", "again", phone("+14155550002")))[0]
		rh := mustIngestOpts(t, db, opts, inbound(switchboard.ChannelSMS, "h2", "again", phone("+14155550003")))[0]
		if !ra.Reopened || !rb.Reopened || !rh.Reopened {
			t.Fatalf("not reopened: %+v %+v %+v", ra, rb, rh)
		}
		// A held conversation is a person's to release: it keeps Sue.
		if ch, _ := db.GetConversation(ctx, h.ConversationID); ch.AssigneeID != sue.ID {
			t.Errorf("held conversation's assignee after reopening = %q, want Sue", ch.AssigneeID)
		}
		ca, _ := db.GetConversation(ctx, a.ConversationID)
		cb, _ := db.GetConversation(ctx, b.ConversationID)
		if ca.AssigneeID != "" || cb.AssigneeID != max.ID {
			t.Errorf("assignees after reopening: %q (Sue offline, want none) and %q (want Max)", ca.AssigneeID, cb.AssigneeID)
		}
		if st := storetest.Inspect(t, db).RoutingState(b.ConversationID); st.AssignedBy != route.AssignedRouter {
			t.Errorf("Max's reopened conversation: %+v, want the router's", st)
		}
		events, _ := db.Events(ctx, a.ConversationID)
		found := false
		for _, e := range events {
			found = found || e.Type == switchboard.EventUnassigned && strings.Contains(string(e.Data), "reopened while sue is offline")
		}
		if !found {
			t.Errorf("no event says why the reopened conversation went back to the queue: %v", events)
		}
	})
}

// A message dated earlier than the last one (a backlog, a sender's clock)
// never moves the conversation's last inbound time backwards.
func TestLastInboundNeverGoesBack(t *testing.T) {
	eachPath(t, func(t *testing.T, backend string, opts store.IngestOptions) {
		ctx := context.Background()
		clock := testenv.NewClock(t0)
		db := storetest.Open(t, backend, clock)
		first := inbound(switchboard.ChannelEmail, "m1", "nine", email("ann@example.com"))
		first.ReceivedAt = t0.Add(-time.Hour)
		r := mustIngestOpts(t, db, opts, first)[0]
		older := inbound(switchboard.ChannelSMS, "m2", "eight", email("ann@example.com"))
		older.ReceivedAt = t0.Add(-2 * time.Hour)
		mustIngestOpts(t, db, opts, older)
		c, _ := db.GetConversation(ctx, r.ConversationID)
		if !c.LastInboundAt.Equal(t0.Add(-time.Hour)) {
			t.Errorf("last inbound = %v, want %v", c.LastInboundAt, t0.Add(-time.Hour))
		}
	})
}
