package storetest

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"

	"github.com/switchboard-inbox/switchboard/store"
)

// Inspector reads what tests check in a store's database over a
// connection of its own: what the store keeps only for its own use (the
// routing's bookkeeping, outbox rows, dead letters) is not part of the
// store's API, and tests must not need it to be.
type Inspector struct {
	tb       testing.TB
	db       *sql.DB
	postgres bool
}

var urls sync.Map // *store.DB -> its URL, for stores opened by Open

// Inspect returns an inspector of a store opened by Open.
func Inspect(tb testing.TB, db *store.DB) *Inspector {
	tb.Helper()
	u, ok := urls.Load(db)
	if !ok {
		tb.Fatal("storetest: Inspect needs a store opened by storetest.Open; use InspectURL")
	}
	return InspectURL(tb, u.(string))
}

// InspectURL returns an inspector of the database at url (as store.Open
// takes it).
func InspectURL(tb testing.TB, url string) *Inspector {
	tb.Helper()
	in := &Inspector{tb: tb}
	var err error
	if path, ok := strings.CutPrefix(url, "sqlite:"); ok {
		in.db, err = sql.Open("sqlite", "file:"+strings.TrimPrefix(path, "//")+"?_pragma=busy_timeout(10000)")
	} else {
		in.postgres = true
		in.db, err = sql.Open("pgx", url)
	}
	if err != nil {
		tb.Fatalf("storetest: open %s: %v", url, err)
	}
	tb.Cleanup(func() { in.db.Close() })
	return in
}

// rebind turns ? placeholders into PostgreSQL's $n.
func (in *Inspector) rebind(q string) string {
	if !in.postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (in *Inspector) rows(q string, args ...any) *sql.Rows {
	in.tb.Helper()
	rows, err := in.db.QueryContext(context.Background(), in.rebind(q), args...)
	if err != nil {
		in.tb.Fatalf("storetest: %s: %v", q, err)
	}
	return rows
}

func (in *Inspector) row(q string, args []any, dest ...any) bool {
	in.tb.Helper()
	err := in.db.QueryRowContext(context.Background(), in.rebind(q), args...).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return false
	}
	if err != nil {
		in.tb.Fatalf("storetest: %s: %v", q, err)
	}
	return true
}

// RoutingState is what the routing keeps on a conversation beside the
// domain fields.
type RoutingState struct {
	AssignedBy     string // route.AssignedManual, route.AssignedRouter or ""
	Held           bool
	WaitReason     string
	RoutedTeam     string // the after-hours team it is handed to, "" for its own
	AckedPeriod    string
	AckedInboundAt time.Time
	TopicSource    string
	Excluded       []string
}

// RoutingState returns a conversation's routing state; it fails the test
// when the conversation does not exist.
func (in *Inspector) RoutingState(conversationID string) RoutingState {
	in.tb.Helper()
	var s RoutingState
	var held int
	var acked sql.NullInt64
	if !in.row(`SELECT assigned_by, held, wait_reason, routed_team, acked_period, acked_inbound_at, topic_source FROM conversations WHERE id = ?`,
		[]any{conversationID}, &s.AssignedBy, &held, &s.WaitReason, &s.RoutedTeam, &s.AckedPeriod, &acked, &s.TopicSource) {
		in.tb.Fatalf("storetest: conversation %s not found", conversationID)
	}
	s.Held = held != 0
	if acked.Valid && acked.Int64 != 0 {
		s.AckedInboundAt = time.UnixMicro(acked.Int64).UTC()
	}
	rows := in.rows(`SELECT agent_id FROM routing_exclusions WHERE conversation_id = ? ORDER BY created_at, agent_id`, conversationID)
	defer rows.Close()
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			in.tb.Fatal(err)
		}
		s.Excluded = append(s.Excluded, a)
	}
	return s
}

// OutboxState reports an outbox row's state, attempts and last error, by
// message id; ok is false when the message has no outbox row.
func (in *Inspector) OutboxState(messageID string) (state string, attempts int, lastError string, ok bool) {
	in.tb.Helper()
	ok = in.row(`SELECT state, attempts, last_error FROM outbox WHERE message_id = ?`, []any{messageID}, &state, &attempts, &lastError)
	return state, attempts, lastError, ok
}

// DeadLetters counts the entries kept as dead letters.
func (in *Inspector) DeadLetters() int {
	in.tb.Helper()
	var n int
	in.row(`SELECT COUNT(*) FROM dead_letters`, nil, &n)
	return n
}

// MessagesByText counts stored messages per text among those whose text
// is LIKE pattern: how tests check that nothing was stored twice.
func (in *Inspector) MessagesByText(pattern string) map[string]int {
	in.tb.Helper()
	rows := in.rows(`SELECT text, COUNT(*) FROM messages WHERE text LIKE ? GROUP BY text`, pattern)
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var text string
		var n int
		if err := rows.Scan(&text, &n); err != nil {
			in.tb.Fatal(err)
		}
		out[text] = n
	}
	return out
}

// Rollups counts kind's cached days: valid ones and those a write has
// invalidated since they were built.
func (in *Inspector) Rollups(kind string) (valid, stale int) {
	in.tb.Helper()
	in.row(`SELECT COALESCE(SUM(CASE WHEN built_gen = gen THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN built_gen <> gen THEN 1 ELSE 0 END), 0)
		FROM rollups WHERE kind = ?`, []any{kind}, &valid, &stale)
	return valid, stale
}

// DropRollups deletes every cached day, so that the next read builds them
// (benchmarks time that).
func (in *Inspector) DropRollups() {
	in.tb.Helper()
	if _, err := in.db.ExecContext(context.Background(), `DELETE FROM rollups`); err != nil {
		in.tb.Fatalf("storetest: drop rollups: %v", err)
	}
}

// DamageRollups overwrites kind's cached days with bytes that are not a
// rollup, leaving them marked valid, as a torn write would.
func (in *Inspector) DamageRollups(kind string) {
	in.tb.Helper()
	if _, err := in.db.ExecContext(context.Background(), in.rebind(`UPDATE rollups SET data = ? WHERE kind = ?`), []byte{2, 0, 5, 1, 2, 3, 4, 5, 6, 7, 8, 9}, kind); err != nil {
		in.tb.Fatalf("storetest: damage rollups: %v", err)
	}
}
