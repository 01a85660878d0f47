// Package inboxtest opens the inbox service on fresh test databases: a
// SQLite file in a temporary directory, or a throw-away PostgreSQL schema
// (see storetest).
package inboxtest

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/store"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

// DB is an inbox on a fresh database.
type DB struct {
	*inbox.Service
	URL   string
	clock switchboard.Clock
}

// Open opens the inbox on a fresh database of backend ("sqlite" or
// "postgres"), closed when the test ends. cfg's DatabaseURL is set here;
// a nil Logger discards.
func Open(tb testing.TB, backend string, cfg inbox.Config) *DB {
	tb.Helper()
	cfg.DatabaseURL = storetest.URL(tb, backend)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := inbox.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("open %s inbox: %v", backend, err)
	}
	tb.Cleanup(func() { s.Close() })
	return &DB{Service: s, URL: cfg.DatabaseURL, clock: cfg.Clock}
}

// Inspect reads what tests check and the store keeps to itself.
func (d *DB) Inspect(tb testing.TB) *storetest.Inspector { return storetest.InspectURL(tb, d.URL) }

// Store opens a second handle on the same database, for fixtures the
// inbox offers no operation for; it is closed when the test ends.
func (d *DB) Store(tb testing.TB) *store.DB {
	tb.Helper()
	db, err := store.Open(context.Background(), d.URL, store.Options{Clock: d.clock})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}
