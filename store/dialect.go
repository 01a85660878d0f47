package store

import (
	"errors"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect owns every difference between SQLite and PostgreSQL. The rest of
// the package writes the portable subset: `?` placeholders, ON CONFLICT,
// RETURNING, integer microsecond timestamps, JSON as text.
type dialect interface {
	// name is for messages and the migrations' directory: code that must
	// behave differently tests one of the capabilities below instead.
	name() string

	// singleWriter: one transaction writes at a time, so rows and keys need no locks.
	singleWriter() bool
	// cachesStatements: the driver prepares and caches statements itself.
	cachesStatements() bool
	// plansBySize: the planner goes by tables' present sizes, so it may scan a small one that an index would serve.
	plansBySize() bool
	// plainSearchText: searchJoin reads its argument as plain words, never as query syntax.
	plainSearchText() bool

	// rebind rewrites `?` placeholders into the dialect's form.
	rebind(q string) string
	// lockRow is appended to a SELECT that must lock the rows it reads
	// until the transaction ends. SQLite has one writer, so it needs none.
	lockRow() string
	// skipLocked is appended to a SELECT that claims rows of the table
	// aliased alias, which several instances compete for.
	skipLocked(alias string) string
	// searchJoin returns a FROM fragment and a WHERE predicate that restrict
	// messages m to those matching one full-text query argument.
	searchJoin() (from, where string)
	// lockKey returns a statement that serialises, until the transaction
	// ends, every transaction that locks the same key (one argument); ""
	// where a single writer makes that so already.
	lockKey() string
	// isRetryable reports errors after which the whole transaction may be
	// run again (deadlocks, serialisation failures, a busy database).
	isRetryable(err error) bool
	// isUniqueViolation reports a unique or primary key conflict.
	isUniqueViolation(err error) bool
}

type sqliteDialect struct{}

func (sqliteDialect) name() string             { return "sqlite" }
func (sqliteDialect) singleWriter() bool       { return true }
func (sqliteDialect) cachesStatements() bool   { return false }
func (sqliteDialect) plansBySize() bool        { return false } // it assumes large tables until ANALYZE
func (sqliteDialect) plainSearchText() bool    { return false }
func (sqliteDialect) rebind(q string) string   { return q }
func (sqliteDialect) lockRow() string          { return "" }
func (sqliteDialect) lockKey() string          { return "" }
func (sqliteDialect) skipLocked(string) string { return "" }
func (sqliteDialect) searchJoin() (string, string) {
	return " JOIN messages_fts f ON f.message_id = m.id", "messages_fts MATCH ?"
}

func (sqliteDialect) isRetryable(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
	}
	return false
}

func (sqliteDialect) isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

type postgresDialect struct{}

func (postgresDialect) name() string           { return "postgres" }
func (postgresDialect) singleWriter() bool     { return false }
func (postgresDialect) cachesStatements() bool { return true }
func (postgresDialect) plansBySize() bool      { return true }
func (postgresDialect) plainSearchText() bool  { return true }

func (postgresDialect) rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

func (postgresDialect) lockRow() string { return " FOR UPDATE" }
func (postgresDialect) lockKey() string { return "SELECT pg_advisory_xact_lock(hashtext(?))" }
func (postgresDialect) skipLocked(alias string) string {
	return " FOR UPDATE OF " + alias + " SKIP LOCKED"
}
func (postgresDialect) searchJoin() (string, string) {
	return "", "m.tsv @@ plainto_tsquery('simple', ?)"
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func (postgresDialect) isRetryable(err error) bool {
	switch pgCode(err) {
	case "40001", "40P01": // serialization_failure, deadlock_detected
		return true
	}
	return false
}

func (postgresDialect) isUniqueViolation(err error) bool { return pgCode(err) == "23505" }

// ftsQuery turns free text into the argument searchJoin's predicate expects.
// For FTS5 each word becomes a quoted phrase so that user input can never be
// read as query syntax; PostgreSQL's plainto_tsquery already treats it as
// plain words.
func ftsQuery(d dialect, q string) string {
	if d.plainSearchText() {
		return q
	}
	words := strings.Fields(q)
	for i, w := range words {
		words[i] = `"` + strings.ReplaceAll(w, `"`, `""`) + `"`
	}
	return strings.Join(words, " ")
}
