package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	switchboard "github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/internal/bufpool"
	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

const (
	defaultVisibility = 30 * time.Second
	defaultPoll       = 500 * time.Millisecond
	defaultMaxBatch   = 512
	// ackChunk keeps IN lists well under SQLite's bound-parameter limit.
	ackChunk = 500
)

// SQLiteOption configures OpenSQLite.
type SQLiteOption func(*sqliteOptions)

type sqliteOptions struct {
	visibility time.Duration
	poll       time.Duration
	maxBatch   int
	fullSync   bool
}

// WithVisibility sets how long a received entry stays hidden from other
// receivers; an entry not acked by then is delivered again. Default 30s.
func WithVisibility(d time.Duration) SQLiteOption {
	return func(o *sqliteOptions) {
		if d > 0 {
			o.visibility = d
		}
	}
}

// WithPollInterval sets how often a waiting Receive looks for entries whose
// lease expired (and for entries written by another process). Default 500ms.
func WithPollInterval(d time.Duration) SQLiteOption {
	return func(o *sqliteOptions) {
		if d > 0 {
			o.poll = d
		}
	}
}

// WithMaxBatch bounds how many enqueues share one transaction. Default 512.
func WithMaxBatch(n int) SQLiteOption {
	return func(o *sqliteOptions) {
		if n > 0 {
			o.maxBatch = n
		}
	}
}

// WithFullSync makes every commit fsync (PRAGMA synchronous=FULL), so an
// acknowledged enqueue survives power loss and OS crashes, not only a crash
// of the process. Group commit pays one fsync per batch, not per entry.
func WithFullSync() SQLiteOption {
	return func(o *sqliteOptions) { o.fullSync = true }
}

// SQLite is a switchboard.Queue kept in a table of its own SQLite file.
//
// Enqueues are group-committed: one writer goroutine inserts every request
// waiting at that moment in a single transaction, so thousands of concurrent
// webhook handlers share a few commits per second instead of queueing for one
// commit each. Receive leases entries (lease_until) rather than deleting them;
// a lease that runs out without an Ack makes the entry visible again, which
// is how entries held by a consumer that died are delivered again. A
// process that opens the file while no other has it open (path+".lock")
// releases every lease at once: their holders are gone, so a restart after
// a crash does not wait out the visibility timeout.
type SQLite struct {
	opts sqliteOptions
	w    *sql.DB  // the one writer connection: enqueue batches, claims, acks
	r    *sql.DB  // readers, so Depth never waits behind a batch
	lock *os.File // held while open: tells a later opener whether it is alone

	insertStmt, countStmt, leaseStmt *sql.Stmt

	reqs       chan *enqueueReq
	closing    chan struct{}
	writerDone chan struct{}
	closeOnce  sync.Once
	closeErr   error

	mu   sync.Mutex
	wake chan struct{} // closed and replaced after each commit of new entries

	// next is the channel offered entries first: the one after the last
	// channel served, so that with a small max, channels take turns.
	next atomic.Uint64

	// counters for benchmarks and tests
	commits atomic.Int64
	entries atomic.Int64
}

var _ switchboard.Queue = (*SQLite)(nil)

type enqueueReq struct {
	ctx     context.Context
	ch      switchboard.Channel
	payload []byte
	done    chan error // buffered: the writer never blocks on a caller that left
}

const sqliteSchema = `
CREATE TABLE IF NOT EXISTS inbound_queue (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	channel     TEXT    NOT NULL,
	payload     BLOB    NOT NULL,
	enqueued_at INTEGER NOT NULL,
	lease_until INTEGER
);
CREATE INDEX IF NOT EXISTS inbound_queue_channel ON inbound_queue (channel, id, lease_until);
`

const insertSQL = `INSERT INTO inbound_queue (channel, payload, enqueued_at) VALUES (?, ?, ?)`

