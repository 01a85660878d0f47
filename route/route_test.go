package route_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/route"
)

var t0 = time.Date(2026, 6, 15, 8, 0, 0, 0, time.UTC) // Monday 10:00 in Paris

// ag builds an agent: online, default team, chats and emails active, idle
// since t0 minus idleMin minutes.
func ag(id string, chats, emails, idleMin int, opts ...func(*route.Agent)) route.Agent {
	a := route.Agent{
		ID: id, Name: strings.ToUpper(id[:1]) + id[1:], Status: switchboard.AgentOnline,
		Active:    map[switchboard.ChannelClass]int{switchboard.ClassChat: chats, switchboard.ClassEmail: emails},
		IdleSince: t0.Add(-time.Duration(idleMin) * time.Minute),
	}
	for _, o := range opts {
		o(&a)
	}
	return a
}

func status(s switchboard.AgentStatus) func(*route.Agent) {
	return func(a *route.Agent) { a.Status = s }
}
func skills(s ...string) func(*route.Agent) {
	return func(a *route.Agent) { a.Skills = route.ParseSkills(s) }
}
func teams(t ...string) func(*route.Agent) { return func(a *route.Agent) { a.Teams = t } }
func chatCap(n int) func(*route.Agent) {
	return func(a *route.Agent) { a.Caps = map[switchboard.ChannelClass]int{switchboard.ClassChat: n} }
}
func req(ch switchboard.Channel, text string) route.Request {
	return route.Request{ConversationID: "c1", Channel: ch, Text: text, Now: t0}
}

func TestParseSkills(t *testing.T) {
	got := route.ParseSkills([]string{"billing:3", "shipping", " Returns : 9 ", "tech:0", "sales:x", "", ":4", "billing:2"})
	want := map[string]int{"billing": 3, "shipping": 1, "returns": 5, "tech": 1, "sales": 1}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseSkills = %v, want %v", got, want)
	}
}

func TestLoadAndFits(t *testing.T) {
	a := ag("ann", 2, 5, 0)
	if got := (route.TeamConfig{}).Load(a); got != 4 { // 2×1.0 + 5×0.4
		t.Errorf("Load with default weights = %v, want 4", got)
	}
	w := route.TeamConfig{Weights: map[switchboard.ChannelClass]float64{switchboard.ClassChat: 2, switchboard.ClassEmail: 0.5}}
	if got := w.Load(a); got != 6.5 {
		t.Errorf("Load with weights 2/0.5 = %v, want 6.5", got)
	}
	for _, tt := range []struct {
		a    route.Agent
		c    switchboard.ChannelClass
		want bool
	}{
		{ag("a", 5, 0, 0), switchboard.ClassChat, true},
		{ag("a", 6, 0, 0), switchboard.ClassChat, false},
		{ag("a", 6, 14, 0), switchboard.ClassEmail, true},
		{ag("a", 0, 15, 0), switchboard.ClassEmail, false},
		{ag("a", 2, 0, 0, chatCap(2)), switchboard.ClassChat, false},
		{ag("a", 7, 0, 0, chatCap(8)), switchboard.ClassChat, true},
	} {
		if got := route.Fits(tt.a, tt.c); got != tt.want {
			t.Errorf("Fits(%v active, caps %v, %s) = %v, want %v", tt.a.Active, tt.a.Caps, tt.c, got, tt.want)
		}
	}
}

