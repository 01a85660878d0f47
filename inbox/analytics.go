package inbox

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/route"
	"github.com/switchboard-inbox/switchboard/store"
)

// Analytics (docs/design.md §4.3, definitions in docs/metrics.md). Each
// measure is computed here once, from the store's raw facts, for the JSON
// API, the CSV export and the dashboard alike. Percentiles are exact:
// nearest rank over every duration in the range.

// Measures are the analytics the API serves.
var Measures = []string{"first_response", "resolution", "channel_migration", "csat", "utilization", "email_health"}

// DefaultResponseTargets are the first-response targets per channel:
// chat-like channels a minute, social an hour, e-mail four hours.
var DefaultResponseTargets = map[switchboard.Channel]time.Duration{
	switchboard.ChannelLivechat:  time.Minute,
	switchboard.ChannelSMS:       time.Minute,
	switchboard.ChannelWhatsApp:  time.Minute,
	switchboard.ChannelVoice:     time.Minute,
	switchboard.ChannelMessenger: time.Hour,
	switchboard.ChannelInstagram: time.Hour,
	switchboard.ChannelEmail:     4 * time.Hour,
	switchboard.ChannelWebform:   4 * time.Hour,
}

// AnalyticsQuery selects what a measure covers.
type AnalyticsQuery struct {
	From, To time.Time // [From, To)
	TZ       *time.Location
	Group    string
	// BusinessHours counts first responses in the default team's
	// business hours only (its schedule; always open without one).
	BusinessHours bool
	// Agent and Team, when set, keep first response and resolution to the
	// cycles the agent (an agent of the team) answered first, and
	// utilisation to that agent (team).
	Agent, Team string
}

// responderFilter returns whether a cycle whose first response the agent
// with name id responder wrote is kept by q's agent and team.
func (s *Service) responderFilter(ctx context.Context, q AnalyticsQuery, nm *names) (func(responder int) bool, error) {
	if q.Agent == "" && q.Team == "" {
		return func(int) bool { return true }, nil
	}
	members := map[string]bool{}
	if q.Team != "" {
		agents, err := s.store.ListAgents(ctx)
		if err != nil {
			return nil, err
		}
		for _, a := range agents {
			if slices.Contains(a.Teams, q.Team) {
				members[a.ID] = true
			}
		}
	}
	return func(responder int) bool {
		id := nm.list[responder]
		return (q.Agent == "" || id == q.Agent) && (q.Team == "" || members[id])
	}, nil
}

// Analytics is a measure's answer. Columns order the rows' fields for CSV.
type Analytics struct {
	Measure string           `json:"measure"`
	From    string           `json:"from"`
	To      string           `json:"to"`
	TZ      string           `json:"tz"`
	Rows    []map[string]any `json:"rows"`
	Share   *float64         `json:"share,omitempty"`
	Columns []string         `json:"-"`
}

// Analytics computes measure over q (supervisors and admins).
func (s *Service) Analytics(ctx context.Context, actor switchboard.Actor, measure string, q AnalyticsQuery) (Analytics, error) {
	out, err := s.AnalyticsGroups(ctx, actor, measure, q, q.Group)
	if err != nil {
		return Analytics{}, err
	}
	return out[0], nil
}

// AnalyticsGroups computes measure over q once for each of groups ("" is
// the measure's default), reading the data once (the dashboard shows
// several groupings of a measure).
func (s *Service) AnalyticsGroups(ctx context.Context, actor switchboard.Actor, measure string, q AnalyticsQuery, groups ...string) ([]Analytics, error) {
	if err := require(actor, switchboard.RoleSupervisor, "see analytics"); err != nil {
		return nil, err
	}
	if q.TZ == nil {
		q.TZ = time.UTC
	}
	if !q.To.After(q.From) {
		return nil, switchboard.Errorf(switchboard.EINVALID, "the range is empty: to must be after from")
	}
	if q.To.Sub(q.From) > 400*24*time.Hour {
		return nil, switchboard.Errorf(switchboard.EINVALID, "the range is longer than 400 days")
	}
	if len(groups) == 0 {
		groups = []string{""}
	}
	out := make([]Analytics, len(groups))
	for i := range out {
		out[i] = Analytics{Measure: measure, From: q.From.In(q.TZ).Format(time.RFC3339), To: q.To.In(q.TZ).Format(time.RFC3339), TZ: q.TZ.String(), Rows: []map[string]any{}}
	}
	var allowed []string
	switch measure {
	case "first_response":
		allowed = []string{"channel", "hour", "channel_hour"}
	case "resolution":
		allowed = []string{"topic", "channel"}
	case "utilization":
		allowed = []string{"agent", "team"}
	case "channel_migration":
		for _, g := range groups {
			if g != "" {
				return nil, switchboard.Errorf(switchboard.EINVALID, "channel_migration takes no group")
			}
		}
	case "csat":
		allowed = []string{"channel"}
	case "email_health":
		allowed = []string{"week"}
	default:
		return nil, switchboard.Errorf(switchboard.ENOTFOUND, "no measure %q; the measures are %v", measure, Measures)
	}
	if allowed != nil {
		for i, g := range groups {
			var err error
			if groups[i], err = checkGroup(g, allowed...); err != nil {
				return nil, err
			}
		}
	}
	var err error
	switch measure {
	case "first_response":
		err = s.firstResponse(ctx, q, groups, out)
	case "resolution":
		err = s.resolution(ctx, q, groups, out)
	case "channel_migration":
		err = s.migration(ctx, q, out)
	case "utilization":
		err = s.utilization(ctx, q, groups, out)
	case "csat":
		err = s.csat(ctx, q, out)
	case "email_health":
		err = s.emailHealth(ctx, q, out)
	}
	return out, err
}

