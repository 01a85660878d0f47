package route

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

// Schedule is a team's business hours: for each weekday, intervals of wall
// time in one time zone, and holidays on which the team is closed.
//
// Everything is wall time in the schedule's zone, so "09:00" stays 09:00
// across daylight-saving changes: an interval that spans the skipped hour
// is an hour shorter that day, one that spans the repeated hour an hour
// longer, and a wall time that happens twice is open both times.
//
// An interval whose end is not after its start runs overnight: ["22:00",
// "02:00"] on Monday is open from Monday 22:00 to Tuesday 02:00. An
// interval belongs to the day it starts: a holiday closes the intervals
// that start on it, including their after-midnight part, and leaves the
// tail of the previous evening's interval open.
type Schedule struct {
	loc      *time.Location
	week     [7][]span          // by time.Weekday
	holidays map[civilDate]bool //
	list     []civilDate        // holidays, sorted, for MarshalJSON
}

// span is one interval, in seconds since local midnight; end may be
// 24*3600, and end <= start means the span runs overnight.
type span struct{ start, end int }

func (p span) overnight() bool { return p.end <= p.start }

type civilDate struct {
	y int
	m time.Month
	d int
}

func dateOf(t time.Time) civilDate {
	y, m, d := t.Date()
	return civilDate{y, m, d}
}

func (c civilDate) String() string { return fmt.Sprintf("%04d-%02d-%02d", c.y, c.m, c.d) }

var dayKeys = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// scheduleJSON is the stored form.
type scheduleJSON struct {
	TZ       string                 `json:"tz"`
	Week     map[string][][2]string `json:"week"`
	Holidays []string               `json:"holidays,omitempty"`
}

// ParseSchedule reads a schedule:
//
//	{"tz": "Europe/Paris",
//	 "week": {"mon": [["09:00", "17:30"]], "sat": [["22:00", "02:00"]]},
//	 "holidays": ["2026-12-25"]}
//
// Times are "HH:MM" from "00:00" to "24:00"; errors are EINVALID and name
// the offending field.
func ParseSchedule(b []byte) (*Schedule, error) {
	var s Schedule
	if err := s.UnmarshalJSON(b); err != nil {
		return nil, err
	}
	return &s, nil
}

// UnmarshalJSON implements json.Unmarshaler; see ParseSchedule.
func (s *Schedule) UnmarshalJSON(b []byte) error {
	var in scheduleJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return switchboard.Errorf(switchboard.EINVALID, "route: schedule: %v", err)
	}
	if in.TZ == "" {
		return switchboard.Errorf(switchboard.EINVALID, "route: schedule: tz is required (e.g. \"Europe/Paris\")")
	}
	loc, err := time.LoadLocation(in.TZ)
	if err != nil {
		return switchboard.Errorf(switchboard.EINVALID, "route: schedule: tz %q: %v", in.TZ, err)
	}
	out := Schedule{loc: loc, holidays: make(map[civilDate]bool, len(in.Holidays))}
	for key, ivs := range in.Week {
		day := slices.Index(dayKeys[:], strings.ToLower(key))
		if day < 0 {
			return switchboard.Errorf(switchboard.EINVALID, "route: schedule: week: unknown day %q (want mon, tue, wed, thu, fri, sat or sun)", key)
		}
		for _, iv := range ivs {
			start, err := parseClock(iv[0], false)
			if err != nil {
				return switchboard.Errorf(switchboard.EINVALID, "route: schedule: %s: start: %v", key, err)
			}
			end, err := parseClock(iv[1], true)
			if err != nil {
				return switchboard.Errorf(switchboard.EINVALID, "route: schedule: %s: end: %v", key, err)
			}
			if start == end {
				return switchboard.Errorf(switchboard.EINVALID, "route: schedule: %s: interval [%s, %s] is empty (use [\"00:00\", \"24:00\"] for all day)", key, iv[0], iv[1])
			}
			out.week[day] = append(out.week[day], span{start, end})
		}
		slices.SortFunc(out.week[day], func(a, b span) int { return a.start - b.start })
	}
	for _, h := range in.Holidays {
		t, err := time.Parse(time.DateOnly, h)
		if err != nil {
			return switchboard.Errorf(switchboard.EINVALID, "route: schedule: holiday %q: want YYYY-MM-DD", h)
		}
		c := dateOf(t)
		if !out.holidays[c] {
			out.holidays[c] = true
			out.list = append(out.list, c)
		}
	}
	slices.SortFunc(out.list, func(a, b civilDate) int { return strings.Compare(a.String(), b.String()) })
	*s = out
	return nil
}

