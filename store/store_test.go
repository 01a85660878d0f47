package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
	"github.com/switchboard-inbox/switchboard/store"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func inbound(ch switchboard.Channel, providerID, text string, ids ...switchboard.IdentityRef) switchboard.Inbound {
	return switchboard.Inbound{Channel: ch, ProviderID: providerID, Identities: ids, ContentType: switchboard.ContentText, Text: text, SenderName: "Ana"}
}

func email(v string) switchboard.IdentityRef {
	return switchboard.IdentityRef{Kind: switchboard.IdentityEmail, Value: v}
}

func phone(v string) switchboard.IdentityRef {
	return switchboard.IdentityRef{Kind: switchboard.IdentityPhone, Value: v}
}

// eachPath runs fn on every backend, once through Ingest's set-based fast
// path and once message by message, so both paths are held to the same
// behaviour.
func eachPath(t *testing.T, fn func(t *testing.T, backend string, opts store.IngestOptions)) {
	storetest.Each(t, func(t *testing.T, backend string) {
		t.Run("batch", func(t *testing.T) { fn(t, backend, store.IngestOptions{}) })
		t.Run("one-by-one", func(t *testing.T) { fn(t, backend, store.IngestOptions{OneByOne: true}) })
	})
}

func mustIngest(t *testing.T, db *store.DB, items ...switchboard.Inbound) []switchboard.IngestResult {
	t.Helper()
	return mustIngestOpts(t, db, store.IngestOptions{}, items...)
}

func mustIngestOpts(t *testing.T, db *store.DB, opts store.IngestOptions, items ...switchboard.Inbound) []switchboard.IngestResult {
	t.Helper()
	res, err := db.Ingest(context.Background(), items, opts)
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("ingest item %d: %v", i, r.Err)
		}
	}
	return res
}

func mustAgent(t *testing.T, db *store.DB, name string) switchboard.Agent {
	t.Helper()
	a, err := db.CreateAgent(context.Background(), switchboard.Agent{Name: name, Email: name + "@team.example"}, "")
	if err != nil {
		t.Fatalf("create agent: %v", err)
	}
	return a
}

func TestThreadingAndReopenWindow(t *testing.T) {
	eachPath(t, func(t *testing.T, backend string, opts store.IngestOptions) {
		ctx := context.Background()
		clock := testenv.NewClock(t0)
		db := storetest.Open(t, backend, clock)

		r1 := mustIngestOpts(t, db, opts, inbound(switchboard.ChannelWebform, "f1", "first", email("ana@example.com")))[0]
		clock.Advance(time.Minute)
		r2 := mustIngestOpts(t, db, opts, inbound(switchboard.ChannelWebform, "f2", "second", email("ana@example.com")))[0]
		if !r1.NewConversation || r2.NewConversation || r1.ConversationID != r2.ConversationID || r1.CustomerID != r2.CustomerID {
			t.Fatalf("two messages from one address: got %+v and %+v, want one customer and one conversation", r1, r2)
		}
		msgs, _, err := db.Timeline(ctx, r1.CustomerID, "", 1000)
		if err != nil || len(msgs) != 2 || msgs[0].Text != "first" || msgs[1].Text != "second" {
			t.Fatalf("timeline = %+v, %v; want first, second", msgs, err)
		}

		if _, err := db.SetStatus(ctx, r1.ConversationID, switchboard.StatusResolved, ""); err != nil {
			t.Fatal(err)
		}
		clock.Advance(6 * 24 * time.Hour)
		r3 := mustIngestOpts(t, db, opts, inbound(switchboard.ChannelWebform, "f3", "third", email("ana@example.com")))[0]
		if !r3.Reopened || r3.ConversationID != r1.ConversationID {
			t.Fatalf("message 6 days after resolution: %+v, want the conversation reopened", r3)
		}
		c, err := db.GetConversation(ctx, r1.ConversationID)
		if err != nil || c.Status != switchboard.StatusOpen || !c.ResolvedAt.IsZero() {
			t.Fatalf("reopened conversation = %+v, %v", c, err)
		}

		if _, err := db.SetStatus(ctx, r1.ConversationID, switchboard.StatusResolved, ""); err != nil {
			t.Fatal(err)
		}
		clock.Advance(8 * 24 * time.Hour)
		r4 := mustIngestOpts(t, db, opts, inbound(switchboard.ChannelWebform, "f4", "fourth", email("ana@example.com")))[0]
		if !r4.NewConversation || r4.ConversationID == r1.ConversationID || r4.CustomerID != r1.CustomerID {
			t.Fatalf("message 8 days after resolution: %+v, want a new conversation for the same customer", r4)
		}
		convs, err := db.CustomerConversations(ctx, r1.CustomerID)
		if err != nil || len(convs) != 2 {
			t.Fatalf("customer conversations = %d, %v; want 2", len(convs), err)
		}
		msgs, _, _ = db.Timeline(ctx, r1.CustomerID, "", 1000)
		if len(msgs) != 4 {
			t.Fatalf("timeline has %d messages, want all 4 across both conversations", len(msgs))
		}
		evs, err := db.Events(ctx, r1.ConversationID)
		if err != nil {
			t.Fatal(err)
		}
		var reopened int
		for _, e := range evs {
			if e.Type == switchboard.EventReopened {
				reopened++
			}
		}
		if reopened != 1 {
			t.Fatalf("reopened events = %d, want 1", reopened)
		}
	})
}