// OpenSQLite opens (creating if needed) the queue file at path, which must
// be a file of its own: the queue's write rate would otherwise contend with
// the store's writer. ctx bounds the opening only.
func OpenSQLite(ctx context.Context, path string, opts ...SQLiteOption) (*SQLite, error) {
	o := sqliteOptions{visibility: defaultVisibility, poll: defaultPoll, maxBatch: defaultMaxBatch}
	for _, f := range opts {
		f(&o)
	}
	if path == "" || strings.ContainsRune(path, '?') || strings.HasPrefix(path, ":memory:") {
		return nil, fmt.Errorf("queue: open sqlite: invalid path %q (need a file path without '?')", path)
	}
	syncMode := "NORMAL"
	if o.fullSync {
		syncMode = "FULL"
	}
	// _txlock=immediate takes the write lock at BEGIN, so busy_timeout applies
	// instead of a lock upgrade failing at once when another process writes.
	params := "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(" + syncMode + ")"
	// A small page cache: the writer works at the queue's two ends and the
	// readers only count, while SQLite's default (2 MB a connection, twice
	// that under the pure-Go driver's allocator) filled with the backlog.
	w, err := sql.Open("sqlite", path+params+"&_pragma=cache_size(256)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("queue: open sqlite %s: %w", path, err)
	}
	// One writer connection: SQLite serialises writers anyway, and one
	// connection keeps writes from waiting on each other's busy timeouts.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if _, err := w.ExecContext(ctx, sqliteSchema); err != nil {
		w.Close()
		return nil, fmt.Errorf("queue: open sqlite %s: create schema: %w", path, err)
	}
	lock, err := lockConsumers(path+".lock", func() error {
		if _, err := w.ExecContext(ctx, `UPDATE inbound_queue SET lease_until = NULL WHERE lease_until IS NOT NULL`); err != nil {
			return fmt.Errorf("release leases of dead processes: %w", err)
		}
		return nil
	})
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("queue: open sqlite %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", path+params+"&_pragma=cache_size(64)&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		lock.Close()
		return nil, fmt.Errorf("queue: open sqlite %s: readers: %w", path, err)
	}
	r.SetMaxOpenConns(2)
	if err := r.PingContext(ctx); err != nil {
		w.Close()
		r.Close()
		lock.Close()
		return nil, fmt.Errorf("queue: open sqlite %s: readers: %w", path, err)
	}
	countSQL, leaseSQL := claimSQL(len(switchboard.Channels))
	var stmts [3]*sql.Stmt
	for i, text := range []string{insertSQL, countSQL, leaseSQL} {
		if stmts[i], err = w.PrepareContext(ctx, text); err != nil {
			w.Close()
			r.Close()
			lock.Close()
			return nil, fmt.Errorf("queue: open sqlite %s: prepare: %w", path, err)
		}
	}
	q := &SQLite{
		insertStmt: stmts[0],
		countStmt:  stmts[1],
		leaseStmt:  stmts[2],
		opts:       o,
		w:          w,
		r:          r,
		lock:       lock,
		reqs:       make(chan *enqueueReq, o.maxBatch),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
		wake:       make(chan struct{}),
	}
	go q.writeLoop()
	return q, nil
}

// Enqueue returns once the payload is committed. If ctx ends first it
// returns ctx's error, and the entry may still be committed: delivery is at
// least once, and ingest deduplicates on the provider id.
func (q *SQLite) Enqueue(ctx context.Context, ch switchboard.Channel, payload []byte) error {
	if err := validate(ch); err != nil {
		return err
	}
	select {
	case <-q.closing:
		return ErrClosed
	default:
	}
	// Copy: the writer may still read the payload after a cancelled caller
	// has reused its buffer. The copy is pooled; the writer gives it back
	// once the batch is written. Non-nil, because NOT NULL would reject nil.
	buf := bufpool.Get()
	buf.Write(payload)
	p := buf.Bytes()
	if p == nil {
		p = []byte{}
	}
	req := &enqueueReq{ctx: ctx, ch: ch, payload: p, done: make(chan error, 1)}
	select {
	case q.reqs <- req:
	case <-q.closing:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("queue: enqueue: %w", ctx.Err())
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("queue: enqueue: %w", ctx.Err())
	case <-q.writerDone:
		// The writer may have answered just before it stopped.
		select {
		case err := <-req.done:
			return err
		default:
			return ErrClosed
		}
	}
}

func (q *SQLite) writeLoop() {
	defer close(q.writerDone)
	batch := make([]*enqueueReq, 0, q.opts.maxBatch)
	for {
		select {
		case <-q.closing:
			for {
				select {
				case req := <-q.reqs:
					req.done <- ErrClosed
				default:
					return
				}
			}
		case req := <-q.reqs:
			batch = append(batch[:0], req)
			// Take whatever else is waiting, without waiting for more: under
			// light load an entry is committed at once, under heavy load the
			// requests that arrived during the previous commit share this one.
		gather:
			for len(batch) < q.opts.maxBatch {
				select {
				case req := <-q.reqs:
					batch = append(batch, req)
				default:
					break gather
				}
			}
			q.commitBatch(batch)
			for _, req := range batch {
				bufpool.PutBytes(req.payload) // SQLite has copied it
			}
			clear(batch)
		}
	}
}

