// Package storetest opens fresh stores for tests: a SQLite file in a
// temporary directory, and a throw-away schema on the PostgreSQL server
// named by SWITCHBOARD_TEST_DATABASE_URL.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
	"github.com/switchboard-inbox/switchboard/store"
)

// Backends lists the dialects every store test runs on.
var Backends = []string{"sqlite", "postgres"}

// Each runs fn as a subtest once per backend.
func Each(t *testing.T, fn func(t *testing.T, backend string)) {
	for _, b := range Backends {
		t.Run(b, func(t *testing.T) { fn(t, b) })
	}
}

// URL returns the database URL of a fresh, empty database for backend,
// removed when the test ends.
func URL(tb testing.TB, backend string) string {
	tb.Helper()
	switch backend {
	case "sqlite":
		return "sqlite:" + filepath.Join(tb.TempDir(), "switchboard.db")
	case "postgres":
		return FreshSchema(tb, testenv.URL(tb, testenv.PostgresURL, "PostgreSQL"))
	}
	tb.Fatalf("unknown backend %q", backend)
	return ""
}

// Open opens a fresh store on backend with the given clock.
func Open(tb testing.TB, backend string, clock switchboard.Clock) *store.DB {
	tb.Helper()
	u := URL(tb, backend)
	db, err := store.Open(context.Background(), u, store.Options{Clock: clock})
	if err != nil {
		tb.Fatalf("open %s store: %v", backend, err)
	}
	urls.Store(db, u)
	tb.Cleanup(func() { urls.Delete(db); db.Close() })
	return db
}

// FreshSchema creates a uniquely named schema on the server at base and
// returns a URL whose connections use it; the schema is dropped at cleanup.
func FreshSchema(tb testing.TB, base string) string {
	tb.Helper()
	var b [6]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		tb.Fatalf("open postgres: %v", err)
	}
	defer admin.Close()
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		tb.Fatalf("create schema on %s: %v", base, err)
	}
	tb.Cleanup(func() {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer admin.Close()
		admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("parse %s: %v", base, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