func TestOneCustomerAcrossChannels(t *testing.T) {
	eachPath(t, func(t *testing.T, backend string, opts store.IngestOptions) {
		ctx := context.Background()
		db := storetest.Open(t, backend, testenv.NewClock(t0))
		a := mustIngestOpts(t, db, opts, inbound(switchboard.ChannelWebform, "w1", "form", email("bo@example.com"), phone("+14155550123")))[0]
		b := mustIngestOpts(t, db, opts, inbound(switchboard.ChannelSMS, "SM1", "text", phone("+14155550123")))[0]
		c := mustIngestOpts(t, db, opts, inbound(switchboard.ChannelEmail, "<m1@x>", "mail", email("bo@example.com")))[0]
		if a.ConversationID != b.ConversationID || b.ConversationID != c.ConversationID {
			t.Fatalf("one person on three channels: conversations %s %s %s", a.ConversationID, b.ConversationID, c.ConversationID)
		}
		conv, err := db.GetConversation(ctx, a.ConversationID)
		if err != nil {
			t.Fatal(err)
		}
		if conv.LastChannel != switchboard.ChannelEmail || len(conv.Channels) != 3 {
			t.Fatalf("conversation channels = %v last %s, want 3 channels and email last", conv.Channels, conv.LastChannel)
		}
		cust, err := db.GetCustomer(ctx, a.CustomerID)
		if err != nil || len(cust.Identities) != 2 {
			t.Fatalf("customer = %+v, %v; want two identities", cust, err)
		}
		evs, _ := db.Events(ctx, a.ConversationID)
		var switches int
		for _, e := range evs {
			if e.Type == switchboard.EventChannelSwitch {
				switches++
			}
		}
		if switches != 2 {
			t.Fatalf("channel_switch events = %d, want 2", switches)
		}
	})
}

func TestIngestIdempotentUnderConcurrency(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		db := storetest.Open(t, backend, testenv.NewClock(t0))
		in := inbound(switchboard.ChannelSMS, "SMdup", "hello", phone("+14155550199"))
		var wg sync.WaitGroup
		var mu sync.Mutex
		stored := 0
		errs := make(chan error, 50)
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := db.Ingest(ctx, []switchboard.Inbound{in}, store.IngestOptions{})
				if err != nil {
					errs <- err
					return
				}
				if res[0].Err != nil {
					errs <- res[0].Err
					return
				}
				if !res[0].Duplicate {
					mu.Lock()
					stored++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("concurrent ingest: %v", err)
		}
		if stored != 1 {
			t.Fatalf("50 concurrent deliveries stored %d times, want 1", stored)
		}
		// A batch that repeats itself is stored once too.
		res := mustIngest(t, db, inbound(switchboard.ChannelSMS, "SMb", "x", phone("+14155550100")), inbound(switchboard.ChannelSMS, "SMb", "x", phone("+14155550100")))
		if res[0].Duplicate || !res[1].Duplicate {
			t.Fatalf("in-batch duplicate: %+v", res)
		}
		convs, _, err := db.ListConversations(ctx, switchboard.ConversationFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range convs {
			msgs, _, _ := db.Timeline(ctx, c.CustomerID, "", 1000)
			if len(msgs) != 1 {
				t.Fatalf("customer %s has %d messages, want 1", c.CustomerID, len(msgs))
			}
		}
		if len(convs) != 2 {
			t.Fatalf("%d conversations, want 2", len(convs))
		}
	})
}

func TestConcurrentNewCustomerIsOne(t *testing.T) {
	// Different provider ids from one unknown sender, ingested at once:
	// one customer, one open conversation.
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		db := storetest.Open(t, backend, testenv.NewClock(t0))
		var wg sync.WaitGroup
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ch := switchboard.ChannelSMS
				if i%2 == 1 {
					ch = switchboard.ChannelWhatsApp
				}
				if _, err := db.Ingest(ctx, []switchboard.Inbound{inbound(ch, fmt.Sprintf("p%d", i), "hi", phone("+14155550142"))}, store.IngestOptions{}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		convs, _, err := db.ListConversations(ctx, switchboard.ConversationFilter{})
		if err != nil || len(convs) != 1 {
			t.Fatalf("conversations = %d, %v; want 1", len(convs), err)
		}
		msgs, _, _ := db.Timeline(ctx, convs[0].CustomerID, "", 1000)
		if len(msgs) != 20 {
			t.Fatalf("%d messages, want 20", len(msgs))
		}
	})
}

