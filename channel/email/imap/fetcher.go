// Package imap reads inbound e-mail from IMAP mailboxes (channels.md §5,
// "IMAP"). A Fetcher keeps one connection per configured mailbox, hands
// every new message's raw bytes to a Deliver callback that returns once the
// message is durable, records how far it got in a State, and only then
// marks the message on the server: flagged \Seen, or moved to a processed
// folder. A crash at any point therefore re-delivers rather than loses; the
// caller dedupes by Message-ID and by mailbox+UIDVALIDITY+UID.
//
// New mail is noticed with IDLE when the server offers it, else by polling.
package imap

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

// Message is one fetched message, exactly as the server stores it.
type Message struct {
	Mailbox     string // Mailbox.Name
	UIDValidity uint32
	UID         uint32
	Raw         []byte
}

// State persists, per mailbox, UIDVALIDITY and the last UID handed over, so
// that nothing is fetched twice or skipped across restarts.
type State interface {
	// Load returns zeros for a mailbox never saved.
	Load(ctx context.Context, mailbox string) (uidValidity, lastUID uint32, err error)
	Save(ctx context.Context, mailbox string, uidValidity, lastUID uint32) error
}

// Deliver takes a message and returns nil once it is durable (queued). An
// error leaves the message unmarked; it is offered again later.
type Deliver func(ctx context.Context, m Message) error

// Defaults for the Fetcher's zero fields.
const (
	DefaultPoll      = 60 * time.Second
	DefaultBatchSize = 50
	DefaultMaxSize   = 40 << 20
	// IdleRefresh is how long one IDLE lasts before it is re-issued: RFC
	// 2177 lets servers drop a client idle for 30 minutes.
	IdleRefresh = 25 * time.Minute

	// chunkBytes bounds the bodies fetched in one command, so that a batch
	// of large messages is not all held in memory at once.
	chunkBytes = 64 << 20
)

// Fetcher fetches new mail from Mailboxes. Set the exported fields, then
// call Run.
type Fetcher struct {
	Mailboxes []Mailbox
	State     State
	Deliver   Deliver
	Logger    *slog.Logger  // nil: slog.Default()
	Poll      time.Duration // interval without IDLE; 0: DefaultPoll
	BatchSize int           // messages per FETCH; 0: DefaultBatchSize
	// MaxSize: larger messages (by RFC822.SIZE) are skipped, logged and
	// recorded as handled, so they are not retried forever; 0: DefaultMaxSize.
	MaxSize int64
	// MinBackoff and MaxBackoff bound the wait before reconnecting after an
	// error, doubling from one to the other with jitter; 0: 1s and 2min.
	MinBackoff, MaxBackoff time.Duration

	// Test hooks: pretend the server lacks IDLE or MOVE.
	noIdle, noMove bool
}

// Run fetches from every mailbox concurrently until ctx ends, reconnecting
// after errors with exponential backoff. It returns nil when ctx ends, and
// an error only for a configuration it cannot run.
func (f *Fetcher) Run(ctx context.Context) error {
	if f.State == nil || f.Deliver == nil {
		return errors.New("imap: Fetcher needs State and Deliver")
	}
	if len(f.Mailboxes) == 0 {
		return errors.New("imap: Fetcher has no mailboxes")
	}
	seen := make(map[string]bool)
	for _, mb := range f.Mailboxes {
		if mb.Name == "" || mb.Addr == "" {
			return fmt.Errorf("imap: mailbox %s was not made by ParseURL", mb)
		}
		if seen[mb.Name] {
			return fmt.Errorf("imap: mailbox %s configured twice", mb.Name)
		}
		seen[mb.Name] = true
	}
	var wg sync.WaitGroup
	for _, mb := range f.Mailboxes {
		wg.Go(func() { f.runMailbox(ctx, mb) })
	}
	wg.Wait()
	return nil
}

func (f *Fetcher) logger() *slog.Logger {
	if f.Logger != nil {
		return f.Logger
	}
	return slog.Default()
}

