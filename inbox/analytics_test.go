package inbox_test

import (
	"context"
	"fmt"
	"math"
	"sort"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/inbox/inboxtest"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
	"github.com/switchboard-inbox/switchboard/route"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

// analyticsEnv drives the inbox with a clock the test sets.
type analyticsEnv struct {
	t     *testing.T
	svc   *inboxtest.DB
	clock *testenv.Clock
	sup   switchboard.Actor
	ada   switchboard.Actor
	n     int
}

// newAnalyticsEnv opens the inbox on backend with its clock at start,
// every channel sending nowhere, and two agents: Sue, a supervisor, and
// Ada, an agent in team north.
func newAnalyticsEnv(t *testing.T, backend string, start time.Time) *analyticsEnv {
	t.Helper()
	ctx := context.Background()
	clock := testenv.NewClock(start)
	e := &analyticsEnv{t: t, clock: clock, svc: inboxtest.Open(t, backend, inbox.Config{Clock: clock})}
	for _, ch := range switchboard.Channels {
		e.svc.SetChannel(ch, nil, nopSender{})
	}
	for _, a := range []switchboard.Agent{
		{Name: "Sue", Email: "sue@team.example", Role: switchboard.RoleSupervisor},
		{Name: "Ada", Email: "ada@team.example", Teams: []string{"north"}, Role: switchboard.RoleAgent},
	} {
		added, _, err := e.svc.AddAgent(ctx, switchboard.System, a)
		if err != nil {
			t.Fatal(err)
		}
		actor := switchboard.Actor{ID: added.ID, Name: added.Name, Role: a.Role}
		if a.Role == switchboard.RoleSupervisor {
			e.sup = actor
		} else {
			e.ada = actor
		}
	}
	return e
}

func (e *analyticsEnv) at(t time.Time) {
	e.t.Helper()
	if d := t.Sub(e.clock.Now()); d < 0 {
		e.t.Fatalf("the clock cannot go back from %s to %s", e.clock.Now(), t)
	} else {
		e.clock.Advance(d)
	}
}

func (e *analyticsEnv) inbound(at time.Time, ch switchboard.Channel, kind switchboard.IdentityKind, who, text string) string {
	e.t.Helper()
	e.at(at)
	e.n++
	res, err := e.svc.Ingest(context.Background(), []switchboard.Inbound{{Channel: ch, ProviderID: fmt.Sprintf("p%d", e.n),
		Identities: []switchboard.IdentityRef{{Kind: kind, Value: who}}, ContentType: "text", Text: text}})
	if err != nil {
		e.t.Fatal(err)
	}
	return res[0].ConversationID
}

func (e *analyticsEnv) reply(at time.Time, conv string, note bool) {
	e.t.Helper()
	e.at(at)
	if _, err := e.svc.Reply(context.Background(), e.ada, switchboard.Reply{ConversationID: conv, Text: "On it.", Note: note}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *analyticsEnv) status(at time.Time, conv string, st switchboard.Status) {
	e.t.Helper()
	e.at(at)
	if _, err := e.svc.SetStatus(context.Background(), e.sup, conv, st); err != nil {
		e.t.Fatal(err)
	}
}

func (e *analyticsEnv) measure(measure, group, tz string, from, to time.Time) inbox.Analytics {
	e.t.Helper()
	loc, err := time.LoadLocation(tz)
	if err != nil {
		e.t.Fatal(err)
	}
	a, err := e.svc.Analytics(context.Background(), e.sup, measure, inbox.AnalyticsQuery{From: from, To: to, TZ: loc, Group: group})
	if err != nil {
		e.t.Fatalf("%s: %v", measure, err)
	}
	return a
}

// day is [midnight, next midnight) of date in tz: 23 or 25 hours on a
// daylight-saving day.
func day(t *testing.T, tz string, y int, m time.Month, d int) (time.Time, time.Time) {
	loc, err := time.LoadLocation(tz)
	if err != nil {
		t.Fatal(err)
	}
	return time.Date(y, m, d, 0, 0, 0, 0, loc), time.Date(y, m, d+1, 0, 0, 0, 0, loc)
}

func row(t *testing.T, a inbox.Analytics, keys map[string]any) map[string]any {
	t.Helper()
	for _, r := range a.Rows {
		match := true
		for k, v := range keys {
			if fmt.Sprint(r[k]) != fmt.Sprint(v) {
				match = false
			}
		}
		if match {
			return r
		}
	}
	t.Fatalf("%s: no row %v in %v", a.Measure, keys, a.Rows)
	return nil
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// TestAnalyticsCorrectness builds, through the service layer with an
// injected clock, a dataset whose answers are computed by hand here, and
// checks every measure against them on SQLite and PostgreSQL: a reopened
// conversation starts a new clock; the automatic acknowledgement and the
// note are not responses; the hour of day follows the time zone across
// the daylight-saving change; "today" depends on the viewer's zone; p95
// is a true percentile.
func TestAnalyticsCorrectness(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		// Sunday 8 March 2026, 05:00 UTC: New York moves to daylight
		// time at 07:00 UTC (2:00 EST).
		start := time.Date(2026, 3, 8, 5, 0, 0, 0, time.UTC)
		e := newAnalyticsEnv(t, backend, start)
		sup, ada := e.sup, e.ada

		// The daylight-saving day: a message at 01:30 EST and one at
		// 03:30 EDT, each answered in 60 s.
		d1 := e.inbound(time.Date(2026, 3, 8, 6, 30, 0, 0, time.UTC), switchboard.ChannelSMS, switchboard.IdentityPhone, "+14155552601", "night one")
		e.reply(time.Date(2026, 3, 8, 6, 31, 0, 0, time.UTC), d1, false)
		d2 := e.inbound(time.Date(2026, 3, 8, 7, 30, 0, 0, time.UTC), switchboard.ChannelSMS, switchboard.IdentityPhone, "+14155552602", "night two")
		e.reply(time.Date(2026, 3, 8, 7, 31, 0, 0, time.UTC), d2, false)

		// Monday 9 March, 14:00 UTC (10:00 in New York, 23:00 in Tokyo).
		t0 := time.Date(2026, 3, 9, 14, 0, 0, 0, time.UTC)
		e.at(t0)
		if _, err := e.svc.SetAgentStatus(ctx, e.ada, ada.ID, switchboard.AgentOnline); err != nil {
			t.Fatal(err)
		}
		a := e.inbound(t0, switchboard.ChannelSMS, switchboard.IdentityPhone, "+14155552671", "Where is my order?")
		e.at(t0.Add(10 * time.Minute))
		if _, err := e.svc.SendAutomatic(ctx, a, switchboard.ChannelSMS, "Thanks, we will be right with you."); err != nil {
			t.Fatal(err)
		}
		e.reply(t0.Add(20*time.Minute), a, true) // a note
		e.at(t0.Add(25 * time.Minute))
		if _, err := e.svc.Assign(ctx, e.sup, a, ada.ID); err != nil {
			t.Fatal(err)
		}
		e.reply(t0.Add(30*time.Minute), a, false) // first response: 30 min
		b := e.inbound(t0.Add(time.Hour), switchboard.ChannelEmail, switchboard.IdentityEmail, "bo@example.com", "Invoice?")
		e.status(t0.Add(2*time.Hour), a, switchboard.StatusResolved)
		// The customer writes again on WhatsApp: the conversation
		// reopens, with a new clock.
		if again := e.inbound(t0.Add(3*time.Hour), switchboard.ChannelWhatsApp, switchboard.IdentityPhone, "+14155552671", "It has not come"); again != a {
			t.Fatalf("the WhatsApp message went to %s, not the reopened %s", again, a)
		}
		e.reply(t0.Add(3*time.Hour+5*time.Minute), a, false) // 5 min
		e.status(t0.Add(4*time.Hour), a, switchboard.StatusResolved)
		// The survey goes out on WhatsApp, the customer's last channel;
		// their "5" is a rating: not a message, no new cycle, no reopening.
		e.at(t0.Add(4*time.Hour + time.Minute))
		if n, err := e.svc.SendDueSurveys(ctx, inbox.SurveyConfig{Delay: time.Minute}); err != nil || n != 1 {
			t.Fatalf("surveys sent: %d %v, want 1", n, err)
		}
		e.at(t0.Add(4*time.Hour + 5*time.Minute))
		res, err := e.svc.Ingest(ctx, []switchboard.Inbound{{Channel: switchboard.ChannelWhatsApp, ProviderID: "rating-1",
			Identities: []switchboard.IdentityRef{{Kind: switchboard.IdentityPhone, Value: "+14155552671"}}, ContentType: "text", Text: "5"}})
		if err != nil || res[0].Rating != 5 || res[0].Stored() {
			t.Fatalf("the survey answer: %+v %v", res, err)
		}
		e.reply(t0.Add(5*time.Hour), b, false) // 4 h: exactly e-mail's target, which counts as within
		if _, err := e.svc.SetAgentStatus(ctx, e.ada, ada.ID, switchboard.AgentOffline); err != nil {
			t.Fatal(err)
		}

		t.Run("FirstResponseByChannel", func(t *testing.T) {
			from, to := day(t, "America/New_York", 2026, 3, 9)
			fr := e.measure("first_response", "channel", "America/New_York", from, to)
			if len(fr.Rows) != 3 {
				t.Fatalf("rows %v, want sms, whatsapp, email", fr.Rows)
			}
			sms := row(t, fr, map[string]any{"channel": "sms"})
			// The acknowledgement (10 min) and the note (20 min) are not
			// responses: 30 min is.
			if sms["count"] != 1 || !near(sms["p50"].(float64), 1800) || !near(sms["within_target"].(float64), 0) {
				t.Errorf("sms %v: want one response in 1800 s, not within the 60 s target", sms)
			}
			wa := row(t, fr, map[string]any{"channel": "whatsapp"})
			if wa["count"] != 1 || !near(wa["p50"].(float64), 300) {
				t.Errorf("whatsapp %v: the reopened cycle's clock starts at the new message: want 300 s", wa)
			}
			em := row(t, fr, map[string]any{"channel": "email"})
			if em["count"] != 1 || !near(em["p95"].(float64), 4*3600) || !near(em["within_target"].(float64), 1) {
				t.Errorf("email %v: want 14400 s, within the 4 h target", em)
			}
		})
		t.Run("TodayDependsOnTheZone", func(t *testing.T) {
			from, to := day(t, "America/New_York", 2026, 3, 9)
			ny := e.measure("first_response", "channel", "America/New_York", from, to)
			from, to = day(t, "Asia/Tokyo", 2026, 3, 9)
			tokyo := e.measure("first_response", "channel", "Asia/Tokyo", from, to)
			count := func(a inbox.Analytics) (n int) {
				for _, r := range a.Rows {
					n += r["count"].(int)
				}
				return n
			}
			// Tokyo's 9 March ends at 15:00 UTC: only the 14:00 message.
			if count(ny) != 3 || count(tokyo) != 1 {
				t.Errorf("9 March in New York counts %d responses, in Tokyo %d; want 3 and 1", count(ny), count(tokyo))
			}
			if r := row(t, tokyo, map[string]any{"channel": "sms"}); r["count"] != 1 {
				t.Errorf("Tokyo: %v", tokyo.Rows)
			}
		})
		t.Run("HoursAcrossDaylightSaving", func(t *testing.T) {
			from, to := day(t, "America/New_York", 2026, 3, 8)
			if to.Sub(from) != 23*time.Hour {
				t.Fatalf("8 March in New York lasts %s", to.Sub(from))
			}
			byHour := e.measure("first_response", "hour", "America/New_York", from, to)
			var hours []int
			for _, r := range byHour.Rows {
				hours = append(hours, r["hour"].(int))
			}
			sort.Ints(hours)
			if fmt.Sprint(hours) != "[1 3]" {
				t.Errorf("hours %v, want 1 (01:30 EST) and 3 (03:30 EDT)", hours)
			}
			grid := e.measure("first_response", "channel_hour", "America/New_York", from, to)
			if r := row(t, grid, map[string]any{"channel": "sms", "hour": 3}); r["count"] != 1 || !near(r["p50"].(float64), 60) {
				t.Errorf("sms at 3: %v", r)
			}
		})
		t.Run("Resolution", func(t *testing.T) {
			from, to := day(t, "UTC", 2026, 3, 9)
			res := e.measure("resolution", "channel", "UTC", from, to)
			sms, wa := row(t, res, map[string]any{"channel": "sms"}), row(t, res, map[string]any{"channel": "whatsapp"})
			if sms["count"] != 1 || !near(sms["p50"].(float64), 7200) || wa["count"] != 1 || !near(wa["p50"].(float64), 3600) {
				t.Errorf("resolution by channel %v: want sms 7200 s, whatsapp 3600 s (each cycle its own)", res.Rows)
			}
			if len(res.Rows) != 2 {
				t.Errorf("the unresolved e-mail counts: %v", res.Rows)
			}
		})
		t.Run("Migration", func(t *testing.T) {
			from, to := day(t, "UTC", 2026, 3, 9)
			mig := e.measure("channel_migration", "", "UTC", from, to)
			// Two conversations (the SMS/WhatsApp one, the e-mail one);
			// one used two channels.
			if mig.Share == nil || !near(*mig.Share, 0.5) || len(mig.Rows) != 1 {
				t.Fatalf("migration share %v rows %v, want 0.5 and one pair", mig.Share, mig.Rows)
			}
			if r := mig.Rows[0]; r["from_channel"] != switchboard.ChannelSMS || r["to_channel"] != switchboard.ChannelWhatsApp || r["conversations"] != 1 {
				t.Errorf("pair %v", r)
			}
		})
		t.Run("Utilization", func(t *testing.T) {
			from, to := day(t, "UTC", 2026, 3, 9)
			u := e.measure("utilization", "agent", "UTC", from, to)
			r := row(t, u, map[string]any{"agent_id": ada.ID})
			// Online 14:00-19:00; has the conversation 14:25-16:00
			// (resolved) and 17:00-18:00 (reopened with her): 2 h 35 min.
			online, busy := 5*3600.0, (95+60)*60.0
			if !near(r["online_seconds"].(float64), online) || !near(r["busy_seconds"].(float64), busy) || !near(r["utilization"].(float64), busy/online) || r["band"] != "low" {
				t.Errorf("ada: %v, want online %v s, busy %v s, low", r, online, busy)
			}
			team := e.measure("utilization", "team", "UTC", from, to)
			if r := row(t, team, map[string]any{"team": "north"}); !near(r["busy_seconds"].(float64), busy) {
				t.Errorf("team north: %v", r)
			}
			// Half the range: 14:00-16:30 has her busy 14:25-16:00.
			half := e.measure("utilization", "agent", "UTC", t0, t0.Add(150*time.Minute))
			if r := row(t, half, map[string]any{"agent_id": ada.ID}); !near(r["online_seconds"].(float64), 9000) || !near(r["busy_seconds"].(float64), 5700) {
				t.Errorf("ada over 14:00-16:30: %v, want 9000 s online, 5700 s busy", r)
			}
		})
		t.Run("CSAT", func(t *testing.T) {
			from, to := day(t, "UTC", 2026, 3, 9)
			c := e.measure("csat", "", "UTC", from, to)
			r := row(t, c, map[string]any{"channel": "whatsapp"})
			if r["surveys"] != 1 || r["responses"] != 1 || !near(r["average"].(float64), 5) || r["distribution"].(map[string]int)["5"] != 1 {
				t.Errorf("csat %v", r)
			}
			if st, _ := e.svc.Conversation(ctx, e.sup, a); st.Status != switchboard.StatusResolved {
				t.Errorf("the rating reopened the conversation: %s", st.Status)
			}
		})
		t.Run("PerAgentAndTeam", func(t *testing.T) {
			from, to := day(t, "America/New_York", 2026, 3, 9)
			loc, _ := time.LoadLocation("America/New_York")
			count := func(q inbox.AnalyticsQuery, measure string) (n int) {
				q.From, q.To, q.TZ = from, to, loc
				a, err := e.svc.Analytics(ctx, e.sup, measure, q)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range a.Rows {
					if c, ok := r["count"].(int); ok {
						n += c
					} else {
						n++
					}
				}
				return n
			}
			// Ada answered all three; Sue none; Ada is in team north.
			if n := count(inbox.AnalyticsQuery{Agent: ada.ID}, "first_response"); n != 3 {
				t.Errorf("Ada's first responses: %d, want 3", n)
			}
			if n := count(inbox.AnalyticsQuery{Agent: sup.ID}, "first_response"); n != 0 {
				t.Errorf("Sue's first responses: %d, want 0", n)
			}
			if n := count(inbox.AnalyticsQuery{Team: "north"}, "resolution"); n != 2 {
				t.Errorf("team north's resolutions: %d, want 2", n)
			}
			if n := count(inbox.AnalyticsQuery{Team: "south", Group: "agent"}, "utilization"); n != 0 {
				t.Errorf("team south's utilisation rows: %d, want none", n)
			}
		})
		t.Run("Refusals", func(t *testing.T) {
			if _, err := e.svc.Analytics(ctx, e.ada, "first_response", inbox.AnalyticsQuery{From: t0, To: t0.Add(time.Hour)}); switchboard.ErrorCode(err) != switchboard.EFORBIDDEN {
				t.Errorf("an agent: %v", err)
			}
			if _, err := e.svc.Analytics(ctx, e.sup, "first_response", inbox.AnalyticsQuery{From: t0, To: t0.Add(time.Hour), Group: "topic"}); switchboard.ErrorCode(err) != switchboard.EINVALID {
				t.Errorf("a group the measure has not: %v", err)
			}
		})
	})
}

// TestAnalyticsP95IsAPercentile: 94 fast and 6 very slow responses show
// the slow value at p95 and not at p50.
func TestAnalyticsP95IsAPercentile(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC)
	clock := testenv.NewClock(start)
	e := &analyticsEnv{t: t, clock: clock, svc: inboxtest.Open(t, "sqlite", inbox.Config{Clock: clock})}
	e.svc.SetChannel(switchboard.ChannelLivechat, nil, nopSender{})
	e.svc.SetChannel(switchboard.ChannelEmail, nil, nopSender{})
	sup, _, _ := e.svc.AddAgent(ctx, switchboard.System, switchboard.Agent{Name: "Sue", Email: "sue@team.example", Role: switchboard.RoleSupervisor})
	ada, _, _ := e.svc.AddAgent(ctx, switchboard.System, switchboard.Agent{Name: "Ada", Email: "ada@team.example"})
	e.sup = switchboard.Actor{ID: sup.ID, Role: switchboard.RoleSupervisor}
	e.ada = switchboard.Actor{ID: ada.ID, Role: switchboard.RoleAgent}
	// Each conversation: a message, then the answer after 10 s (94 of
	// them) or 6 hours (6 of them); a minute apart. Steps run in time
	// order, the clock only moving forward.
	slow := map[int]bool{3: true, 20: true, 37: true, 54: true, 71: true, 88: true}
	type step struct {
		at    time.Time
		i     int
		reply bool
	}
	var steps []step
	for i := range 100 {
		in := start.Add(time.Duration(i) * time.Minute)
		d := 10 * time.Second
		if slow[i] {
			d = 6 * time.Hour
		}
		steps = append(steps, step{in, i, false}, step{in.Add(d), i, true})
	}
	sort.SliceStable(steps, func(a, b int) bool { return steps[a].at.Before(steps[b].at) })
	convs := map[int]string{}
	for _, st := range steps {
		if st.reply {
			e.reply(st.at, convs[st.i], false)
		} else {
			convs[st.i] = e.inbound(st.at, switchboard.ChannelEmail, switchboard.IdentityEmail, fmt.Sprintf("c%d@example.com", st.i), "help")
		}
	}
	fr := e.measure("first_response", "channel", "UTC", start, start.Add(24*time.Hour))
	r := row(t, fr, map[string]any{"channel": "email"})
	if r["count"] != 100 || !near(r["p50"].(float64), 10) || !near(r["p95"].(float64), 6*3600) {
		t.Errorf("%v: want p50 10 s and p95 21600 s", r)
	}
}