func TestListConversations(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		clock := testenv.NewClock(t0)
		db := storetest.Open(t, backend, clock)
		sarah := mustAgent(t, db, "sarah")
		var ids []string
		for i := 0; i < 7; i++ {
			clock.Advance(time.Minute)
			ch := switchboard.ChannelWebform
			text := fmt.Sprintf("order %d arrived", i)
			if i == 3 {
				ch = switchboard.ChannelSMS
				text = "my parcel is damaged"
			}
			r := mustIngest(t, db, inbound(ch, fmt.Sprintf("l%d", i), text, email(fmt.Sprintf("c%d@example.com", i))))[0]
			ids = append(ids, r.ConversationID)
		}
		if _, err := db.Assign(ctx, ids[2], sarah.ID, "", "manual", "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SetStatus(ctx, ids[4], switchboard.StatusResolved, sarah.ID); err != nil {
			t.Fatal(err)
		}

		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			page, next, err := db.ListConversations(ctx, switchboard.ConversationFilter{Limit: 3, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range page {
				got = append(got, c.ID)
			}
			if next == "" {
				break
			}
			if pages > 5 {
				t.Fatal("pagination does not end")
			}
			cursor = next
		}
		if len(got) != 7 {
			t.Fatalf("paged through %d conversations, want 7", len(got))
		}
		for i := range got {
			if got[i] != ids[len(ids)-1-i] {
				t.Fatalf("order = %v, want newest last_message_at first %v", got, ids)
			}
		}

		check := func(f switchboard.ConversationFilter, want ...string) {
			t.Helper()
			page, _, err := db.ListConversations(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs []string
			for _, c := range page {
				gotIDs = append(gotIDs, c.ID)
			}
			if fmt.Sprint(gotIDs) != fmt.Sprint(want) {
				t.Fatalf("filter %+v = %v, want %v", f, gotIDs, want)
			}
		}
		check(switchboard.ConversationFilter{AssigneeID: sarah.ID}, ids[2])
		check(switchboard.ConversationFilter{Status: switchboard.StatusResolved}, ids[4])
		check(switchboard.ConversationFilter{Channel: switchboard.ChannelSMS}, ids[3])
		check(switchboard.ConversationFilter{Query: "parcel damaged"}, ids[3])
		check(switchboard.ConversationFilter{Query: `"; DROP TABLE x --`})
		if _, _, err := db.ListConversations(ctx, switchboard.ConversationFilter{Cursor: "!!"}); switchboard.ErrorCode(err) != switchboard.EINVALID {
			t.Fatalf("bad cursor: %v, want EINVALID", err)
		}
		msgs, err := db.Search(ctx, "PARCEL", 10)
		if err != nil || len(msgs) != 1 || msgs[0].Text != "my parcel is damaged" {
			t.Fatalf("search = %+v, %v", msgs, err)
		}
	})
}

func TestReplyAndOutbox(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		clock := testenv.NewClock(t0)
		db := storetest.Open(t, backend, clock)
		agent := mustAgent(t, db, "sam")
		r := mustIngest(t, db, inbound(switchboard.ChannelSMS, "SMx", "help", phone("+14155550111")))[0]

		if _, err := db.CreateReply(ctx, store.Reply{ConversationID: r.ConversationID, AgentID: agent.ID, Text: "  "}); switchboard.ErrorCode(err) != switchboard.EINVALID {
			t.Fatalf("empty reply: %v, want EINVALID", err)
		}
		m, err := db.CreateReply(ctx, store.Reply{ConversationID: r.ConversationID, AgentID: agent.ID, Text: "on it"})
		if err != nil {
			t.Fatal(err)
		}
		if m.Status != switchboard.DeliveryQueued || m.Channel != switchboard.ChannelSMS || m.Direction != switchboard.DirectionOut {
			t.Fatalf("reply = %+v, want queued out on sms (the last channel)", m)
		}
		c, _ := db.GetConversation(ctx, r.ConversationID)
		if c.FirstResponseAt.IsZero() {
			t.Fatal("first_response_at not set by the first reply")
		}

		items, err := db.ClaimOutbox(ctx, 10, time.Minute)
		if err != nil || len(items) != 1 {
			t.Fatalf("claim = %d, %v; want 1", len(items), err)
		}
		if got := items[0].Message; got.Text != "on it" || len(got.To) != 1 || got.To[0].Value != "+14155550111" {
			t.Fatalf("claimed message = %+v", got)
		}
		if again, _ := db.ClaimOutbox(ctx, 10, time.Minute); len(again) != 0 {
			t.Fatalf("a leased row was claimed again: %+v", again)
		}
		if err := db.FailOutbox(ctx, items[0].ID, "timeout", clock.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if early, _ := db.ClaimOutbox(ctx, 10, time.Minute); len(early) != 0 {
			t.Fatal("a row was claimed before its next attempt time")
		}
		clock.Advance(2 * time.Second)
		items, _ = db.ClaimOutbox(ctx, 10, time.Minute)
		if len(items) != 1 || items[0].Attempts != 2 {
			t.Fatalf("retry claim = %+v, want attempt 2", items)
		}
		if err := db.CompleteOutbox(ctx, items[0].ID, "SMout1"); err != nil {
			t.Fatal(err)
		}
		m, _ = db.GetMessage(ctx, m.ID)
		if m.Status != switchboard.DeliverySent || m.ProviderID != "SMout1" {
			t.Fatalf("after send: %+v", m)
		}

		m2, _ := db.CreateReply(ctx, store.Reply{ConversationID: r.ConversationID, AgentID: agent.ID, Text: "again"})
		items, _ = db.ClaimOutbox(ctx, 10, time.Minute)
		if err := db.FailOutbox(ctx, items[0].ID, "rejected by provider", time.Time{}); err != nil {
			t.Fatal(err)
		}
		m2, _ = db.GetMessage(ctx, m2.ID)
		state, _, _, _ := storetest.Inspect(t, db).OutboxState(m2.ID)
		if m2.Status != switchboard.DeliveryFailed || m2.Error != "rejected by provider" || state != "dead" {
			t.Fatalf("dead letter: message %+v outbox %s", m2, state)
		}
	})
}

