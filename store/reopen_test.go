package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
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
		for conv, agent := range map[string]string{a.ConversationID: sue.ID, b.ConversationID: max.ID} {
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
		if !ra.Reopened || !rb.Reopened {
			t.Fatalf("not reopened: %+v %+v", ra, rb)
		}
		ca, _ := db.GetConversation(ctx, a.ConversationID)
		cb, _ := db.GetConversation(ctx, b.ConversationID)
		if ca.AssigneeID != "" || cb.AssigneeID != max.ID {
			t.Errorf("assignees after reopening: %q (Sue offline, want none) and %q (want Max)", ca.AssigneeID, cb.AssigneeID)
		}
		if st, err := db.GetRoutingState(ctx, b.ConversationID); err != nil || st.AssignedBy != store.AssignedRouter {
			t.Errorf("Max's reopened conversation: %+v %v, want the router's", st, err)
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
