package imap

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/smtp"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/switchboard-inbox/switchboard/internal/testenv"
)

// imapsPort is where .ci/mail.sh serves implicit TLS, on the IMAP URL's host.
const imapsPort = "1993"

// server is the test IMAP server from SWITCHBOARD_TEST_IMAP_URL.
type server struct {
	host, port, user, pass string
}

func testServer(tb testing.TB) server {
	tb.Helper()
	raw := testenv.URL(tb, testenv.IMAPURL, "IMAP")
	u, err := url.Parse(raw)
	if err != nil {
		tb.Fatalf("%s: %v", testenv.IMAPURL, err)
	}
	pass, _ := u.User.Password()
	return server{host: u.Hostname(), port: u.Port(), user: u.User.Username(), pass: pass}
}

// mailbox is the mailbox URL for folder with query, parsed.
func (s server) mailbox(tb testing.TB, folder, query string) Mailbox {
	tb.Helper()
	u := url.URL{Scheme: "imap", User: url.UserPassword(s.user, s.pass), Host: net.JoinHostPort(s.host, s.port), Path: "/" + folder, RawQuery: query}
	mb, err := ParseURL(u.String())
	if err != nil {
		tb.Fatal(err)
	}
	return mb
}

// admin is a plain IMAP client for setting up and checking folders.
func (s server) admin(tb testing.TB) *imapclient.Client {
	tb.Helper()
	c, err := imapclient.DialInsecure(net.JoinHostPort(s.host, s.port), nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	if err := c.Login(s.user, s.pass).Wait(); err != nil {
		tb.Fatal(err)
	}
	return c
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newFolder creates a uniquely named folder, deleted when the test ends.
func newFolder(tb testing.TB, c *imapclient.Client) string {
	tb.Helper()
	name := "sbtest-" + regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(tb.Name(), "-") + "-" + randHex(4)
	if err := c.Create(name, nil).Wait(); err != nil {
		tb.Fatalf("create %s: %v", name, err)
	}
	tb.Cleanup(func() { c.Delete(name).Wait() })
	return name
}

// testMessage is a small CRLF message; the server hands such bytes back
// unchanged.
func testMessage(id string, body string) []byte {
	return []byte("From: Customer <customer@example.com>\r\n" +
		"To: support@example.com\r\n" +
		"Subject: test " + id + "\r\n" +
		"Message-ID: <" + id + "@example.com>\r\n" +
		"Date: Thu, 26 Nov 2026 06:00:00 +0000\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" + body + "\r\n")
}

func appendMsg(tb testing.TB, c *imapclient.Client, folder string, raw []byte, flags ...goimap.Flag) uint32 {
	tb.Helper()
	cmd := c.Append(folder, int64(len(raw)), &goimap.AppendOptions{Flags: flags})
	if _, err := cmd.Write(raw); err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		tb.Fatal(err)
	}
	data, err := cmd.Wait()
	if err != nil {
		tb.Fatalf("append to %s: %v", folder, err)
	}
	return uint32(data.UID)
}

func uidValidity(tb testing.TB, c *imapclient.Client, folder string) uint32 {
	tb.Helper()
	st, err := c.Status(folder, &goimap.StatusOptions{UIDValidity: true}).Wait()
	if err != nil {
		tb.Fatal(err)
	}
	return st.UIDValidity
}

// folderMessages is every message in folder: UID, flags and bytes.
type stored struct {
	UID  uint32
	Seen bool
	Raw  []byte
}

func folderMessages(tb testing.TB, c *imapclient.Client, folder string) []stored {
	tb.Helper()
	if _, err := c.Select(folder, &goimap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		tb.Fatal(err)
	}
	sec := &goimap.FetchItemBodySection{Peek: true}
	bufs, err := c.Fetch(goimap.UIDSet{{Start: 1, Stop: 0}}, &goimap.FetchOptions{UID: true, Flags: true, BodySection: []*goimap.FetchItemBodySection{sec}}).Collect()
	if err != nil && !strings.Contains(err.Error(), "No matching messages") {
		tb.Fatal(err)
	}
	if err := c.Unselect().Wait(); err != nil {
		tb.Fatal(err)
	}
	var out []stored
	for _, b := range bufs {
		out = append(out, stored{UID: uint32(b.UID), Seen: slices.Contains(b.Flags, goimap.FlagSeen), Raw: b.FindBodySection(sec)})
	}
	slices.SortFunc(out, func(a, b stored) int { return int(a.UID) - int(b.UID) })
	return out
}

// memState is a State in memory.
type memState struct {
	mu sync.Mutex
	m  map[string][2]uint32
}

func newMemState() *memState { return &memState{m: make(map[string][2]uint32)} }

func (s *memState) Load(_ context.Context, mb string) (uint32, uint32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.m[mb]
	return v[0], v[1], nil
}

func (s *memState) Save(_ context.Context, mb string, validity, last uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[mb] = [2]uint32{validity, last}
	return nil
}

func (s *memState) get(mb string) [2]uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[mb]
}