func TestOutboxClaimsAreExclusive(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		db := storetest.Open(t, backend, testenv.NewClock(t0))
		agent := mustAgent(t, db, "sam")
		r := mustIngest(t, db, inbound(switchboard.ChannelSMS, "SMx", "help", phone("+14155550111")))[0]
		const n = 60
		for i := 0; i < n; i++ {
			if _, err := db.CreateReply(ctx, store.Reply{ConversationID: r.ConversationID, AgentID: agent.ID, Text: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					items, err := db.ClaimOutbox(ctx, 7, time.Minute)
					if err != nil {
						t.Error(err)
						return
					}
					if len(items) == 0 {
						return
					}
					mu.Lock()
					for _, it := range items {
						seen[it.ID]++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(seen) != n {
			t.Fatalf("claimed %d rows, want %d", len(seen), n)
		}
		for id, k := range seen {
			if k != 1 {
				t.Fatalf("row %s claimed %d times", id, k)
			}
		}
	})
}

func TestMergeCustomers(t *testing.T) {
	eachPath(t, func(t *testing.T, backend string, opts store.IngestOptions) {
		ctx := context.Background()
		clock := testenv.NewClock(t0)
		db := storetest.Open(t, backend, clock)
		a := mustIngestOpts(t, db, opts, inbound(switchboard.ChannelWebform, "a1", "from email", email("dee@example.com")))[0]
		clock.Advance(time.Minute)
		b := mustIngestOpts(t, db, opts, inbound(switchboard.ChannelSMS, "b1", "from phone", phone("+14155550177")))[0]
		if a.CustomerID == b.CustomerID {
			t.Fatal("different identities should start as different customers")
		}
		changed, err := db.MergeCustomers(ctx, a.CustomerID, b.CustomerID, "")
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(changed)
		want := []string{a.ConversationID, b.ConversationID}
		slices.Sort(want)
		if !slices.Equal(changed, want) {
			t.Fatalf("conversations changed by the merge = %v, want %v", changed, want)
		}
		convs, _ := db.CustomerConversations(ctx, a.CustomerID)
		var open []string
		for _, c := range convs {
			if c.Status != switchboard.StatusResolved {
				open = append(open, c.ID)
			}
		}
		if len(convs) != 2 || !slices.Equal(open, []string{a.ConversationID}) {
			t.Fatalf("open conversations after merge: %v of %d, want only %s", open, len(convs), a.ConversationID)
		}
		cust, _ := db.GetCustomer(ctx, a.CustomerID)
		if len(cust.Identities) != 2 {
			t.Fatalf("merged customer identities = %v", cust.Identities)
		}
		gone, _ := db.GetCustomer(ctx, b.CustomerID)
		if gone.MergedInto != a.CustomerID {
			t.Fatalf("merged-away customer redirect = %q", gone.MergedInto)
		}
		msgs, _, _ := db.Timeline(ctx, a.CustomerID, "", 1000)
		if len(msgs) != 2 {
			t.Fatalf("timeline after merge has %d messages", len(msgs))
		}
		for _, m := range msgs {
			if m.ConversationID != a.ConversationID {
				t.Fatalf("message %s left in conversation %s", m.ID, m.ConversationID)
			}
		}
		// A new SMS from the merged phone joins the surviving open conversation.
		c := mustIngestOpts(t, db, opts, inbound(switchboard.ChannelSMS, "b2", "again", phone("+14155550177")))[0]
		if c.ConversationID != a.ConversationID || c.CustomerID != a.CustomerID {
			t.Fatalf("after merge: %+v", c)
		}
		if _, err := db.MergeCustomers(ctx, a.CustomerID, b.CustomerID, ""); switchboard.ErrorCode(err) != switchboard.ECONFLICT {
			t.Fatalf("merging twice: %v, want ECONFLICT", err)
		}
	})
}

func TestAgentsAndTokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		db := storetest.Open(t, backend, testenv.NewClock(t0))
		a, err := db.CreateAgent(ctx, switchboard.Agent{Name: "Sarah", Email: "Sarah@Team.example", Skills: []string{"billing"}}, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateAgent(ctx, switchboard.Agent{Name: "Other", Email: "sarah@team.example"}, ""); switchboard.ErrorCode(err) != switchboard.ECONFLICT {
			t.Fatalf("duplicate email: %v, want ECONFLICT", err)
		}
		tok, err := db.CreateToken(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.AgentByToken(ctx, tok)
		if err != nil || got.ID != a.ID || got.Email != "sarah@team.example" || len(got.Skills) != 1 {
			t.Fatalf("agent by token = %+v, %v", got, err)
		}
		if _, err := db.AgentByToken(ctx, tok+"x"); switchboard.ErrorCode(err) != switchboard.EUNAUTHORIZED {
			t.Fatalf("wrong token: %v", err)
		}
		if got, err := db.SetAgentStatus(ctx, a.ID, switchboard.AgentOnline); err != nil || got.Status != switchboard.AgentOnline {
			t.Fatalf("set status: %+v %v", got, err)
		}
	})
}

// TestIngestDeadLettersOneBadMessage: a message the database refuses (a NUL
// byte, which PostgreSQL text cannot hold) is dead-lettered on the slow
// path, and the rest of its batch is stored.
func TestIngestDeadLettersOneBadMessage(t *testing.T) {
	eachPath(t, func(t *testing.T, backend string, opts store.IngestOptions) {
		ctx := context.Background()
		db := storetest.Open(t, backend, testenv.NewClock(t0))
		res, err := db.Ingest(ctx, []switchboard.Inbound{
			inbound(switchboard.ChannelSMS, "a", "fine", phone("+14155550001")),
			inbound(switchboard.ChannelSMS, "b", "nul\x00byte", phone("+14155550002")),
			inbound(switchboard.ChannelSMS, "c", "also fine", phone("+14155550003")),
		}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Err != nil || res[2].Err != nil || res[0].MessageID == "" || res[2].MessageID == "" {
			t.Fatalf("good messages: %+v", res)
		}
		// The queue redelivers the batch: nothing is stored or dead-lettered twice.
		if _, err := db.Ingest(ctx, []switchboard.Inbound{inbound(switchboard.ChannelSMS, "b", "nul\x00byte", phone("+14155550002"))}, opts); err != nil {
			t.Fatal(err)
		}
		n := storetest.Inspect(t, db).DeadLetters()
		if backend == "postgres" {
			if res[1].Err == nil || n != 1 {
				t.Fatalf("NUL byte on postgres: result %+v, %d dead letters; want an error and 1", res[1], n)
			}
		} else if res[1].Err != nil || n != 0 {
			t.Fatalf("NUL byte on sqlite: result %+v, %d dead letters; want stored", res[1], n)
		}
	})
}

// TestBatchMatchesOneByOne feeds the same mixed workload (new and returning
// customers, several channels, repeats inside one batch, resolved and
// pending conversations, duplicates) through both ingest paths and checks
// that they thread it identically.
func TestBatchMatchesOneByOne(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		type summary struct {
			convs, open, msgs map[string]int
			events            map[switchboard.EventType]int
		}
		run := func(opts store.IngestOptions) summary {
			clock := testenv.NewClock(t0)
			db := storetest.Open(t, backend, clock)
			chans := []switchboard.Channel{switchboard.ChannelSMS, switchboard.ChannelWhatsApp, switchboard.ChannelVoice}
			n := 0
			for round := 0; round < 4; round++ {
				var batch []switchboard.Inbound
				for i := 0; i < 30; i++ {
					n++
					c := (n * 7) % 11 // eleven customers, most of them repeat
					batch = append(batch, inbound(chans[n%3], fmt.Sprint("m", n), fmt.Sprint("text ", n), phone(fmt.Sprintf("+1415555%04d", c))))
					if i%9 == 0 {
						batch = append(batch, batch[len(batch)-1]) // a provider retry in the same batch
					}
				}
				mustIngestOpts(t, db, opts, batch...)
				// Between rounds an agent resolves some conversations and
				// parks others as pending; time moves on.
				convs, _, _ := db.ListConversations(ctx, switchboard.ConversationFilter{Status: switchboard.StatusOpen, Limit: 200})
				for _, c := range convs {
					// Decide by customer, not list position: positions tie.
					cust, _ := db.GetCustomer(ctx, c.CustomerID)
					v := cust.Identities[0].Value
					switch (int(v[len(v)-1]) + round) % 3 {
					case 0:
						db.SetStatus(ctx, c.ID, switchboard.StatusResolved, "")
					case 1:
						db.SetStatus(ctx, c.ID, switchboard.StatusPending, "")
					}
				}
				clock.Advance(time.Duration(round*3) * 24 * time.Hour)
			}
			s := summary{map[string]int{}, map[string]int{}, map[string]int{}, map[switchboard.EventType]int{}}
			convs, _, _ := db.ListConversations(ctx, switchboard.ConversationFilter{Limit: 200})
			for _, c := range convs {
				cust, _ := db.GetCustomer(ctx, c.CustomerID)
				key := cust.Identities[0].Value
				s.convs[key]++
				if c.Status != switchboard.StatusResolved {
					s.open[key]++
				}
				evs, _ := db.Events(ctx, c.ID)
				for _, e := range evs {
					s.events[e.Type]++
				}
				msgs, _, _ := db.Timeline(ctx, c.CustomerID, "", 1000)
				s.msgs[key] = len(msgs)
			}
			return s
		}
		a, b := run(store.IngestOptions{}), run(store.IngestOptions{OneByOne: true})
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("batch and one-by-one differ:\nbatch      %v\none-by-one %v", a, b)
		}
		if a.events[switchboard.EventReopened] == 0 || a.events[switchboard.EventChannelSwitch] == 0 || a.events[switchboard.EventStatus] == 0 {
			t.Fatalf("workload did not exercise reopen, channel switch and wake-up: %v", a.events)
		}
		for k, v := range a.open {
			if v > 1 {
				t.Fatalf("customer %s has %d open conversations", k, v)
			}
		}
	})
}

