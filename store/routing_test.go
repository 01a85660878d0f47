package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
	"github.com/switchboard-inbox/switchboard/route"
	"github.com/switchboard-inbox/switchboard/store"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

// newConv stores one inbound message from a new customer and returns its
// conversation id.
func newConv(t *testing.T, db *store.DB, ch switchboard.Channel, n int, text string) string {
	t.Helper()
	id := switchboard.IdentityRef{Kind: switchboard.IdentityPhone, Value: fmt.Sprintf("+1415555%04d", n)}
	if ch.Class() == switchboard.ClassEmail {
		id = switchboard.IdentityRef{Kind: switchboard.IdentityEmail, Value: fmt.Sprintf("c%d@example.com", n)}
	}
	return mustIngest(t, db, inbound(ch, fmt.Sprintf("p%d", n), text, id))[0].ConversationID
}

func onlineAgent(t *testing.T, db *store.DB, name string, capChat int) switchboard.Agent {
	t.Helper()
	ctx := context.Background()
	a := mustAgent(t, db, name)
	if _, err := db.UpdateAgent(ctx, a.ID, switchboard.AgentUpdate{CapChat: &capChat}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SetAgentStatus(ctx, a.ID, switchboard.AgentOnline); err != nil {
		t.Fatal(err)
	}
	return a
}

func eventsOf(t *testing.T, db *store.DB, convID string, typ switchboard.EventType) []map[string]any {
	t.Helper()
	evs, err := db.Events(context.Background(), convID)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, e := range evs {
		if e.Type == typ {
			var m map[string]any
			if err := json.Unmarshal(e.Data, &m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
	}
	return out
}

func TestAssignRoutedChecksCapAndState(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		clock := testenv.NewClock(t0)
		db := storetest.Open(t, backend, clock)
		tom := onlineAgent(t, db, "tom", 2)
		off := mustAgent(t, db, "off")
		var convs []string
		for i := 0; i < 3; i++ {
			convs = append(convs, newConv(t, db, switchboard.ChannelSMS, i, "hi"))
		}
		mail := newConv(t, db, switchboard.ChannelEmail, 9, "hello")
		assign := func(conv, agent string) error {
			return db.AssignRouted(ctx, route.Assignment{ConversationID: conv, AgentID: agent, Rule: "workload", Reason: "fewest", Topic: "billing", TopicSource: "keyword"})
		}
		for _, c := range convs[:2] {
			if err := assign(c, tom.ID); err != nil {
				t.Fatalf("assign under cap: %v", err)
			}
		}
		if err := assign(convs[2], tom.ID); !errors.Is(err, route.ErrAgentFull) {
			t.Fatalf("third chat over cap 2: err = %v, want route.ErrAgentFull", err)
		}
		// The cap is per class: an e-mail still fits.
		if err := assign(mail, tom.ID); err != nil {
			t.Fatalf("email with chats at cap: %v", err)
		}
		if err := assign(convs[0], tom.ID); !errors.Is(err, route.ErrNotWaiting) {
			t.Fatalf("assigning an assigned conversation: err = %v, want route.ErrNotWaiting", err)
		}
		if err := assign(convs[2], off.ID); !errors.Is(err, route.ErrAgentUnavailable) {
			t.Fatalf("offline agent: err = %v, want route.ErrAgentUnavailable", err)
		}
		c, err := db.GetConversation(ctx, convs[0])
		if err != nil || c.AssigneeID != tom.ID || c.Topic != "billing" {
			t.Fatalf("assigned conversation = %+v, %v; want tom and topic billing", c, err)
		}
		st := storetest.Inspect(t, db).RoutingState(convs[0])
		if st.AssignedBy != route.AssignedRouter {
			t.Fatalf("assigned_by = %q, want router", st.AssignedBy)
		}
		ev := eventsOf(t, db, convs[0], switchboard.EventAssigned)
		if len(ev) != 1 || ev[0]["rule"] != "workload" || ev[0]["reason"] != "fewest" || ev[0]["agent_id"] != tom.ID || ev[0]["by"] != "router" {
			t.Fatalf("assigned events = %v", ev)
		}
		agents, err := db.RoutingAgents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(agents, func(a route.AgentState) bool { return a.ID == tom.ID })
		if agents[i].Active[switchboard.ClassChat] != 2 || agents[i].Active[switchboard.ClassEmail] != 1 || !agents[i].LastRoutedAt.Equal(t0) || !agents[i].StatusChangedAt.Equal(t0) {
			t.Fatalf("tom as the router sees him = %+v", agents[i])
		}
		// A held conversation is not the router's to assign.
		if err := db.SetHeld(ctx, convs[2], true, ""); err != nil {
			t.Fatal(err)
		}
		sam := onlineAgent(t, db, "sam", 5)
		if err := assign(convs[2], sam.ID); !errors.Is(err, route.ErrNotWaiting) {
			t.Fatalf("held conversation: err = %v, want route.ErrNotWaiting", err)
		}
	})
}

func TestManualAssignHandbackAndExclusion(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		db := storetest.Open(t, backend, testenv.NewClock(t0))
		ana := onlineAgent(t, db, "ana", 6)
		boss := mustAgent(t, db, "boss")
		conv := newConv(t, db, switchboard.ChannelLivechat, 1, "help")

		if _, err := db.Assign(ctx, conv, ana.ID, boss.ID, "manual", "assigned by boss"); err != nil {
			t.Fatal(err)
		}
		if st := storetest.Inspect(t, db).RoutingState(conv); st.AssignedBy != route.AssignedManual || len(st.Excluded) != 0 {
			t.Fatalf("after manual assignment: %+v, want manual and no exclusion", st)
		}
		// Ana hands it back: it waits again, and not for her.
		if _, err := db.Assign(ctx, conv, "", ana.ID, "manual", "handed back"); err != nil {
			t.Fatal(err)
		}
		st := storetest.Inspect(t, db).RoutingState(conv)
		if st.AssignedBy != "" || !slices.Equal(st.Excluded, []string{ana.ID}) {
			t.Fatalf("after hand-back: %+v, want ana excluded", st)
		}
		ws, err := db.WaitingConversations(ctx, nil, 10)
		if err != nil || len(ws) != 1 || ws[0].ID != conv {
			t.Fatalf("queue = %+v, %v; want the handed-back conversation", ws, err)
		}
		if err := db.FillWaiting(ctx, ws, t0.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ws[0].Excluded, []string{ana.ID}) || ws[0].Text != "help" {
			t.Fatalf("filled waiting = %+v", ws[0])
		}
		err = db.AssignRouted(ctx, route.Assignment{ConversationID: conv, AgentID: ana.ID, Rule: "workload"})
		if !errors.Is(err, route.ErrExcluded) {
			t.Fatalf("routing back to the agent who handed it back: err = %v, want route.ErrExcluded", err)
		}
		ev := eventsOf(t, db, conv, switchboard.EventUnassigned)
		if len(ev) != 1 || ev[0]["from"] != ana.ID {
			t.Fatalf("unassigned events = %v", ev)
		}
		// Resolving clears the exclusion.
		if _, err := db.SetStatus(ctx, conv, switchboard.StatusResolved, ana.ID); err != nil {
			t.Fatal(err)
		}
		if st := storetest.Inspect(t, db).RoutingState(conv); len(st.Excluded) != 0 {
			t.Fatalf("exclusions after resolve = %v, want none", st.Excluded)
		}
	})
}

