package route_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/route"
)

func mustSchedule(tb testing.TB, js string) *route.Schedule {
	tb.Helper()
	s, err := route.ParseSchedule([]byte(js))
	if err != nil {
		tb.Fatalf("ParseSchedule(%s): %v", js, err)
	}
	return s
}

func utc(tb testing.TB, v string) time.Time {
	tb.Helper()
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

const officeParis = `{"tz":"Europe/Paris","week":{"mon":[["09:00","17:30"]],"tue":[["09:00","17:30"]],"wed":[["09:00","17:30"]],"thu":[["09:00","17:30"]],"fri":[["09:00","17:30"]]},"holidays":["2026-12-25"]}`

// TestScheduleOpenAndNext checks Open and NextOpen at instants written in
// UTC, so that every expectation is unambiguous across DST changes.
func TestScheduleOpenAndNext(t *testing.T) {
	tests := []struct {
		name     string
		schedule string
		at       string
		open     bool
		next     string // "" = never; equals at when open
	}{
		{"weekday morning Paris (CEST)", officeParis, "2026-06-15T07:00:00Z", true, "2026-06-15T07:00:00Z"},
		{"one second before opening", officeParis, "2026-06-15T06:59:59Z", false, "2026-06-15T07:00:00Z"},
		{"closing time is closed", officeParis, "2026-06-15T15:30:00Z", false, "2026-06-16T07:00:00Z"},
		{"22:00 Paris is closed, opens next morning", officeParis, "2026-06-15T20:00:00Z", false, "2026-06-16T07:00:00Z"},
		{"Saturday: opens Monday", officeParis, "2026-06-13T10:00:00Z", false, "2026-06-15T07:00:00Z"},
		// Weekend of the spring change: Friday 09:00 is 08:00Z (CET),
		// Monday 09:00 is 07:00Z (CEST).
		{"Paris spring weekend", officeParis, "2026-03-28T12:00:00Z", false, "2026-03-30T07:00:00Z"},
		{"Paris Friday before spring change", officeParis, "2026-03-27T08:00:00Z", true, "2026-03-27T08:00:00Z"},
		{"Paris Friday 07:30Z is 08:30 CET", officeParis, "2026-03-27T07:30:00Z", false, "2026-03-27T08:00:00Z"},
		{"Paris autumn weekend", officeParis, "2026-10-23T16:00:00Z", false, "2026-10-26T08:00:00Z"},
		{"Paris Monday after autumn change", officeParis, "2026-10-26T08:00:00Z", true, "2026-10-26T08:00:00Z"},
		{"Paris Monday 07:30Z is 08:30 CET", officeParis, "2026-10-26T07:30:00Z", false, "2026-10-26T08:00:00Z"},
		{"holiday closes the day", officeParis, "2026-12-25T09:00:00Z", false, "2026-12-28T08:00:00Z"},
		{"day before holiday open", officeParis, "2026-12-24T09:00:00Z", true, "2026-12-24T09:00:00Z"},

		// Paris, 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00Z.
		{"span into skipped hour, before", `{"tz":"Europe/Paris","week":{"sun":[["01:30","02:30"]]}}`, "2026-03-29T00:45:00Z", true, "2026-03-29T00:45:00Z"},
		{"span into skipped hour, after the jump", `{"tz":"Europe/Paris","week":{"sun":[["01:30","02:30"]]}}`, "2026-03-29T01:00:00Z", false, "2026-04-04T23:30:00Z"},
		{"span starting in skipped hour opens at the jump", `{"tz":"Europe/Paris","week":{"sun":[["02:15","05:00"]]}}`, "2026-03-29T00:00:00Z", false, "2026-03-29T01:00:00Z"},
		{"span starting in skipped hour, wall 01:59", `{"tz":"Europe/Paris","week":{"sun":[["02:15","05:00"]]}}`, "2026-03-29T00:59:59Z", false, "2026-03-29T01:00:00Z"},
		{"span starting in skipped hour, wall 03:30", `{"tz":"Europe/Paris","week":{"sun":[["02:15","05:00"]]}}`, "2026-03-29T01:30:00Z", true, "2026-03-29T01:30:00Z"},
		{"span wholly in skipped hour does not happen", `{"tz":"Europe/Paris","week":{"sun":[["02:15","02:45"]]}}`, "2026-03-29T00:00:00Z", false, "2026-04-05T00:15:00Z"},
		{"span across skipped hour is shorter", `{"tz":"Europe/Paris","week":{"sun":[["01:00","04:00"]]}}`, "2026-03-29T02:00:00Z", false, "2026-04-04T23:00:00Z"},
		// Paris, 2026-10-25: 03:00 CEST goes back to 02:00 CET at 01:00Z;
		// 02:15-02:45 happens twice.
		{"repeated hour, first pass", `{"tz":"Europe/Paris","week":{"sun":[["02:15","02:45"]]}}`, "2026-10-25T00:30:00Z", true, "2026-10-25T00:30:00Z"},
		{"repeated hour, between passes", `{"tz":"Europe/Paris","week":{"sun":[["02:15","02:45"]]}}`, "2026-10-25T00:50:00Z", false, "2026-10-25T01:15:00Z"},
		{"repeated hour, before both", `{"tz":"Europe/Paris","week":{"sun":[["02:15","02:45"]]}}`, "2026-10-24T12:00:00Z", false, "2026-10-25T00:15:00Z"},
		{"repeated hour, second pass", `{"tz":"Europe/Paris","week":{"sun":[["02:15","02:45"]]}}`, "2026-10-25T01:30:00Z", true, "2026-10-25T01:30:00Z"},
		{"span across repeated hour is longer", `{"tz":"Europe/Paris","week":{"sun":[["01:00","04:00"]]}}`, "2026-10-25T02:30:00Z", true, "2026-10-25T02:30:00Z"},
		{"span across repeated hour ends 04:00 CET", `{"tz":"Europe/Paris","week":{"sun":[["01:00","04:00"]]}}`, "2026-10-25T03:00:00Z", false, "2026-11-01T00:00:00Z"},

		// New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT at 07:00Z.
		{"NY span across skipped hour, wall 01:59", `{"tz":"America/New_York","week":{"sun":[["01:00","03:30"]]}}`, "2026-03-08T06:59:00Z", true, "2026-03-08T06:59:00Z"},
		{"NY span across skipped hour, wall 03:15", `{"tz":"America/New_York","week":{"sun":[["01:00","03:30"]]}}`, "2026-03-08T07:15:00Z", true, "2026-03-08T07:15:00Z"},
		{"NY span across skipped hour, wall 03:30", `{"tz":"America/New_York","week":{"sun":[["01:00","03:30"]]}}`, "2026-03-08T07:30:00Z", false, "2026-03-15T05:00:00Z"},
		{"NY overnight across spring change, last minute", `{"tz":"America/New_York","week":{"sat":[["22:00","06:00"]]}}`, "2026-03-08T09:59:00Z", true, "2026-03-08T09:59:00Z"},
		{"NY overnight across spring change, end", `{"tz":"America/New_York","week":{"sat":[["22:00","06:00"]]}}`, "2026-03-08T10:00:00Z", false, "2026-03-15T02:00:00Z"},
		{"NY overnight starts at 22:00 EST", `{"tz":"America/New_York","week":{"sat":[["22:00","06:00"]]}}`, "2026-03-07T12:00:00Z", false, "2026-03-08T03:00:00Z"},
		// New York, 2026-11-01: 02:00 EDT goes back to 01:00 EST at 06:00Z.
		{"NY repeated hour, between passes", `{"tz":"America/New_York","week":{"sun":[["01:30","01:45"]]}}`, "2026-11-01T05:50:00Z", false, "2026-11-01T06:30:00Z"},
		{"NY repeated hour, first pass", `{"tz":"America/New_York","week":{"sun":[["01:30","01:45"]]}}`, "2026-11-01T05:40:00Z", true, "2026-11-01T05:40:00Z"},
		{"NY overnight across autumn change, last minute", `{"tz":"America/New_York","week":{"sat":[["22:00","06:00"]]}}`, "2026-11-01T10:59:00Z", true, "2026-11-01T10:59:00Z"},
		{"NY overnight across autumn change, end", `{"tz":"America/New_York","week":{"sat":[["22:00","06:00"]]}}`, "2026-11-01T11:00:00Z", false, "2026-11-08T03:00:00Z"},

		// Overnight spans belong to the day they start.
		{"overnight before midnight", `{"tz":"UTC","week":{"thu":[["22:00","02:00"]]}}`, "2026-06-18T23:00:00Z", true, "2026-06-18T23:00:00Z"},
		{"overnight after midnight", `{"tz":"UTC","week":{"thu":[["22:00","02:00"]]}}`, "2026-06-19T01:59:59Z", true, "2026-06-19T01:59:59Z"},
		{"overnight end", `{"tz":"UTC","week":{"thu":[["22:00","02:00"]]}}`, "2026-06-19T02:00:00Z", false, "2026-06-25T22:00:00Z"},
		{"overnight on a holiday: closed before midnight", `{"tz":"UTC","week":{"thu":[["22:00","02:00"]]},"holidays":["2026-12-24"]}`, "2026-12-24T23:00:00Z", false, "2026-12-31T22:00:00Z"},
		{"overnight on a holiday: closed after midnight", `{"tz":"UTC","week":{"thu":[["22:00","02:00"]]},"holidays":["2026-12-24"]}`, "2026-12-25T01:00:00Z", false, "2026-12-31T22:00:00Z"},
		{"overnight into a holiday: tail stays open", `{"tz":"UTC","week":{"thu":[["22:00","02:00"]]},"holidays":["2026-12-25"]}`, "2026-12-25T01:00:00Z", true, "2026-12-25T01:00:00Z"},
		{"24:00 end then 00:00 start", `{"tz":"UTC","week":{"mon":[["18:00","24:00"]],"tue":[["00:00","02:00"]]}}`, "2026-06-15T23:59:59Z", true, "2026-06-15T23:59:59Z"},
		{"24:00 end then 00:00 start, midnight", `{"tz":"UTC","week":{"mon":[["18:00","24:00"]],"tue":[["00:00","02:00"]]}}`, "2026-06-16T00:00:00Z", true, "2026-06-16T00:00:00Z"},
		{"empty week never opens", `{"tz":"UTC","week":{}}`, "2026-06-16T00:00:00Z", false, ""},
		{"holiday Monday: next week", `{"tz":"UTC","week":{"mon":[["09:00","10:00"]]},"holidays":["2026-06-15"]}`, "2026-06-15T12:00:00Z", false, "2026-06-22T09:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustSchedule(t, tt.schedule)
			at := utc(t, tt.at)
			if got := s.Open(at); got != tt.open {
				t.Errorf("Open(%s) = %v, want %v", at.In(s.Location()), got, tt.open)
			}
			var want time.Time
			if tt.next != "" {
				want = utc(t, tt.next)
			}
			if got := s.NextOpen(at); !got.Equal(want) {
				t.Errorf("NextOpen(%s) = %s, want %s", at.In(s.Location()), got.In(s.Location()), want.In(s.Location()))
			}
			if got := s.NextOpen(at); !got.IsZero() && !s.Open(got) {
				t.Errorf("NextOpen(%s) = %s, which is not open", at, got)
			}
		})
	}
}