// runMailbox keeps one mailbox's session going until ctx ends.
func (f *Fetcher) runMailbox(ctx context.Context, mb Mailbox) {
	log := f.logger().With("mailbox", mb.Name)
	minB, maxB := cmp.Or(f.MinBackoff, time.Second), cmp.Or(f.MaxBackoff, 2*time.Minute)
	backoff := minB
	for ctx.Err() == nil {
		healthy := false
		err := f.session(ctx, mb, log, func() { healthy = true })
		if ctx.Err() != nil {
			return
		}
		if healthy {
			// The last session worked for a while: start the backoff over.
			backoff = minB
		}
		// Jitter in [d/2, d) so that mailboxes on one server that failed
		// together do not reconnect together.
		wait := backoff/2 + rand.N(backoff/2+1)
		log.Error("imap: session failed; reconnecting", "err", err, "retry_in", wait.Round(time.Millisecond))
		backoff = min(backoff*2, maxB)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// session is one connection: connect, log in, select, then fetch and wait
// for more until an error or ctx ends. It calls healthy once it has fetched
// everything there was.
func (f *Fetcher) session(ctx context.Context, mb Mailbox, log *slog.Logger, healthy func()) error {
	newMail := make(chan struct{}, 1)
	opts := &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					select {
					case newMail <- struct{}{}:
					default:
					}
				}
			},
		},
	}
	c, err := dial(ctx, mb, opts)
	if err != nil {
		return err
	}
	// go-imap takes no contexts: closing the connection unblocks whatever
	// command is waiting when ctx ends.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	defer c.Close()

	if err := login(c, mb); err != nil {
		return err
	}
	if mb.Processed != "" {
		if err := c.Create(mb.Processed, nil).Wait(); err != nil && !isAlreadyExists(err) {
			// Not fatal here: the first move will fail with the reason.
			log.Warn("imap: cannot create the processed folder", "folder", mb.Processed, "err", err)
		}
	}
	sel, err := c.Select(mb.Folder, nil).Wait()
	if err != nil {
		return fmt.Errorf("imap: select %q: %w", mb.Folder, err)
	}
	if sel.UIDValidity == 0 {
		return fmt.Errorf("imap: select %q: server sent no UIDVALIDITY", mb.Folder)
	}
	s := &session{f: f, c: c, mb: mb, log: log, validity: sel.UIDValidity}
	storedValidity, last, err := f.State.Load(ctx, mb.Name)
	if err != nil {
		return fmt.Errorf("imap: load state: %w", err)
	}
	if storedValidity == sel.UIDValidity {
		s.last = last
	} else {
		// Unknown or changed UIDVALIDITY: stored UIDs mean nothing now.
		// Start over from what is pending below UIDNEXT, see resync.
		if storedValidity != 0 {
			log.Warn("imap: UIDVALIDITY changed; resyncing", "old", storedValidity, "new", sel.UIDValidity)
		}
		if err := s.resync(ctx, uint32(sel.UIDNext)); err != nil {
			return err
		}
	}
	log.Info("imap: connected", "tls", mb.TLS.String(), "uidvalidity", s.validity, "last_uid", s.last, "idle", s.canIdle())

	for {
		if err := s.fetchNew(ctx); err != nil {
			return err
		}
		healthy()
		if err := s.wait(ctx, newMail); err != nil {
			return err
		}
	}
}