func TestQueueOrderAndPosition(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		clock := testenv.NewClock(t0)
		db := storetest.Open(t, backend, clock)
		var convs []string
		for i := 0; i < 5; i++ {
			convs = append(convs, newConv(t, db, switchboard.ChannelSMS, i, "hi"))
			clock.Advance(time.Second)
		}
		if err := db.SetPriority(ctx, convs[3], 5, ""); err != nil {
			t.Fatal(err)
		}
		if err := db.SetHeld(ctx, convs[1], true, ""); err != nil {
			t.Fatal(err)
		}
		want := []string{convs[3], convs[0], convs[2], convs[4]}
		var got []string
		var cur *route.QueueCursor
		for {
			page, err := db.WaitingConversations(ctx, cur, 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, w := range page {
				got = append(got, w.ID)
			}
			cur = page[len(page)-1].Cursor()
		}
		if !slices.Equal(got, want) {
			t.Fatalf("queue in pages of 2 = %v, want %v (priority first, then oldest; held left out)", got, want)
		}
		for i, id := range want {
			if p, err := db.QueuePosition(ctx, id); err != nil || p != i+1 {
				t.Fatalf("position of %d = %d, %v; want %d", i, p, err, i+1)
			}
		}
		if p, err := db.QueuePosition(ctx, convs[1]); err != nil || p != 0 {
			t.Fatalf("position of a held conversation = %d, %v; want 0", p, err)
		}
		if _, err := db.QueuePosition(ctx, "nope"); switchboard.ErrorCode(err) != switchboard.ENOTFOUND {
			t.Fatalf("position of an unknown conversation: %v, want ENOTFOUND", err)
		}
	})
}

