package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/route/dispatch"
)

// onStored is the ingest pipeline's hook: the router learns of new
// messages, then whoever else asked (tests, bench).
func (m *Main) onStored(items []switchboard.Inbound, results []switchboard.IngestResult) {
	if m.Dispatcher != nil {
		m.Dispatcher.OnStored(context.Background(), items, results)
	}
	if m.OnStored != nil {
		m.OnStored(items, results)
	}
}

// runClassifier is `switchboard classifier train`.
func runClassifier(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "train" {
		return fmt.Errorf("usage: switchboard classifier train [--database-url URL]")
	}
	fs := flag.NewFlagSet("classifier train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c Config
	c.Bind(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return err
	}
	db, err := inbox.Open(ctx, inbox.Config{DatabaseURL: c.DatabaseURL})
	if err != nil {
		return err
	}
	defer db.Close()
	acc, n, err := dispatch.Train(ctx, db)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "trained on %d resolved conversations; held-out accuracy %.1f%%\n", n, acc*100)
	return nil
}

// runBenchRoute is `switchboard bench route`: one routing pass over a long
// queue with many agents, on a fresh database (SQLite in a temporary
// directory, or --database-url, which must be empty).
func runBenchRoute(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench route", flag.ContinueOnError)
	fs.SetOutput(stderr)
	agents := fs.Int("agents", 500, "online agents")
	waiting := fs.Int("conversations", 10000, "waiting conversations")
	dbURL := fs.String("database-url", "", "an empty database to use (default: SQLite in a temporary directory)")
	seed := fs.Uint64("seed", 1, "workload seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dbURL == "" {
		dir, err := os.MkdirTemp("", "switchboard-bench-route-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		*dbURL = "sqlite:" + filepath.Join(dir, "bench.db")
	}
	db, err := inbox.Open(ctx, inbox.Config{DatabaseURL: *dbURL})
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := dispatch.Bench(ctx, db, dispatch.BenchOptions{Agents: *agents, Conversations: *waiting, Seed: *seed})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, res)
	return nil
}