// TestBatchManyReturningCustomers crosses the fast path's query chunk size:
// 1,200 returning customers in one batch all join their open conversation.
func TestBatchManyReturningCustomers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		clock := testenv.NewClock(t0)
		db := storetest.Open(t, backend, clock)
		const n = 1200
		batch := func(round int) []switchboard.Inbound {
			var items []switchboard.Inbound
			for i := 0; i < n; i++ {
				items = append(items, inbound(switchboard.ChannelWebform, fmt.Sprintf("r%d-%d", round, i), "hello", email(fmt.Sprintf("c%d@example.com", i))))
			}
			return items
		}
		first := mustIngest(t, db, batch(0)...)
		clock.Advance(time.Minute)
		second := mustIngest(t, db, batch(1)...)
		for i := range second {
			if second[i].NewConversation || second[i].ConversationID != first[i].ConversationID {
				t.Fatalf("returning customer %d: %+v, want their conversation %s", i, second[i], first[i].ConversationID)
			}
		}
		if st := db.Stats(); st.SlowBatches.Load() != 0 {
			t.Fatalf("%d batches fell back to one by one", st.SlowBatches.Load())
		}
	})
}

func TestDeliveryStatusesAndOptOuts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		clock := testenv.NewClock(t0)
		db := storetest.Open(t, backend, clock)
		agent := mustAgent(t, db, "sam")
		r := mustIngest(t, db, inbound(switchboard.ChannelSMS, "SMin", "hi", phone("+14155550123")))[0]

		send := func(providerID string) string {
			m, err := db.CreateReply(ctx, store.Reply{ConversationID: r.ConversationID, AgentID: agent.ID, Text: "reply " + providerID})
			if err != nil {
				t.Fatal(err)
			}
			items, _ := db.ClaimOutbox(ctx, 10, time.Minute)
			if err := db.CompleteOutbox(ctx, items[0].ID, providerID); err != nil {
				t.Fatal(err)
			}
			return m.ID
		}
		status := func(id string) switchboard.DeliveryStatus {
			m, _ := db.GetMessage(ctx, id)
			return m.Status
		}
		a := send("SMa")
		for _, st := range []switchboard.DeliveryStatus{"delivered", "sent", "queued"} { // out of order
			if _, _, err := db.ApplyDeliveryStatus(ctx, switchboard.ChannelSMS, "SMa", st, ""); err != nil {
				t.Fatal(err)
			}
		}
		if got := status(a); got != "delivered" {
			t.Fatalf("after delivered, sent, queued: %s, want delivered (final states never regress)", got)
		}
		db.ApplyDeliveryStatus(ctx, switchboard.ChannelSMS, "SMa", "read", "")
		if got := status(a); got != "read" {
			t.Fatalf("read after delivered: %s", got)
		}
		if _, _, err := db.ApplyDeliveryStatus(ctx, switchboard.ChannelSMS, "SMa", "bogus", ""); switchboard.ErrorCode(err) != switchboard.EINVALID {
			t.Fatalf("unknown status: %v", err)
		}

		// A report that beats the send's answer is kept, then applied.
		if mid, _, err := db.ApplyDeliveryStatus(ctx, switchboard.ChannelSMS, "SMb", "failed", "30003 unreachable"); err != nil || mid != "" {
			t.Fatalf("early report: %q %v", mid, err)
		}
		b := send("SMb")
		m, _ := db.GetMessage(ctx, b)
		if m.Status != "failed" || m.Error != "30003 unreachable" {
			t.Fatalf("early failure report not applied: %s %q", m.Status, m.Error)
		}

		ph := phone("+14155550123")
		if err := db.RecordOptOut(ctx, ph, switchboard.ChannelSMS, "STOP"); err != nil {
			t.Fatal(err)
		}
		rec, err := db.Recipient(ctx, r.ConversationID)
		if err != nil || rec.OptOuts[switchboard.ChannelSMS] != "STOP" || rec.Identity(switchboard.IdentityPhone) != "+14155550123" || rec.LastInbound[switchboard.ChannelSMS].IsZero() {
			t.Fatalf("recipient = %+v, %v", rec, err)
		}
		if kw, _ := db.OptOut(ctx, ph, switchboard.ChannelSMS); kw != "STOP" {
			t.Fatalf("opt-out keyword %q", kw)
		}
		db.ClearOptOut(ctx, ph, switchboard.ChannelSMS)
		if rec, _ = db.Recipient(ctx, r.ConversationID); len(rec.OptOuts) != 0 {
			t.Fatalf("opt-out not cleared: %v", rec.OptOuts)
		}
	})
}