func TestRecordWaitingOnlyWhenReasonChanges(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		clock := testenv.NewClock(t0)
		db := storetest.Open(t, backend, clock)
		conv := newConv(t, db, switchboard.ChannelSMS, 1, "refund please")
		full := route.WaitDecision{ConversationID: conv, Rule: "workload", Reason: "every agent is at their chat cap", Topic: "billing", TopicSource: "keyword"}
		closed := route.WaitDecision{ConversationID: conv, Rule: "business_hours", Reason: "closed", AfterHours: true}
		steps := []struct {
			d     route.WaitDecision
			wrote bool
		}{{full, true}, {full, false}, {full, false}, {closed, true}, {closed, false}, {full, true}}
		for i, s := range steps {
			clock.Advance(time.Second) // events in order
			wrote, err := db.RecordWaiting(ctx, s.d)
			if err != nil || wrote != s.wrote {
				t.Fatalf("step %d: wrote = %v, %v; want %v", i, wrote, err, s.wrote)
			}
		}
		if ev := eventsOf(t, db, conv, switchboard.EventWaiting); len(ev) != 3 || ev[0]["reason"] != full.Reason || ev[1]["after_hours"] != true {
			t.Fatalf("waiting events = %v, want 3", ev)
		}
		if c, _ := db.GetConversation(ctx, conv); c.Topic != "billing" {
			t.Fatalf("topic = %q, want the detected billing saved", c.Topic)
		}
	})
}

func TestClaimAckPerMessageAndPeriod(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		clock := testenv.NewClock(t0)
		db := storetest.Open(t, backend, clock)
		conv := newConv(t, db, switchboard.ChannelSMS, 1, "hi")
		claim := func(period string) route.AckClaim {
			t.Helper()
			c, err := db.ClaimAck(ctx, conv, period)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		sends := 0
		for i := 0; i < 3; i++ {
			if claim("mon").Send {
				sends++
			}
		}
		if sends != 1 {
			t.Fatalf("claims for one message in one period = %d, want 1", sends)
		}
		st := storetest.Inspect(t, db).RoutingState(conv)
		if st.AckedPeriod != "mon" || !st.AckedInboundAt.Equal(t0) {
			t.Fatalf("after the claim: period %q, answered message of %v; want mon and %v", st.AckedPeriod, st.AckedInboundAt, t0)
		}
		// The next closed period with no new message: nothing to say.
		if c := claim("tue"); c.Send {
			t.Fatal("a second acknowledgement for the same message in the next closed period")
		}
		// A new message in the period already acknowledged is counted as
		// answered, without another acknowledgement...
		clock.Advance(time.Hour)
		mustIngest(t, db, inbound(switchboard.ChannelSMS, "p1b", "still there?", phone("+14155550001")))
		if c := claim("mon"); c.Send {
			t.Fatal("a second acknowledgement in one closed period")
		}
		if c := claim("tue"); c.Send {
			t.Fatal("the message answered by Monday's acknowledgement was acknowledged again on Tuesday")
		}
		// ...and one in the next period gets one, which a failed send gives back.
		clock.Advance(24 * time.Hour)
		mustIngest(t, db, inbound(switchboard.ChannelSMS, "p1c", "hello??", phone("+14155550001")))
		c := claim("tue")
		if !c.Send {
			t.Fatal("a new message in a new closed period was not acknowledged")
		}
		if err := db.ReleaseAck(ctx, c); err != nil {
			t.Fatal(err)
		}
		if st := storetest.Inspect(t, db).RoutingState(conv); st.AckedPeriod != "mon" || !st.AckedInboundAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("after release: %q %v, want the claim undone (mon, %v)", st.AckedPeriod, st.AckedInboundAt, t0.Add(time.Hour))
		}
		c = claim("tue")
		if !c.Send {
			t.Fatal("a released claim cannot be claimed again")
		}
		clock.Advance(time.Second) // events in order
		if err := db.RecordAck(ctx, c, switchboard.ChannelSMS, "closed", ""); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		if err := db.RecordAck(ctx, c, switchboard.ChannelSMS, "closed", "no sender"); err != nil {
			t.Fatal(err)
		}
		ev := eventsOf(t, db, conv, switchboard.EventAutoAck)
		if len(ev) != 2 || ev[0]["period"] != "tue" || ev[0]["sent"] != true || ev[0]["reason"] != nil || ev[1]["sent"] != false || ev[1]["reason"] != "no sender" {
			t.Fatalf("auto_ack events = %v, want one sent and one skipped with its reason", ev)
		}

		// Only open conversations are acknowledged: not pending or snoozed ones.
		for i, status := range []switchboard.Status{switchboard.StatusPending, switchboard.StatusSnoozed} {
			other := newConv(t, db, switchboard.ChannelSMS, 10+i, "hi")
			if _, err := db.SetStatus(ctx, other, status, ""); err != nil {
				t.Fatal(err)
			}
			if c, err := db.ClaimAck(ctx, other, "mon"); err != nil || c.Send {
				t.Fatalf("%s conversation: claim %+v, %v; want no acknowledgement", status, c, err)
			}
		}
	})
}

