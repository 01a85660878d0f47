package store

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/switchboard-inbox/switchboard"
)

// TestSQLiteCacheBudget: the page cache budget is split between the
// writer (half) and the readers (the rest, evenly), counted in the memory
// a cached page takes, not in page data.
func TestSQLiteCacheBudget(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "cache.db"), Options{CacheBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var writer, reader int64
	if err := db.write.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&writer); err != nil {
		t.Fatal(err)
	}
	if err := db.read.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&reader); err != nil {
		t.Fatal(err)
	}
	if want := int64(32<<20) / cachedPageCost; writer != want {
		t.Errorf("writer's cache: %d pages, want %d (32 MB at %d bytes a page)", writer, want, cachedPageCost)
	}
	if want := int64(32<<20) / sqliteReaders / cachedPageCost; reader != want {
		t.Errorf("a reader's cache: %d pages, want %d", reader, want)
	}
}

// TestTouchWritesFewIndexes: a customer writing again in their open
// conversation updates only its times, and SQLite's program for that
// writes the two indexes on them, where the full update writes six. (On
// PostgreSQL an update that changes an indexed column writes every index
// either way.)
func TestTouchWritesFewIndexes(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "touch.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	roots := map[int64]string{}
	rows, err := db.read.QueryContext(ctx, `SELECT name, rootpage FROM sqlite_master WHERE tbl_name = 'conversations' AND rootpage > 0`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		var root int64
		if err := rows.Scan(&name, &root); err != nil {
			t.Fatal(err)
		}
		roots[root] = name
	}
	rows.Close()
	// written lists the conversations table's b-trees a statement's
	// program opens for writing.
	written := func(q string, args ...any) []string {
		t.Helper()
		rows, err := db.read.QueryContext(ctx, `EXPLAIN `+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var addr, p1, p2, p3, p5 int64
			var op string
			var p4, comment any
			if err := rows.Scan(&addr, &op, &p1, &p2, &p3, &p4, &p5, &comment); err != nil {
				t.Fatal(err)
			}
			if name, ok := roots[p2]; ok && op == "OpenWrite" {
				out = append(out, name)
			}
		}
		slices.Sort(out)
		return out
	}
	touch := written(conversationsUpdate("", `SELECT CAST(? AS TEXT) AS id, CAST(? AS BIGINT) AS lm, CAST(? AS BIGINT) AS li`), "c", 1, 1)
	full := written(conversationsUpdate(`status = v.status, resolved_at = NULL, last_channel = v.ch, `,
		`SELECT CAST(? AS TEXT) AS id, CAST(? AS TEXT) AS status, CAST(? AS TEXT) AS ch, CAST(? AS BIGINT) AS lm, CAST(? AS BIGINT) AS li`), "c", "open", "sms", 1, 1)
	if want := []string{"conversations", "conversations_last", "conversations_status_last"}; !slices.Equal(touch, want) {
		t.Errorf("a touch writes %v, want %v", touch, want)
	}
	if len(full) < len(touch)+4 {
		t.Errorf("the full update writes %v: fewer than expected, is the comparison measuring anything?", full)
	}
	t.Logf("touch writes %v; full update %v", touch, full)

	// And the batch path picks it: a second message on the same channel
	// runs the touch; one on another channel, the full update. (Each
	// statement run is kept, prepared, under its text.)
	touchQ := conversationsUpdate("", `SELECT CAST(? AS TEXT) AS id, CAST(? AS BIGINT) AS lm, CAST(? AS BIGINT) AS li`)
	fullQ := conversationsUpdate(`status = v.status, resolved_at = NULL, last_channel = v.ch, `,
		`SELECT CAST(? AS TEXT) AS id, CAST(? AS TEXT) AS status, CAST(? AS TEXT) AS ch, CAST(? AS BIGINT) AS lm, CAST(? AS BIGINT) AS li`)
	ran := func(q string) bool {
		db.stmtMu.Lock()
		defer db.stmtMu.Unlock()
		_, ok := db.stmts[q]
		return ok
	}
	send := func(id string, ch switchboard.Channel) {
		t.Helper()
		if _, err := db.Ingest(ctx, []switchboard.Inbound{{Channel: ch, ProviderID: id, ContentType: switchboard.ContentText, Text: "hello",
			Identities: []switchboard.IdentityRef{{Kind: switchboard.IdentityEmail, Value: "ann@example.com"}}}}, IngestOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	send("m1", switchboard.ChannelWebform)
	send("m2", switchboard.ChannelWebform)
	if !ran(touchQ) || ran(fullQ) {
		t.Errorf("a second message on the same channel: touch ran %v, full update ran %v; want only the touch", ran(touchQ), ran(fullQ))
	}
	send("m3", switchboard.ChannelEmail)
	if !ran(fullQ) {
		t.Error("a message on another channel did not run the full update")
	}
}