// commitBatch writes the batch in one transaction and answers every caller.
func (q *SQLite) commitBatch(batch []*enqueueReq) {
	live := batch[:0:0]
	for _, req := range batch {
		if err := req.ctx.Err(); err != nil {
			req.done <- fmt.Errorf("queue: enqueue: %w", err) // caller has gone: don't write a duplicate-to-be
			continue
		}
		live = append(live, req)
	}
	if len(live) == 0 {
		return
	}
	err := q.insert(live)
	if err != nil && len(live) > 1 {
		// One bad request must not fail its neighbours: retry one by one.
		for _, req := range live {
			e := q.insert([]*enqueueReq{req})
			if e == nil {
				q.signal()
			}
			req.done <- e
		}
		return
	}
	if err == nil {
		q.signal()
	}
	for _, req := range live {
		req.done <- err
	}
}

func (q *SQLite) insert(batch []*enqueueReq) (err error) {
	// A batch serves many callers, so no single caller's ctx may abort it;
	// busy_timeout bounds how long it can wait.
	ctx := context.Background()
	tx, err := q.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("queue: enqueue: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	stmt := tx.StmtContext(ctx, q.insertStmt)
	now := time.Now().UnixMilli()
	for _, req := range batch {
		if _, err = stmt.ExecContext(ctx, string(req.ch), req.payload, now); err != nil {
			return fmt.Errorf("queue: enqueue: insert: %w", err)
		}
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("queue: enqueue: commit: %w", err)
	}
	q.commits.Add(1)
	q.entries.Add(int64(len(batch)))
	return nil
}

// signal wakes every Receive waiting for entries.
func (q *SQLite) signal() {
	q.mu.Lock()
	close(q.wake)
	q.wake = make(chan struct{})
	q.mu.Unlock()
}

func (q *SQLite) waiter() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.wake
}