func TestDecide(t *testing.T) {
	paris := mustSchedule(t, officeParis)
	billingKeywords := &route.Topics{Keywords: []route.KeywordRule{
		{Topic: "billing", Keywords: []string{"invoice", "charged twice", "refund"}},
		{Topic: "shipping", Keywords: []string{"tracking", "delivery"}},
	}}
	tests := []struct {
		name    string
		router  route.Router
		req     route.Request
		agents  []route.Agent
		outcome route.Outcome
		agent   string
		team    string
		rule    string
		reason  string
		after   bool
		topic   string
		trace   []string // when set: "rule: reason" of every step
	}{
		{
			name:    "continuity keeps the customer's agent",
			req:     func() route.Request { r := req(switchboard.ChannelSMS, ""); r.ContinuityAgent = "sarah"; return r }(),
			agents:  []route.Agent{ag("tom", 0, 0, 60), ag("sarah", 5, 3, 0)},
			outcome: route.Assign, agent: "sarah", rule: "continuity",
			reason: "kept with Sarah, who has this customer's open conversation",
			trace:  []string{"continuity: kept with Sarah, who has this customer's open conversation"},
		},
		{
			name:    "continuity agent at cap: pass, never exceed",
			req:     func() route.Request { r := req(switchboard.ChannelWhatsApp, ""); r.ContinuityAgent = "sarah"; return r }(),
			agents:  []route.Agent{ag("tom", 1, 0, 60), ag("sarah", 6, 0, 0)},
			outcome: route.Assign, agent: "tom", rule: "workload",
			reason: "assigned to Tom: the only candidate, active chats (1 of 6)",
			trace: []string{
				"continuity: Sarah has this customer but is at the chat cap (6 of 6)",
				"business_hours: team default is always open",
				"availability: 1 of 2 agents in team default online with room for a chat",
				"skills: topic unknown: any agent",
				"workload: assigned to Tom: the only candidate, active chats (1 of 6)",
			},
		},
		{
			name:    "continuity agent away: pass",
			req:     func() route.Request { r := req(switchboard.ChannelEmail, ""); r.ContinuityAgent = "sarah"; return r }(),
			agents:  []route.Agent{ag("tom", 0, 2, 60), ag("sarah", 0, 0, 0, status(switchboard.AgentAway))},
			outcome: route.Assign, agent: "tom", rule: "workload",
			reason: "assigned to Tom: the only candidate, active emails (2 of 15)",
		},
		{
			name:    "continuity agent unknown: pass",
			req:     func() route.Request { r := req(switchboard.ChannelEmail, ""); r.ContinuityAgent = "gone"; return r }(),
			agents:  []route.Agent{ag("tom", 0, 2, 60)},
			outcome: route.Assign, agent: "tom", rule: "workload",
			trace: []string{
				"continuity: this customer's agent (gone) is not in the roster",
				"business_hours: team default is always open",
				"availability: 1 of 1 agent in team default online with room for an email",
				"skills: topic unknown: any agent",
				"workload: assigned to Tom: the only candidate, active emails (2 of 15)",
			},
		},
		{
			name:   "continuity applies outside hours: the agent is online, so working",
			router: route.Router{Teams: map[string]route.TeamConfig{"": {Hours: paris}}},
			req: func() route.Request {
				r := req(switchboard.ChannelLivechat, "")
				r.ContinuityAgent = "sarah"
				r.Now = utc(t, "2026-06-15T20:00:00Z")
				return r
			}(),
			agents:  []route.Agent{ag("sarah", 1, 0, 0)},
			outcome: route.Assign, agent: "sarah", rule: "continuity",
		},
		{
			name:   "22:00 Paris: closed, wait with acknowledgement",
			router: route.Router{Teams: map[string]route.TeamConfig{"": {Hours: paris}}},
			req: func() route.Request {
				r := req(switchboard.ChannelLivechat, "")
				r.Now = utc(t, "2026-06-15T20:00:00Z")
				return r
			}(),
			agents:  []route.Agent{ag("tom", 0, 0, 0)},
			outcome: route.Wait, rule: "business_hours", after: true,
			reason: "outside business hours (Europe/Paris, opens Tue 09:00): waiting",
		},
		{
			name:   "Friday evening: the next opening is Monday",
			router: route.Router{Teams: map[string]route.TeamConfig{"": {Hours: paris}}},
			req: func() route.Request {
				r := req(switchboard.ChannelEmail, "")
				r.Now = utc(t, "2026-06-19T18:00:00Z")
				return r
			}(),
			agents:  []route.Agent{ag("tom", 0, 0, 0)},
			outcome: route.Wait, rule: "business_hours", after: true,
			reason: "outside business hours (Europe/Paris, opens Mon 09:00): waiting",
		},
		{
			name:   "holiday week: the date is given",
			router: route.Router{Teams: map[string]route.TeamConfig{"": {Hours: mustSchedule(t, `{"tz":"Europe/Paris","week":{"mon":[["09:00","17:00"]]},"holidays":["2026-06-22"]}`)}}},
			req: func() route.Request {
				r := req(switchboard.ChannelEmail, "")
				r.Now = utc(t, "2026-06-15T20:00:00Z")
				return r
			}(),
			agents:  []route.Agent{ag("tom", 0, 0, 0)},
			outcome: route.Wait, rule: "business_hours", after: true,
			reason: "outside business hours (Europe/Paris, opens Mon 29 Jun 09:00): waiting",
		},
		{
			name: "22:00 Paris: hand to the after-hours team",
			router: route.Router{Teams: map[string]route.TeamConfig{
				"support": {Hours: paris, AfterHours: route.AfterHoursTeam, AfterHoursTeam: "night"},
			}},
			req: func() route.Request {
				r := req(switchboard.ChannelLivechat, "")
				r.Team = "support"
				r.Now = utc(t, "2026-06-15T20:00:00Z")
				return r
			}(),
			agents:  []route.Agent{ag("tom", 0, 0, 0, teams("support")), ag("nina", 0, 0, 0, teams("night"))},
			outcome: route.Handoff, team: "night", rule: "business_hours",
			reason: "outside business hours (Europe/Paris, opens Tue 09:00): handing to team night",
		},
		{
			name: "after-hours team is the team itself: wait",
			router: route.Router{Teams: map[string]route.TeamConfig{
				"night": {Hours: paris, AfterHours: route.AfterHoursTeam, AfterHoursTeam: "night"},
			}},
			req: func() route.Request {
				r := req(switchboard.ChannelLivechat, "")
				r.Team = "night"
				r.Now = utc(t, "2026-06-15T20:00:00Z")
				return r
			}(),
			agents:  []route.Agent{ag("nina", 0, 0, 0, teams("night"))},
			outcome: route.Wait, rule: "business_hours", after: true,
		},
		{
			name:   "09:00 Paris: open, assign",
			router: route.Router{Teams: map[string]route.TeamConfig{"": {Hours: paris}}},
			req: func() route.Request {
				r := req(switchboard.ChannelLivechat, "")
				r.Now = utc(t, "2026-06-16T07:00:00Z")
				return r
			}(),
			agents:  []route.Agent{ag("tom", 0, 0, 0)},
			outcome: route.Assign, agent: "tom", rule: "workload",
			trace: []string{
				"continuity: no agent has this customer yet",
				"business_hours: within business hours (Europe/Paris)",
				"availability: 1 of 1 agent in team default online with room for a chat",
				"skills: topic unknown: any agent",
				"workload: assigned to Tom: the only candidate, active chats (0 of 6)",
			},
		},
		{
			name:    "billing question goes to the billing agent, though busier",
			router:  route.Router{Topics: billingKeywords},
			req:     req(switchboard.ChannelWhatsApp, "I was CHARGED twice for my order!"),
			agents:  []route.Agent{ag("tom", 0, 0, 60, skills("shipping")), ag("bea", 3, 0, 0, skills("billing:2")), ag("bob", 4, 0, 0, skills("billing"))},
			outcome: route.Assign, agent: "bea", rule: "workload", topic: "billing",
			reason: "assigned to Bea: fewest active chats (3 of 6), skilled in billing",
			trace: []string{
				"continuity: no agent has this customer yet",
				"business_hours: team default is always open",
				"availability: 3 of 3 agents in team default online with room for a chat",
				"skills: topic billing (keyword): 2 agents skilled in billing",
				"workload: assigned to Bea: fewest active chats (3 of 6), skilled in billing",
			},
		},
		{
			name:    "no billing agent online: fall back to any agent",
			router:  route.Router{Topics: billingKeywords},
			req:     req(switchboard.ChannelWhatsApp, "Where is my invoice?"),
			agents:  []route.Agent{ag("tom", 2, 0, 60, skills("shipping")), ag("bea", 0, 0, 0, skills("billing"), status(switchboard.AgentOffline)), ag("ed", 1, 0, 0)},
			outcome: route.Assign, agent: "ed", rule: "workload", topic: "billing",
			reason: "assigned to Ed: fewest active chats (1 of 6)",
			trace: []string{
				"continuity: no agent has this customer yet",
				"business_hours: team default is always open",
				"availability: 2 of 3 agents in team default online with room for a chat",
				"skills: topic billing (keyword): no billing agent available, falling back to any agent",
				"workload: assigned to Ed: fewest active chats (1 of 6)",
			},
		},
		{
			name:    "billing agent at cap counts as unavailable",
			router:  route.Router{Topics: billingKeywords},
			req:     req(switchboard.ChannelWhatsApp, "Where is my invoice?"),
			agents:  []route.Agent{ag("bea", 6, 0, 0, skills("billing")), ag("ed", 5, 0, 0)},
			outcome: route.Assign, agent: "ed", rule: "workload", topic: "billing",
		},
		{
			name:    "no billing agent online: wait when configured",
			router:  route.Router{Topics: billingKeywords, Teams: map[string]route.TeamConfig{"": {SkillFallback: route.FallbackWait}}},
			req:     req(switchboard.ChannelWhatsApp, "Where is my invoice?"),
			agents:  []route.Agent{ag("tom", 2, 0, 60, skills("shipping")), ag("bea", 0, 0, 0, skills("billing"), status(switchboard.AgentAway))},
			outcome: route.Wait, rule: "skills", topic: "billing",
			reason: "topic billing (keyword): no billing agent available: waiting",
		},
		{
			name:   "kept topic wins over the text",
			router: route.Router{Topics: billingKeywords},
			req: func() route.Request {
				r := req(switchboard.ChannelEmail, "refund my invoice")
				r.Topic = "Shipping"
				return r
			}(),
			agents:  []route.Agent{ag("bea", 0, 0, 0, skills("billing")), ag("sam", 0, 9, 0, skills("shipping"))},
			outcome: route.Assign, agent: "sam", rule: "workload", topic: "shipping",
			reason: "assigned to Sam: the only candidate, active emails (9 of 15), skilled in shipping",
		},
		{
			name:    "all online agents at their cap: wait",
			req:     req(switchboard.ChannelInstagram, ""),
			agents:  []route.Agent{ag("a", 6, 0, 0), ag("b", 6, 0, 0), ag("c", 6, 15, 0), ag("d", 0, 0, 0, status(switchboard.AgentOffline))},
			outcome: route.Wait, rule: "availability",
			reason: "all 3 online agents are at their chat cap: waiting",
		},
		{
			name:    "the only online agent at cap: wait",
			req:     req(switchboard.ChannelEmail, ""),
			agents:  []route.Agent{ag("a", 0, 15, 0), ag("d", 0, 0, 0, status(switchboard.AgentAway))},
			outcome: route.Wait, rule: "availability",
			reason: "the only online agent is at the email cap: waiting",
		},
		{
			name:    "nobody online: wait",
			req:     req(switchboard.ChannelSMS, ""),
			agents:  []route.Agent{ag("a", 0, 0, 0, status(switchboard.AgentAway)), ag("b", 0, 0, 0, status(switchboard.AgentOffline)), ag("c", 0, 0, 0, status(""))},
			outcome: route.Wait, rule: "availability",
			reason: "no agent of team default is online (1 away, 2 offline): waiting",
		},
		{
			name:    "no agents at all: wait",
			req:     req(switchboard.ChannelSMS, ""),
			outcome: route.Wait, rule: "availability",
			reason: "no agents in team default: waiting",
		},
		{
			name:    "agents serve their teams only",
			req:     func() route.Request { r := req(switchboard.ChannelSMS, ""); r.Team = "sales"; return r }(),
			agents:  []route.Agent{ag("free", 0, 0, 99), ag("sup", 0, 0, 99, teams("support")), ag("sal", 4, 0, 0, teams("support", "sales"))},
			outcome: route.Assign, agent: "sal", rule: "workload",
			reason: "assigned to Sal: the only candidate, active chats (4 of 6)",
		},
		{
			name:    "default team is served by agents without teams",
			req:     req(switchboard.ChannelSMS, ""),
			agents:  []route.Agent{ag("sup", 0, 0, 99, teams("support")), ag("free", 3, 0, 0)},
			outcome: route.Assign, agent: "free", rule: "workload",
		},
		{
			name:    "a chat weighs more than an email",
			req:     req(switchboard.ChannelLivechat, ""),
			agents:  []route.Agent{ag("chatty", 3, 0, 0), ag("mailer", 0, 5, 0)}, // 3.0 vs 2.0
			outcome: route.Assign, agent: "mailer", rule: "workload",
			reason: "assigned to Mailer: lowest workload (0 of 6 chats, 5 of 15 emails)",
		},
		{
			name:    "configured weights change the pick",
			router:  route.Router{Teams: map[string]route.TeamConfig{"": {Weights: map[switchboard.ChannelClass]float64{switchboard.ClassChat: 1, switchboard.ClassEmail: 1}}}},
			req:     req(switchboard.ChannelLivechat, ""),
			agents:  []route.Agent{ag("chatty", 3, 0, 0), ag("mailer", 0, 5, 0)},
			outcome: route.Assign, agent: "chatty", rule: "workload",
		},
		{
			name:    "tie on load: longest idle",
			req:     req(switchboard.ChannelSMS, ""),
			agents:  []route.Agent{ag("a", 2, 0, 5), ag("b", 2, 0, 30), ag("c", 2, 0, 10), ag("d", 3, 0, 90)},
			outcome: route.Assign, agent: "b", rule: "workload",
			reason: "assigned to B: fewest active chats (2 of 6), longest idle of 3 equally loaded",
		},
		{
			name:    "tie on load and idle: smallest id",
			req:     req(switchboard.ChannelSMS, ""),
			agents:  []route.Agent{ag("zed", 1, 0, 5), ag("amy", 1, 0, 5)},
			outcome: route.Assign, agent: "amy", rule: "workload",
		},
		{
			name:    "tie on load among skilled: proficiency before idle time",
			router:  route.Router{Topics: billingKeywords},
			req:     req(switchboard.ChannelEmail, "refund please"),
			agents:  []route.Agent{ag("novice", 0, 2, 120, skills("billing:1")), ag("expert", 0, 2, 0, skills("billing:5")), ag("busy", 0, 3, 0, skills("billing:5"))},
			outcome: route.Assign, agent: "expert", rule: "workload", topic: "billing",
			reason: "assigned to Expert: fewest active emails (2 of 15), longest idle of 2 equally loaded (proficiency first), skilled in billing",
		},
		{
			name:    "load before proficiency",
			router:  route.Router{Topics: billingKeywords},
			req:     req(switchboard.ChannelEmail, "refund please"),
			agents:  []route.Agent{ag("novice", 0, 1, 0, skills("billing:1")), ag("expert", 0, 2, 0, skills("billing:5"))},
			outcome: route.Assign, agent: "novice", rule: "workload", topic: "billing",
		},
		{
			name:    "rules without availability still skip offline and capped agents",
			router:  route.Router{Teams: map[string]route.TeamConfig{"": {Rules: []string{"workload"}}}},
			req:     req(switchboard.ChannelSMS, ""),
			agents:  []route.Agent{ag("off", 0, 0, 0, status(switchboard.AgentOffline)), ag("full", 0, 0, 0, chatCap(1), func(a *route.Agent) { a.Active[switchboard.ClassChat] = 1 }), ag("ok", 5, 0, 0)},
			outcome: route.Assign, agent: "ok", rule: "workload",
			trace: []string{
				"availability: 1 of 3 agents in team default online with room for a chat",
				"workload: assigned to Ok: the only candidate, active chats (5 of 6)",
			},
		},
		{
			name:    "skills listed before availability: availability moves ahead of it",
			router:  route.Router{Topics: billingKeywords, Teams: map[string]route.TeamConfig{"": {Rules: []string{"skills", "availability", "nonsense", "workload"}}}},
			req:     req(switchboard.ChannelSMS, "invoice"),
			agents:  []route.Agent{ag("bea", 0, 0, 0, skills("billing"), status(switchboard.AgentAway)), ag("ok", 5, 0, 0)},
			outcome: route.Assign, agent: "ok", rule: "workload", topic: "billing",
			trace: []string{
				"availability: 1 of 2 agents in team default online with room for a chat",
				"skills: topic billing (keyword): no billing agent available, falling back to any agent",
				"nonsense: unknown rule: skipped",
				"workload: assigned to Ok: the only candidate, active chats (5 of 6)",
			},
		},
		{
			name:    "per-agent caps",
			req:     req(switchboard.ChannelSMS, ""),
			agents:  []route.Agent{ag("small", 2, 0, 0, chatCap(2)), ag("big", 7, 0, 0, chatCap(8))},
			outcome: route.Assign, agent: "big", rule: "workload",
			reason: "assigned to Big: the only candidate, active chats (7 of 8)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.router.Decide(tt.req, tt.agents)
			if d.Outcome != tt.outcome || d.AgentID != tt.agent || d.Team != tt.team || d.Rule != tt.rule || d.AfterHours != tt.after || d.Topic != tt.topic {
				t.Errorf("Decide = {%s agent=%q team=%q rule=%s after=%v topic=%q} (%s), want {%s agent=%q team=%q rule=%s after=%v topic=%q}",
					d.Outcome, d.AgentID, d.Team, d.Rule, d.AfterHours, d.Topic, d.Reason, tt.outcome, tt.agent, tt.team, tt.rule, tt.after, tt.topic)
			}
			if tt.reason != "" && d.Reason != tt.reason {
				t.Errorf("Reason = %q\nwant     %q", d.Reason, tt.reason)
			}
			last := d.Trace[len(d.Trace)-1]
			if last.Rule != d.Rule || last.Reason != d.Reason {
				t.Errorf("last step %+v does not match the decision %s: %s", last, d.Rule, d.Reason)
			}
			if tt.trace != nil {
				var got []string
				for _, s := range d.Trace {
					got = append(got, s.Rule+": "+s.Reason)
				}
				if !reflect.DeepEqual(got, tt.trace) {
					t.Errorf("trace:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.trace, "\n  "))
				}
			}
		})
	}
}