// dial connects and secures the connection as mb.TLS says.
func dial(ctx context.Context, mb Mailbox, opts *imapclient.Options) (*imapclient.Client, error) {
	tlsConf := &tls.Config{ServerName: mb.Host, InsecureSkipVerify: mb.Insecure, MinVersion: tls.VersionTLS12}
	d := &net.Dialer{Timeout: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", mb.Addr)
	if err != nil {
		return nil, fmt.Errorf("imap: dial %s: %w", mb.Addr, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	switch mb.TLS {
	case ImplicitTLS:
		tc := tls.Client(conn, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("imap: TLS with %s: %w", mb.Addr, err)
		}
		c := imapclient.New(tc, opts)
		return c, greeting(c, mb)
	case StartTLSRequired:
		return startTLS(conn, mb, tlsConf, opts)
	case StartTLSOff:
		c := imapclient.New(conn, opts)
		return c, greeting(c, mb)
	}
	// StartTLSAuto: go-imap can only upgrade a connection it has not yet
	// read from, so look at the capabilities on this one and, if STARTTLS
	// is offered, dial again to use it.
	c := imapclient.New(conn, opts)
	if err := greeting(c, mb); err != nil {
		return nil, err
	}
	if !c.Caps().Has(goimap.CapStartTLS) {
		// Someone on the path can strip the offer; the password must not
		// follow in clear text, except to this machine or when the URL
		// says so (?starttls=off).
		if !isLoopback(mb.Host) {
			c.Close()
			return nil, fmt.Errorf("imap: %s offers no STARTTLS: refusing to log in in clear text (use imaps://, or ?starttls=off to allow it)", mb.Addr)
		}
		return c, nil
	}
	c.Close()
	conn, err = d.DialContext(ctx, "tcp", mb.Addr)
	if err != nil {
		return nil, fmt.Errorf("imap: dial %s: %w", mb.Addr, err)
	}
	stop2 := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop2()
	return startTLS(conn, mb, tlsConf, opts)
}

func startTLS(conn net.Conn, mb Mailbox, tlsConf *tls.Config, opts *imapclient.Options) (*imapclient.Client, error) {
	o := *opts
	o.TLSConfig = tlsConf
	c, err := imapclient.NewStartTLS(conn, &o)
	if err != nil {
		return nil, fmt.Errorf("imap: STARTTLS with %s: %w", mb.Addr, err)
	}
	return c, nil
}

func greeting(c *imapclient.Client, mb Mailbox) error {
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return fmt.Errorf("imap: greeting from %s: %w", mb.Addr, err)
	}
	return nil
}

// login prefers AUTHENTICATE PLAIN, which keeps the password out of a
// command line some servers log, and falls back to LOGIN.
func login(c *imapclient.Client, mb Mailbox) error {
	var err error
	caps := c.Caps()
	switch {
	case caps.Has(goimap.AuthCap(sasl.Plain)):
		err = c.Authenticate(sasl.NewPlainClient("", mb.Username, mb.password))
	case caps.Has(goimap.CapLoginDisabled):
		return fmt.Errorf("imap: log in to %s as %s: server allows neither AUTHENTICATE PLAIN nor LOGIN (STARTTLS needed?)", mb.Addr, mb.Username)
	default:
		err = c.Login(mb.Username, mb.password).Wait()
	}
	if err != nil {
		return fmt.Errorf("imap: log in to %s as %s: %w", mb.Addr, mb.Username, err)
	}
	return nil
}

func isAlreadyExists(err error) bool {
	var ie *goimap.Error
	return errors.As(err, &ie) && ie.Code == goimap.ResponseCodeAlreadyExists
}

// session is the state of one connection to one mailbox.
type session struct {
	f        *Fetcher
	c        *imapclient.Client
	mb       Mailbox
	log      *slog.Logger
	validity uint32
	last     uint32 // highest UID handed over (or skipped as too large)
}

func (s *session) canIdle() bool { return !s.f.noIdle && s.c.Caps().Has(goimap.CapIdle) }
func (s *session) canMove() bool { return !s.f.noMove && s.c.Caps().Has(goimap.CapMove) }

// resync starts over after UIDVALIDITY changed or was never seen. It hands
// over the messages below uidNext that are still pending (every message
// when they are moved once processed, since what stays in the folder is
// unprocessed; only those not \Seen otherwise, since a flagged message was
// handled, or read by a person, before), then records uidNext-1 as
// handled. Messages from uidNext on are new and fetched in full by
// fetchNew. Refetching a message already delivered is safe: the caller
// dedupes.
func (s *session) resync(ctx context.Context, uidNext uint32) error {
	if uidNext == 0 { // UIDNEXT is optional in IMAP4rev1: find the top UID.
		all, err := s.c.UIDSearch(&goimap.SearchCriteria{}, nil).Wait()
		if err != nil {
			return fmt.Errorf("imap: search: %w", err)
		}
		uidNext = 1
		for _, u := range all.AllUIDs() {
			uidNext = max(uidNext, uint32(u)+1)
		}
	}
	s.last = 0
	if uidNext > 1 {
		crit := &goimap.SearchCriteria{UID: []goimap.UIDSet{{{Start: 1, Stop: goimap.UID(uidNext - 1)}}}}
		if s.mb.Processed == "" {
			crit.NotFlag = []goimap.Flag{goimap.FlagSeen}
		}
		if err := s.fetchMatching(ctx, crit); err != nil {
			return err
		}
	}
	s.last = max(s.last, uidNext-1)
	if err := s.f.State.Save(ctx, s.mb.Name, s.validity, s.last); err != nil {
		return fmt.Errorf("imap: save state: %w", err)
	}
	return nil
}

// fetchNew hands over every message above s.last.
func (s *session) fetchNew(ctx context.Context) error {
	return s.fetchMatching(ctx, &goimap.SearchCriteria{
		UID: []goimap.UIDSet{{{Start: goimap.UID(s.last + 1), Stop: 0}}}, // last+1:*
	})
}

func (s *session) fetchMatching(ctx context.Context, crit *goimap.SearchCriteria) error {
	res, err := s.c.UIDSearch(crit, nil).Wait()
	if err != nil {
		return fmt.Errorf("imap: search: %w", err)
	}
	var uids []goimap.UID
	for _, u := range res.AllUIDs() {
		// n:* always matches the highest message, even one below n.
		if uint32(u) > s.last {
			uids = append(uids, u)
		}
	}
	slices.Sort(uids)
	batch := cmp.Or(s.f.BatchSize, DefaultBatchSize)
	for i := 0; i < len(uids); i += batch {
		if err := s.fetchBatch(ctx, uids[i:min(i+batch, len(uids))]); err != nil {
			return err
		}
	}
	return nil
}

// fetchBatch handles uids (ascending): sizes first, so that oversized
// messages are never downloaded, then bodies in chunks bounded by bytes.
func (s *session) fetchBatch(ctx context.Context, uids []goimap.UID) error {
	bufs, err := s.c.Fetch(goimap.UIDSetNum(uids...), &goimap.FetchOptions{UID: true, RFC822Size: true}).Collect()
	if err != nil {
		return fmt.Errorf("imap: fetch sizes: %w", err)
	}
	sizes := make(map[goimap.UID]int64, len(bufs))
	for _, b := range bufs {
		sizes[b.UID] = b.RFC822Size
	}
	maxSize := cmp.Or(s.f.MaxSize, DefaultMaxSize)
	var chunk []goimap.UID
	var n int64
	for _, uid := range uids {
		size, ok := sizes[uid]
		if !ok {
			continue // expunged since the search
		}
		if size > maxSize {
			// Everything before it first, so that state only moves forward.
			if err := s.deliverChunk(ctx, chunk); err != nil {
				return err
			}
			chunk, n = nil, 0
			s.log.Warn("imap: message too large; skipped", "uid", uint32(uid), "size", size, "max", maxSize)
			if err := s.save(ctx, uint32(uid)); err != nil {
				return err
			}
			continue
		}
		if len(chunk) > 0 && n+size > chunkBytes {
			if err := s.deliverChunk(ctx, chunk); err != nil {
				return err
			}
			chunk, n = nil, 0
		}
		chunk = append(chunk, uid)
		n += size
	}
	return s.deliverChunk(ctx, chunk)
}

var bodySection = &goimap.FetchItemBodySection{Peek: true} // BODY.PEEK[]: leaves \Seen alone

// deliverChunk fetches the bodies of uids and, in UID order, delivers each,
// saves the state, then marks it. Marks are pipelined and awaited at the
// end: they matter only once state is saved, which already keeps the
// message from being fetched again.
func (s *session) deliverChunk(ctx context.Context, uids []goimap.UID) error {
	if len(uids) == 0 {
		return nil
	}
	bufs, err := s.c.Fetch(goimap.UIDSetNum(uids...), &goimap.FetchOptions{
		UID: true, BodySection: []*goimap.FetchItemBodySection{bodySection},
	}).Collect()
	if err != nil {
		return fmt.Errorf("imap: fetch bodies: %w", err)
	}
	byUID := make(map[goimap.UID][]byte, len(bufs))
	for _, b := range bufs {
		if raw := b.FindBodySection(bodySection); raw != nil {
			byUID[b.UID] = raw
		}
	}
	var marks []func() error
	waitMarks := func() error {
		for _, w := range marks {
			if err := w(); err != nil {
				return err
			}
		}
		return nil
	}
	for _, uid := range uids {
		raw, ok := byUID[uid]
		if !ok {
			continue // expunged since the search
		}
		m := Message{Mailbox: s.mb.Name, UIDValidity: s.validity, UID: uint32(uid), Raw: raw}
		if err := s.f.Deliver(ctx, m); err != nil {
			// Stop here: this message stays unmarked and above the saved
			// state, so the next attempt offers it again.
			return errors.Join(fmt.Errorf("imap: deliver uid %d: %w", uid, err), waitMarks())
		}
		if err := s.save(ctx, uint32(uid)); err != nil {
			return errors.Join(err, waitMarks())
		}
		w, err := s.mark(uid)
		if err != nil {
			return errors.Join(err, waitMarks())
		}
		marks = append(marks, w)
	}
	return waitMarks()
}

func (s *session) save(ctx context.Context, uid uint32) error {
	if err := s.f.State.Save(ctx, s.mb.Name, s.validity, uid); err != nil {
		return fmt.Errorf("imap: save state at uid %d: %w", uid, err)
	}
	s.last = uid
	return nil
}

// mark sends the command that marks uid processed and returns a function
// that waits for its outcome.
func (s *session) mark(uid goimap.UID) (func() error, error) {
	set := goimap.UIDSetNum(uid)
	if s.mb.Processed == "" {
		cmd := s.c.Store(set, &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Silent: true, Flags: []goimap.Flag{goimap.FlagSeen}}, nil)
		return func() error {
			if err := cmd.Close(); err != nil {
				return fmt.Errorf("imap: flag uid %d \\Seen: %w", uid, err)
			}
			return nil
		}, nil
	}
	if s.canMove() {
		cmd := s.c.Move(set, s.mb.Processed)
		return func() error {
			if _, err := cmd.Wait(); err != nil {
				return fmt.Errorf("imap: move uid %d to %q: %w", uid, s.mb.Processed, err)
			}
			return nil
		}, nil
	}
	// No MOVE: COPY, and only once the copy exists, \Deleted and expunge.
	// (go-imap's own fallback pipelines all three, so a failed COPY would
	// still delete the message.)
	if _, err := s.c.Copy(set, s.mb.Processed).Wait(); err != nil {
		return nil, fmt.Errorf("imap: copy uid %d to %q: %w", uid, s.mb.Processed, err)
	}
	if err := s.c.Store(set, &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Silent: true, Flags: []goimap.Flag{goimap.FlagDeleted}}, nil).Close(); err != nil {
		return nil, fmt.Errorf("imap: flag uid %d \\Deleted: %w", uid, err)
	}
	var exp *imapclient.ExpungeCommand
	if s.c.Caps().Has(goimap.CapUIDPlus) {
		exp = s.c.UIDExpunge(set)
	} else {
		// Without UIDPLUS, EXPUNGE also removes whatever else is \Deleted
		// in this folder: the only way left to finish the move.
		exp = s.c.Expunge()
	}
	if err := exp.Close(); err != nil {
		return nil, fmt.Errorf("imap: expunge uid %d: %w", uid, err)
	}
	return func() error { return nil }, nil
}