// Receive waits until entries are visible, leases up to max of them for the
// visibility timeout and returns them, taken fairly across channels.
func (q *SQLite) Receive(ctx context.Context, max int) ([]switchboard.Delivery, error) {
	if err := validateMax(max); err != nil {
		return nil, err
	}
	for {
		select {
		case <-q.closing:
			return nil, ErrClosed
		default:
		}
		// Take the wake-up channel before looking, so a commit between the
		// look and the wait is not missed.
		wake := q.waiter()
		ds, err := q.claim(ctx, max)
		if err != nil && ctx.Err() != nil {
			// The driver reports an interrupted statement in its own words.
			return nil, fmt.Errorf("queue: receive: %w", ctx.Err())
		}
		if err != nil || len(ds) > 0 {
			return ds, err
		}
		// The poll finds expired leases and rows written by other processes.
		t := time.NewTimer(q.opts.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("queue: receive: %w", ctx.Err())
		case <-q.closing:
			t.Stop()
			return nil, ErrClosed
		case <-wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// claimSQL builds the two statements a claim runs, for every channel at
// once so a claim costs two statements whatever the number of channels.
// count: ?1 now, ?2 max, then one channel each; lease: ?1 lease_until,
// ?2 now, then a (channel, limit) pair each.
func claimSQL(n int) (count, lease string) {
	var c, l strings.Builder
	c.WriteString("SELECT ")
	l.WriteString("UPDATE inbound_queue SET lease_until = ?1 WHERE id IN (")
	for i := 0; i < n; i++ {
		if i > 0 {
			c.WriteString(", ")
			l.WriteString(" UNION ALL ")
		}
		fmt.Fprintf(&c, "(SELECT count(*) FROM (SELECT 1 FROM inbound_queue WHERE channel = ?%d AND (lease_until IS NULL OR lease_until <= ?1) LIMIT ?2))", 3+i)
		fmt.Fprintf(&l, "SELECT id FROM (SELECT id FROM inbound_queue WHERE channel = ?%d AND (lease_until IS NULL OR lease_until <= ?2) ORDER BY id LIMIT ?%d)", 3+2*i, 4+2*i)
	}
	l.WriteString(") RETURNING id, channel, payload")
	return c.String(), l.String()
}

// claim leases up to max visible entries in one transaction. It first
// counts, per channel, how many entries are ready (bounded by max), splits
// max fairly among those channels, then leases each channel's oldest entries.
func (q *SQLite) claim(ctx context.Context, max int) (ds []switchboard.Delivery, err error) {
	tx, err := q.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("queue: receive: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	now := time.Now().UnixMilli()
	chans := switchboard.Channels
	avail := make([]int, len(chans))
	args := make([]any, 0, 2+2*len(chans))
	args = append(args, now, max)
	dest := make([]any, len(chans))
	for i, ch := range chans {
		args = append(args, string(ch))
		dest[i] = &avail[i]
	}
	if err = tx.StmtContext(ctx, q.countStmt).QueryRowContext(ctx, args...).Scan(dest...); err != nil {
		return nil, fmt.Errorf("queue: receive: count: %w", err)
	}
	total := 0
	for _, n := range avail {
		total += n
	}
	if total == 0 {
		_ = tx.Rollback()
		return nil, nil
	}
	start := int(q.next.Load() % uint64(len(chans)))
	shares := fairShares(avail, max, start)
	for k := range chans {
		if i := (start + k) % len(chans); shares[i] > 0 {
			q.next.Store(uint64(i + 1))
		}
	}
	args = append(args[:0], now+q.opts.visibility.Milliseconds(), now)
	for i, ch := range chans {
		args = append(args, string(ch), shares[i])
	}
	rows, err := tx.StmtContext(ctx, q.leaseStmt).QueryContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("queue: receive: lease: %w", err)
	}
	ds = make([]switchboard.Delivery, 0, min(max, total))
	ids := make([]int64, 0, cap(ds))
	for rows.Next() {
		var id int64
		var ch string
		var p []byte
		if err = rows.Scan(&id, &ch, &p); err != nil {
			rows.Close()
			return nil, fmt.Errorf("queue: receive: scan: %w", err)
		}
		if p == nil {
			p = []byte{}
		}
		ids = append(ids, id)
		ds = append(ds, switchboard.Delivery{ID: strconv.FormatInt(id, 10), Channel: switchboard.Channel(ch), Payload: p})
	}
	if err = rows.Err(); err != nil {
		rows.Close()
		return nil, fmt.Errorf("queue: receive: lease: %w", err)
	}
	rows.Close()
	if err = tx.Commit(); err != nil {
		return nil, fmt.Errorf("queue: receive: commit: %w", err)
	}
	// Oldest first overall: ids grow with enqueue order.
	sort.Sort(byID{ds, ids})
	return ds, nil
}

type byID struct {
	ds  []switchboard.Delivery
	ids []int64
}

func (b byID) Len() int           { return len(b.ds) }
func (b byID) Less(i, j int) bool { return b.ids[i] < b.ids[j] }
func (b byID) Swap(i, j int) {
	b.ds[i], b.ds[j] = b.ds[j], b.ds[i]
	b.ids[i], b.ids[j] = b.ids[j], b.ids[i]
}

// Ack deletes the entries. Ids are never reused (AUTOINCREMENT), so a late
// Ack can only delete the entry it was given; acking an entry whose lease
// expired and that another consumer now holds is harmless at least once.
func (q *SQLite) Ack(ctx context.Context, ds []switchboard.Delivery) (err error) {
	if len(ds) == 0 {
		return nil
	}
	ids := make([]any, len(ds))
	for i, d := range ds {
		id, perr := strconv.ParseInt(d.ID, 10, 64)
		if perr != nil {
			return fmt.Errorf("queue: ack: delivery id %q: %w", d.ID, perr)
		}
		ids[i] = id
	}
	select {
	case <-q.closing:
		return ErrClosed
	default:
	}
	tx, err := q.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("queue: ack: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	for len(ids) > 0 {
		n := min(len(ids), ackChunk)
		chunk := ids[:n]
		ids = ids[n:]
		marks := strings.Repeat("?,", len(chunk))
		if _, err = tx.ExecContext(ctx, `DELETE FROM inbound_queue WHERE id IN (`+marks[:len(marks)-1]+`)`, chunk...); err != nil {
			return fmt.Errorf("queue: ack: delete: %w", err)
		}
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("queue: ack: commit: %w", err)
	}
	return nil
}

// Depth counts entries not yet acked, leased or not.
func (q *SQLite) Depth(ctx context.Context) (int64, error) {
	select {
	case <-q.closing:
		return 0, ErrClosed
	default:
	}
	var n int64
	if err := q.r.QueryRowContext(ctx, `SELECT count(*) FROM inbound_queue`).Scan(&n); err != nil {
		return 0, fmt.Errorf("queue: depth: %w", err)
	}
	return n, nil
}

// Close stops the writer: enqueues not yet committed fail with ErrClosed,
// waiting receivers return ErrClosed. It is safe to call more than once.
func (q *SQLite) Close() error {
	q.closeOnce.Do(func() {
		close(q.closing)
		<-q.writerDone
		if err := errors.Join(q.insertStmt.Close(), q.countStmt.Close(), q.leaseStmt.Close(), q.w.Close(), q.r.Close(), q.lock.Close()); err != nil {
			q.closeErr = fmt.Errorf("queue: close: %w", err)
		}
	})
	return q.closeErr
}