// TestDecideTraceCandidates checks the candidate counts in the trace.
func TestDecideTraceCandidates(t *testing.T) {
	r := route.Router{Topics: &route.Topics{Keywords: []route.KeywordRule{{Topic: "billing", Keywords: []string{"invoice"}}}}}
	agents := []route.Agent{
		ag("a", 0, 0, 0, skills("billing")), ag("b", 1, 0, 0, skills("billing")), ag("c", 0, 0, 0),
		ag("d", 6, 0, 0, skills("billing")), ag("e", 0, 0, 0, status(switchboard.AgentOffline)), ag("f", 0, 0, 0, teams("x")),
	}
	d := r.Decide(req(switchboard.ChannelSMS, "my invoice"), agents)
	var got []int
	for _, s := range d.Trace {
		got = append(got, s.Candidates)
	}
	// continuity and hours see the team's 5 agents; availability keeps 3
	// (d is capped, e offline); skills keeps a and b; workload picks a.
	if want := []int{5, 5, 3, 2, 1}; !reflect.DeepEqual(got, want) || d.AgentID != "a" {
		t.Fatalf("candidates = %v, agent %q; want %v, agent a", got, d.AgentID, want)
	}
}

// TestDecideCapacity is the scenario: three agents capped at six
// chats, thirty chats routed one after the other.
func TestDecideCapacity(t *testing.T) {
	agents := []route.Agent{ag("a", 0, 0, 3), ag("b", 0, 0, 2), ag("c", 0, 0, 1)}
	var r route.Router
	var order []string
	waits := 0
	for i := range 30 {
		now := t0.Add(time.Duration(i) * time.Second)
		d := r.Decide(route.Request{ConversationID: "c", Channel: switchboard.ChannelLivechat, Now: now}, agents)
		switch d.Outcome {
		case route.Assign:
			for j := range agents {
				if agents[j].ID == d.AgentID {
					agents[j].Active[switchboard.ClassChat]++
					agents[j].IdleSince = now
				}
			}
			order = append(order, d.AgentID)
		case route.Wait:
			waits++
			if d.Reason != "all 3 online agents are at their chat cap: waiting" || d.Rule != "availability" {
				t.Fatalf("wait %d: %s: %s", waits, d.Rule, d.Reason)
			}
		default:
			t.Fatalf("request %d: outcome %s", i, d.Outcome)
		}
	}
	got := map[string]int{}
	for _, a := range agents {
		got[a.ID] = a.Active[switchboard.ClassChat]
	}
	if want := map[string]int{"a": 6, "b": 6, "c": 6}; !reflect.DeepEqual(got, want) || waits != 12 {
		t.Fatalf("active = %v, waits = %d; want %v and 12", got, waits, want)
	}
	// Equal loads go to whoever has waited longest: a strict rotation.
	if want := strings.Repeat("abc", 6); strings.Join(order, "") != want {
		t.Fatalf("assignment order = %s, want %s", strings.Join(order, ""), want)
	}
}

