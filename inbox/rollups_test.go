package inbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/store"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

// TestAnalyticsRollups checks that the daily rollups answer exactly what
// the raw rows do, for every measure and grouping, over ranges cut in
// several zones (one with a half-hour offset), cold and warm; and that
// writes changing days already rolled up (a late first response, a
// customer switching channel in an old conversation, a message dated in
// the past, a merge) invalidate them, on SQLite and PostgreSQL.
func TestAnalyticsRollups(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		d0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
		e := newAnalyticsEnv(t, backend, d0)
		ada := e.ada
		online := func(at time.Time, st switchboard.AgentStatus) {
			e.at(at)
			if _, err := e.svc.SetAgentStatus(ctx, e.ada, ada.ID, st); err != nil {
				t.Fatal(err)
			}
		}

		// Ten days, six customers a day in blocks of three hours: phones
		// on SMS and WhatsApp, addresses on e-mail and the web form. One
		// in six writes again on another channel; two in three get an
		// answer, half are resolved, some are Ada's. Ada is online from
		// day 0 to day 9 but for days 4 and 5.
		type who struct {
			kind  switchboard.IdentityKind
			value string
			ch    switchboard.Channel
		}
		customer := func(i, j int) who {
			if (i+j)%2 == 0 {
				return who{switchboard.IdentityPhone, fmt.Sprintf("+1415555%02d%02d", i, j), []switchboard.Channel{switchboard.ChannelSMS, switchboard.ChannelWhatsApp}[(i+j)%4/2]}
			}
			return who{switchboard.IdentityEmail, fmt.Sprintf("c%d-%d@example.com", i, j), []switchboard.Channel{switchboard.ChannelEmail, switchboard.ChannelWebform}[(i+j)%4/2]}
		}
		other := map[switchboard.Channel]switchboard.Channel{switchboard.ChannelSMS: switchboard.ChannelWhatsApp, switchboard.ChannelWhatsApp: switchboard.ChannelSMS,
			switchboard.ChannelEmail: switchboard.ChannelWebform, switchboard.ChannelWebform: switchboard.ChannelEmail}
		convs := map[[2]int]string{}
		for i := range 10 {
			switch i {
			case 0, 6:
				online(d0.AddDate(0, 0, i).Add(5*time.Minute), switchboard.AgentOnline)
			case 4:
				online(d0.AddDate(0, 0, i).Add(10*time.Minute), switchboard.AgentOffline)
			}
			for j := range 6 {
				at := d0.AddDate(0, 0, i).Add(time.Duration(j)*3*time.Hour + 17*time.Minute)
				c := customer(i, j)
				conv := e.inbound(at, c.ch, c.kind, c.value, "Hello")
				convs[[2]int{i, j}] = conv
				if j == 1 {
					e.inbound(at.Add(10*time.Minute), other[c.ch], c.kind, c.value, "Me again")
				}
				if j%2 == 1 && i%3 == 0 {
					e.at(at.Add(12 * time.Minute))
					if _, err := e.svc.Assign(ctx, e.sup, conv, ada.ID); err != nil {
						t.Fatal(err)
					}
				}
				if j%3 != 0 {
					e.reply(at.Add(time.Duration(j+1)*7*time.Minute), conv, false)
				}
				if j%2 == 0 {
					e.status(at.Add(2*time.Hour), conv, switchboard.StatusResolved)
				}
			}
		}
		online(d0.AddDate(0, 0, 9).Add(20*time.Hour), switchboard.AgentOffline)
		e.at(d0.AddDate(0, 0, 12).Add(9 * time.Hour))

		type query struct {
			measure, group, tz string
			from, to           time.Time
			agent              string
		}
		var queries []query
		for _, r := range []struct {
			tz       string
			from, to time.Time
		}{
			{"UTC", d0, d0.AddDate(0, 0, 13)},
			{"America/New_York", d0.Add(4 * time.Hour), d0.AddDate(0, 0, 9).Add(4 * time.Hour)},
			{"Asia/Kolkata", d0.AddDate(0, 0, 2).Add(-330 * time.Minute), d0.AddDate(0, 0, 13)},
			{"UTC", d0.AddDate(0, 0, 3).Add(5 * time.Hour), d0.AddDate(0, 0, 7).Add(13 * time.Hour)},
		} {
			for _, m := range []struct{ measure, group string }{
				{"first_response", "channel"}, {"first_response", "hour"}, {"first_response", "channel_hour"},
				{"resolution", "topic"}, {"resolution", "channel"}, {"channel_migration", ""},
				{"utilization", "agent"}, {"utilization", "team"},
			} {
				queries = append(queries, query{m.measure, m.group, r.tz, r.from, r.to, ""})
			}
			queries = append(queries, query{"first_response", "channel", r.tz, r.from, r.to, ada.ID}, query{"resolution", "channel", r.tz, r.from, r.to, ada.ID})
		}
		answer := func(q query) string {
			t.Helper()
			loc, err := time.LoadLocation(q.tz)
			if err != nil {
				t.Fatal(err)
			}
			a, err := e.svc.Analytics(ctx, e.sup, q.measure, inbox.AnalyticsQuery{From: q.from, To: q.to, TZ: loc, Group: q.group, Agent: q.agent})
			if err != nil {
				t.Fatalf("%+v: %v", q, err)
			}
			b, err := json.Marshal(struct {
				Rows  []map[string]any
				Share *float64
			}{a.Rows, a.Share})
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		// compare checks every query with rollups (twice: building, then
		// reading them) against the raw rows, and returns the raw answers.
		compare := func(stage string) map[query]string {
			t.Helper()
			raw := map[query]string{}
			inbox.UseRollups(e.svc.Service, false)
			for _, q := range queries {
				raw[q] = answer(q)
			}
			inbox.UseRollups(e.svc.Service, true)
			for pass := range 2 {
				for _, q := range queries {
					if got := answer(q); got != raw[q] {
						t.Errorf("%s, pass %d, %s by %s in %s over [%s, %s) agent %q:\nrollups %s\nraw     %s",
							stage, pass, q.measure, q.group, q.tz, q.from.Format(time.RFC3339), q.to.Format(time.RFC3339), q.agent, got, raw[q])
					}
				}
			}
			return raw
		}
		in := storetest.InspectURL(t, e.svc.URL)
		before := compare("as built")
		// The clock is at day 12: days 0-10 are rolled up.
		for _, kind := range []string{store.RollupFirstResponse, store.RollupResolution, store.RollupMigration, store.RollupUtilization} {
			if valid, stale := in.Rollups(kind); valid < 9 || stale != 0 {
				t.Errorf("%s rollups: %d valid, %d stale; want days 0-10 valid", kind, valid, stale)
			}
		}

		// Writes that change rolled-up days. A late first response to a
		// day-3 cycle never answered (j = 3):
		e.reply(e.clock.Now().Add(time.Minute), convs[[2]int{3, 3}], false)
		if _, stale := in.Rollups(store.RollupFirstResponse); stale != 1 {
			t.Errorf("after a late first response: %d stale first-response days, want 1", stale)
		}
		// The day-8 customer 3 (open) writes again on their other channel:
		c := customer(8, 3)
		if conv := e.inbound(e.clock.Now().Add(time.Minute), other[c.ch], c.kind, c.value, "Still waiting"); conv != convs[[2]int{8, 3}] {
			t.Fatalf("the message went to %s, not the open conversation %s", conv, convs[[2]int{8, 3}])
		}
		// A message dated day 5, 23:00, from a new customer:
		e.n++
		e.at(e.clock.Now().Add(time.Minute))
		if _, err := e.svc.Ingest(ctx, []switchboard.Inbound{{Channel: switchboard.ChannelSMS, ProviderID: fmt.Sprintf("p%d", e.n), ReceivedAt: d0.AddDate(0, 0, 5).Add(23 * time.Hour),
			Identities: []switchboard.IdentityRef{{Kind: switchboard.IdentityPhone, Value: "+14155550999"}}, ContentType: "text", Text: "Sent days ago"}}); err != nil {
			t.Fatal(err)
		}
		// Day 7's open customers 1 and 3 turn out to be one: the merge
		// ends 3's cycle and moves its messages.
		e.at(e.clock.Now().Add(time.Minute))
		keep, err := e.svc.Conversation(ctx, e.sup, convs[[2]int{7, 1}])
		if err != nil {
			t.Fatal(err)
		}
		gone, err := e.svc.Conversation(ctx, e.sup, convs[[2]int{7, 3}])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Merge(ctx, e.sup, keep.Customer.ID, gone.Customer.ID); err != nil {
			t.Fatal(err)
		}
		after := compare("after the changes")
		for _, q := range []query{
			{"first_response", "channel", "UTC", d0, d0.AddDate(0, 0, 13), ""},
			{"channel_migration", "", "UTC", d0, d0.AddDate(0, 0, 13), ""},
		} {
			if before[q] == after[q] {
				t.Errorf("%s did not change with the writes: %s", q.measure, after[q])
			}
		}
		for _, kind := range []string{store.RollupFirstResponse, store.RollupMigration} {
			if _, stale := in.Rollups(kind); stale != 0 {
				t.Errorf("%s: %d days left stale after reading them", kind, stale)
			}
		}
		// Damaged rows (their generation still current) are built again,
		// not read, and not an error.
		for _, kind := range []string{store.RollupFirstResponse, store.RollupResolution, store.RollupMigration, store.RollupUtilization} {
			in.DamageRollups(kind)
		}
		compare("after damage")
	})
}
