package web

import (
	"net/url"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/inbox"
)

// ParseAnalyticsQuery reads tz, from, to (or range) and group. A date is
// the start of that day in tz for from, and the end of that day for to;
// an RFC 3339 time is taken as it is. Without from and to, range says
// which: today, week (since Monday), month, or the default last7 (the
// last seven days, today included).
func ParseAnalyticsQuery(v url.Values, now time.Time) (inbox.AnalyticsQuery, error) {
	q := inbox.AnalyticsQuery{TZ: time.UTC, Group: v.Get("group"), Agent: v.Get("agent"), Team: v.Get("team")}
	switch v.Get("business_hours") {
	case "", "false", "0":
	case "true", "1":
		q.BusinessHours = true
	default:
		return q, switchboard.Errorf(switchboard.EINVALID, "business_hours: want true or false")
	}
	if tz := v.Get("tz"); tz != "" {
		loc, err := time.LoadLocation(tz)
		if err != nil || tz == "Local" {
			return q, switchboard.Errorf(switchboard.EINVALID, "tz %q is not an IANA time zone", tz)
		}
		q.TZ = loc
	}
	day := func(t time.Time) time.Time {
		y, m, d := t.In(q.TZ).Date()
		return time.Date(y, m, d, 0, 0, 0, 0, q.TZ)
	}
	today := day(now)
	switch rng := v.Get("range"); rng {
	case "today":
		q.From, q.To = today, today.AddDate(0, 0, 1)
	case "week":
		back := (int(today.Weekday()) + 6) % 7 // days since Monday
		q.From, q.To = today.AddDate(0, 0, -back), today.AddDate(0, 0, 1)
	case "month":
		q.From, q.To = today.AddDate(0, 0, 1-today.Day()), today.AddDate(0, 0, 1)
	case "", "last7":
		q.From, q.To = today.AddDate(0, 0, -6), today.AddDate(0, 0, 1)
	default:
		return q, switchboard.Errorf(switchboard.EINVALID, "range %q: want today, week, month or last7", rng)
	}
	parse := func(name string, end bool) (time.Time, bool, error) {
		raw := v.Get(name)
		if raw == "" {
			return time.Time{}, false, nil
		}
		if t, err := time.ParseInLocation("2006-01-02", raw, q.TZ); err == nil {
			if end {
				t = t.AddDate(0, 0, 1)
			}
			return t, true, nil
		}
		t, err := time.Parse(time.RFC3339, raw)
		if err != nil {
			return time.Time{}, false, switchboard.Errorf(switchboard.EINVALID, "%s %q: want a date (2026-12-01) or an RFC 3339 time", name, raw)
		}
		return t, true, nil
	}
	from, okFrom, err := parse("from", false)
	if err != nil {
		return q, err
	}
	to, okTo, err := parse("to", true)
	if err != nil {
		return q, err
	}
	if okFrom {
		q.From = from
	}
	if okTo {
		q.To = to
	}
	return q, nil
}
