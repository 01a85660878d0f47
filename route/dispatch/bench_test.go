package dispatch_test

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/inbox/inboxtest"
	"github.com/switchboard-inbox/switchboard/route/dispatch"
	"github.com/switchboard-inbox/switchboard/store"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

// TestBenchSmall runs the benchmark's workload small, so that it is known
// to work, and checks what it reports.
func TestBenchSmall(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		db := inboxtest.Open(t, backend, inbox.Config{})
		r, err := dispatch.Bench(context.Background(), db.Service, dispatch.BenchOptions{Agents: 40, Conversations: 800, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		t.Log(r)
		// 40 agents × 6 chats = 240 chat places, × 15 = 600 e-mail places:
		// with channels drawn evenly (5 chat-like of 8) chats overflow and
		// e-mails fit.
		if r.Assigned+r.Waiting != 800 || r.Chat.Max != store.DefaultCapChat || r.Chat.Min != store.DefaultCapChat || r.Email.Max > store.DefaultCapEmail {
			t.Fatalf("bench result = %+v", r)
		}
		if r.Assigned != 240+int(r.Email.Mean*40+0.5) || r.Decisions < r.Assigned || r.P99 <= 0 || r.P99 < r.P50 {
			t.Fatalf("bench result = %+v", r)
		}
	})
}

// BenchmarkRoute is the benchmark: 500 agents, 10,000 waiting
// conversations, one pass. Run with -benchtime=1x; it reports decisions
// per second, p99 latency per decision and the spread of chats.
func BenchmarkRoute(b *testing.B) {
	for _, backend := range storetest.Backends {
		b.Run(backend, func(b *testing.B) {
			for b.Loop() {
				db := inboxtest.Open(b, backend, inbox.Config{})
				r, err := dispatch.Bench(context.Background(), db.Service, dispatch.BenchOptions{Seed: 1})
				if err != nil {
					b.Fatal(err)
				}
				b.Log(r)
				b.ReportMetric(r.DecisionsPerSec, "decisions/s")
				b.ReportMetric(float64(r.P99)/float64(time.Microsecond), "p99-µs")
				b.ReportMetric(r.Chat.StdDev, "chat-sd")
				b.ReportMetric(r.Email.StdDev, "email-sd")
			}
		})
	}
}