// TestSecondaryIdentityCannotHijack: a web form naming someone else's phone
// number beside a new address does not write into their thread.
func TestSecondaryIdentityCannotHijack(t *testing.T) {
	eachPath(t, func(t *testing.T, backend string, opts store.IngestOptions) {
		ctx := context.Background()
		db := storetest.Open(t, backend, testenv.NewClock(t0))
		victim := mustIngestOpts(t, db, opts, inbound(switchboard.ChannelSMS, "v1", "my parcel", phone("+14155550123")))[0]
		attacker := mustIngestOpts(t, db, opts, inbound(switchboard.ChannelWebform, "a1", "send it to me instead", email("mallory@example.com"), phone("+14155550123")))[0]
		if attacker.CustomerID == victim.CustomerID || attacker.ConversationID == victim.ConversationID {
			t.Fatalf("a secondary identity picked the customer: %+v", attacker)
		}
		v, _ := db.GetCustomer(ctx, victim.CustomerID)
		if len(v.Identities) != 1 {
			t.Fatalf("victim's identities changed: %v", v.Identities)
		}
		a, _ := db.GetCustomer(ctx, attacker.CustomerID)
		if len(a.Identities) != 1 || a.Identities[0].Value != "mallory@example.com" {
			t.Fatalf("the other customer's phone was attached: %v", a.Identities)
		}
		// The legitimate case still links: a new person giving a new phone.
		n := mustIngestOpts(t, db, opts, inbound(switchboard.ChannelWebform, "n1", "hello", email("nia@example.com"), phone("+14155550199")))[0]
		s := mustIngestOpts(t, db, opts, inbound(switchboard.ChannelSMS, "n2", "it's me", phone("+14155550199")))[0]
		if s.ConversationID != n.ConversationID {
			t.Fatal("an SMS from the phone a form gave did not join that customer's thread")
		}
	})
}