func TestReturnAbsent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		clock := testenv.NewClock(t0)
		db := storetest.Open(t, backend, clock)
		sue := onlineAgent(t, db, "sue", 6)
		chat := newConv(t, db, switchboard.ChannelWhatsApp, 1, "hi")
		mail := newConv(t, db, switchboard.ChannelEmail, 2, "hello")
		manual := newConv(t, db, switchboard.ChannelSMS, 3, "yo")
		held := newConv(t, db, switchboard.ChannelLivechat, 4, "hold me")
		for _, c := range []string{chat, mail, held} {
			if err := db.AssignRouted(ctx, route.Assignment{ConversationID: c, AgentID: sue.ID, Rule: "workload"}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.Assign(ctx, manual, sue.ID, "", "manual", "by hand"); err != nil {
			t.Fatal(err)
		}
		// Held after the router assigned it: out of automatic routing, so
		// the router does not take it back either.
		if err := db.SetHeld(ctx, held, true, ""); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
		if _, err := db.SetAgentStatus(ctx, sue.ID, switchboard.AgentOffline); err != nil {
			t.Fatal(err)
		}
		clock.Advance(4 * time.Minute)
		if got, err := db.ReturnAbsent(ctx, 5*time.Minute); err != nil || len(got) != 0 {
			t.Fatalf("inside the grace period: returned %v, %v; want none", got, err)
		}
		clock.Advance(time.Minute)
		got, err := db.ReturnAbsent(ctx, 5*time.Minute)
		if err != nil || len(got) != 1 || got[0] != (route.Returned{ConversationID: chat, AgentID: sue.ID}) {
			t.Fatalf("after the grace period: returned %v, %v; want the chat alone", got, err)
		}
		for id, want := range map[string]string{chat: "", mail: sue.ID, manual: sue.ID, held: sue.ID} {
			if c, _ := db.GetConversation(ctx, id); c.AssigneeID != want {
				t.Fatalf("%s (%s) assignee = %q, want %q", id, c.LastChannel, c.AssigneeID, want)
			}
		}
		ev := eventsOf(t, db, chat, switchboard.EventUnassigned)
		if len(ev) != 1 || ev[0]["reason"] != "returned to the queue: sue has been offline for 5m0s" || ev[0]["from"] != sue.ID {
			t.Fatalf("unassigned events = %v", ev)
		}
		if got, _ := db.ReturnAbsent(ctx, 5*time.Minute); len(got) != 0 {
			t.Fatalf("second sweep returned %v, want nothing", got)
		}
	})
}

