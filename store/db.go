// Package store is Switchboard's one database/sql implementation, serving
// both SQLite (the embedded default) and PostgreSQL. Every dialect
// difference lives in dialect.go.
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/switchboard-inbox/switchboard"
)

//go:embed migrations
var migrations embed.FS

// DB is an open store.
type DB struct {
	// write takes every transaction that writes. On SQLite it is a single
	// connection, so writers queue in Go instead of spinning on SQLITE_BUSY.
	write *sql.DB
	// read serves queries; on PostgreSQL it is the same pool as write.
	read    *sql.DB
	dialect dialect
	clock   switchboard.Clock

	stmtMu sync.Mutex
	// auditMu guards auditLast, the time of the last audit entry this
	// handle wrote: entries get increasing times, so the log keeps their
	// order even when the clock stands still (tests) or steps back.
	auditMu   sync.Mutex
	auditLast time.Time
	stmts     map[string]*sql.Stmt // prepared on write, SQLite only

	stats IngestStats

	// stopCheckpoints ends the SQLite checkpointer (nil otherwise).
	stopCheckpoints func()
}

// IngestStats counts how batches went through Ingest.
type IngestStats struct {
	FastBatches atomic.Int64 // stored on the set-based path
	Replans     atomic.Int64 // fast path run again after a concurrent change
	SlowBatches atomic.Int64 // stored message by message
}

// Stats returns the store's ingest counters.
func (db *DB) Stats() *IngestStats { return &db.stats }

// Options tune Open.
type Options struct {
	Clock switchboard.Clock // defaults to the system clock
	// MaxOpenConns caps PostgreSQL connections (default 16).
	MaxOpenConns int
	// CacheBytes is SQLite's page cache for all its connections together
	// (default DefaultCacheBytes): the writer takes half, the readers
	// share the rest.
	CacheBytes int64
	// CheckpointEvery is how often the SQLite WAL is checkpointed in the
	// background (default 1 s).
	CheckpointEvery time.Duration
}

// DefaultCacheBytes is SQLite's page cache budget when Options says none.
const DefaultCacheBytes = 64 << 20

// cachedPageCost is the memory one page in SQLite's cache takes under the
// pure-Go driver: a 4 KiB page with SQLite's headers is a little over
// 4 KiB, and the driver's allocator rounds it up to its next size class,
// 8 KiB. The budget is counted in that memory, so 64 MB of cache costs
// 64 MB of the process's, not twice that.
const cachedPageCost = 8 << 10

// sqliteReaders is how many read connections SQLite gets.
const sqliteReaders = 4

// maxWALFrames bounds the WAL (frames of a page each, 64 MB at 4 KB
// pages) before the checkpointer waits for readers to restart it.
const maxWALFrames = 16384

