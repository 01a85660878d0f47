package inbox_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/inbox/inboxtest"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

// BenchmarkAnalytics times the dashboard's seven queries together, with
// the daily rollups to build (cold) and built (warm), and each measure
// warm, over one month and over twelve months of
// SWITCHBOARD_BENCH_CONVERSATIONS conversations (default 1,000,000) spread
// over the year, on SQLite and PostgreSQL. Seeding takes minutes:
//
//	go test ./inbox -run '^$' -bench Analytics -benchtime 5x -timeout 60m
func BenchmarkAnalytics(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("SWITCHBOARD_BENCH_CONVERSATIONS")); err == nil && v > 0 {
		n = v
	}
	end := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	start := end.AddDate(-1, 0, 0)
	sup := switchboard.Actor{ID: "bench", Role: switchboard.RoleSupervisor}
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			svc := inboxtest.Open(b, backend, inbox.Config{})
			t0 := time.Now()
			in := storetest.InspectURL(b, svc.URL)
			in.SeedAnalytics(n, start, end)
			b.Logf("%s: seeded %d conversations in %s", backend, n, time.Since(t0).Round(time.Second))
			ctx := context.Background()
			for _, r := range []struct {
				name     string
				from, to time.Time
			}{{"1month", end.AddDate(0, -1, 0), end}, {"12months", start, end}} {
				q := inbox.AnalyticsQuery{From: r.from, To: r.to, TZ: time.UTC}
				measures := []struct{ measure, group string }{
					{"first_response", "channel"}, {"first_response", "channel_hour"}, {"resolution", "topic"},
					{"resolution", "channel"}, {"channel_migration", ""}, {"utilization", "agent"}, {"utilization", "team"},
				}
				run := func(b *testing.B, ms ...struct{ measure, group string }) {
					for b.Loop() {
						for _, m := range ms {
							q := q
							q.Group = m.group
							if _, err := svc.Analytics(ctx, sup, m.measure, q); err != nil {
								b.Fatal(err)
							}
						}
					}
				}
				// The dashboard reads each measure once for its groupings.
				dashboard := func(b *testing.B) {
					for _, m := range []struct {
						measure string
						groups  []string
					}{{"first_response", []string{"channel", "channel_hour"}}, {"resolution", []string{"topic", "channel"}},
						{"channel_migration", nil}, {"utilization", []string{"agent", "team"}}} {
						if _, err := svc.AnalyticsGroups(ctx, sup, m.measure, q, m.groups...); err != nil {
							b.Fatal(err)
						}
					}
				}
				// Cold: the first read builds the range's daily rollups.
				b.Run(r.name+"/dashboard_cold", func(b *testing.B) {
					for b.Loop() {
						b.StopTimer()
						in.DropRollups()
						b.StartTimer()
						dashboard(b)
					}
				})
				b.Run(r.name+"/dashboard", func(b *testing.B) {
					for b.Loop() {
						dashboard(b)
					}
				})
				// Warm: the rollups are there (a range's last two days are
				// read raw).
				for _, m := range measures {
					b.Run(r.name+"/"+m.measure+"_"+m.group, func(b *testing.B) { run(b, m) })
				}
			}
		})
	}
}
