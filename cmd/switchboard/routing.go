package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/route/dispatch"
	"github.com/switchboard-inbox/switchboard/store"
)

// Acknowledge sends the automatic out-of-hours acknowledgement the router
// asks for, through the customer's channel and under its policy: where the
// policy refuses (no sender, an SMS opt-out, a closed WhatsApp window) the
// acknowledgement is skipped, never forced, and the error wraps
// dispatch.ErrAckSkipped with the reason so the router records the skip
// rather than a sent acknowledgement. It is stored as an automatic
// message, which is never the conversation's first response.
func (m *Main) Acknowledge(ctx context.Context, conversationID string, ch switchboard.Channel, text string) error {
	pol, sender := m.policies[ch], m.Senders[ch]
	if sender == nil {
		return fmt.Errorf("%w: nothing sends on %s", dispatch.ErrAckSkipped, ch)
	}
	if pol != nil {
		r, err := m.DB.Recipient(ctx, conversationID)
		if err != nil {
			return fmt.Errorf("routing: acknowledgement: %w", err)
		}
		dec := pol.Check(r, switchboard.Draft{Channel: ch, Text: text}, time.Now().UTC())
		if !dec.Allowed {
			return fmt.Errorf("%w: %s refuses it: %s", dispatch.ErrAckSkipped, ch, dec.Reason)
		}
	}
	msg, err := m.DB.CreateReply(ctx, store.Reply{ConversationID: conversationID, Channel: ch, Text: text, Auto: true})
	if err != nil {
		return fmt.Errorf("routing: acknowledgement: %w", err)
	}
	m.Outbox.Notify()
	m.publish(switchboard.BusMessageCreated, conversationID, map[string]any{"message_id": msg.ID, "direction": msg.Direction, "auto": true})
	return nil
}

// onStored is the ingest pipeline's hook: the router learns of new
// messages, then whoever else asked (tests, bench).
func (m *Main) onStored(items []switchboard.Inbound, results []store.IngestResult) {
	if m.Dispatcher != nil {
		m.Dispatcher.OnStored(context.Background(), items, results)
	}
	if m.OnStored != nil {
		m.OnStored(items, results)
	}
}

// retrainClassifier retrains the topic classifier on resolved
// conversations every interval; dispatchers pick up a new model at their
// next pass. Too little labelled history is not an error worth more than
// a debug line.
func (m *Main) retrainClassifier(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		acc, n, err := dispatch.Train(ctx, m.DB)
		if err != nil {
			m.Logger.Debug("routing: classifier not retrained", "err", err)
			continue
		}
		m.Logger.Info("routing: classifier retrained", "examples", n, "held_out_accuracy", fmt.Sprintf("%.3f", acc))
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
	db, err := store.Open(ctx, c.DatabaseURL, store.Options{})
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
	db, err := store.Open(ctx, *dbURL, store.Options{})
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