func TestApplyWatermark(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		clock := testenv.NewClock(t0)
		db := storetest.Open(t, backend, clock)
		agent := mustAgent(t, db, "sam")
		psid := switchboard.IdentityRef{Kind: switchboard.IdentityMessengerPSID, Value: "6922891234567890"}
		r := mustIngest(t, db, inbound(switchboard.ChannelMessenger, "m_in", "hi", psid))[0]
		var ids []string
		for i := 0; i < 3; i++ {
			clock.Advance(time.Minute)
			m, err := db.CreateReply(ctx, store.Reply{ConversationID: r.ConversationID, AgentID: agent.ID, Text: fmt.Sprint("r", i)})
			if err != nil {
				t.Fatal(err)
			}
			items, _ := db.ClaimOutbox(ctx, 10, time.Minute)
			db.CompleteOutbox(ctx, items[0].ID, fmt.Sprint("m_out", i))
			ids = append(ids, m.ID)
		}
		// Delivered up to the second reply; then read up to the first.
		moved, err := db.ApplyWatermark(ctx, switchboard.ChannelMessenger, psid, t0.Add(2*time.Minute), switchboard.DeliveryDelivered)
		if slices.Sort(moved); err != nil || !slices.Equal(moved, ids[:2]) {
			t.Fatalf("delivery watermark moved %v, %v; want %v", moved, err, ids[:2])
		}
		db.ApplyWatermark(ctx, switchboard.ChannelMessenger, psid, t0.Add(time.Minute), switchboard.DeliveryRead)
		want := []switchboard.DeliveryStatus{"read", "delivered", "sent"}
		for i, id := range ids {
			m, _ := db.GetMessage(ctx, id)
			if m.Status != want[i] {
				t.Fatalf("reply %d: %s, want %s", i, m.Status, want[i])
			}
		}
		// A reply still in our outbox is not the provider's to report on.
		clock.Advance(time.Minute)
		queued, _ := db.CreateReply(ctx, store.Reply{ConversationID: r.ConversationID, AgentID: agent.ID, Text: "still queued"})
		db.ApplyWatermark(ctx, switchboard.ChannelMessenger, psid, t0.Add(time.Hour), switchboard.DeliveryRead)
		if m, _ := db.GetMessage(ctx, queued.ID); m.Status != switchboard.DeliveryQueued {
			t.Fatalf("a queued reply became %s under a read watermark", m.Status)
		}
		db.ApplyWatermark(ctx, switchboard.ChannelMessenger, psid, t0.Add(3*time.Minute), switchboard.DeliveryDelivered)
		// An older delivery watermark never moves a read message back.
		for _, id := range ids {
			if m, _ := db.GetMessage(ctx, id); m.Status != switchboard.DeliveryRead {
				t.Fatalf("reply %s is %s after a read watermark over it", id, m.Status)
			}
		}
	})
}