// TestAnalyticsBusinessHours: with business_hours, first response counts
// only the default team's open hours: an evening message answered the
// next morning, a weekend one answered on Monday.
func TestAnalyticsBusinessHours(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		start := time.Date(2026, 3, 9, 12, 0, 0, 0, time.UTC)
		clock := testenv.NewClock(start)
		e := &analyticsEnv{t: t, clock: clock, svc: inboxtest.Open(t, backend, inbox.Config{Clock: clock})}
		e.svc.SetChannel(switchboard.ChannelSMS, nil, nopSender{})
		sup, _, _ := e.svc.AddAgent(ctx, switchboard.System, switchboard.Agent{Name: "Sue", Email: "sue@team.example", Role: switchboard.RoleSupervisor})
		ada, _, _ := e.svc.AddAgent(ctx, switchboard.System, switchboard.Agent{Name: "Ada", Email: "ada@team.example"})
		e.sup = switchboard.Actor{ID: sup.ID, Role: switchboard.RoleSupervisor}
		e.ada = switchboard.Actor{ID: ada.ID, Role: switchboard.RoleAgent}
		hours, err := route.ParseSchedule([]byte(`{"tz": "America/New_York", "week": {"mon": [["09:00", "17:00"]], "tue": [["09:00", "17:00"]], "wed": [["09:00", "17:00"]], "thu": [["09:00", "17:00"]], "fri": [["09:00", "17:00"]]}}`))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.PutRoutingConfig(ctx, switchboard.System, inbox.RoutingConfig{Teams: map[string]route.TeamConfig{"": {Hours: hours}}}); err != nil {
			t.Fatal(err)
		}
		utc := func(s string) time.Time {
			v, err := time.Parse(time.RFC3339, s)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		// Mon 16:50 EDT, answered Tue 09:10 EDT: 20 business minutes.
		c1 := e.inbound(utc("2026-03-09T20:50:00Z"), switchboard.ChannelSMS, switchboard.IdentityPhone, "+14155552681", "late")
		e.reply(utc("2026-03-10T13:10:00Z"), c1, false)
		// Saturday 15:00 UTC, answered Monday 10:05 EDT: 65 business
		// minutes (from 09:00); and a Monday message answered in 6 min.
		c2 := e.inbound(utc("2026-03-14T15:00:00Z"), switchboard.ChannelSMS, switchboard.IdentityPhone, "+14155552682", "weekend")
		c3 := e.inbound(utc("2026-03-16T14:00:00Z"), switchboard.ChannelSMS, switchboard.IdentityPhone, "+14155552683", "monday")
		e.reply(utc("2026-03-16T14:05:00Z"), c2, false)
		e.reply(utc("2026-03-16T14:06:00Z"), c3, false)
		from, to := utc("2026-03-09T00:00:00Z"), utc("2026-03-18T00:00:00Z")
		wall := e.measure("first_response", "channel", "UTC", from, to)
		biz, err := e.svc.Analytics(ctx, e.sup, "first_response", inbox.AnalyticsQuery{From: from, To: to, TZ: time.UTC, Group: "channel", BusinessHours: true})
		if err != nil {
			t.Fatal(err)
		}
		w, b := row(t, wall, map[string]any{"channel": "sms"}), row(t, biz, map[string]any{"channel": "sms"})
		// Wall clock: 58800 s, 169500 s (Sat 15:00 to Mon 14:05 UTC) and
		// 360 s: p50 58800, p95 169500.
		if w["count"] != 3 || !near(w["p50"].(float64), 58800) || !near(w["p95"].(float64), 169500) {
			t.Errorf("wall-clock first response %v", w)
		}
		// Business hours: 1200 s, 3900 s and 360 s: p50 1200, p95 3900.
		if b["count"] != 3 || !near(b["p50"].(float64), 1200) || !near(b["p95"].(float64), 3900) {
			t.Errorf("business-hours first response %v: want p50 1200 s, p95 3900 s", b)
		}
	})
}
