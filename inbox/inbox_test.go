package inbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/bus"
	"github.com/switchboard-inbox/switchboard/channel/sms"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/inbox/inboxtest"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
	"github.com/switchboard-inbox/switchboard/route/dispatch"
	"github.com/switchboard-inbox/switchboard/store/storetest"
	"github.com/switchboard-inbox/switchboard/view"
)

// Monday 2 March 2026, 10:00 UTC.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// nopSender accepts every reply, as a provider would; nothing here sends.
type nopSender struct{}

func (nopSender) Send(context.Context, *switchboard.Outbound) (string, error) { return "", nil }

// newBus returns the in-process bus, or one on the Redis server of
// SWITCHBOARD_TEST_REDIS_URL under a channel of the test's own.
func newBus(t *testing.T, kind string) switchboard.Bus {
	t.Helper()
	if kind == "memory" {
		b := bus.NewMemory()
		t.Cleanup(func() { b.Close() })
		return b
	}
	opt, err := redis.ParseURL(testenv.URL(t, testenv.RedisURL, "Redis"))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	b := bus.NewRedis(c, fmt.Sprintf("inbox-test:%d", time.Now().UnixNano()))
	t.Cleanup(func() { b.Close() })
	return b
}

// watcher reads a bus subscription.
type watcher struct {
	t   *testing.T
	evs <-chan switchboard.BusEvent
}

// next returns the next event of type typ about conversation (any when
// ""), skipping others, or fails the test after 5 s.
func (w *watcher) next(typ switchboard.BusEventType, conversation string) switchboard.BusEvent {
	w.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-w.evs:
			if ev.Type == typ && (conversation == "" || ev.ConversationID == conversation) {
				return ev
			}
		case <-timeout:
			w.t.Fatalf("no %s event for %q within 5s", typ, conversation)
		}
	}
}

// sameJSON fails unless the event's data is what the API answers, once
// both are JSON.
func sameJSON(t *testing.T, what string, data json.RawMessage, api any) {
	t.Helper()
	var got, want any
	b, _ := json.Marshal(api)
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("%s: event data %s: %v", what, data, err)
	}
	json.Unmarshal(b, &want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: event carries\n %s\nthe API shows\n %s", what, data, b)
	}
}

