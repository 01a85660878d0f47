package dispatch_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/route"
	"github.com/switchboard-inbox/switchboard/route/dispatch"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

// walkCounter is the inbox, counting reads of the queue and of
// conversations by id.
type walkCounter struct {
	*ackInbox
	pages, byID, rows atomic.Int64
}

func (w *walkCounter) WaitingConversations(ctx context.Context, after *route.QueueCursor, limit int) ([]route.Waiting, error) {
	w.pages.Add(1)
	out, err := w.ackInbox.WaitingConversations(ctx, after, limit)
	w.rows.Add(int64(len(out)))
	return out, err
}

func (w *walkCounter) WaitingInClass(ctx context.Context, c switchboard.ChannelClass, after *route.QueueCursor, limit int) ([]route.Waiting, error) {
	w.pages.Add(1)
	out, err := w.ackInbox.WaitingInClass(ctx, c, after, limit)
	w.rows.Add(int64(len(out)))
	return out, err
}

func (w *walkCounter) WaitingByIDs(ctx context.Context, ids []string) ([]route.Waiting, error) {
	w.byID.Add(1)
	out, err := w.ackInbox.WaitingByIDs(ctx, ids)
	w.rows.Add(int64(len(out)))
	return out, err
}

// TestIncrementalRouting: with a queue and nobody online, what a stored
// batch costs the router is the batch's conversations, never the queue;
// when capacity frees, the queue's head is taken, oldest first, and the
// walk stops where room ends.
func TestIncrementalRouting(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		ctx := context.Background()
		const queued = 120
		var first []string
		for i := 0; i < queued; i++ {
			id := e.conv(switchboard.ChannelSMS, i, "hello")
			if i < 3 {
				first = append(first, id)
			}
			e.clock.Advance(time.Second)
		}
		wc := &walkCounter{ackInbox: e.acks}
		d := &dispatch.Dispatcher{Inbox: wc, Clock: e.clock, Batch: 50}
		// The whole pass (at start) decides every one: nobody online.
		if a, w, err := d.RouteOnce(ctx); err != nil || a != 0 || w != queued {
			t.Fatalf("whole pass: %d assigned %d waiting %v", a, w, err)
		}
		wc.pages.Store(0)
		wc.rows.Store(0)

		// Nobody has room: the head pass reads nothing.
		if a, w, err := d.RouteHead(ctx); err != nil || a != 0 || w != 0 || wc.pages.Load() != 0 {
			t.Fatalf("head pass with no room: %d %d %v, %d pages read", a, w, err, wc.pages.Load())
		}
		// A new conversation is decided alone: its waiting reason is
		// written, and the queue is not read.
		res := e.ingest(switchboard.ChannelSMS, 9999, "late-1", "one more")
		if a, w, err := d.RouteConversations(ctx, []string{res.ConversationID}); err != nil || a != 0 || w != 1 {
			t.Fatalf("new conversation: %d %d %v", a, w, err)
		}
		if wc.pages.Load() != 0 || wc.rows.Load() != 1 {
			t.Fatalf("deciding one new conversation read %d queue pages, %d rows", wc.pages.Load(), wc.rows.Load())
		}
		if r := e.waitReason(res.ConversationID); r == "" {
			t.Fatal("the new conversation carries no waiting reason")
		}
		// Conversations that do not wait (assigned, unknown) are skipped.
		if a, w, err := d.RouteConversations(ctx, []string{"no-such-conversation"}); err != nil || a+w != 0 {
			t.Fatalf("unknown conversation: %d %d %v", a, w, err)
		}

		// Room for two chats frees: the head pass assigns the two oldest
		// and stops reading at once: one page of chats, not the queue
		// (and the e-mails' queue, where Sarah has room too, is empty).
		e.agent("Sarah", 2)
		wc.pages.Store(0)
		wc.rows.Store(0)
		if a, _, err := d.RouteHead(ctx); err != nil || a != 2 {
			t.Fatalf("head pass with room for 2: %d assigned %v", a, err)
		}
		if pages, rows := wc.pages.Load(), wc.rows.Load(); pages != 2 || rows != 50 {
			t.Fatalf("head pass for room for 2 read %d pages, %d rows; want the first page of chats and an empty one of e-mails", pages, rows)
		}
		for _, id := range first[:2] {
			if e.assignee(id) == "" {
				t.Fatalf("oldest conversation %s not assigned first", id)
			}
		}
		if e.assignee(first[2]) != "" {
			t.Fatal("a third conversation was assigned over the cap")
		}
	})
}