func TestNoteContinuity(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		clock := testenv.NewClock(t0)
		db := storetest.Open(t, backend, clock)
		sarah := onlineAgent(t, db, "Sarah", 6)
		r := mustIngest(t, db, inbound(switchboard.ChannelWebform, "w1", "form", email("bo@example.com"), phone("+14155550123")))[0]
		if _, err := db.Assign(ctx, r.ConversationID, sarah.ID, "", "manual", "x"); err != nil {
			t.Fatal(err)
		}
		if ok, _, err := db.NoteContinuity(ctx, r.ConversationID, switchboard.ChannelWebform); err != nil || ok {
			t.Fatalf("no channel switch: noted %v, %v", ok, err)
		}
		clock.Advance(time.Minute)
		mustIngest(t, db, inbound(switchboard.ChannelSMS, "s1", "text", phone("+14155550123")))
		clock.Advance(time.Second)
		ok, name, err := db.NoteContinuity(ctx, r.ConversationID, switchboard.ChannelSMS)
		if err != nil || !ok || name != "Sarah" {
			t.Fatalf("switch to SMS: noted %v %q, %v; want true Sarah", ok, name, err)
		}
		if ok, _, _ := db.NoteContinuity(ctx, r.ConversationID, switchboard.ChannelSMS); ok {
			t.Fatal("the same switch noted twice")
		}
		ev := eventsOf(t, db, r.ConversationID, switchboard.EventContinuity)
		if len(ev) != 1 || ev[0]["rule"] != "continuity" || ev[0]["reason"] != "kept with Sarah, who has this customer's open conversation" {
			t.Fatalf("continuity events = %v", ev)
		}
	})
}

func TestFillWaitingContinuityAgent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		clock := testenv.NewClock(t0)
		db := storetest.Open(t, backend, clock)
		old := onlineAgent(t, db, "old", 6)
		recent := onlineAgent(t, db, "recent", 6)
		resolveWith := func(n int, agent string) {
			r := mustIngest(t, db, inbound(switchboard.ChannelSMS, fmt.Sprintf("s%d", n), "hi", phone("+14155550100")))[0]
			if _, err := db.Assign(ctx, r.ConversationID, agent, "", "manual", "x"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.SetStatus(ctx, r.ConversationID, switchboard.StatusResolved, agent); err != nil {
				t.Fatal(err)
			}
			clock.Advance(8 * 24 * time.Hour) // past the reopen window
		}
		resolveWith(1, old.ID)
		resolveWith(2, recent.ID)
		r := mustIngest(t, db, inbound(switchboard.ChannelSMS, "s3", "again", phone("+14155550100")))[0]
		ws, err := db.WaitingConversations(ctx, nil, 10)
		if err != nil || len(ws) != 1 || ws[0].ID != r.ConversationID {
			t.Fatalf("queue = %+v, %v", ws, err)
		}
		if err := db.FillWaiting(ctx, ws, clock.Now().Add(-30*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if ws[0].ContinuityAgent != recent.ID {
			t.Fatalf("continuity agent = %q, want the most recent one %q", ws[0].ContinuityAgent, recent.ID)
		}
		// Outside the window there is none.
		if err := db.FillWaiting(ctx, ws, clock.Now().Add(-24*time.Hour)); err != nil || ws[0].ContinuityAgent != "" {
			t.Fatalf("continuity agent outside the window = %q, %v", ws[0].ContinuityAgent, err)
		}
	})
}