// parseClock reads "HH:MM" into seconds since midnight; "24:00" only as
// an end.
func parseClock(v string, end bool) (int, error) {
	h, m, ok := strings.Cut(v, ":")
	if !ok || len(h) != 2 || len(m) != 2 {
		return 0, fmt.Errorf("%q: want HH:MM", v)
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("%q: want HH:MM between 00:00 and 24:00", v)
	}
	if hh == 24 && !end {
		return 0, fmt.Errorf("%q: 24:00 is only allowed as an end", v)
	}
	return hh*3600 + mm*60, nil
}

func formatClock(sec int) string { return fmt.Sprintf("%02d:%02d", sec/3600, sec%3600/60) }

// MarshalJSON implements json.Marshaler, in the form ParseSchedule reads.
func (s *Schedule) MarshalJSON() ([]byte, error) {
	out := scheduleJSON{TZ: s.Location().String(), Week: map[string][][2]string{}}
	for day, spans := range s.week {
		for _, p := range spans {
			out.Week[dayKeys[day]] = append(out.Week[dayKeys[day]], [2]string{formatClock(p.start), formatClock(p.end)})
		}
	}
	for _, c := range s.list {
		out.Holidays = append(out.Holidays, c.String())
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("route: schedule: %w", err)
	}
	return b, nil
}

// Location returns the schedule's time zone (UTC for a zero Schedule).
func (s *Schedule) Location() *time.Location {
	if s == nil || s.loc == nil {
		return time.UTC
	}
	return s.loc
}

// Open reports whether the team is open at t.
func (s *Schedule) Open(t time.Time) bool {
	lt := t.In(s.Location())
	h, m, sec := lt.Clock()
	now := h*3600 + m*60 + sec
	today := dateOf(lt)
	if !s.holidays[today] {
		for _, p := range s.week[lt.Weekday()] {
			if now >= p.start && (p.overnight() || now < p.end) {
				return true
			}
		}
	}
	// Yesterday's overnight spans run on into today.
	y := lt.AddDate(0, 0, -1)
	if !s.holidays[dateOf(y)] {
		for _, p := range s.week[y.Weekday()] {
			if p.overnight() && now < p.end {
				return true
			}
		}
	}
	return false
}

// maxSearchDays bounds NextOpen: a schedule closed for longer than this
// (or with no intervals) never opens.
const maxSearchDays = 400

// NextOpen returns the first instant at or after t when the team is open:
// t itself if open now, the zero time if it does not open within
// maxSearchDays.
func (s *Schedule) NextOpen(t time.Time) time.Time {
	if s.Open(t) {
		return t
	}
	empty := true
	for _, d := range s.week {
		empty = empty && len(d) == 0
	}
	if empty {
		return time.Time{}
	}
	loc := s.Location()
	lt := t.In(loc)
	y, m, d := lt.Date()
	for i := 0; i <= maxSearchDays; i++ {
		day := time.Date(y, m, d+i, 12, 0, 0, 0, loc) // noon: never in a DST gap
		if s.holidays[dateOf(day)] {
			continue
		}
		var best time.Time
		for _, p := range s.week[day.Weekday()] {
			cs, n := startInstants(day, p.start)
			for _, c := range cs[:n] {
				// Open(c) rules out a span lying wholly in a skipped hour.
				if c.After(t) && (best.IsZero() || c.Before(best)) && s.Open(c) {
					best = c
				}
			}
		}
		// When clocks go back, the wall time can re-enter a span at the
		// transition (the tail of an overnight span, say).
		zs, ze := day.ZoneBounds()
		for _, tr := range [2]time.Time{zs, ze} {
			if !tr.IsZero() && tr.After(t) && dateOf(tr.In(loc)) == dateOf(day) && (best.IsZero() || tr.Before(best)) && s.Open(tr) {
				best = tr
			}
		}
		if !best.IsZero() {
			return best
		}
	}
	return time.Time{}
}