// TestNextOpenIsFirstOpening walks a day of every DST change minute by
// minute and checks NextOpen against the brute-force answer.
func TestNextOpenIsFirstOpening(t *testing.T) {
	schedules := []string{
		`{"tz":"Europe/Paris","week":{"sun":[["01:30","02:30"],["02:45","03:10"]],"sat":[["23:00","02:15"]]}}`,
		`{"tz":"America/New_York","week":{"sun":[["01:15","01:20"],["02:30","03:05"]],"sat":[["22:00","01:10"]]}}`,
		`{"tz":"Europe/Paris","week":{"sun":[["02:10","02:20"],["02:40","02:50"]],"sat":[["23:30","02:05"]]}}`,
	}
	days := []string{"2026-03-28T20:00:00Z", "2026-10-24T20:00:00Z", "2026-03-07T20:00:00Z", "2026-10-31T20:00:00Z"}
	for _, js := range schedules {
		s := mustSchedule(t, js)
		for _, d := range days {
			start := utc(t, d)
			// Brute force: the first open minute at or after each minute.
			const n = 16 * 60
			open := make([]bool, n+1)
			for i := range open {
				open[i] = s.Open(start.Add(time.Duration(i) * time.Minute))
			}
			for i := 0; i < n; i++ {
				at := start.Add(time.Duration(i) * time.Minute)
				j := i
				for j < n && !open[j] {
					j++
				}
				if j == n {
					continue // the next opening is beyond the window
				}
				want := start.Add(time.Duration(j) * time.Minute)
				if got := s.NextOpen(at); !got.Equal(want) {
					t.Fatalf("%s: NextOpen(%s) = %s, want %s", s.Location(), at, got, want)
				}
			}
		}
	}
}