func TestRoutingConfigAndClassifier(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		clock := testenv.NewClock(t0)
		db := storetest.Open(t, backend, clock)
		cfg := route.StoredConfig{
			Teams:    map[string]json.RawMessage{"": json.RawMessage(`{"rules":["workload"]}`), "night": json.RawMessage(`{"after_hours":"queue"}`)},
			Keywords: json.RawMessage(`[{"topic":"billing","keywords":["refund"]}]`),
		}
		if err := db.PutRoutingConfig(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		got, err := db.GetRoutingConfig(ctx)
		if err != nil || len(got.Teams) != 2 || string(got.Teams["night"]) != `{"after_hours":"queue"}` || string(got.Keywords) != string(cfg.Keywords) {
			t.Fatalf("config = %+v, %v", got, err)
		}
		if err := db.PutRoutingConfig(ctx, route.StoredConfig{Teams: map[string]json.RawMessage{"": json.RawMessage(`{`)}}); switchboard.ErrorCode(err) != switchboard.EINVALID {
			t.Fatalf("invalid JSON: %v, want EINVALID", err)
		}

		if id, err := db.LatestClassifierID(ctx); err != nil || id != "" {
			t.Fatalf("latest classifier before any = %q, %v", id, err)
		}
		if _, err := db.LoadClassifier(ctx); switchboard.ErrorCode(err) != switchboard.ENOTFOUND {
			t.Fatalf("load before any: %v, want ENOTFOUND", err)
		}
		if _, err := db.SaveClassifier(ctx, []byte("v1"), 0.5, 10); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		id2, err := db.SaveClassifier(ctx, []byte("v2"), 0.8, 20)
		if err != nil {
			t.Fatal(err)
		}
		m, err := db.LoadClassifier(ctx)
		if err != nil || m.ID != id2 || string(m.Model) != "v2" || m.Accuracy != 0.8 || m.N != 20 {
			t.Fatalf("newest classifier = %+v, %v", m, err)
		}
		if id, _ := db.LatestClassifierID(ctx); id != id2 {
			t.Fatalf("latest id = %q, want %q", id, id2)
		}

		// Resolved conversations with a topic are training data.
		a := onlineAgent(t, db, "a", 6)
		for i, topic := range []string{"billing", "shipping", ""} {
			conv := newConv(t, db, switchboard.ChannelSMS, i, fmt.Sprintf("text %d", i))
			if err := db.AssignRouted(ctx, route.Assignment{ConversationID: conv, AgentID: a.ID, Topic: topic}); err != nil {
				t.Fatal(err)
			}
			if _, err := db.SetStatus(ctx, conv, switchboard.StatusResolved, a.ID); err != nil {
				t.Fatal(err)
			}
		}
		samples, err := db.ResolvedTopics(ctx, 10)
		slices.SortFunc(samples, func(x, y route.Labeled) int { return cmpString(x.Topic, y.Topic) })
		want := []route.Labeled{{Text: "text 0", Topic: "billing"}, {Text: "text 1", Topic: "shipping"}}
		if err != nil || !slices.Equal(samples, want) {
			t.Fatalf("resolved topics = %+v, %v; want %+v", samples, err, want)
		}
	})
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestSetRoutedTeamKeepsHomeTeam(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		clock := testenv.NewClock(t0)
		db := storetest.Open(t, backend, clock)
		conv := newConv(t, db, switchboard.ChannelSMS, 1, "hi")
		if _, err := db.RecordWaiting(ctx, route.WaitDecision{ConversationID: conv, Rule: "business_hours", Reason: "closed", AfterHours: true}); err != nil {
			t.Fatal(err)
		}
		for i, want := range []bool{true, false} {
			wrote, err := db.SetRoutedTeam(ctx, conv, "night", []string{"", "night"}, "business_hours", "handed to team night")
			if err != nil || wrote != want {
				t.Fatalf("hand-off %d: wrote %v, %v; want %v", i, wrote, err, want)
			}
		}
		st := storetest.Inspect(t, db).RoutingState(conv)
		c, _ := db.GetConversation(ctx, conv)
		if st.RoutedTeam != "night" || st.WaitReason != "" || c.Team != "" {
			t.Fatalf("after the hand-off: routed %q, wait reason %q, team %q; want night, cleared, and its own team unchanged", st.RoutedTeam, st.WaitReason, c.Team)
		}
		clock.Advance(time.Hour)
		if wrote, err := db.SetRoutedTeam(ctx, conv, "", []string{""}, "business_hours", "back to team default"); err != nil || !wrote {
			t.Fatalf("back home: wrote %v, %v", wrote, err)
		}
		ev := eventsOf(t, db, conv, switchboard.EventHandoff)
		if len(ev) != 2 || ev[0]["from"] != "" || ev[0]["to"] != "night" || ev[0]["home"] != "" || ev[0]["reason"] != "handed to team night" ||
			ev[1]["from"] != "night" || ev[1]["to"] != "" || ev[1]["reason"] != "back to team default" {
			t.Fatalf("handoff events = %v, want there and back", ev)
		}
		// An assigned conversation is no longer the router's to move.
		a := onlineAgent(t, db, "ann", 6)
		if err := db.AssignRouted(ctx, route.Assignment{ConversationID: conv, AgentID: a.ID}); err != nil {
			t.Fatal(err)
		}
		if wrote, err := db.SetRoutedTeam(ctx, conv, "night", nil, "business_hours", "x"); err != nil || wrote {
			t.Fatalf("hand-off of an assigned conversation: wrote %v, %v; want nothing", wrote, err)
		}
	})
}