// fillCounter is the inbox, recording the largest FillWaiting call.
type fillCounter struct {
	*ackInbox
	largest atomic.Int64
}

func (f *fillCounter) FillWaiting(ctx context.Context, ws []route.Waiting, since time.Time) error {
	if n := int64(len(ws)); n > f.largest.Load() {
		f.largest.Store(n)
	}
	return f.ackInbox.FillWaiting(ctx, ws, since)
}

// TestRouteConversationsInParts: a pending set larger than one part, as
// after a burst, is filled in a part at a time and still decided in queue
// order, whatever the order of the ids: the oldest get the room.
func TestRouteConversationsInParts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		ctx := context.Background()
		const n = 1100 // more than two parts of 500
		ids := make([]string, n)
		for i := range ids {
			ids[i] = e.conv(switchboard.ChannelSMS, i, "hello")
			e.clock.Advance(time.Second)
		}
		e.agent("Sarah", 2)
		fc := &fillCounter{ackInbox: e.acks}
		d := &dispatch.Dispatcher{Inbox: fc, Clock: e.clock}
		newestFirst := slices.Clone(ids)
		slices.Reverse(newestFirst)
		if a, w, err := d.RouteConversations(ctx, newestFirst); err != nil || a != 2 || w != n-2 {
			t.Fatalf("%d pending, room for 2: %d assigned, %d waiting, %v", n, a, w, err)
		}
		if l := fc.largest.Load(); l == 0 || l > 500 {
			t.Fatalf("filled in %d conversations at once, want parts of at most 500", l)
		}
		for i, id := range ids[:3] {
			if got := e.assignee(id) != ""; got != (i < 2) {
				t.Fatalf("conversation %d (oldest first) assigned: %v", i, got)
			}
		}
	})
}

// TestRunIsIncremental: the running dispatcher reads the queue once at
// start; then stored batches cost their own conversations only.
func TestRunIsIncremental(t *testing.T) {
	e := newEnv(t, "sqlite")
	for i := 0; i < 60; i++ {
		e.conv(switchboard.ChannelEmail, i, "queued")
	}
	wc := &walkCounter{ackInbox: e.acks}
	d := &dispatch.Dispatcher{Inbox: wc, Clock: e.clock, Batch: 20, Poll: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	// 60 waiting, pages of 20: three full pages and an empty one.
	waitFor(t, "the first whole pass", func() bool { return wc.pages.Load() >= 4 })
	startPages := wc.pages.Load()
	var ids []string
	for i := 0; i < 5; i++ {
		res := e.ingest(switchboard.ChannelEmail, 1000+i, fmt.Sprint("new-", i), "new")
		ids = append(ids, res.ConversationID)
		d.OnStored(ctx, []switchboard.Inbound{{Channel: switchboard.ChannelEmail}}, []switchboard.IngestResult{res})
	}
	waitFor(t, "the new conversations decided", func() bool {
		for _, id := range ids {
			if e.waitReason(id) == "" {
				return false
			}
		}
		return true
	})
	if got := wc.pages.Load(); got != startPages {
		t.Fatalf("stored batches made the router read %d queue pages", got-startPages)
	}
	// An agent coming online (the inbox's hook) takes the head.
	a := e.agent("Sam", 0)
	d.Changed()
	waitFor(t, "the oldest assigned", func() bool { return e.activeOf(a.ID) > 0 })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitReason is the reason logged when the router last left conv
// waiting, "" when it never decided it.
func (e *env) waitReason(conv string) string {
	e.t.Helper()
	evs := e.events(conv, switchboard.EventWaiting)
	if len(evs) == 0 {
		return ""
	}
	r, _ := evs[len(evs)-1].Data["reason"].(string)
	if r == "" {
		r = "(no reason given)"
	}
	return r
}

// activeOf counts an agent's active conversations.
func (e *env) activeOf(agentID string) int {
	e.t.Helper()
	counts, err := e.db.ActiveCounts(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, c := range counts[agentID] {
		n += c
	}
	return n
}