func checkGroup(group string, allowed ...string) (string, error) {
	if group == "" {
		return allowed[0], nil
	}
	if !slices.Contains(allowed, group) {
		return "", switchboard.Errorf(switchboard.EINVALID, "group %q: want one of %v", group, allowed)
	}
	return group, nil
}

// rank is the 0-based nearest rank of the p-th percentile of n values:
// ⌈p/100 · n⌉.
func rank(p float64, n int) int {
	return max(0, min(int(math.Ceil(p/100*float64(n)))-1, n-1))
}

func seconds(d time.Duration) float64 { return d.Seconds() }

func micro(us int64) time.Duration { return time.Duration(us) * time.Microsecond }

// dist is the durations (µs) of one row of a measure.
type dist struct {
	durations []int64
	within    int
}

// slots groups durations by a row's number (a channel's name id, an
// hour, ...).
type slots map[int]*dist

func (ss slots) add(slot int, d int64, within bool) {
	s := ss[slot]
	if s == nil {
		s = &dist{}
		ss[slot] = s
	}
	s.durations = append(s.durations, d)
	if within {
		s.within++
	}
}

// rows are the measure's rows, ordered by key: for each slot its fields
// and the key it sorts by.
func (ss slots) rows(withTarget bool, key func(slot int) (string, map[string]any)) []map[string]any {
	type keyed struct {
		key string
		row map[string]any
	}
	out := make([]keyed, 0, len(ss))
	for slot, s := range ss {
		n := len(s.durations)
		i95, i50 := rank(95, n), rank(50, n)
		p95 := nth(s.durations, i95)
		p50 := nth(s.durations[:i95+1], i50)
		k, row := key(slot)
		row["count"], row["p50"], row["p95"] = n, seconds(micro(p50)), seconds(micro(p95))
		if withTarget {
			row["within_target"] = float64(s.within) / float64(n)
		}
		out = append(out, keyed{k, row})
	}
	slices.SortFunc(out, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
	rows := make([]map[string]any, len(out))
	for i, k := range out {
		rows[i] = k.row
	}
	return rows
}

// hourOf is the hour of day in a zone of times in µs, remembering the
// zone's offset for the quarter of an hour it last looked up (offsets
// change on quarter hours, and cycles come in time order).
type hourOf struct {
	tz      *time.Location
	quarter int64
	offset  int64
}

func newHourOf(tz *time.Location) *hourOf { return &hourOf{tz: tz, quarter: math.MinInt64} }

func (h *hourOf) at(us int64) int {
	const quarter, hour = int64(15 * time.Minute / time.Microsecond), int64(time.Hour / time.Microsecond)
	if q := us / quarter; q != h.quarter {
		_, off := time.UnixMicro(q * quarter).In(h.tz).Zone()
		h.quarter, h.offset = q, int64(off)*int64(time.Second/time.Microsecond)
	}
	return int((us + h.offset) / hour % 24)
}

func (s *Service) firstResponse(ctx context.Context, q AnalyticsQuery, groups []string, out []Analytics) error {
	var hours *route.Schedule
	if q.BusinessHours {
		var err error
		if hours, err = s.defaultSchedule(ctx); err != nil {
			return err
		}
	}
	nm := &names{}
	keep, err := s.responderFilter(ctx, q, nm)
	if err != nil {
		return err
	}
	from, to := q.From.UnixMicro(), q.To.UnixMicro()
	var targets []int64 // by channel name id
	hourOf := newHourOf(q.TZ)
	ss := make([]slots, len(groups))
	for i := range ss {
		ss[i] = slots{}
	}
	visit := func(ch, responder, _ int, started, d int64) {
		if started < from || started >= to || !keep(responder) {
			return
		}
		if hours != nil {
			d = hours.OpenDuration(time.UnixMicro(started), time.UnixMicro(started+d)).Microseconds()
		}
		for len(targets) <= ch {
			target, ok := s.targets[switchboard.Channel(nm.list[len(targets)])]
			if !ok {
				target = time.Hour
			}
			targets = append(targets, target.Microseconds())
		}
		within := d <= targets[ch]
		hour := -1
		for i, g := range groups {
			if g != "channel" && hour < 0 {
				hour = hourOf.at(started)
			}
			switch g {
			case "channel":
				ss[i].add(ch, d, within)
			case "hour":
				ss[i].add(hour, d, within)
			default:
				ss[i].add(ch*24+hour, d, within)
			}
		}
	}
	err = s.rollupRange(ctx, store.RollupFirstResponse, q.From, q.To, false, s.buildCycles(true),
		func(day time.Time, data []byte) error { return decodeCycles(day.UnixMicro(), data, nm, false, visit) },
		func(from, to time.Time) error {
			return s.store.EachCycleStarted(ctx, from, to, true, func(c *store.CycleFact) {
				if e, ok := firstResponseOf(c); ok { // not answered (yet): no first response to time
					visit(nm.of(e.channel), nm.of(e.responder), -1, e.at, e.dur)
				}
			})
		})
	if err != nil {
		return err
	}
	for i, g := range groups {
		out[i].Rows = ss[i].rows(true, func(slot int) (string, map[string]any) {
			switch g {
			case "channel":
				return nm.list[slot], map[string]any{"channel": switchboard.Channel(nm.list[slot])}
			case "hour":
				return twoDigits(slot), map[string]any{"hour": slot}
			default:
				ch, hour := nm.list[slot/24], slot%24
				return ch + "/" + twoDigits(hour), map[string]any{"channel": switchboard.Channel(ch), "hour": hour}
			}
		})
		out[i].Columns = append(groupColumns(g), "count", "p50", "p95", "within_target")
	}
	return nil
}

// defaultSchedule is the default team's business hours, nil when it has
// none (always open).
func (s *Service) defaultSchedule(ctx context.Context) (*route.Schedule, error) {
	c, err := s.store.GetRoutingConfig(ctx)
	if err != nil {
		return nil, err
	}
	raw, ok := c.Teams[""]
	if !ok {
		return nil, nil
	}
	var tc route.TeamConfig
	if err := json.Unmarshal(raw, &tc); err != nil {
		return nil, fmt.Errorf("inbox: default team's configuration: %w", err)
	}
	return tc.Hours, nil
}

func twoDigits(n int) string { return string([]byte{byte('0' + n/10), byte('0' + n%10)}) }

func groupColumns(group string) []string {
	switch group {
	case "channel_hour":
		return []string{"channel", "hour"}
	default:
		return []string{group}
	}
}

func (s *Service) resolution(ctx context.Context, q AnalyticsQuery, groups []string, out []Analytics) error {
	nm := &names{}
	keep, err := s.responderFilter(ctx, q, nm)
	if err != nil {
		return err
	}
	from, to := q.From.UnixMicro(), q.To.UnixMicro()
	ss := make([]slots, len(groups))
	for i := range ss {
		ss[i] = slots{}
	}
	visit := func(ch, responder, topic int, resolved, d int64) {
		if resolved < from || resolved >= to || !keep(responder) {
			return
		}
		for i, g := range groups {
			if g == "channel" {
				ss[i].add(ch, d, false)
			} else {
				ss[i].add(topic, d, false)
			}
		}
	}
	err = s.rollupRange(ctx, store.RollupResolution, q.From, q.To, false, s.buildCycles(false),
		func(day time.Time, data []byte) error { return decodeCycles(day.UnixMicro(), data, nm, true, visit) },
		func(from, to time.Time) error {
			return s.store.EachCycleResolved(ctx, from, to, true, func(c *store.CycleFact) {
				e := resolutionOf(c)
				visit(nm.of(e.channel), nm.of(e.responder), nm.of(e.topic), e.at, e.dur)
			})
		})
	if err != nil {
		return err
	}
	for i, g := range groups {
		out[i].Rows = ss[i].rows(false, func(slot int) (string, map[string]any) {
			if g == "channel" {
				return nm.list[slot], map[string]any{"channel": switchboard.Channel(nm.list[slot])}
			}
			return nm.list[slot], map[string]any{"topic": nm.list[slot]}
		})
		out[i].Columns = []string{g, "count", "p50", "p95"}
	}
	return nil
}

// migration counts each conversation with a cycle started in the range
// once, at the first such cycle: the one whose previous cycle started
// before the range.
func (s *Service) migration(ctx context.Context, q AnalyticsQuery, out []Analytics) error {
	a := &out[0]
	nm := &names{}
	from, to := q.From.UnixMicro(), q.To.UnixMicro()
	counts := map[[2]int]int{}
	convs, multi := 0, 0
	visit := func(started, previous int64, mixed bool, pairs [][2]int) {
		if started < from || started >= to || previous >= from {
			return
		}
		convs++
		if mixed {
			multi++
		}
		for _, p := range pairs {
			counts[p]++
		}
	}
	err := s.rollupRange(ctx, store.RollupMigration, q.From, q.To, false, s.buildMigration,
		func(day time.Time, data []byte) error { return decodeMigration(day.UnixMicro(), data, nm, visit) },
		func(from, to time.Time) error {
			var pairs [][2]int
			return s.store.EachMigrationFact(ctx, from, to, func(f *store.MigrationFact) {
				e := migrationOf(f)
				pairs = pairs[:0]
				for _, p := range e.pairs {
					pairs = append(pairs, [2]int{nm.of(string(p[0])), nm.of(string(p[1]))})
				}
				previous := int64(0)
				if e.gap != 0 {
					previous = f.Previous
				}
				visit(f.Started, previous, e.multi, pairs)
			})
		})
	if err != nil {
		return err
	}
	share := 0.0
	if convs > 0 {
		share = float64(multi) / float64(convs)
	}
	a.Share = &share
	pairs := make([][2]int, 0, len(counts))
	for p := range counts {
		pairs = append(pairs, p)
	}
	slices.SortFunc(pairs, func(x, y [2]int) int {
		if c := strings.Compare(nm.list[x[0]], nm.list[y[0]]); c != 0 {
			return c
		}
		return strings.Compare(nm.list[x[1]], nm.list[y[1]])
	})
	for _, p := range pairs {
		a.Rows = append(a.Rows, map[string]any{"from_channel": switchboard.Channel(nm.list[p[0]]), "to_channel": switchboard.Channel(nm.list[p[1]]), "conversations": counts[p]})
	}
	a.Columns = []string{"from_channel", "to_channel", "conversations"}
	for i := 1; i < len(out); i++ {
		out[i] = *a
	}
	return nil
}

// span is a half-open time interval.
type span struct{ start, end time.Time }

// clip bounds intervals to [from, to), an open one ending at now.
func clip(ivs []store.Interval, from, to, now time.Time) map[string][]span {
	out := map[string][]span{}
	for _, iv := range ivs {
		end := iv.End
		if end.IsZero() {
			end = now
		}
		s, e := maxTime(iv.Start, from), minTime(end, to)
		if e.After(s) {
			out[iv.AgentID] = append(out[iv.AgentID], span{s, e})
		}
	}
	for k := range out {
		out[k] = union(out[k])
	}
	return out
}

// union merges overlapping spans, sorted by start.
func union(ss []span) []span {
	sort.Slice(ss, func(i, j int) bool { return ss[i].start.Before(ss[j].start) })
	var out []span
	for _, s := range ss {
		if n := len(out); n > 0 && !s.start.After(out[n-1].end) {
			out[n-1].end = maxTime(out[n-1].end, s.end)
			continue
		}
		out = append(out, s)
	}
	return out
}

// intersect is the spans two sorted unions share.
func intersect(a, b []span) []span {
	var out []span
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		s, e := maxTime(a[i].start, b[j].start), minTime(a[i].end, b[j].end)
		if e.After(s) {
			out = append(out, span{s, e})
		}
		if a[i].end.Before(b[j].end) {
			i++
		} else {
			j++
		}
	}
	return out
}

