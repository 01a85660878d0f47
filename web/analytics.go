package web

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/inbox"
)

// The analytics dashboard (supervisors and admins): the measures of
// docs/metrics.md over a chosen range, in the viewer's time zone, each
// also a CSV download from the API. It refreshes itself while open.

// dashboard is the dashboard's data.
type dashboard struct {
	Range, From, To, TZ string // the query, as the form shows it
	Team, Agent         string
	BusinessHours       bool
	Span                string // the range in words
	Query               string // the query string the CSV links and refresh carry
	FRT                 inbox.Analytics
	Heat                heatmap
	ResTopic, ResChan   inbox.Analytics
	Migration           inbox.Analytics
	UtilAgent, UtilTeam inbox.Analytics
	CSAT                inbox.Analytics
	Email               inbox.Analytics
	Ranges              []string
}

// heatmap is first response p50 by channel and hour of day, drawn as SVG.
type heatmap struct {
	Width, Height int
	Rows          []heatRow
	Hours         []heatHour
}

type heatRow struct {
	Y       int
	LabelY  int
	Channel string
	Cells   []heatCell
}

type heatHour struct {
	X     int
	Label string
}

type heatCell struct {
	X, Y  int
	Fill  string
	Title string
}

const (
	heatLeft = 90 // room for the channel names
	heatTop  = 20 // room for the hours
	heatSize = 26
)

func (p *Pages) analyticsPage(w http.ResponseWriter, r *http.Request, req Request) error {
	d, err := p.dashboardData(r.Context(), req, r.URL.Query())
	if err != nil {
		return err
	}
	if r.URL.Query().Get("fragment") == "1" {
		return p.renderFragment(w, "analytics", "analytics-body", d)
	}
	pg, err := p.page(r.Context(), req, "Analytics", "analytics", d)
	if err != nil {
		return err
	}
	return p.render(w, http.StatusOK, "analytics", pg)
}

func (p *Pages) dashboardData(ctx context.Context, req Request, v url.Values) (*dashboard, error) {
	q, err := ParseAnalyticsQuery(v, p.Clock.Now())
	if err != nil {
		return nil, err
	}
	d := &dashboard{Range: v.Get("range"), From: v.Get("from"), To: v.Get("to"), TZ: q.TZ.String(), Team: q.Team, Agent: q.Agent,
		BusinessHours: q.BusinessHours, Ranges: []string{"today", "week", "month", "last7"}}
	if d.Range == "" && d.From == "" && d.To == "" {
		d.Range = "last7"
	}
	keep := url.Values{}
	for _, k := range []string{"range", "from", "to", "tz", "team", "agent", "business_hours"} {
		if x := v.Get(k); x != "" {
			keep.Set(k, x)
		}
	}
	d.Query = keep.Encode()
	last := q.To.Add(-time.Nanosecond).In(q.TZ)
	d.Span = q.From.In(q.TZ).Format("Mon 2 Jan 2006 15:04") + " to " + last.Format("Mon 2 Jan 2006 15:04") + " (" + q.TZ.String() + ")"
	get := func(measure string, groups ...string) ([]inbox.Analytics, error) {
		return p.Inbox.AnalyticsGroups(ctx, req.Actor, measure, q, groups...)
	}
	frt, err := get("first_response", "channel", "channel_hour")
	if err != nil {
		return nil, err
	}
	d.FRT, d.Heat = frt[0], newHeatmap(frt[1])
	res, err := get("resolution", "topic", "channel")
	if err != nil {
		return nil, err
	}
	d.ResTopic, d.ResChan = res[0], res[1]
	mig, err := get("channel_migration")
	if err != nil {
		return nil, err
	}
	d.Migration = mig[0]
	util, err := get("utilization", "agent", "team")
	if err != nil {
		return nil, err
	}
	d.UtilAgent, d.UtilTeam = util[0], util[1]
	csat, err := get("csat", "channel")
	if err != nil {
		return nil, err
	}
	d.CSAT = csat[0]
	email, err := get("email_health", "week")
	if err != nil {
		return nil, err
	}
	d.Email = email[0]
	return d, nil
}

// newHeatmap lays out the channel × hour grid: the darker a cell, the
// slower the median first response, on a logarithmic scale from a
// minute to a day.
func newHeatmap(a inbox.Analytics) heatmap {
	byChannel := map[string]map[int]map[string]any{}
	for _, r := range a.Rows {
		ch := fmt.Sprint(r["channel"])
		if byChannel[ch] == nil {
			byChannel[ch] = map[int]map[string]any{}
		}
		byChannel[ch][r["hour"].(int)] = r
	}
	var channels []string
	for ch := range byChannel {
		channels = append(channels, ch)
	}
	sort.Strings(channels)
	h := heatmap{Width: heatLeft + 24*heatSize + 4, Height: heatTop + len(channels)*heatSize + 4}
	for hr := 0; hr < 24; hr += 3 {
		h.Hours = append(h.Hours, heatHour{X: heatLeft + hr*heatSize + 2, Label: fmt.Sprintf("%02d", hr)})
	}
	for i, ch := range channels {
		row := heatRow{Y: heatTop + i*heatSize, LabelY: heatTop + i*heatSize + 17, Channel: channelNames[switchboard.Channel(ch)]}
		if row.Channel == "" {
			row.Channel = ch
		}
		for hr := range 24 {
			c := heatCell{X: heatLeft + hr*heatSize, Y: row.Y, Fill: "#eef1f5", Title: fmt.Sprintf("%s, %02d:00: no responses", row.Channel, hr)}
			if r, ok := byChannel[ch][hr]; ok {
				p50 := time.Duration(r["p50"].(float64) * float64(time.Second))
				c.Fill = heatColor(p50)
				c.Title = fmt.Sprintf("%s, %02d:00: %d responses, median %s, p95 %s", row.Channel, hr, r["count"],
					humanDuration(p50), humanDuration(time.Duration(r["p95"].(float64)*float64(time.Second))))
			}
			row.Cells = append(row.Cells, c)
		}
		h.Rows = append(h.Rows, row)
	}
	return h
}

// heatColor goes from pale blue (a minute or less) to deep red (a day or
// more).
func heatColor(d time.Duration) string {
	x := (math.Log10(max(d.Seconds(), 60)) - math.Log10(60)) / (math.Log10(86400) - math.Log10(60))
	x = min(1, max(0, x))
	from, to := [3]float64{198, 225, 245}, [3]float64{180, 30, 40}
	var c [3]int
	for i := range c {
		c[i] = int(from[i] + (to[i]-from[i])*x)
	}
	return fmt.Sprintf("#%02x%02x%02x", c[0], c[1], c[2])
}