// listed returns a conversation as the list API shows it.
func listed(t *testing.T, svc *inboxtest.DB, id string) view.Conversation {
	t.Helper()
	convs, _, err := svc.Conversations(context.Background(), switchboard.System, switchboard.ConversationFilter{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range convs {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("conversation %s is not in the list", id)
	return view.Conversation{}
}

func message(t *testing.T, svc *inboxtest.DB, id string) view.Message {
	t.Helper()
	m, err := svc.Message(context.Background(), switchboard.System, id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func phoneMessage(providerID, phone, text string) switchboard.Inbound {
	return switchboard.Inbound{Channel: switchboard.ChannelSMS, ProviderID: providerID, ContentType: switchboard.ContentText, Text: text,
		SenderName: "Customer " + phone, Identities: []switchboard.IdentityRef{{Kind: switchboard.IdentityPhone, Value: phone}}}
}

// TestEveryEventType performs, through the service, each change an
// agent's screen shows, with a subscriber on the in-process bus and on
// Redis, and checks that each event type of docs/design.md §6.1 is published, once
// the change is committed, carrying the message or the conversation
// exactly as the API shows it.
func TestEveryEventType(t *testing.T) {
	for _, kind := range []string{"memory", "redis"} {
		t.Run(kind, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, backend string) {
				ctx := context.Background()
				clock := testenv.NewClock(t0)
				b := newBus(t, kind)
				evs, err := b.Subscribe(ctx)
				if err != nil {
					t.Fatal(err)
				}
				w := &watcher{t: t, evs: evs}
				svc := inboxtest.Open(t, backend, inbox.Config{Bus: b, Clock: clock})
				svc.SetChannel(switchboard.ChannelSMS, nil, nopSender{})
				boss, _, err := svc.AddAgent(ctx, switchboard.System, switchboard.Agent{Name: "Bea Boss", Email: "bea@team.example", Role: switchboard.RoleSupervisor})
				if err != nil {
					t.Fatal(err)
				}
				ann, _, err := svc.AddAgent(ctx, switchboard.System, switchboard.Agent{Name: "Ann", Email: "ann@team.example"})
				if err != nil {
					t.Fatal(err)
				}

				// A customer writes: message.created, then conversation.updated.
				res, err := svc.Ingest(ctx, []switchboard.Inbound{phoneMessage("SM1", "+14155550101", "Where is my order?")})
				if err != nil || !res[0].Stored() {
					t.Fatalf("ingest: %v %+v", err, res)
				}
				conv := res[0].ConversationID
				ev := w.next(switchboard.BusMessageCreated, conv)
				sameJSON(t, "inbound message.created", ev.Data, message(t, svc, res[0].MessageID))
				ev = w.next(switchboard.BusConversationUpdated, conv)
				sameJSON(t, "conversation.updated after ingest", ev.Data, listed(t, svc, conv))

				// An agent comes online: agent.status, about that agent.
				if _, err := svc.SetAgentStatus(ctx, ann.Actor(), ann.ID, switchboard.AgentOnline); err != nil {
					t.Fatal(err)
				}
				ev = w.next(switchboard.BusAgentStatus, "")
				if ev.AgentID != ann.ID || string(ev.Data) != `{"status":"online"}` {
					t.Fatalf("agent.status: %+v %s", ev, ev.Data)
				}

				// The router assigns it: conversation.updated with the assignee.
				d := &dispatch.Dispatcher{Inbox: svc, Clock: clock, OfflineGrace: time.Minute, Logger: slog.New(slog.DiscardHandler)}
				if a, _, err := d.RouteOnce(ctx); err != nil || a != 1 {
					t.Fatalf("route: %d assigned, %v", a, err)
				}
				ev = w.next(switchboard.BusConversationUpdated, conv)
				if got := listed(t, svc, conv); got.Assignee == nil || got.Assignee.ID != ann.ID {
					t.Fatalf("after routing: %+v", got)
				}
				sameJSON(t, "conversation.updated after automatic assignment", ev.Data, listed(t, svc, conv))

				// Ann types, then replies: presence, message.created and
				// conversation.updated, then message.updated once sent.
				if err := svc.Typing(ctx, ann.Actor(), conv); err != nil {
					t.Fatal(err)
				}
				ev = w.next(switchboard.BusPresence, conv)
				if ev.AgentID != ann.ID || string(ev.Data) != fmt.Sprintf(`{"viewing":[],"typing":[{"id":%q,"name":"Ann"}]}`, ann.ID) {
					t.Fatalf("presence: %+v %s", ev, ev.Data)
				}
				sameJSON(t, "presence in the list", ev.Data, listed(t, svc, conv).Presence)
				reply, err := svc.Reply(ctx, ann.Actor(), switchboard.Reply{ConversationID: conv, Text: "It ships today."})
				if err != nil {
					t.Fatal(err)
				}
				ev = w.next(switchboard.BusMessageCreated, conv)
				if ev.AgentID != ann.ID {
					t.Fatalf("reply's message.created names agent %q, want Ann", ev.AgentID)
				}
				sameJSON(t, "reply message.created", ev.Data, message(t, svc, reply.ID))
				ev = w.next(switchboard.BusConversationUpdated, conv)
				sameJSON(t, "conversation.updated after the reply", ev.Data, listed(t, svc, conv))
				items, err := svc.ClaimOutbox(ctx, 10, time.Minute)
				if err != nil || len(items) != 1 {
					t.Fatalf("claim: %v %+v", err, items)
				}
				if err := svc.CompleteOutbox(ctx, items[0], "SMreply"); err != nil {
					t.Fatal(err)
				}
				ev = w.next(switchboard.BusMessageUpdated, conv)
				if got := message(t, svc, reply.ID); got.Status != switchboard.DeliverySent || got.ProviderID != "SMreply" {
					t.Fatalf("reply after sending: %+v", got)
				}
				sameJSON(t, "message.updated after sending", ev.Data, message(t, svc, reply.ID))
				if _, _, err := svc.ApplyDeliveryStatus(ctx, switchboard.ChannelSMS, "SMreply", switchboard.DeliveryDelivered, ""); err != nil {
					t.Fatal(err)
				}
				ev = w.next(switchboard.BusMessageUpdated, conv)
				sameJSON(t, "message.updated after a delivery report", ev.Data, message(t, svc, reply.ID))

				// Ann goes offline past the grace period: back to the queue.
				if _, err := svc.SetAgentStatus(ctx, ann.Actor(), ann.ID, switchboard.AgentOffline); err != nil {
					t.Fatal(err)
				}
				clock.Advance(2 * time.Minute)
				if err := d.Sweep(ctx); err != nil {
					t.Fatal(err)
				}
				ev = w.next(switchboard.BusConversationUpdated, conv)
				if got := listed(t, svc, conv); got.Assignee != nil {
					t.Fatalf("after the grace period: %+v", got)
				}
				sameJSON(t, "conversation.updated after a return to the queue", ev.Data, listed(t, svc, conv))

				// A supervisor assigns by hand, merges another customer in,
				// and resolves.
				if _, err := svc.Assign(ctx, boss.Actor(), conv, ann.ID); err != nil {
					t.Fatal(err)
				}
				ev = w.next(switchboard.BusConversationUpdated, conv)
				sameJSON(t, "conversation.updated after a manual assignment", ev.Data, listed(t, svc, conv))
				other, err := svc.Ingest(ctx, []switchboard.Inbound{phoneMessage("SM2", "+14155550102", "Same person, other phone")})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := svc.Merge(ctx, boss.Actor(), res[0].CustomerID, other[0].CustomerID); err != nil {
					t.Fatal(err)
				}
				ev = w.next(switchboard.BusConversationUpdated, conv)
				if got := listed(t, svc, conv); !strings.Contains(fmt.Sprint(got.Channels), "sms") {
					t.Fatalf("after the merge: %+v", got)
				}
				sameJSON(t, "conversation.updated after a merge", ev.Data, listed(t, svc, conv))
				if _, err := svc.SetStatus(ctx, boss.Actor(), conv, switchboard.StatusResolved); err != nil {
					t.Fatal(err)
				}
				ev = w.next(switchboard.BusConversationUpdated, conv)
				if ev.AgentID != boss.ID {
					t.Fatalf("status change names agent %q, want the supervisor", ev.AgentID)
				}
				sameJSON(t, "conversation.updated after resolving", ev.Data, listed(t, svc, conv))
			})
		})
	}
}

// TestDefaultReplyChannel: a reply with no channel named goes back on the
// customer's most recent inbound channel that can carry one: after a
// voicemail, SMS to the same number, never "voice".
func TestDefaultReplyChannel(t *testing.T) {
	ctx := context.Background()
	clock := testenv.NewClock(t0)
	svc := inboxtest.Open(t, "sqlite", inbox.Config{Clock: clock})
	smsCh := sms.New(sms.Config{})
	svc.SetChannel(switchboard.ChannelSMS, smsCh, smsCh)
	ann, _, _ := svc.AddAgent(ctx, switchboard.System, switchboard.Agent{Name: "Ann", Email: "ann@team.example"})
	vm := switchboard.Inbound{Channel: switchboard.ChannelVoice, ProviderID: "RE1", ContentType: switchboard.ContentAudio, Text: "",
		Identities: []switchboard.IdentityRef{{Kind: switchboard.IdentityPhone, Value: "+14155550101"}}}
	res, err := svc.Ingest(ctx, []switchboard.Inbound{vm})
	if err != nil || !res[0].Stored() {
		t.Fatalf("ingest: %v %+v", err, res)
	}
	conv := res[0].ConversationID
	if got := listed(t, svc, conv); got.LastChannel != switchboard.ChannelVoice {
		t.Fatalf("last channel %s, want voice", got.LastChannel)
	}
	dec, err := svc.Compose(ctx, ann.Actor(), conv, "", "We got your message.")
	if err != nil || dec.Channel != switchboard.ChannelSMS || !dec.Allowed {
		t.Fatalf("composer's default after a voicemail: %+v, %v; want SMS, allowed", dec, err)
	}
	m, err := svc.Reply(ctx, ann.Actor(), switchboard.Reply{ConversationID: conv, Text: "We got your message."})
	if err != nil || m.Channel != switchboard.ChannelSMS {
		t.Fatalf("reply after a voicemail: %+v, %v; want it on SMS", m, err)
	}
	// The customer then writes by e-mail, which nothing here can send:
	// replies stay on SMS, the most recent channel that can carry them.
	clock.Advance(time.Minute)
	mail := switchboard.Inbound{Channel: switchboard.ChannelEmail, ProviderID: "<m1@example.com>", ContentType: switchboard.ContentText, Text: "also by mail",
		Identities: []switchboard.IdentityRef{{Kind: switchboard.IdentityEmail, Value: "c@example.com"}, {Kind: switchboard.IdentityPhone, Value: "+14155550101"}}}
	if _, err := svc.Ingest(ctx, []switchboard.Inbound{mail}); err != nil {
		t.Fatal(err)
	}
	if dec, _ := svc.Compose(ctx, ann.Actor(), conv, "", "x"); dec.Channel != switchboard.ChannelSMS {
		t.Fatalf("default with e-mail unconfigured: %s, want sms", dec.Channel)
	}
	// Naming a channel nothing sends on is refused, with the reason.
	if _, err := svc.Reply(ctx, ann.Actor(), switchboard.Reply{ConversationID: conv, Channel: switchboard.ChannelEmail, Text: "x"}); switchboard.ErrorCode(err) != switchboard.EPOLICY || !strings.Contains(switchboard.ErrorMessage(err), "not configured") {
		t.Fatalf("reply on an unconfigured channel: %v", err)
	}
}

// TestRoles: what an agent may not do, a supervisor or an admin may.
func TestRoles(t *testing.T) {
	ctx := context.Background()
	svc := inboxtest.Open(t, "sqlite", inbox.Config{})
	agent, _, _ := svc.AddAgent(ctx, switchboard.System, switchboard.Agent{Name: "Ann", Email: "ann@team.example"})
	peer, _, _ := svc.AddAgent(ctx, switchboard.System, switchboard.Agent{Name: "Kim", Email: "kim@team.example"})
	sup, _, _ := svc.AddAgent(ctx, switchboard.System, switchboard.Agent{Name: "Bea", Email: "bea@team.example", Role: switchboard.RoleSupervisor})
	admin, _, _ := svc.AddAgent(ctx, switchboard.System, switchboard.Agent{Name: "Al", Email: "al@team.example", Role: switchboard.RoleAdmin})
	a, _ := svc.Ingest(ctx, []switchboard.Inbound{phoneMessage("SM1", "+14155550101", "one")})
	b, _ := svc.Ingest(ctx, []switchboard.Inbound{phoneMessage("SM2", "+14155550102", "two")})
	conv := a[0].ConversationID
	if _, err := svc.Assign(ctx, sup.Actor(), conv, peer.ID); err != nil {
		t.Fatal(err)
	}
	role := switchboard.RoleSupervisor
	for _, tt := range []struct {
		name    string
		allowed switchboard.Role // the least role that may
		op      func(switchboard.Actor) error
	}{
		{"take a colleague's conversation", switchboard.RoleSupervisor, func(x switchboard.Actor) error {
			_, err := svc.Assign(ctx, x, conv, x.ID)
			return err
		}},
		{"set the priority", switchboard.RoleSupervisor, func(x switchboard.Actor) error {
			_, err := svc.SetPriority(ctx, x, b[0].ConversationID, 5)
			return err
		}},
		{"set a colleague's status", switchboard.RoleSupervisor, func(x switchboard.Actor) error {
			_, err := svc.SetAgentStatus(ctx, x, peer.ID, switchboard.AgentAway)
			return err
		}},
		{"read the routing configuration", switchboard.RoleSupervisor, func(x switchboard.Actor) error {
			_, err := svc.RoutingConfig(ctx, x)
			return err
		}},
		{"change an agent", switchboard.RoleAdmin, func(x switchboard.Actor) error {
			_, err := svc.UpdateAgent(ctx, x, peer.ID, switchboard.AgentUpdate{Role: &role})
			return err
		}},
		{"change the routing configuration", switchboard.RoleAdmin, func(x switchboard.Actor) error {
			_, err := svc.PutRoutingConfig(ctx, x, inbox.RoutingConfig{})
			return err
		}},
		{"edit templates", switchboard.RoleAdmin, func(x switchboard.Actor) error {
			return svc.PutTemplate(ctx, x, switchboard.MessageTemplate{Name: "t", Language: "en", Body: "b", Status: "APPROVED"})
		}},
		{"add an agent", switchboard.RoleAdmin, func(x switchboard.Actor) error {
			_, _, err := svc.AddAgent(ctx, x, switchboard.Agent{Name: "New " + string(x.Role), Email: string(x.Role) + "@new.example"})
			return err
		}},
		{"merge customers", switchboard.RoleSupervisor, func(x switchboard.Actor) error {
			_, err := svc.Merge(ctx, x, a[0].CustomerID, b[0].CustomerID)
			return err
		}},
		{"undo a merge", switchboard.RoleSupervisor, func(x switchboard.Actor) error {
			_, err := svc.Unmerge(ctx, x, a[0].CustomerID, b[0].CustomerID)
			return err
		}},
	} {
		for _, x := range []switchboard.Agent{agent, sup, admin} {
			err := tt.op(x.Actor())
			want := x.Role.AtLeast(tt.allowed)
			// Allowed may still fail for another reason (merging twice).
			if want && switchboard.ErrorCode(err) == switchboard.EFORBIDDEN {
				t.Errorf("%s may %s: %v", x.Role, tt.name, err)
			}
			if !want && switchboard.ErrorCode(err) != switchboard.EFORBIDDEN {
				t.Errorf("%s must not %s: got %v", x.Role, tt.name, err)
			}
		}
	}
}

// TestAssignmentEventsSayWhatHappened: the event log's words for manual
// assignments.
func TestAssignmentEventsSayWhatHappened(t *testing.T) {
	ctx := context.Background()
	svc := inboxtest.Open(t, "sqlite", inbox.Config{})
	ann, _, _ := svc.AddAgent(ctx, switchboard.System, switchboard.Agent{Name: "Ann", Email: "ann@team.example"})
	kim, _, _ := svc.AddAgent(ctx, switchboard.System, switchboard.Agent{Name: "Kim", Email: "kim@team.example"})
	bea, _, _ := svc.AddAgent(ctx, switchboard.System, switchboard.Agent{Name: "Bea", Email: "bea@team.example", Role: switchboard.RoleSupervisor})
	res, _ := svc.Ingest(ctx, []switchboard.Inbound{phoneMessage("SM1", "+14155550101", "one")})
	conv := res[0].ConversationID
	steps := []struct {
		by     switchboard.Agent
		to     string
		reason string
	}{
		{ann, ann.ID, "taken by Ann"},
		{ann, "", "handed back by Ann"},
		{bea, kim.ID, "assigned to Kim by Bea"},
		{bea, ann.ID, "transferred from Kim to Ann by Bea"},
		{bea, "", "unassigned from Ann by Bea"},
	}
	for _, st := range steps {
		if _, err := svc.Assign(ctx, st.by.Actor(), conv, st.to); err != nil {
			t.Fatalf("%s: %v", st.reason, err)
		}
	}
	detail, err := svc.Conversation(ctx, switchboard.System, conv)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, e := range detail.Events {
		if e.Type == switchboard.EventAssigned || e.Type == switchboard.EventUnassigned {
			var d struct{ Reason string }
			json.Unmarshal(e.Data, &d)
			reasons = append(reasons, d.Reason)
		}
	}
	var want []string
	for _, st := range steps {
		want = append(want, st.reason)
	}
	if !reflect.DeepEqual(reasons, want) {
		t.Fatalf("assignment events say\n %q\nwant\n %q", reasons, want)
	}
}

// TestIngestAnnouncesEveryMessageOnce: a batch larger than one
// announcement is announced in parts, each message once, in the order
// stored, each conversation after its messages, and Close returns only
// once everything stored is announced.
func TestIngestAnnouncesEveryMessageOnce(t *testing.T) {
	ctx := context.Background()
	b := newBus(t, "memory")
	evs, err := b.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	svc := inboxtest.Open(t, "sqlite", inbox.Config{Bus: b, Clock: testenv.NewClock(t0)})
	const n = 1300 // more than two announcements' worth
	var items []switchboard.Inbound
	for i := range n {
		// 100 customers, so conversations repeat across parts.
		items = append(items, phoneMessage(fmt.Sprintf("SM%d", i), fmt.Sprintf("+1415555%04d", i%100), fmt.Sprintf("message %d", i)))
	}
	res, err := svc.Ingest(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	again, err := svc.Ingest(ctx, items[:10]) // duplicates: nothing to announce
	if err != nil || again[0].Stored() {
		t.Fatalf("second ingest: %v %+v", err, again[0])
	}
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	var order []string
	lastMessage := map[string]int{} // conversation: index of its last message.created seen
	updatedAfter := map[string]bool{}
	for len(evs) > 0 {
		ev := <-evs
		switch ev.Type {
		case switchboard.BusMessageCreated:
			var m view.Message
			if err := json.Unmarshal(ev.Data, &m); err != nil {
				t.Fatal(err)
			}
			order = append(order, m.ID)
			lastMessage[m.ConversationID] = len(order) - 1
			updatedAfter[m.ConversationID] = false
		case switchboard.BusConversationUpdated:
			updatedAfter[ev.ConversationID] = true
		}
	}
	if len(order) != n {
		t.Fatalf("%d message.created events, want %d", len(order), n)
	}
	for i, r := range res {
		if order[i] != r.MessageID {
			t.Fatalf("event %d announced %s, want %s (the order stored)", i, order[i], r.MessageID)
		}
	}
	for conv, ok := range updatedAfter {
		if !ok {
			t.Fatalf("conversation %s: no conversation.updated after its last message (event %d)", conv, lastMessage[conv])
		}
	}
}