// wait returns when there may be new mail: the server said so during IDLE,
// IdleRefresh passed, or, without IDLE, the poll interval passed.
func (s *session) wait(ctx context.Context, newMail <-chan struct{}) error {
	if !s.canIdle() {
		poll := cmp.Or(s.mb.Poll, s.f.Poll, DefaultPoll)
		t := time.NewTimer(poll)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.c.Closed():
			return errors.New("imap: connection closed")
		case <-t.C:
		}
		// NOOP lets the server report what changed and proves the
		// connection is still alive.
		if err := s.c.Noop().Wait(); err != nil {
			return fmt.Errorf("imap: noop: %w", err)
		}
		return nil
	}
	idle, err := s.c.Idle()
	if err != nil {
		return fmt.Errorf("imap: idle: %w", err)
	}
	t := time.NewTimer(IdleRefresh)
	defer t.Stop()
	var cause error
	select {
	case <-ctx.Done():
		cause = ctx.Err()
	case <-s.c.Closed():
		cause = errors.New("imap: connection closed while idling")
	case <-newMail:
	case <-t.C:
	}
	if err := idle.Close(); err != nil && cause == nil {
		return fmt.Errorf("imap: end idle: %w", err)
	}
	if cause != nil {
		return cause
	}
	if err := idle.Wait(); err != nil {
		return fmt.Errorf("imap: idle: %w", err)
	}
	return nil
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
