package inbox

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
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

// cycleFilter returns whether a cycle is kept by q's agent and team, and
// whether any is set (the responder must then be read).
func (s *Service) cycleFilter(ctx context.Context, q AnalyticsQuery) (func(c *store.CycleFact) bool, bool, error) {
	if q.Agent == "" && q.Team == "" {
		return func(*store.CycleFact) bool { return true }, false, nil
	}
	members := map[string]bool{}
	if q.Team != "" {
		agents, err := s.store.ListAgents(ctx)
		if err != nil {
			return nil, false, err
		}
		for _, a := range agents {
			if slices.Contains(a.Teams, q.Team) {
				members[a.ID] = true
			}
		}
	}
	return func(c *store.CycleFact) bool {
		return (q.Agent == "" || c.Responder == q.Agent) && (q.Team == "" || members[c.Responder])
	}, true, nil
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

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func seconds(d time.Duration) float64 { return d.Seconds() }

// sample is the durations of one row of a measure.
type sample struct {
	keys      map[string]any
	durations []time.Duration
	within    int
}

// samples groups durations by key, in first-seen order re-sorted by key.
type samples struct {
	order []string
	by    map[string]*sample
}

// add counts d under key; keys gives the row's key fields the first time.
func (ss *samples) add(key string, keys func() map[string]any, d time.Duration, within bool) {
	if ss.by == nil {
		ss.by = map[string]*sample{}
	}
	s, ok := ss.by[key]
	if !ok {
		s = &sample{keys: keys()}
		ss.by[key] = s
		ss.order = append(ss.order, key)
	}
	s.durations = append(s.durations, d)
	if within {
		s.within++
	}
}

func (ss *samples) rows(withTarget bool) []map[string]any {
	sort.Strings(ss.order)
	out := make([]map[string]any, 0, len(ss.order))
	for _, k := range ss.order {
		s := ss.by[k]
		slices.Sort(s.durations)
		row := map[string]any{"count": len(s.durations), "p50": seconds(percentile(s.durations, 50)), "p95": seconds(percentile(s.durations, 95))}
		if withTarget {
			row["within_target"] = float64(s.within) / float64(len(s.durations))
		}
		for k, v := range s.keys {
			row[k] = v
		}
		out = append(out, row)
	}
	return out
}

func (s *Service) firstResponse(ctx context.Context, q AnalyticsQuery, groups []string, out []Analytics) error {
	var hours *route.Schedule
	if q.BusinessHours {
		var err error
		if hours, err = s.defaultSchedule(ctx); err != nil {
			return err
		}
	}
	keep, responder, err := s.cycleFilter(ctx, q)
	if err != nil {
		return err
	}
	ss := make([]samples, len(groups))
	err = s.store.EachCycleStarted(ctx, q.From, q.To, responder, func(c *store.CycleFact) {
		if c.Responded == 0 || !keep(c) {
			return // not answered (yet): no first response to time
		}
		d := time.Duration(max(0, c.Responded-c.Started)) * time.Microsecond
		if hours != nil {
			d = hours.OpenDuration(time.UnixMicro(c.Started), time.UnixMicro(c.Responded))
		}
		target, ok := s.targets[c.Channel]
		if !ok {
			target = time.Hour
		}
		hour := -1
		ch := c.Channel
		for i, g := range groups {
			if g != "channel" && hour < 0 {
				hour = time.UnixMicro(c.Started).In(q.TZ).Hour()
			}
			switch g {
			case "channel":
				ss[i].add(string(ch), func() map[string]any { return map[string]any{"channel": ch} }, d, d <= target)
			case "hour":
				ss[i].add(twoDigits(hour), func() map[string]any { return map[string]any{"hour": hour} }, d, d <= target)
			default:
				ss[i].add(string(ch)+"/"+twoDigits(hour), func() map[string]any { return map[string]any{"channel": ch, "hour": hour} }, d, d <= target)
			}
		}
	})
	if err != nil {
		return err
	}
	for i, g := range groups {
		out[i].Rows = ss[i].rows(true)
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
	keep, responder, err := s.cycleFilter(ctx, q)
	if err != nil {
		return err
	}
	ss := make([]samples, len(groups))
	err = s.store.EachCycleResolved(ctx, q.From, q.To, responder, func(c *store.CycleFact) {
		if !keep(c) {
			return
		}
		d := time.Duration(max(0, c.Resolved-c.Started)) * time.Microsecond
		ch, topic := c.Channel, c.Topic
		for i, g := range groups {
			if g == "channel" {
				ss[i].add(string(ch), func() map[string]any { return map[string]any{"channel": ch} }, d, false)
			} else {
				ss[i].add(topic, func() map[string]any { return map[string]any{"topic": topic} }, d, false)
			}
		}
	})
	if err != nil {
		return err
	}
	for i, g := range groups {
		out[i].Rows = ss[i].rows(false)
		out[i].Columns = []string{g, "count", "p50", "p95"}
	}
	return nil
}

func (s *Service) migration(ctx context.Context, q AnalyticsQuery, out []Analytics) error {
	a := &out[0]
	convs, err := s.store.InboundChannels(ctx, q.From, q.To)
	if err != nil {
		return err
	}
	type pair struct{ from, to switchboard.Channel }
	counts := map[pair]int{}
	multi := 0
	for _, seq := range convs {
		seen := map[pair]bool{}
		distinct := map[switchboard.Channel]bool{}
		for i, ch := range seq {
			distinct[ch] = true
			if i > 0 {
				seen[pair{seq[i-1], ch}] = true
			}
		}
		if len(distinct) > 1 {
			multi++
		}
		for p := range seen {
			counts[p]++
		}
	}
	share := 0.0
	if len(convs) > 0 {
		share = float64(multi) / float64(len(convs))
	}
	a.Share = &share
	pairs := make([]pair, 0, len(counts))
	for p := range counts {
		pairs = append(pairs, p)
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].from != pairs[j].from {
			return pairs[i].from < pairs[j].from
		}
		return pairs[i].to < pairs[j].to
	})
	for _, p := range pairs {
		a.Rows = append(a.Rows, map[string]any{"from_channel": p.from, "to_channel": p.to, "conversations": counts[p]})
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

// overlap is the total time two sorted unions share.
func overlap(a, b []span) time.Duration {
	var total time.Duration
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		s, e := maxTime(a[i].start, b[j].start), minTime(a[i].end, b[j].end)
		if e.After(s) {
			total += e.Sub(s)
		}
		if a[i].end.Before(b[j].end) {
			i++
		} else {
			j++
		}
	}
	return total
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
	online, err := s.store.OnlineIntervals(ctx, q.From, q.To)
	if err != nil {
		return err
	}
	assigned, err := s.store.AssignmentIntervals(ctx, q.From, q.To)
	if err != nil {
		return err
	}
	agents, err := s.store.ListAgents(ctx)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	on, busy := clip(online, q.From, q.To, now), clip(assigned, q.From, q.To, now)
	type sums struct{ online, busy time.Duration }
	for i, group := range groups {
		by := map[string]*sums{}
		var keys []string
		add := func(key string, o, b time.Duration) {
			if by[key] == nil {
				by[key] = &sums{}
				keys = append(keys, key)
			}
			by[key].online += o
			by[key].busy += b
		}
		names := map[string]string{}
		for _, ag := range agents {
			if (q.Agent != "" && ag.ID != q.Agent) || (q.Team != "" && !slices.Contains(ag.Teams, q.Team)) {
				continue
			}
			o := total(on[ag.ID])
			if o == 0 {
				continue
			}
			b := overlap(on[ag.ID], busy[ag.ID])
			if group == "agent" {
				names[ag.ID] = ag.Name
				add(ag.ID, o, b)
				continue
			}
			teams := ag.Teams
			if len(teams) == 0 {
				teams = []string{""}
			}
			for _, t := range teams {
				add(t, o, b)
			}
		}
		sort.Strings(keys)
		a := &out[i]
		for _, k := range keys {
			sm := by[k]
			u := 0.0
			if sm.online > 0 {
				u = float64(sm.busy) / float64(sm.online)
			}
			row := map[string]any{"online_seconds": seconds(sm.online), "busy_seconds": seconds(sm.busy), "utilization": u, "band": utilizationBand(u)}
			if group == "agent" {
				row["agent_id"], row["name"] = k, names[k]
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