func total(ss []span) time.Duration {
	var t time.Duration
	for _, s := range ss {
		t += s.end.Sub(s.start)
	}
	return t
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// utilizationBand says where a utilisation stands against the 70-80%
// aim: "low" under 60%, "high" over 90%, "target" inside 70-80%.
func utilizationBand(u float64) string {
	switch {
	case u < 0.6:
		return "low"
	case u > 0.9:
		return "high"
	case u >= 0.7 && u <= 0.8:
		return "target"
	}
	return "near"
}

func (s *Service) utilization(ctx context.Context, q AnalyticsQuery, groups []string, out []Analytics) error {
	times := map[string]*agentTime{}
	nm := &names{}
	err := s.rollupRange(ctx, store.RollupUtilization, q.From, q.To, true, s.buildUtilization,
		func(_ time.Time, data []byte) error { return decodeUtilization(data, nm, times) },
		func(from, to time.Time) error {
			part, err := s.agentTimes(ctx, from, to, false)
			if err != nil {
				return err
			}
			for agent, t := range part[0] {
				if times[agent] == nil {
					times[agent] = &agentTime{}
				}
				times[agent].online += t.online
				times[agent].busy += t.busy
			}
			return nil
		})
	if err != nil {
		return err
	}
	agents, err := s.store.ListAgents(ctx)
	if err != nil {
		return err
	}
	for i, group := range groups {
		by := map[string]*agentTime{}
		var keys []string
		add := func(key string, t *agentTime) {
			if by[key] == nil {
				by[key] = &agentTime{}
				keys = append(keys, key)
			}
			by[key].online += t.online
			by[key].busy += t.busy
		}
		agentNames := map[string]string{}
		for _, ag := range agents {
			if (q.Agent != "" && ag.ID != q.Agent) || (q.Team != "" && !slices.Contains(ag.Teams, q.Team)) {
				continue
			}
			t := times[ag.ID]
			if t == nil || t.online == 0 {
				continue
			}
			if group == "agent" {
				agentNames[ag.ID] = ag.Name
				add(ag.ID, t)
				continue
			}
			teams := ag.Teams
			if len(teams) == 0 {
				teams = []string{""}
			}
			for _, team := range teams {
				add(team, t)
			}
		}
		sort.Strings(keys)
		a := &out[i]
		for _, k := range keys {
			sm := by[k]
			u := float64(sm.busy) / float64(sm.online)
			row := map[string]any{"online_seconds": seconds(sm.online), "busy_seconds": seconds(sm.busy), "utilization": u, "band": utilizationBand(u)}
			if group == "agent" {
				row["agent_id"], row["name"] = k, agentNames[k]
			} else {
				row["team"] = k
			}
			a.Rows = append(a.Rows, row)
		}
		if group == "agent" {
			a.Columns = []string{"agent_id", "name", "online_seconds", "busy_seconds", "utilization", "band"}
		} else {
			a.Columns = []string{"team", "online_seconds", "busy_seconds", "utilization", "band"}
		}
	}
	return nil
}

// emailHealth is, per week (from Monday in the query's zone), the e-mail
// sent, its permanent bounces and the addresses that opted out, with the
// two rates.
func (s *Service) emailHealth(ctx context.Context, q AnalyticsQuery, out []Analytics) error {
	type week struct{ sent, bounced, optOuts int }
	by := map[string]*week{}
	err := s.store.EachEmailActivity(ctx, q.From, q.To, func(kind string, at int64) {
		t := time.UnixMicro(at).In(q.TZ)
		y, m, d := t.Date()
		monday := time.Date(y, m, d-(int(t.Weekday())+6)%7, 0, 0, 0, 0, q.TZ).Format("2006-01-02")
		w := by[monday]
		if w == nil {
			w = &week{}
			by[monday] = w
		}
		switch kind {
		case store.EmailSent:
			w.sent++
		case store.EmailBounced:
			w.bounced++
		case store.EmailOptOut:
			w.optOuts++
		}
	})
	if err != nil {
		return err
	}
	weeks := make([]string, 0, len(by))
	for k := range by {
		weeks = append(weeks, k)
	}
	sort.Strings(weeks)
	rate := func(n, of int) float64 {
		if of == 0 {
			return 0
		}
		return float64(n) / float64(of)
	}
	for i := range out {
		for _, k := range weeks {
			w := by[k]
			out[i].Rows = append(out[i].Rows, map[string]any{"week": k, "sent": w.sent, "bounced": w.bounced, "bounce_rate": rate(w.bounced, w.sent),
				"opt_outs": w.optOuts, "opt_out_rate": rate(w.optOuts, w.sent)})
		}
		out[i].Columns = []string{"week", "sent", "bounced", "bounce_rate", "opt_outs", "opt_out_rate"}
	}
	return nil
}
