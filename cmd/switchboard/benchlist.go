package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/inbox"
)

// runBenchList seeds a store with many conversations and times the agent's
// conversation-list queries against it.
func runBenchList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("conversations", 1_000_000, "conversations to seed (one customer each)")
	dbURL := fs.String("database-url", "", "postgres://... (a fresh database); default SQLite in a temporary directory")
	runs := fs.Int("runs", 300, "timed runs of each query")
	seed := fs.Bool("seed", true, "seed first; -seed=false times the queries on a database seeded before")
	if err := fs.Parse(args); err != nil {
		return err
	}
	url := *dbURL
	if url == "" {
		dir, err := os.MkdirTemp("", "switchboard-benchlist-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		url = "sqlite:" + filepath.Join(dir, "switchboard.db")
	}
	db, err := inbox.Open(ctx, inbox.Config{DatabaseURL: url})
	if err != nil {
		return err
	}
	defer db.Close()

	// Seed through the real ingest path, in batches, with a spread of
	// channels; then give some conversations an assignee and resolve some.
	channels := []switchboard.Channel{switchboard.ChannelWebform, switchboard.ChannelEmail, switchboard.ChannelSMS, switchboard.ChannelWhatsApp}
	start := time.Now()
	const batch = 1000
	for done := 0; *seed && done < *n; done += batch {
		items := make([]switchboard.Inbound, 0, batch)
		for i := done; i < min(done+batch, *n); i++ {
			items = append(items, switchboard.Inbound{
				Channel: channels[i%len(channels)], ProviderID: fmt.Sprint("seed-", i), ContentType: switchboard.ContentText,
				Text:       fmt.Sprintf("seeded message %d about order %d", i, 100000+i%50000),
				Identities: []switchboard.IdentityRef{{Kind: switchboard.IdentityEmail, Value: fmt.Sprintf("seed%d@example.com", i)}},
			})
		}
		if _, err := db.Ingest(ctx, items); err != nil {
			return err
		}
		if done%100_000 == 0 && done > 0 {
			fmt.Fprintf(stderr, "bench list: seeded %d conversations (%.0f/s)\n", done, float64(done)/time.Since(start).Seconds())
		}
	}
	seedTime := time.Since(start)
	if err := db.Analyze(ctx); err != nil {
		return err
	}
	agent, _, err := db.AddAgent(ctx, switchboard.System, switchboard.Agent{Name: "Bench Agent", Email: fmt.Sprintf("bench-%d@example.com", time.Now().UnixNano()), Role: switchboard.RoleSupervisor})
	if err != nil {
		return err
	}
	me := agent.Actor()
	recent, _, err := db.Conversations(ctx, me, switchboard.ConversationFilter{Limit: 200})
	if err != nil {
		return err
	}
	for i, c := range recent {
		if i%2 == 0 {
			if _, err := db.Assign(ctx, me, c.ID, agent.ID); err != nil {
				return err
			}
		} else if _, err := db.SetStatus(ctx, me, c.ID, switchboard.StatusResolved); err != nil {
			return err
		}
	}
	first, next, err := db.Conversations(ctx, me, switchboard.ConversationFilter{})
	if err != nil || len(first) == 0 {
		return fmt.Errorf("bench list: first page: %v", err)
	}

	if *seed {
		fmt.Fprintf(stdout, "%s: seeded %d conversations in %s (%.0f/s)\n", db.Dialect(), *n, seedTime.Round(time.Second), float64(*n)/seedTime.Seconds())
	}
	fmt.Fprintf(stdout, "%-48s %9s %9s %9s\n", "query (limit 50)", "p50 ms", "p95 ms", "rows")
	for _, q := range []struct {
		name string
		f    switchboard.ConversationFilter
	}{
		{"newest first", switchboard.ConversationFilter{}},
		{"status=open", switchboard.ConversationFilter{Status: switchboard.StatusOpen}},
		{"assignee=agent", switchboard.ConversationFilter{AssigneeID: agent.ID}},
		{"assignee=none&status=open", switchboard.ConversationFilter{AssigneeID: "none", Status: switchboard.StatusOpen}},
		{"channel=sms", switchboard.ConversationFilter{Channel: switchboard.ChannelSMS}},
		{"second page (cursor)", switchboard.ConversationFilter{Cursor: next}},
		{"q=123456 (full text, rare word)", switchboard.ConversationFilter{Query: "123456"}},
		{"q=order 123456 (with a word in every message)", switchboard.ConversationFilter{Query: "order 123456"}},
	} {
		var ds []time.Duration
		rows := 0
		for i := 0; i < *runs; i++ {
			t0 := time.Now()
			convs, _, err := db.Conversations(ctx, me, q.f)
			if err != nil {
				return fmt.Errorf("bench list: %s: %w", q.name, err)
			}
			ds = append(ds, time.Since(t0))
			rows = len(convs)
		}
		slices.Sort(ds)
		fmt.Fprintf(stdout, "%-48s %9.2f %9.2f %9d\n", q.name, ms(ds[len(ds)/2]), ms(ds[len(ds)*95/100]), rows)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