func TestMergeClearsRoutingStateAndTransferExcludesNobody(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		clock := testenv.NewClock(t0)
		db := storetest.Open(t, backend, clock)
		ann := onlineAgent(t, db, "ann", 6)
		ben := onlineAgent(t, db, "ben", 6)
		keep := mustIngest(t, db, inbound(switchboard.ChannelSMS, "k1", "hi", phone("+14155550100")))[0]
		other := mustIngest(t, db, inbound(switchboard.ChannelEmail, "o1", "hello", email("x@example.com")))[0]
		// The other conversation was handed back by Ann and waits.
		if _, err := db.Assign(ctx, other.ConversationID, ann.ID, "", "manual", "x"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Assign(ctx, other.ConversationID, "", ann.ID, "manual", "handed back"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.RecordWaiting(ctx, route.WaitDecision{ConversationID: other.ConversationID, Rule: "availability", Reason: "nobody"}); err != nil {
			t.Fatal(err)
		}
		if st := storetest.Inspect(t, db).RoutingState(other.ConversationID); len(st.Excluded) != 1 || st.WaitReason == "" {
			t.Fatalf("setup: %+v, want an exclusion and a wait reason", st)
		}
		if _, err := db.MergeCustomers(ctx, keep.CustomerID, other.CustomerID, ann.ID); err != nil {
			t.Fatal(err)
		}
		st := storetest.Inspect(t, db).RoutingState(other.ConversationID)
		if len(st.Excluded) != 0 || st.WaitReason != "" {
			t.Fatalf("merged-away conversation: %+v; want no exclusion and no wait reason", st)
		}

		// A supervisor's transfer from Ann to Ben excludes nobody (see Assign).
		if _, err := db.Assign(ctx, keep.ConversationID, ann.ID, "", "manual", "x"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Assign(ctx, keep.ConversationID, ben.ID, "boss", "manual", "transferred"); err != nil {
			t.Fatal(err)
		}
		if st := storetest.Inspect(t, db).RoutingState(keep.ConversationID); len(st.Excluded) != 0 {
			t.Fatalf("exclusions after a transfer = %v, want none", st.Excluded)
		}
	})
}

func TestQueuePagesWithTiesAndPriorities(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		clock := testenv.NewClock(t0)
		db := storetest.Open(t, backend, clock)
		// Three conversations per instant, so pages break inside a tie on
		// created_at; priorities 2, 0 and -1.
		type item struct {
			id      string
			prio    int
			instant int
		}
		var items []item
		for i := 0; i < 12; i++ {
			if i%3 == 0 {
				clock.Advance(time.Second)
			}
			id := newConv(t, db, switchboard.ChannelSMS, i, "hi")
			prio := []int{0, 2, -1, 0}[i%4]
			if prio != 0 {
				if err := db.SetPriority(ctx, id, prio, ""); err != nil {
					t.Fatal(err)
				}
			}
			items = append(items, item{id, prio, i / 3})
		}
		want := slices.Clone(items)
		slices.SortStableFunc(want, func(a, b item) int {
			if a.prio != b.prio {
				return b.prio - a.prio
			}
			if a.instant != b.instant {
				return a.instant - b.instant
			}
			return cmpString(a.id, b.id)
		})
		var wantIDs []string
		for _, w := range want {
			wantIDs = append(wantIDs, w.id)
		}
		for _, size := range []int{1, 2, 5, 12} {
			var got []string
			var cur *route.QueueCursor
			for pages := 0; pages < 20; pages++ {
				page, err := db.WaitingConversations(ctx, cur, size)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				for _, w := range page {
					got = append(got, w.ID)
				}
				cur = page[len(page)-1].Cursor()
			}
			if !slices.Equal(got, wantIDs) {
				t.Fatalf("queue in pages of %d = %v, want %v", size, got, wantIDs)
			}
		}
		for i, id := range wantIDs {
			if p, err := db.QueuePosition(ctx, id); err != nil || p != i+1 {
				t.Fatalf("position of %s = %d, %v; want %d", id, p, err, i+1)
			}
		}
	})
}