// Open connects to the database named by rawURL ("sqlite:PATH",
// "postgres://..." or "postgresql://...") and applies pending migrations.
func Open(ctx context.Context, rawURL string, opts Options) (*DB, error) {
	if opts.Clock == nil {
		opts.Clock = switchboard.SystemClock{}
	}
	db := &DB{clock: opts.Clock, stmts: map[string]*sql.Stmt{}}
	switch {
	case strings.HasPrefix(rawURL, "sqlite:"):
		path := strings.TrimPrefix(rawURL, "sqlite:")
		path = strings.TrimPrefix(path, "//")
		if path == "" {
			return nil, fmt.Errorf("store: sqlite URL %q names no file", rawURL)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("store: create data directory: %w", err)
		}
		if err := db.openSQLite(path, opts); err != nil {
			return nil, err
		}
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		cfg, err := pgx.ParseConfig(rawURL)
		if err != nil {
			return nil, fmt.Errorf("store: parse postgres URL: %w", err)
		}
		// The driver prepares every statement, and after five runs
		// PostgreSQL may switch a statement to a generic plan, which for
		// the ingest path's large IN lists can be a sequential scan. Plans
		// for these short statements are cheap: always make custom ones.
		if _, ok := cfg.RuntimeParams["plan_cache_mode"]; !ok {
			cfg.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
		}
		pool := stdlib.OpenDB(*cfg)
		n := opts.MaxOpenConns
		if n <= 0 {
			n = 16
		}
		pool.SetMaxOpenConns(n)
		pool.SetMaxIdleConns(n)
		pool.SetConnMaxIdleTime(5 * time.Minute)
		db.write, db.read, db.dialect = pool, pool, postgresDialect{}
	default:
		return nil, fmt.Errorf("store: unsupported database URL %q: want sqlite:PATH or postgres://", redactURL(rawURL))
	}
	if err := db.read.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect to %s: %w", db.dialect.name(), err)
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func (db *DB) openSQLite(path string, opts Options) error {
	// WAL lets readers run beside the writer; synchronous=NORMAL in WAL mode
	// loses nothing when the process dies (only on power loss may the last
	// commits roll back); _txlock=immediate takes the write lock at BEGIN so
	// a transaction never fails halfway on an upgrade from reader to writer.
	//
	// The page cache is one budget for every connection (a cache per
	// connection of the full size made five times the memory). The writer
	// does not checkpoint inside its commits (wal_autocheckpoint=0): a
	// background checkpointer does, so an ingest commit never copies the
	// WAL into the database; journal_size_limit bounds the WAL file it
	// leaves.
	budget := opts.CacheBytes
	if budget <= 0 {
		budget = DefaultCacheBytes
	}
	dsn := func(cacheBytes int64, extra ...string) string {
		q := url.Values{}
		for _, p := range append([]string{"journal_mode(WAL)", "busy_timeout(10000)", "synchronous(NORMAL)", "foreign_keys(1)",
			fmt.Sprintf("cache_size(%d)", max(cacheBytes/cachedPageCost, 128)), "temp_store(MEMORY)"}, extra...) {
			q.Add("_pragma", p)
		}
		return "file:" + path + "?" + q.Encode()
	}
	write, err := sql.Open("sqlite", dsn(budget/2, "wal_autocheckpoint(0)", "journal_size_limit(67108864)")+"&_txlock=immediate")
	if err != nil {
		return fmt.Errorf("store: open sqlite: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	read, err := sql.Open("sqlite", dsn(budget/2/sqliteReaders))
	if err != nil {
		write.Close()
		return fmt.Errorf("store: open sqlite: %w", err)
	}
	read.SetMaxOpenConns(sqliteReaders)
	db.write, db.read, db.dialect = write, read, sqliteDialect{}
	db.stopCheckpoints = db.checkpoint(orDur(opts.CheckpointEvery, time.Second))
	return nil
}

func orDur(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// checkpoint copies the SQLite WAL into the database every interval, on a
// read connection and PASSIVE (it waits for no reader and blocks no
// writer), instead of the writer doing it inside a commit. It returns
// what stops it.
func (db *DB) checkpoint(every time.Duration) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			var busy, logFrames, copied int
			err := db.read.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &copied)
			if err == nil && logFrames > maxWALFrames {
				// Readers that never let go would let the WAL grow
				// without end: past the bound, wait for them (new
				// writers wait too, briefly) and start the WAL again.
				err = db.read.QueryRowContext(ctx, `PRAGMA wal_checkpoint(RESTART)`).Scan(&busy, &logFrames, &copied)
			}
			if err != nil && ctx.Err() == nil {
				slog.Warn("store: checkpoint", "err", err)
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// Close closes the database.
func (db *DB) Close() error {
	if db.stopCheckpoints != nil {
		db.stopCheckpoints()
		// What the last checkpoint left in the WAL goes into the
		// database now, so that a closed database is one file.
		db.write.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	}
	db.stmtMu.Lock()
	for _, s := range db.stmts {
		s.Close()
	}
	db.stmts = map[string]*sql.Stmt{}
	db.stmtMu.Unlock()
	err := db.write.Close()
	if db.read != db.write {
		err = errors.Join(err, db.read.Close())
	}
	return err
}

// Dialect names the database: "sqlite" or "postgres".
func (db *DB) Dialect() string { return db.dialect.name() }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.read.PingContext(ctx) }

// migrate applies the embedded migrations of the dialect that have not been
// applied yet, each in its own transaction, recording them as it goes.
func (db *DB) migrate(ctx context.Context) error {
	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)`
	if _, err := db.write.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("store: create schema_migrations: %w", err)
	}
	dir := "migrations/" + db.dialect.name()
	names, err := fs.Glob(migrations, dir+"/*.sql")
	if err != nil {
		return fmt.Errorf("store: list migrations: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		version := strings.TrimSuffix(filepath.Base(name), ".sql")
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("store: read migration %s: %w", name, err)
		}
		err = db.inTx(ctx, func(tx *Tx) error {
			// Several instances may start at once on PostgreSQL: the lock
			// makes the first apply the migrations and the rest wait.
			if !db.dialect.singleWriter() {
				if _, err := tx.tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7324001)`); err != nil {
					return err
				}
			}
			var n int
			if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("apply %s: %w", name, err)
			}
			return tx.exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, micros(db.clock.Now()))
		})
		if err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
	}
	return nil
}

// Tx is a write transaction.
type Tx struct {
	db     *DB
	tx     *sql.Tx
	misses []string // statements to prepare once the transaction is over
}

// inTx runs fn in a write transaction, committing when it returns nil and
// running it again (a bounded number of times) after a deadlock or a busy
// database, so fn must be free of side effects outside the transaction.
func (db *DB) inTx(ctx context.Context, fn func(*Tx) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt*attempt) * 10 * time.Millisecond):
			}
		}
		err = db.tryTx(ctx, fn)
		if err == nil || !db.dialect.isRetryable(err) {
			return err
		}
	}
	return err
}