// startInstants returns the instants at which the wall clock of day's date
// reaches sec: usually one; two when that wall time happens twice (the
// repeated hour when clocks go back); the transition itself when it falls
// in the skipped hour, since that is when the span really opens.
func startInstants(day time.Time, sec int) ([2]time.Time, int) {
	loc := day.Location()
	y, m, d := day.Date()
	c := time.Date(y, m, d, 0, 0, sec, 0, loc)
	if h, mi, s := c.Clock(); h*3600+mi*60+s != sec {
		// A DST gap: time.Date normalised the wall time to one side of
		// it; the span opens at the transition.
		start, end := c.ZoneBounds()
		if h*3600+mi*60+s > sec {
			return [2]time.Time{start}, 1
		}
		return [2]time.Time{end}, 1
	}
	// When clocks go back the wall time happens twice, and time.Date
	// picks one of the two: look for the other in the neighbouring zones.
	start, end := c.ZoneBounds()
	_, off := c.Zone()
	if !start.IsZero() {
		if _, prev := start.Add(-time.Second).Zone(); prev > off {
			if c1 := c.Add(-time.Duration(prev-off) * time.Second); sameWall(c1, c) {
				return [2]time.Time{c1, c}, 2
			}
		}
	}
	if !end.IsZero() {
		if _, next := end.Zone(); next < off {
			if c2 := c.Add(time.Duration(off-next) * time.Second); sameWall(c2, c) {
				return [2]time.Time{c, c2}, 2
			}
		}
	}
	return [2]time.Time{c}, 1
}

func sameWall(a, b time.Time) bool {
	return a.Hour() == b.Hour() && a.Minute() == b.Minute() && a.Second() == b.Second() && dateOf(a) == dateOf(b)
}

// OpenDuration returns how long the team is open in [from, to): the
// business time between two instants, holidays and daylight-saving days
// included.
func (s *Schedule) OpenDuration(from, to time.Time) time.Duration {
	if s == nil || !to.After(from) {
		return 0
	}
	loc := s.Location()
	type iv struct{ a, b time.Time }
	var spans []iv
	lf := from.In(loc)
	y, m, d := lf.Date()
	// From the day before (its overnight spans run into from's day) to
	// the day of to.
	for day := time.Date(y, m, d-1, 0, 0, 0, 0, loc); !day.After(to); day = time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, loc) {
		if s.holidays[dateOf(day)] {
			continue
		}
		for _, p := range s.week[day.Weekday()] {
			a := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, p.start, 0, loc)
			end := p.end
			if p.overnight() {
				end += 24 * 3600
			}
			b := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, end, 0, loc)
			if a.Before(from) {
				a = from
			}
			if b.After(to) {
				b = to
			}
			if b.After(a) {
				spans = append(spans, iv{a, b})
			}
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].a.Before(spans[j].a) })
	var total time.Duration
	var cur iv
	for i, sp := range spans {
		switch {
		case i == 0:
			cur = sp
		case !sp.a.After(cur.b):
			if sp.b.After(cur.b) {
				cur.b = sp.b
			}
		default:
			total += cur.b.Sub(cur.a)
			cur = sp
		}
	}
	if len(spans) > 0 {
		total += cur.b.Sub(cur.a)
	}
	return total
}