// TestRoutingQueriesUseTheirIndexes checks the plans of the queries every
// routing pass and assignment runs: agents' active counts read the partial
// index of open assigned conversations (not every assigned conversation,
// resolved ones included), and the queue is read in index order from the
// cursor on, without sorting.
func TestRoutingQueriesUseTheirIndexes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		db := storetest.Open(t, backend, testenv.NewClock(t0))
		plans, err := db.RoutingPlans(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"active_counts":        "conversations_active",
			"agent_active":         "conversations_active",
			"queue_first":          "conversations_queue",
			"queue_same_priority":  "conversations_queue",
			"queue_lower_priority": "conversations_queue",
			"queue_class_first":    "conversations_queue",
			"queue_head":           "conversations_queue",
		}
		for name, index := range want {
			plan := plans[name]
			t.Logf("%s %s:\n%s", backend, name, plan)
			if !strings.Contains(plan, index) {
				t.Errorf("%s does not use %s:\n%s", name, index, plan)
			}
			if strings.HasPrefix(name, "queue") && (strings.Contains(plan, "TEMP B-TREE") || strings.Contains(plan, "Sort")) {
				t.Errorf("%s sorts instead of reading the index in order:\n%s", name, plan)
			}
		}
		if len(plans) != len(want) {
			t.Errorf("plans for %d queries, want %d", len(plans), len(want))
		}
	})
}

func TestResolvedTopicsLeaveOutClassifierGuesses(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		db := storetest.Open(t, backend, testenv.NewClock(t0))
		a := onlineAgent(t, db, "a", 6)
		for i, src := range []string{route.TopicByKeyword, route.TopicByClassifier, "", route.TopicByAgent} {
			conv := newConv(t, db, switchboard.ChannelSMS, i, fmt.Sprintf("text %d", i))
			if err := db.AssignRouted(ctx, route.Assignment{ConversationID: conv, AgentID: a.ID, Topic: fmt.Sprintf("t%d", i), TopicSource: src}); err != nil {
				t.Fatal(err)
			}
			if st := storetest.Inspect(t, db).RoutingState(conv); st.TopicSource != src {
				t.Fatalf("topic source = %q, want %q", st.TopicSource, src)
			}
			if _, err := db.SetStatus(ctx, conv, switchboard.StatusResolved, a.ID); err != nil {
				t.Fatal(err)
			}
		}
		samples, err := db.ResolvedTopics(ctx, 10)
		slices.SortFunc(samples, func(x, y route.Labeled) int { return cmpString(x.Topic, y.Topic) })
		want := []route.Labeled{{Text: "text 0", Topic: "t0"}, {Text: "text 2", Topic: "t2"}, {Text: "text 3", Topic: "t3"}}
		if err != nil || !slices.Equal(samples, want) {
			t.Fatalf("training samples = %+v, %v; want %+v (the classifier's own guess left out)", samples, err, want)
		}
	})
}

// TestQueuePositionIsBounded: counting the places ahead stops at
// MaxQueuePosition, so that showing a conversation far back in a long
// queue costs no more than one near the head.
func TestQueuePositionIsBounded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		db := storetest.Open(t, backend, testenv.NewClock(t0))
		ctx := context.Background()
		n := store.MaxQueuePosition + 2
		items := make([]switchboard.Inbound, n)
		for i := range items {
			items[i] = switchboard.Inbound{Channel: switchboard.ChannelSMS, ProviderID: fmt.Sprint("q", i), ContentType: switchboard.ContentText, Text: "hi",
				Identities: []switchboard.IdentityRef{{Kind: switchboard.IdentityPhone, Value: fmt.Sprintf("+1415%07d", i)}}}
		}
		res, err := db.Ingest(ctx, items, store.IngestOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Created in one batch at one time: the queue orders them by id.
		ids := make([]string, n)
		for i, r := range res {
			ids[i] = r.ConversationID
		}
		slices.Sort(ids)
		for i, want := range map[int]int{0: 1, store.MaxQueuePosition - 1: store.MaxQueuePosition, store.MaxQueuePosition: -1, n - 1: -1} {
			if p, err := db.QueuePosition(ctx, ids[i]); err != nil || p != want {
				t.Errorf("position of the %dth = %d, %v; want %d", i+1, p, err, want)
			}
		}
	})
}