func TestParseScheduleErrors(t *testing.T) {
	tests := []struct{ js, want string }{
		{`{"week":{}}`, "tz is required"},
		{`{"tz":"Mars/Olympus","week":{}}`, `tz "Mars/Olympus"`},
		{`{"tz":"UTC","week":{"monday":[["09:00","17:00"]]}}`, `unknown day "monday"`},
		{`{"tz":"UTC","week":{"mon":[["9:00","17:00"]]}}`, `mon: start: "9:00": want HH:MM`},
		{`{"tz":"UTC","week":{"mon":[["09:00","25:00"]]}}`, `mon: end: "25:00": want HH:MM between 00:00 and 24:00`},
		{`{"tz":"UTC","week":{"mon":[["09:60","10:00"]]}}`, `mon: start: "09:60"`},
		{`{"tz":"UTC","week":{"mon":[["24:00","10:00"]]}}`, `"24:00": 24:00 is only allowed as an end`},
		{`{"tz":"UTC","week":{"mon":[["09:00","09:00"]]}}`, `interval [09:00, 09:00] is empty`},
		{`{"tz":"UTC","week":{},"holidays":["25/12/2026"]}`, `holiday "25/12/2026": want YYYY-MM-DD`},
		{`{"tz":"UTC","week":{"mon":[["09:00"]]}}`, `mon: end: "": want HH:MM`},
		{`[1,2]`, "route: schedule:"},
	}
	for _, tt := range tests {
		_, err := route.ParseSchedule([]byte(tt.js))
		if err == nil {
			t.Errorf("ParseSchedule(%s) succeeded, want error containing %q", tt.js, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || switchboard.ErrorCode(err) != switchboard.EINVALID {
			t.Errorf("ParseSchedule(%s) = %v (code %s), want EINVALID containing %q", tt.js, err, switchboard.ErrorCode(err), tt.want)
		}
	}
}

func TestScheduleJSONRoundTrip(t *testing.T) {
	in := `{"tz":"America/New_York","week":{"fri":[["09:00","12:00"],["13:00","17:00"]],"mon":[["09:00","17:30"]],"sat":[["22:00","02:00"]],"sun":[["18:00","24:00"]]},"holidays":["2026-07-04","2026-12-25"]}`
	s := mustSchedule(t, `{"tz":"America/New_York","holidays":["2026-12-25","2026-07-04","2026-12-25"],"week":{"mon":[["09:00","17:30"]],"fri":[["13:00","17:00"],["09:00","12:00"]],"sat":[["22:00","02:00"]],"sun":[["18:00","24:00"]]}}`)
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != in {
		t.Fatalf("Marshal = %s\nwant      %s", b, in)
	}
	// Inside a TeamConfig, through encoding/json both ways.
	cfg := route.TeamConfig{Hours: s, AfterHours: route.AfterHoursQueue}
	cb, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var back route.TeamConfig
	if err := json.Unmarshal(cb, &back); err != nil {
		t.Fatalf("Unmarshal(%s): %v", cb, err)
	}
	b2, _ := json.Marshal(back.Hours)
	if string(b2) != in {
		t.Fatalf("after TeamConfig round trip = %s, want %s", b2, in)
	}
	at := utc(t, "2026-06-19T17:30:00Z") // Friday 13:30 EDT
	if !back.Hours.Open(at) || back.Hours.Location().String() != "America/New_York" {
		t.Fatalf("round-tripped schedule: Open(%s) = false or zone %s", at, back.Hours.Location())
	}
}

// TestOpenDuration: business time between two instants, across a night,
// a weekend, a holiday, an overnight span and a daylight-saving change.
func TestOpenDuration(t *testing.T) {
	s := mustSchedule(t, `{"tz": "America/New_York", "week": {"mon": [["09:00", "17:00"]], "tue": [["09:00", "17:00"]], "fri": [["09:00", "17:00"], ["22:00", "02:00"]]}, "holidays": ["2026-03-17"]}`)
	for _, c := range []struct {
		from, to string
		want     time.Duration
	}{
		// Mon 9 Mar 16:50 EDT to Tue 09:10 EDT: 10 min + 10 min.
		{"2026-03-09T20:50:00Z", "2026-03-10T13:10:00Z", 20 * time.Minute},
		// Inside one span.
		{"2026-03-09T14:00:00Z", "2026-03-09T14:30:00Z", 30 * time.Minute},
		// Wholly closed: Wednesday.
		{"2026-03-11T14:00:00Z", "2026-03-11T20:00:00Z", 0},
		// Fri 13 Mar 16:00 EDT to Mon 16 Mar 10:00 EDT: 1 h + the
		// overnight 4 h + 1 h.
		{"2026-03-13T20:00:00Z", "2026-03-16T14:00:00Z", 6 * time.Hour},
		// Tue 17 Mar is a holiday: Mon 16:00 to Wed 10:00 is Monday's hour.
		{"2026-03-16T20:00:00Z", "2026-03-18T14:00:00Z", time.Hour},
		// Fri 6 Mar 22:00 EST to Sun 8 Mar 12:00 EDT (clocks went forward
		// at 2:00 on Sunday, after the overnight span ended): 4 h.
		{"2026-03-07T03:00:00Z", "2026-03-08T16:00:00Z", 4 * time.Hour},
	} {
		if got := s.OpenDuration(utc(t, c.from), utc(t, c.to)); got != c.want {
			t.Errorf("%s to %s: %s, want %s", c.from, c.to, got, c.want)
		}
	}
}
