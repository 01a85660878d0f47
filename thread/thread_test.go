package thread_test

import (
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/thread"
)

var now = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func conv(id, customer string, status switchboard.Status, resolvedAgo time.Duration) *thread.Conversation {
	c := &thread.Conversation{ID: id, CustomerID: customer, Status: status, LastChannel: switchboard.ChannelEmail}
	if status == switchboard.StatusResolved {
		c.ResolvedAt = now.Add(-resolvedAgo)
	}
	return c
}

func TestDecide(t *testing.T) {
	const week = 7 * 24 * time.Hour
	open := conv("open", "ann", switchboard.StatusOpen, 0)
	snoozed := conv("snoozed", "ann", switchboard.StatusSnoozed, 0)
	recent := conv("recent", "ann", switchboard.StatusResolved, time.Hour)
	old := conv("old", "ann", switchboard.StatusResolved, 30*24*time.Hour)
	bobs := conv("bobs", "bob", switchboard.StatusResolved, 30*24*time.Hour)
	bobsOpen := conv("bobs-open", "bob", switchboard.StatusPending, 0)
	for _, tt := range []struct {
		name    string
		f       thread.Facts
		action  thread.Action
		into    string
		byReply bool
	}{
		{"a new customer", thread.Facts{}, thread.Create, "", false},
		{"a customer with nothing", thread.Facts{Customer: "ann"}, thread.Create, "", false},
		{"the open conversation", thread.Facts{Customer: "ann", Current: open}, thread.Join, "open", false},
		{"a snoozed one wakes", thread.Facts{Customer: "ann", Current: snoozed}, thread.Wake, "snoozed", false},
		{"resolved inside the window", thread.Facts{Customer: "ann", Current: recent}, thread.Reopen, "recent", false},
		{"resolved outside the window", thread.Facts{Customer: "ann", Current: old}, thread.Create, "", false},
		{"exactly at the window's edge", thread.Facts{Customer: "ann", Current: conv("edge", "ann", switchboard.StatusResolved, week)}, thread.Create, "", false},

		// A reply naming a conversation.
		{"a reference to an old thread reopens it", thread.Facts{Customer: "ann", Current: recent, Named: old}, thread.Reopen, "old", true},
		{"a reference while another is open joins the open one", thread.Facts{Customer: "ann", Current: open, Named: old}, thread.Join, "open", true},
		{"a reference to the open thread", thread.Facts{Customer: "ann", Current: open, Named: open}, thread.Join, "open", true},
		{"a reference to a snoozed thread wakes it", thread.Facts{Customer: "ann", Current: snoozed, Named: snoozed}, thread.Wake, "snoozed", true},
		{"a stranger's reference counts for nothing", thread.Facts{Customer: "ann", Current: open, Named: bobs}, thread.Join, "open", false},
		{"a new sender's reference counts for nothing", thread.Facts{Named: bobs}, thread.Create, "", false},
		{"a token brings a colleague in", thread.Facts{Customer: "ann", Current: open, Named: bobs, NamedByToken: true}, thread.Reopen, "bobs", true},
		{"a token for a resolved thread whose customer has another open", thread.Facts{Customer: "ann", Named: bobs, NamedByToken: true, NamedOwnerOpen: bobsOpen}, thread.Wake, "bobs-open", true},
		{"a new sender by token", thread.Facts{Named: bobs, NamedByToken: true}, thread.Reopen, "bobs", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.f.Now, tt.f.ReopenWindow = now, week
			d := thread.Decide(tt.f)
			into := ""
			if d.Conversation != nil {
				into = d.Conversation.ID
			}
			if d.Action != tt.action || into != tt.into || d.ByReply != tt.byReply {
				t.Fatalf("Decide = %s %q by reply %v, want %s %q by reply %v", d.Action, into, d.ByReply, tt.action, tt.into, tt.byReply)
			}
		})
	}
}