func TestAckText(t *testing.T) {
	paris := mustSchedule(t, officeParis)
	next := utc(t, "2026-06-16T07:00:00Z")
	cfg := route.TeamConfig{Hours: paris}
	if got, want := cfg.AckText(switchboard.ChannelSMS, next), "Thanks for your message. We're closed right now and will reply when we open at Tue 09:00 (Europe/Paris)."; got != want {
		t.Errorf("default AckText = %q, want %q", got, want)
	}
	if got, want := cfg.AckText(switchboard.ChannelSMS, time.Time{}), "Thanks for your message. We're closed right now and will reply as soon as we can."; got != want {
		t.Errorf("AckText without opening = %q, want %q", got, want)
	}
	cfg.Ack = map[string]string{"": "We're closed; back {next_open}.", "whatsapp": "Closed! Back at {next_open} 👋"}
	if got, want := cfg.AckText(switchboard.ChannelEmail, next), "We're closed; back Tue 09:00 (Europe/Paris)."; got != want {
		t.Errorf("AckText default key = %q, want %q", got, want)
	}
	if got, want := cfg.AckText(switchboard.ChannelWhatsApp, next), "Closed! Back at Tue 09:00 (Europe/Paris) 👋"; got != want {
		t.Errorf("AckText whatsapp = %q, want %q", got, want)
	}
}