// sink records delivered messages; fail, when set, refuses some.
type sink struct {
	mu       sync.Mutex
	got      []Message
	attempts map[uint32]int
	fail     func(Message) error
}

func (s *sink) deliver(_ context.Context, m Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.attempts == nil {
		s.attempts = make(map[uint32]int)
	}
	s.attempts[m.UID]++
	if s.fail != nil {
		if err := s.fail(m); err != nil {
			return err
		}
	}
	s.got = append(s.got, m)
	return nil
}

func (s *sink) messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

func (s *sink) tries(uid uint32) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[uid]
}

// logRecorder keeps the records a Fetcher logs.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
	text bytes.Buffer
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Clone())
	fmt.Fprint(&l.text, r.Message)
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&l.text, " %s=%v", a.Key, a.Value); return true })
	l.text.WriteString("\n")
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) records(msg string) []slog.Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []slog.Record
	for _, r := range l.recs {
		if r.Message == msg {
			out = append(out, r)
		}
	}
	return out
}

func (l *logRecorder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.text.String()
}

// start runs f until the returned stop is called (or the test ends) and
// checks that Run returns nil promptly.
func start(t *testing.T, f *Fetcher) (stop func()) {
	t.Helper()
	if f.Logger == nil {
		f.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return within 10s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// settle gives a running Fetcher time to deliver anything it should not.
func settle() { time.Sleep(500 * time.Millisecond) }

type want struct {
	uid uint32
	raw []byte
}

func checkDelivered(t *testing.T, got []Message, mailbox string, validity uint32, wants []want) {
	t.Helper()
	if len(got) != len(wants) {
		var uids []uint32
		for _, m := range got {
			uids = append(uids, m.UID)
		}
		t.Fatalf("delivered %d messages (UIDs %v), want %d", len(got), uids, len(wants))
	}
	for i, w := range wants {
		m := got[i]
		if m.Mailbox != mailbox || m.UIDValidity != validity || m.UID != w.uid || !bytes.Equal(m.Raw, w.raw) {
			t.Errorf("delivery %d = {%s %d %d %q}, want {%s %d %d %q}", i, m.Mailbox, m.UIDValidity, m.UID, m.Raw, mailbox, validity, w.uid, w.raw)
		}
	}
}

func TestFetchInOrderExactlyOnceAcrossRestart(t *testing.T) {
	srv := testServer(t)
	adm := srv.admin(t)
	folder := newFolder(t, adm)
	var wants []want
	for i, body := range []string{"first", "second: ünïcödé ✓", strings.Repeat("third line\r\n", 200)} {
		raw := testMessage(fmt.Sprintf("restart-%d-%s", i, randHex(4)), body)
		wants = append(wants, want{appendMsg(t, adm, folder, raw), raw})
	}
	validity := uidValidity(t, adm, folder)
	mb := srv.mailbox(t, folder, "insecure=true") // STARTTLS with the self-signed certificate
	state, out := newMemState(), &sink{}

	stop := start(t, &Fetcher{Mailboxes: []Mailbox{mb}, State: state, Deliver: out.deliver})
	waitFor(t, "3 deliveries", 10*time.Second, func() bool { return len(out.messages()) >= 3 })
	waitFor(t, "3 messages flagged", 10*time.Second, func() bool {
		ms := folderMessages(t, adm, folder)
		return len(ms) == 3 && ms[0].Seen && ms[1].Seen && ms[2].Seen
	})
	settle()
	stop()
	checkDelivered(t, out.messages(), mb.Name, validity, wants)
	if got := state.get(mb.Name); got != [2]uint32{validity, wants[2].uid} {
		t.Errorf("state = %v, want [%d %d]", got, validity, wants[2].uid)
	}

	// Unflag them: only the state can now keep the restart from fetching
	// them again.
	if _, err := adm.Select(folder, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := adm.Store(goimap.UIDSet{{Start: 1, Stop: 0}}, &goimap.StoreFlags{Op: goimap.StoreFlagsDel, Silent: true, Flags: []goimap.Flag{goimap.FlagSeen}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := adm.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	var more []want
	for i := range 2 {
		raw := testMessage(fmt.Sprintf("restart-new-%d-%s", i, randHex(4)), "after restart")
		more = append(more, want{appendMsg(t, adm, folder, raw), raw})
	}
	out2 := &sink{}
	stop = start(t, &Fetcher{Mailboxes: []Mailbox{mb}, State: state, Deliver: out2.deliver})
	waitFor(t, "2 deliveries after restart", 10*time.Second, func() bool { return len(out2.messages()) >= 2 })
	settle()
	stop()
	checkDelivered(t, out2.messages(), mb.Name, validity, more)
	ms := folderMessages(t, adm, folder)
	if len(ms) != 5 || ms[0].Seen || ms[2].Seen || !ms[3].Seen || !ms[4].Seen {
		t.Errorf("flags after restart = %+v, want the 3 unflagged left alone and the 2 new flagged", ms)
	}
}

func TestProcessedFolder(t *testing.T) {
	for _, noMove := range []bool{false, true} {
		t.Run(fmt.Sprintf("noMove=%v", noMove), func(t *testing.T) {
			srv := testServer(t)
			adm := srv.admin(t)
			folder := newFolder(t, adm)
			done := newFolder(t, adm) // exists already: Run's CREATE must tolerate it
			var wants []want
			for i := range 3 {
				raw := testMessage(fmt.Sprintf("move-%d-%s", i, randHex(4)), "move me")
				wants = append(wants, want{appendMsg(t, adm, folder, raw), raw})
			}
			validity := uidValidity(t, adm, folder)
			mb := srv.mailbox(t, folder, "starttls=off&processed="+url.QueryEscape(done))
			out := &sink{}
			stop := start(t, &Fetcher{Mailboxes: []Mailbox{mb}, State: newMemState(), Deliver: out.deliver, noMove: noMove})
			waitFor(t, "the folder emptied", 10*time.Second, func() bool {
				return len(out.messages()) == 3 && len(folderMessages(t, adm, folder)) == 0
			})
			settle()
			stop()
			checkDelivered(t, out.messages(), mb.Name, validity, wants)
			moved := folderMessages(t, adm, done)
			if len(moved) != 3 {
				t.Fatalf("%d messages in %s, want 3", len(moved), done)
			}
			for i, m := range moved {
				if !bytes.Equal(m.Raw, wants[i].raw) || m.Seen {
					t.Errorf("moved message %d = %q seen=%v, want %q unseen", i, m.Raw, m.Seen, wants[i].raw)
				}
			}
		})
	}
}

func TestDeliverErrorLeavesMessageForNextRun(t *testing.T) {
	srv := testServer(t)
	adm := srv.admin(t)
	folder := newFolder(t, adm)
	var wants []want
	for i := range 3 {
		raw := testMessage(fmt.Sprintf("fail-%d-%s", i, randHex(4)), "x")
		wants = append(wants, want{appendMsg(t, adm, folder, raw), raw})
	}
	validity := uidValidity(t, adm, folder)
	mb := srv.mailbox(t, folder, "insecure=true")
	state := newMemState()
	out := &sink{fail: func(m Message) error {
		if m.UID == wants[1].uid {
			return errors.New("queue is down")
		}
		return nil
	}}
	rec := &logRecorder{}
	stop := start(t, &Fetcher{Mailboxes: []Mailbox{mb}, State: state, Deliver: out.deliver,
		Logger: slog.New(rec), MinBackoff: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	waitFor(t, "the failing message tried 3 times", 10*time.Second, func() bool { return out.tries(wants[1].uid) >= 3 })
	stop()
	checkDelivered(t, out.messages(), mb.Name, validity, wants[:1])
	if n := out.tries(wants[2].uid); n != 0 {
		t.Errorf("message after the failing one tried %d times, want 0 (the batch stops)", n)
	}
	if got := state.get(mb.Name); got != [2]uint32{validity, wants[0].uid} {
		t.Errorf("state = %v, want [%d %d]", got, validity, wants[0].uid)
	}
	if ms := folderMessages(t, adm, folder); !ms[0].Seen || ms[1].Seen || ms[2].Seen {
		t.Errorf("flags = %+v, want only the first \\Seen", ms)
	}
	if !strings.Contains(rec.String(), "queue is down") {
		t.Errorf("the Deliver error was not logged:\n%s", rec)
	}

	out2 := &sink{}
	stop = start(t, &Fetcher{Mailboxes: []Mailbox{mb}, State: state, Deliver: out2.deliver})
	waitFor(t, "2 deliveries", 10*time.Second, func() bool { return len(out2.messages()) >= 2 })
	settle()
	stop()
	checkDelivered(t, out2.messages(), mb.Name, validity, wants[1:])
}

func TestIdlePicksUpNewMail(t *testing.T) {
	srv := testServer(t)
	adm := srv.admin(t)
	folder := newFolder(t, adm)
	validity := uidValidity(t, adm, folder)
	mb := srv.mailbox(t, folder, "insecure=true")
	state, out := newMemState(), &sink{}
	// An hour's poll: only IDLE can notice the message in time.
	stop := start(t, &Fetcher{Mailboxes: []Mailbox{mb}, State: state, Deliver: out.deliver, Poll: time.Hour})
	waitFor(t, "the first sync", 10*time.Second, func() bool { return state.get(mb.Name)[0] == validity })
	time.Sleep(300 * time.Millisecond) // into IDLE

	raw := testMessage("idle-"+randHex(4), "while idling")
	t0 := time.Now()
	uid := appendMsg(t, adm, folder, raw)
	waitFor(t, "the message appended while idling", 10*time.Second, func() bool { return len(out.messages()) >= 1 })
	latency := time.Since(t0)
	t.Logf("IDLE: appended message delivered after %v", latency)
	stop()
	checkDelivered(t, out.messages(), mb.Name, validity, []want{{uid, raw}})
}

func TestPollWithoutIdle(t *testing.T) {
	srv := testServer(t)
	adm := srv.admin(t)
	folder := newFolder(t, adm)
	validity := uidValidity(t, adm, folder)
	mb := srv.mailbox(t, folder, "insecure=true&poll=200ms")
	state, out := newMemState(), &sink{}
	stop := start(t, &Fetcher{Mailboxes: []Mailbox{mb}, State: state, Deliver: out.deliver, Poll: time.Hour, noIdle: true})
	waitFor(t, "the first sync", 10*time.Second, func() bool { return state.get(mb.Name)[0] == validity })
	raw := testMessage("poll-"+randHex(4), "polled")
	uid := appendMsg(t, adm, folder, raw)
	waitFor(t, "the polled message", 5*time.Second, func() bool { return len(out.messages()) >= 1 })
	stop()
	checkDelivered(t, out.messages(), mb.Name, validity, []want{{uid, raw}})
}

// TestFirstRunSkipsSeen: with no state, flag mode takes only what is not
// \Seen below UIDNEXT, then everything newer.
func TestFirstRunSkipsSeen(t *testing.T) {
	srv := testServer(t)
	adm := srv.admin(t)
	folder := newFolder(t, adm)
	r1, r2, r3 := testMessage("a-"+randHex(4), "1"), testMessage("b-"+randHex(4), "2"), testMessage("c-"+randHex(4), "3")
	u1 := appendMsg(t, adm, folder, r1)
	appendMsg(t, adm, folder, r2, goimap.FlagSeen)
	u3 := appendMsg(t, adm, folder, r3)
	validity := uidValidity(t, adm, folder)
	mb := srv.mailbox(t, folder, "insecure=true")
	state, out := newMemState(), &sink{}
	stop := start(t, &Fetcher{Mailboxes: []Mailbox{mb}, State: state, Deliver: out.deliver})
	waitFor(t, "2 deliveries", 10*time.Second, func() bool { return len(out.messages()) >= 2 })
	if got := state.get(mb.Name); got != [2]uint32{validity, u3} {
		t.Errorf("state = %v, want [%d %d]", got, validity, u3)
	}
	r4 := testMessage("d-"+randHex(4), "4")
	u4 := appendMsg(t, adm, folder, r4, goimap.FlagSeen) // new: taken even though \Seen
	waitFor(t, "3 deliveries", 10*time.Second, func() bool { return len(out.messages()) >= 3 })
	settle()
	stop()
	checkDelivered(t, out.messages(), mb.Name, validity, []want{{u1, r1}, {u3, r3}, {u4, r4}})
}

func TestUIDValidityChangeResyncs(t *testing.T) {
	srv := testServer(t)
	adm := srv.admin(t)
	folder := newFolder(t, adm)
	for i := range 3 {
		appendMsg(t, adm, folder, testMessage(fmt.Sprintf("old-%d-%s", i, randHex(4)), "old"))
	}
	oldValidity := uidValidity(t, adm, folder)
	mb := srv.mailbox(t, folder, "insecure=true")
	state, out := newMemState(), &sink{}
	stop := start(t, &Fetcher{Mailboxes: []Mailbox{mb}, State: state, Deliver: out.deliver})
	waitFor(t, "3 deliveries", 10*time.Second, func() bool { return len(out.messages()) >= 3 })
	stop()

	// Recreated: UIDs start again at 1, below the stored last UID 3.
	if err := adm.Delete(folder).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := adm.Create(folder, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	r1, r2 := testMessage("new-1-"+randHex(4), "new"), testMessage("new-2-"+randHex(4), "new")
	u1, u2 := appendMsg(t, adm, folder, r1), appendMsg(t, adm, folder, r2)
	newValidity := uidValidity(t, adm, folder)
	if newValidity == oldValidity {
		t.Fatalf("server kept UIDVALIDITY %d for the recreated folder", newValidity)
	}
	if u1 != 1 || u2 != 2 {
		t.Fatalf("recreated folder's UIDs = %d, %d, want 1, 2", u1, u2)
	}
	rec := &logRecorder{}
	out2 := &sink{}
	stop = start(t, &Fetcher{Mailboxes: []Mailbox{mb}, State: state, Deliver: out2.deliver, Logger: slog.New(rec)})
	waitFor(t, "2 deliveries after resync", 10*time.Second, func() bool { return len(out2.messages()) >= 2 })
	settle()
	stop()
	checkDelivered(t, out2.messages(), mb.Name, newValidity, []want{{u1, r1}, {u2, r2}})
	if got := state.get(mb.Name); got != [2]uint32{newValidity, u2} {
		t.Errorf("state = %v, want [%d %d]", got, newValidity, u2)
	}
	if len(rec.records("imap: UIDVALIDITY changed; resyncing")) != 1 {
		t.Errorf("resync not logged once:\n%s", rec)
	}
}

func TestTwoMailboxesAtOnce(t *testing.T) {
	srv := testServer(t)
	adm := srv.admin(t)
	state, out := newMemState(), &sink{}
	var mbs []Mailbox
	wants := map[string][]want{}
	validity := map[string]uint32{}
	for range 2 {
		folder := newFolder(t, adm)
		mb := srv.mailbox(t, folder, "insecure=true")
		mbs = append(mbs, mb)
		for i := range 3 {
			raw := testMessage(fmt.Sprintf("two-%d-%s", i, randHex(4)), folder)
			wants[mb.Name] = append(wants[mb.Name], want{appendMsg(t, adm, folder, raw), raw})
		}
		validity[mb.Name] = uidValidity(t, adm, folder)
	}
	if mbs[0].Name == mbs[1].Name {
		t.Fatalf("two folders share the name %s", mbs[0].Name)
	}
	stop := start(t, &Fetcher{Mailboxes: mbs, State: state, Deliver: out.deliver})
	waitFor(t, "6 deliveries", 10*time.Second, func() bool { return len(out.messages()) >= 6 })
	settle()
	stop()
	per := map[string][]Message{}
	for _, m := range out.messages() {
		per[m.Mailbox] = append(per[m.Mailbox], m)
	}
	for _, mb := range mbs {
		checkDelivered(t, per[mb.Name], mb.Name, validity[mb.Name], wants[mb.Name])
	}
}

func TestBadPasswordBacksOff(t *testing.T) {
	srv := testServer(t)
	const wrong = "wrong-password-7c1f"
	mb, err := ParseURL(fmt.Sprintf("imap://%s:%s@%s/INBOX?insecure=true", srv.user, wrong, net.JoinHostPort(srv.host, srv.port)))
	if err != nil {
		t.Fatal(err)
	}
	rec := &logRecorder{}
	out := &sink{}
	f := &Fetcher{Mailboxes: []Mailbox{mb}, State: newMemState(), Deliver: out.deliver, Logger: slog.New(rec),
		MinBackoff: 200 * time.Millisecond, MaxBackoff: 400 * time.Millisecond}
	t0 := time.Now()
	stop := start(t, f)
	time.Sleep(5 * time.Second)
	stop()
	elapsed := time.Since(t0)

	fails := rec.records("imap: session failed; reconnecting")
	if len(fails) == 0 {
		t.Fatalf("no failure logged:\n%s", rec)
	}
	// Dovecot also delays failed logins; either way at most one attempt per
	// MinBackoff/2 can happen, against hundreds in a busy loop.
	if limit := int(elapsed/(100*time.Millisecond)) + 1; len(fails) > limit {
		t.Errorf("%d attempts in %v: not backing off", len(fails), elapsed)
	}
	for i, r := range fails {
		var errText string
		var wait time.Duration
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "err":
				errText = fmt.Sprint(a.Value.Any())
			case "retry_in":
				wait = a.Value.Duration()
			}
			return true
		})
		wantPrefix := fmt.Sprintf("imap: log in to %s as %s: ", mb.Addr, srv.user)
		if !strings.HasPrefix(errText, wantPrefix) || !strings.Contains(strings.ToLower(errText), "authentication failed") {
			t.Errorf("error %d = %q, want %q... authentication failed", i, errText, wantPrefix)
		}
		d := min(200*time.Millisecond<<i, 400*time.Millisecond)
		if wait < d/2 || wait > d {
			t.Errorf("retry %d after %v, want within [%v, %v]", i, wait, d/2, d)
		}
	}
	if strings.Contains(rec.String(), wrong) {
		t.Errorf("the password was logged:\n%s", rec)
	}
	t.Logf("%d failed logins in %v", len(fails), elapsed)
}

func TestImplicitTLS(t *testing.T) {
	srv := testServer(t)
	adm := srv.admin(t)
	folder := newFolder(t, adm)
	raw := testMessage("tls-"+randHex(4), "over TLS")
	uid := appendMsg(t, adm, folder, raw)
	validity := uidValidity(t, adm, folder)
	u := url.URL{Scheme: "imaps", User: url.UserPassword(srv.user, srv.pass), Host: net.JoinHostPort(srv.host, imapsPort), Path: "/" + folder}

	t.Run("insecure", func(t *testing.T) {
		mb, err := ParseURL(u.String() + "?insecure=true")
		if err != nil {
			t.Fatal(err)
		}
		out := &sink{}
		stop := start(t, &Fetcher{Mailboxes: []Mailbox{mb}, State: newMemState(), Deliver: out.deliver})
		waitFor(t, "the message over imaps", 10*time.Second, func() bool { return len(out.messages()) >= 1 })
		stop()
		checkDelivered(t, out.messages(), mb.Name, validity, []want{{uid, raw}})
	})
	// The test server's certificate is self-signed: without insecure=true
	// it must be refused, for imaps and for STARTTLS.
	for _, raw := range []string{u.String(), srv.mailbox(t, folder, "starttls=required").String()} {
		t.Run("verify "+strings.SplitN(raw, ":", 2)[0], func(t *testing.T) {
			mb, err := ParseURL(strings.Replace(raw, srv.user+"@", srv.user+":"+url.PathEscape(srv.pass)+"@", 1))
			if err != nil {
				t.Fatal(err)
			}
			rec, out := &logRecorder{}, &sink{}
			stop := start(t, &Fetcher{Mailboxes: []Mailbox{mb}, State: newMemState(), Deliver: out.deliver, Logger: slog.New(rec)})
			waitFor(t, "a failure", 10*time.Second, func() bool { return len(rec.records("imap: session failed; reconnecting")) > 0 })
			stop()
			if n := len(out.messages()); n != 0 {
				t.Errorf("%d messages delivered over an unverified connection", n)
			}
			if !strings.Contains(rec.String(), "certificate") {
				t.Errorf("failure does not mention the certificate:\n%s", rec)
			}
		})
	}
}

func TestOversizedMessageSkipped(t *testing.T) {
	srv := testServer(t)
	adm := srv.admin(t)
	folder := newFolder(t, adm)
	small1 := testMessage("small-1-"+randHex(4), "small")
	big := testMessage("big-"+randHex(4), strings.Repeat("x", 2000))
	small2 := testMessage("small-2-"+randHex(4), "small")
	u1, ub, u2 := appendMsg(t, adm, folder, small1), appendMsg(t, adm, folder, big), appendMsg(t, adm, folder, small2)
	validity := uidValidity(t, adm, folder)
	mb := srv.mailbox(t, folder, "insecure=true")
	state, out, rec := newMemState(), &sink{}, &logRecorder{}
	stop := start(t, &Fetcher{Mailboxes: []Mailbox{mb}, State: state, Deliver: out.deliver, MaxSize: 1000, Logger: slog.New(rec)})
	waitFor(t, "2 deliveries", 10*time.Second, func() bool { return len(out.messages()) >= 2 })
	settle()
	stop()
	checkDelivered(t, out.messages(), mb.Name, validity, []want{{u1, small1}, {u2, small2}})
	if got := state.get(mb.Name); got != [2]uint32{validity, u2} {
		t.Errorf("state = %v, want [%d %d]", got, validity, u2)
	}
	skipped := rec.records("imap: message too large; skipped")
	if len(skipped) != 1 || !strings.Contains(rec.String(), fmt.Sprintf("uid=%d size=%d max=1000", ub, len(big))) {
		t.Errorf("skip not logged once with uid %d and size %d:\n%s", ub, len(big), rec)
	}
	if ms := folderMessages(t, adm, folder); ms[1].Seen {
		t.Errorf("the skipped message was flagged \\Seen; it should be left for a person")
	}
}

// TestSMTPDeliveryArrives checks the other half of the test servers: mail
// sent to the SMTP listener, to any address, lands in the IMAP user's INBOX.
func TestSMTPDeliveryArrives(t *testing.T) {
	srv := testServer(t)
	su, err := url.Parse(testenv.URL(t, testenv.SMTPURL, "SMTP"))
	if err != nil {
		t.Fatal(err)
	}
	id := "smtp-" + randHex(8)
	raw := testMessage(id, "sent over SMTP")
	if err := smtp.SendMail(su.Host, nil, "customer@example.com", []string{"support+" + id + "@acme.example"}, raw); err != nil {
		t.Fatalf("send: %v", err)
	}
	adm := srv.admin(t)
	if _, err := adm.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	crit := &goimap.SearchCriteria{Header: []goimap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: "<" + id + "@example.com>"}}}
	var uids []goimap.UID
	waitFor(t, "the message in INBOX", 10*time.Second, func() bool {
		res, err := adm.UIDSearch(crit, nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		uids = res.AllUIDs()
		return len(uids) > 0
	})
	if len(uids) != 1 {
		t.Fatalf("%d messages with Message-ID %s, want 1", len(uids), id)
	}
	t.Cleanup(func() {
		adm.Store(goimap.UIDSetNum(uids[0]), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Silent: true, Flags: []goimap.Flag{goimap.FlagDeleted}}, nil).Close()
		adm.UIDExpunge(goimap.UIDSetNum(uids[0])).Close()
	})
	sec := &goimap.FetchItemBodySection{Peek: true}
	bufs, err := adm.Fetch(goimap.UIDSetNum(uids[0]), &goimap.FetchOptions{BodySection: []*goimap.FetchItemBodySection{sec}}).Collect()
	if err != nil || len(bufs) != 1 {
		t.Fatalf("fetch: %v (%d messages)", err, len(bufs))
	}
	got := bufs[0].FindBodySection(sec)
	// The MTA prepends trace headers; what was sent follows unchanged
	// (Postfix would add a Date only if it were missing).
	if !bytes.HasSuffix(got, raw) {
		t.Errorf("delivered message does not end with what was sent:\n%s", got)
	}
	if !bytes.Contains(got, []byte("for <support+"+id+"@acme.example>")) {
		t.Errorf("trace headers do not name the recipient:\n%s", got[:len(got)-len(raw)])
	}
}

// BenchmarkFetch is messages per second from a real Dovecot: 500 messages
// of about 5 KB, from Run's start until the last is delivered and flagged.
func BenchmarkFetch(b *testing.B) {
	const n = 500
	srv := testServer(b)
	adm := srv.admin(b)
	body := strings.Repeat("The quick brown fox jumps over the lazy dog, again and again.\r\n", 80) // ~5 KB
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		folder := newFolder(b, adm)
		for j := range n {
			appendMsg(b, adm, folder, testMessage(fmt.Sprintf("bench-%d-%d-%s", i, j, randHex(4)), body))
		}
		mb := srv.mailbox(b, folder, "insecure=true")
		state := newMemState()
		var count int
		var mu sync.Mutex
		doneCh := make(chan struct{})
		deliver := func(_ context.Context, m Message) error {
			mu.Lock()
			defer mu.Unlock()
			count++
			if count == n {
				close(doneCh)
			}
			return nil
		}
		ctx, cancel := context.WithCancel(context.Background())
		f := &Fetcher{Mailboxes: []Mailbox{mb}, State: state, Deliver: deliver,
			Logger: slog.New(slog.NewTextHandler(testWriterB{b}, &slog.HandlerOptions{Level: slog.LevelWarn}))}
		runDone := make(chan struct{})
		b.StartTimer()
		t0 := time.Now()
		go func() { f.Run(ctx); close(runDone) }()
		select {
		case <-doneCh:
		case <-time.After(2 * time.Minute):
			b.Fatal("not all messages delivered within 2 minutes")
		}
		// Delivered is not finished: the last marks are awaited per chunk,
		// so wait for the state to reach the end too.
		for state.get(mb.Name)[1] < n {
			time.Sleep(time.Millisecond)
		}
		total += time.Since(t0)
		b.StopTimer()
		cancel()
		<-runDone
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "msgs/s")
}

type testWriterB struct{ b *testing.B }

func (w testWriterB) Write(p []byte) (int, error) {
	w.b.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