func (db *DB) tryTx(ctx context.Context, fn func(*Tx) error) (err error) {
	sqlTx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	tx := &Tx{db: db, tx: sqlTx}
	defer func() {
		if len(tx.misses) > 0 {
			defer db.prepare(ctx, tx.misses)
		}
		if p := recover(); p != nil {
			sqlTx.Rollback()
			panic(p)
		}
		if err != nil {
			sqlTx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// stmt returns q prepared on the SQLite writer, so that hot statements are
// compiled once rather than once per call; nil means "not prepared yet, run
// it directly". The writer has a single connection, which this transaction
// holds, so a statement cannot be prepared on it now: it is noted and
// prepared once the transaction has let the connection go. PostgreSQL's
// driver caches prepared statements itself.
func (tx *Tx) stmt(ctx context.Context, q string) *sql.Stmt {
	if tx.db.dialect.cachesStatements() {
		return nil
	}
	tx.db.stmtMu.Lock()
	s, ok := tx.db.stmts[q]
	tx.db.stmtMu.Unlock()
	if ok {
		return tx.tx.StmtContext(ctx, s)
	}
	tx.misses = append(tx.misses, q)
	return nil
}

// prepare prepares statements noted by a finished transaction.
func (db *DB) prepare(ctx context.Context, qs []string) {
	for _, q := range qs {
		db.stmtMu.Lock()
		_, ok := db.stmts[q]
		db.stmtMu.Unlock()
		if ok {
			continue
		}
		s, err := db.write.PrepareContext(ctx, q)
		if err != nil {
			continue // it runs unprepared, as before
		}
		db.stmtMu.Lock()
		if _, ok := db.stmts[q]; ok {
			s.Close()
		} else {
			db.stmts[q] = s
		}
		db.stmtMu.Unlock()
	}
}

func (tx *Tx) exec(ctx context.Context, q string, args ...any) error {
	_, err := tx.execResult(ctx, q, args...)
	return err
}

func (tx *Tx) execResult(ctx context.Context, q string, args ...any) (sql.Result, error) {
	q = tx.db.dialect.rebind(q)
	if s := tx.stmt(ctx, q); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return tx.tx.ExecContext(ctx, q, args...)
}

func (tx *Tx) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	q = tx.db.dialect.rebind(q)
	if s := tx.stmt(ctx, q); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return tx.tx.QueryContext(ctx, q, args...)
}

func (tx *Tx) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	q = tx.db.dialect.rebind(q)
	if s := tx.stmt(ctx, q); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return tx.tx.QueryRowContext(ctx, q, args...)
}

func (db *DB) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return db.read.QueryContext(ctx, db.dialect.rebind(q), args...)
}

func (db *DB) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return db.read.QueryRowContext(ctx, db.dialect.rebind(q), args...)
}

// newID returns a 32-character id that sorts by creation time, which keeps
// inserts at the end of primary-key indexes.
func newID(t time.Time) string {
	var b [16]byte
	ns := uint64(t.UnixNano())
	for i := 7; i >= 0; i-- {
		b[i] = byte(ns)
		ns >>= 8
	}
	if _, err := rand.Read(b[8:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// micros and fromMicros convert between times and the stored integers.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(v sql.NullInt64) time.Time {
	if !v.Valid || v.Int64 == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

func nullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// RawCommitRate measures the database's raw limit: n single-row inserts,
// each its own committed transaction, with the same settings the store
// uses. The benchmark prints it beside the ingestion rate.
func (db *DB) RawCommitRate(ctx context.Context, n int) (float64, error) {
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS bench_raw (id TEXT PRIMARY KEY, v TEXT NOT NULL, at BIGINT NOT NULL)`); err != nil {
		return 0, fmt.Errorf("store: raw commit rate: %w", err)
	}
	defer db.write.ExecContext(context.WithoutCancel(ctx), `DROP TABLE bench_raw`)
	start := time.Now()
	for i := 0; i < n; i++ {
		now := db.clock.Now()
		if err := db.inTx(ctx, func(tx *Tx) error {
			return tx.exec(ctx, `INSERT INTO bench_raw (id, v, at) VALUES (?, ?, ?)`, newID(now), "x", micros(now))
		}); err != nil {
			return 0, fmt.Errorf("store: raw commit rate: %w", err)
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// Analyze refreshes the planner's statistics, as autovacuum would in time;
// the benchmark calls it after a bulk load so queries are planned for the
// data as it is.
func (db *DB) Analyze(ctx context.Context) error {
	_, err := db.write.ExecContext(ctx, `ANALYZE`)
	return wrap("analyze", err)
}

// scanStrings reads rows of one text column, and closes them.
func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