func TestTeamConfigValidate(t *testing.T) {
	ok := []route.TeamConfig{
		{},
		{Rules: route.DefaultRules, AfterHours: "queue", SkillFallback: "wait"},
		{AfterHours: "team", AfterHoursTeam: "night", Weights: map[switchboard.ChannelClass]float64{switchboard.ClassEmail: 0}},
	}
	for _, c := range ok {
		if err := c.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", c, err)
		}
	}
	bad := []struct {
		c    route.TeamConfig
		want string
	}{
		{route.TeamConfig{Rules: []string{"continuity", "luck"}}, `unknown rule "luck"`},
		{route.TeamConfig{Rules: []string{"skills", "skills"}}, `rule "skills" listed twice`},
		{route.TeamConfig{AfterHours: "team"}, "after_hours_team is empty"},
		{route.TeamConfig{AfterHours: "voicemail"}, `after_hours "voicemail"`},
		{route.TeamConfig{SkillFallback: "random"}, `skill_fallback "random"`},
		{route.TeamConfig{Weights: map[switchboard.ChannelClass]float64{switchboard.ClassChat: -1}}, "weight of chat is -1"},
	}
	for _, b := range bad {
		err := b.c.Validate()
		if err == nil || !strings.Contains(err.Error(), b.want) || switchboard.ErrorCode(err) != switchboard.EINVALID {
			t.Errorf("Validate(%+v) = %v, want EINVALID containing %q", b.c, err, b.want)
		}
	}
}