// TestTranscriptEitherOrder: a voicemail's transcript reaches its audio
// whether the transcription callback comes before or after the recording.
func TestTranscriptEitherOrder(t *testing.T) {
	eachPath(t, func(t *testing.T, backend string, opts store.IngestOptions) {
		ctx := context.Background()
		db := storetest.Open(t, backend, testenv.NewClock(t0))
		voicemail := func(sid string) switchboard.Inbound {
			in := inbound(switchboard.ChannelVoice, sid, "Voicemail (12 s)", phone("+14155550123"))
			in.ContentType = switchboard.ContentAudio
			in.Attachments = []switchboard.Attachment{{Key: "media/voice/" + sid, ContentType: "audio/wav", Size: 100, Name: sid + ".wav"}}
			return in
		}
		// Transcript first.
		if id, err := db.AttachTranscript(ctx, switchboard.ChannelVoice, "RE1", "please call me back"); err != nil || id != "" {
			t.Fatalf("transcript before its recording: %q, %v; want it kept for later", id, err)
		}
		r1 := mustIngestOpts(t, db, opts, voicemail("RE1"))[0]
		// Recording first.
		r2 := mustIngestOpts(t, db, opts, voicemail("RE2"))[0]
		if id, err := db.AttachTranscript(ctx, switchboard.ChannelVoice, "RE2", "(transcription failed)"); err != nil || id != r2.MessageID {
			t.Fatalf("transcript after its recording: %q, %v; want %s changed", id, err, r2.MessageID)
		}
		for id, want := range map[string]string{r1.MessageID: "please call me back", r2.MessageID: "(transcription failed)"} {
			m, _ := db.GetMessage(ctx, id)
			if len(m.Attachments) != 1 || m.Attachments[0].Transcript != want {
				t.Fatalf("message %s attachments %+v, want transcript %q", id, m.Attachments, want)
			}
		}
	})
}

// The inbox announces a stored message from what Ingest returns instead of
// reading it back, so what Ingest returns must be what a read returns,
// whichever path stored it.
func TestIngestReturnsTheStoredMessage(t *testing.T) {
	eachPath(t, func(t *testing.T, backend string, opts store.IngestOptions) {
		ctx := context.Background()
		db := storetest.Open(t, backend, testenv.NewClock(t0.Add(123456789*time.Nanosecond)))
		plain := inbound(switchboard.ChannelSMS, "SM1", "hello", phone("+14155550123"))
		plain.ContentType = "" // stored as text
		rich := inbound(switchboard.ChannelEmail, "<m1@x>", "see attached", email("bo@example.com"))
		rich.HTML, rich.Subject = "<p>see attached</p>", "Order 42"
		rich.Metadata = json.RawMessage(`{"to": ["help@example.com"]}`)
		rich.ReceivedAt = t0.Add(-time.Minute + 987654321*time.Nanosecond)
		rich.Attachments = []switchboard.Attachment{
			{Key: "k/b", ContentType: "image/png", Size: 10, Name: "b.png"},
			{Key: "k/a", ContentType: "application/pdf", Size: 20, Name: "a.pdf", ContentID: "part1"},
		}
		reply := inbound(switchboard.ChannelEmail, "<m2@x>", "re", email("bo@example.com"))
		reply.InReplyTo = []string{"<m1@x>"} // threaded one by one on either path
		res := mustIngestOpts(t, db, opts, plain, rich)
		res = append(res, mustIngestOpts(t, db, opts, reply, plain)...)
		if res[3].Message != nil || !res[3].Duplicate {
			t.Fatalf("a duplicate returned %+v, want no message", res[3])
		}
		res = res[:3]
		var ids []string
		for _, r := range res {
			if r.Message == nil {
				t.Fatalf("stored %s but Ingest returned no message", r.MessageID)
			}
			ids = append(ids, r.MessageID)
		}
		read, err := db.MessagesByID(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		byID := map[string]switchboard.Message{}
		for _, m := range read {
			byID[m.ID] = m
		}
		for _, r := range res {
			if got, want := *r.Message, byID[r.MessageID]; !reflect.DeepEqual(got, want) {
				t.Errorf("Ingest returned\n%+v\nread back\n%+v", got, want)
			}
		}
		if n := len(res[1].Message.Attachments); n != 2 {
			t.Fatalf("attachments = %d, want 2", n)
		}
	})
}