func TestTeamConfigJSON(t *testing.T) {
	in := `{"rules":["continuity","skills","workload"],"hours":{"tz":"Europe/Paris","week":{"mon":[["09:00","17:00"]]}},"after_hours":"team","after_hours_team":"night","ack":{"":"closed"},"skill_fallback":"wait","weights":{"chat":1,"email":0.5}}`
	var c route.TeamConfig
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Fatalf("round trip = %s\nwant         %s", out, in)
	}
}

func TestValidateTeamsRefusesHandoffCycles(t *testing.T) {
	to := func(team string) route.TeamConfig {
		return route.TeamConfig{AfterHours: route.AfterHoursTeam, AfterHoursTeam: team}
	}
	tests := []struct {
		teams map[string]route.TeamConfig
		want  string // "" = valid
	}{
		{map[string]route.TeamConfig{"": to("night"), "night": {}}, ""},
		{map[string]route.TeamConfig{"": to("a"), "a": to("b"), "b": {AfterHours: route.AfterHoursQueue}}, ""},
		// A hand-off to a team without a configuration ends there: it queues.
		{map[string]route.TeamConfig{"": to("elsewhere")}, ""},
		{map[string]route.TeamConfig{"": to("a"), "a": to("")}, `team "a": route: after_hours is "team" but after_hours_team is empty`},
		{map[string]route.TeamConfig{"": to("a"), "a": to("b"), "b": to("a")}, "cycle (a → b → a)"},
		{map[string]route.TeamConfig{"x": to("")}, `team "x"`},
		{map[string]route.TeamConfig{"a": to("a")}, "cycle (a → a)"},
		{map[string]route.TeamConfig{"a": to("b"), "b": to("")}, `team "b"`},
	}
	for i, tt := range tests {
		err := route.ValidateTeams(tt.teams)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%d: %v, want valid", i, err)
		case tt.want != "" && (switchboard.ErrorCode(err) != switchboard.EINVALID || !strings.Contains(switchboard.ErrorMessage(err), tt.want)):
			t.Errorf("%d: %v, want EINVALID with %q", i, err, tt.want)
		}
	}
	if got := route.HandoffPath([]string{"", "night", "weekend"}); got != "default → night → weekend" {
		t.Errorf("HandoffPath = %q", got)
	}
}
