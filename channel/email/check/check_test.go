package check_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/switchboard-inbox/switchboard/channel/email/check"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
)

// imapsPort is where .ci/mail.sh serves implicit TLS, on the IMAP URL's host.
const imapsPort = "1993"

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// imapServer is the real IMAP server of SWITCHBOARD_TEST_IMAP_URL
// (.ci/mail.sh: Dovecot, STARTTLS with a self-signed certificate).
type imapServer struct{ host, port, user, pass string }

func realIMAP(t *testing.T) imapServer {
	t.Helper()
	u, err := url.Parse(testenv.URL(t, testenv.IMAPURL, "IMAP"))
	if err != nil || u.User == nil {
		t.Fatalf("%s must be imap://user:password@host:port", testenv.IMAPURL)
	}
	pass, _ := u.User.Password()
	return imapServer{host: u.Hostname(), port: u.Port(), user: u.User.Username(), pass: pass}
}

// url is the mailbox URL for folder with query, logging in with pass.
func (s imapServer) url(scheme, port, pass, folder, query string) string {
	u := url.URL{Scheme: scheme, User: url.UserPassword(s.user, pass), Host: net.JoinHostPort(s.host, port), Path: "/" + folder, RawQuery: query}
	return u.String()
}

// admin is a plain IMAP client for setting up and checking folders.
func (s imapServer) admin(t *testing.T) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(net.JoinHostPort(s.host, s.port), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(s.user, s.pass).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// expect checks that res has exactly the steps named, all OK but the last
// when failAt is that step's name, and returns the last step.
func expect(t *testing.T, res check.Result, names []string, failAt string) check.Step {
	t.Helper()
	var got []string
	for _, s := range res.Steps {
		got = append(got, s.Name)
		t.Logf("  %-16s ok=%-5v %8v  %s", s.Name, s.OK, s.Duration.Round(time.Millisecond), s.Detail)
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("steps %q, want %q", got, names)
	}
	for i, s := range res.Steps {
		wantOK := !(i == len(res.Steps)-1 && failAt != "")
		if s.OK != wantOK {
			t.Errorf("step %q ok=%v, want %v", s.Name, s.OK, wantOK)
		}
		if s.Detail == "" {
			t.Errorf("step %q has no detail", s.Name)
		}
		if s.Duration < 0 {
			t.Errorf("step %q took %v", s.Name, s.Duration)
		}
	}
	if res.OK != (failAt == "") {
		t.Errorf("Result.OK = %v", res.OK)
	}
	f, failed := res.Failed()
	if failed != (failAt != "") || failed && f.Name != failAt {
		t.Errorf("Failed() = %q, %v; want %q", f.Name, failed, failAt)
	}
	return res.Steps[len(res.Steps)-1]
}

var imapSteps = []string{check.StepConnect, check.StepTLS, check.StepLogin, check.StepList, "select INBOX"}

func TestIMAPSucceeds(t *testing.T) {
	srv := realIMAP(t)
	adm := srv.admin(t)

	t.Run("INBOX over STARTTLS", func(t *testing.T) {
		res := check.IMAP(ctxFor(t, 30*time.Second), srv.url("imap", srv.port, srv.pass, "INBOX", "insecure=true"))
		last := expect(t, res, imapSteps, "")
		// Other tests deliver to INBOX meanwhile: the count is the form.
		if !regexp.MustCompile(`^\d+ messages? in INBOX$`).MatchString(last.Detail) {
			t.Errorf("select detail %q", last.Detail)
		}
		if d := res.Steps[1].Detail; !strings.Contains(d, "STARTTLS") || !strings.Contains(d, "NOT verified") {
			t.Errorf("tls detail %q", d)
		}
		if d := res.Steps[3].Detail; !strings.Contains(d, "INBOX") {
			t.Errorf("list detail %q", d)
		}
	})

	t.Run("exact count in a folder of its own", func(t *testing.T) {
		folder := "sbcheck-" + randHex(4)
		if err := adm.Create(folder, nil).Wait(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { adm.Delete(folder).Wait() })
		for i := range 3 {
			msg := "From: a@example.org\r\nSubject: " + string(rune('a'+i)) + "\r\n\r\nbody\r\n"
			cmd := adm.Append(folder, int64(len(msg)), nil)
			io.WriteString(cmd, msg)
			if err := cmd.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := cmd.Wait(); err != nil {
				t.Fatal(err)
			}
		}
		res := check.IMAP(ctxFor(t, 30*time.Second), srv.url("imap", srv.port, srv.pass, folder, "starttls=off&processed=Done-"+randHex(2)))
		last := expect(t, res, []string{"connect", "tls", "login", "list", "select " + folder}, "")
		if want := "3 messages in " + folder; last.Detail != want {
			t.Errorf("select detail %q, want %q", last.Detail, want)
		}
		if d := res.Steps[1].Detail; !strings.Contains(d, "clear text") {
			t.Errorf("tls detail %q", d)
		}
		if d := res.Steps[3].Detail; !strings.Contains(d, folder) || !strings.Contains(d, "does not exist yet") {
			t.Errorf("list detail %q", d)
		}
	})

	t.Run("imaps", func(t *testing.T) {
		res := check.IMAP(ctxFor(t, 30*time.Second), srv.url("imaps", imapsPort, srv.pass, "INBOX", "insecure=true"))
		expect(t, res, imapSteps, "")
		if d := res.Steps[1].Detail; !strings.Contains(d, "implicit TLS") {
			t.Errorf("tls detail %q", d)
		}
	})
}

func TestIMAPWrongPassword(t *testing.T) {
	srv := realIMAP(t)
	const wrong = "wrong-Pa55word-5e1d"
	res := check.IMAP(ctxFor(t, 30*time.Second), srv.url("imap", srv.port, wrong, "INBOX", "insecure=true"))
	last := expect(t, res, []string{"connect", "tls", "login"}, "login")
	// Dovecot's refusal, word for word: the tagged NO with its response code.
	if !strings.Contains(last.Detail, "AUTHENTICATIONFAILED") || !strings.HasPrefix(last.Detail, "NO ") {
		t.Errorf("login detail %q, want Dovecot's NO [AUTHENTICATIONFAILED] ...", last.Detail)
	}
	t.Logf("Dovecot's refusal: %s", last.Detail)
	for _, s := range res.Steps {
		if strings.Contains(s.Detail, wrong) || strings.Contains(s.Detail, srv.pass) {
			t.Errorf("step %q shows a password: %q", s.Name, s.Detail)
		}
	}
}

func TestIMAPServerAnswers(t *testing.T) {
	srv := realIMAP(t)
	t.Run("no such folder", func(t *testing.T) {
		res := check.IMAP(ctxFor(t, 30*time.Second), srv.url("imap", srv.port, srv.pass, "NoSuchFolder", "insecure=true"))
		last := expect(t, res, []string{"connect", "tls", "login", "list", "select NoSuchFolder"}, "select NoSuchFolder")
		if !strings.HasPrefix(last.Detail, "NO ") || !strings.Contains(last.Detail, "NoSuchFolder") {
			t.Errorf("select detail %q, want Dovecot's NO ...", last.Detail)
		}
	})
	// The test server's certificate is self-signed: without insecure=true
	// it is refused, over STARTTLS and imaps alike.
	for _, tc := range []struct{ scheme, port string }{{"imap", srv.port}, {"imaps", imapsPort}} {
		t.Run("untrusted certificate "+tc.scheme, func(t *testing.T) {
			res := check.IMAP(ctxFor(t, 30*time.Second), srv.url(tc.scheme, tc.port, srv.pass, "INBOX", ""))
			last := expect(t, res, []string{"connect", "tls"}, "tls")
			if !strings.Contains(last.Detail, "certificate") {
				t.Errorf("tls detail %q", last.Detail)
			}
		})
	}
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestIMAPUnreachable(t *testing.T) {
	const pass = "Unreachable-pa55"
	res := check.IMAP(ctxFor(t, 30*time.Second), "imap://u:"+pass+"@"+closedPort(t)+"/INBOX")
	last := expect(t, res, []string{"connect"}, "connect")
	if !strings.Contains(last.Detail, "refused") {
		t.Errorf("connect detail %q", last.Detail)
	}
	if strings.Contains(last.Detail, pass) {
		t.Errorf("password shown: %q", last.Detail)
	}
}

// silentServer accepts connections and never says a word.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { <-done; c.Close() }()
		}
	}()
	return l.Addr().String()
}

// The check ends with the context, and a context without a deadline gets
// DefaultTimeout.
func TestIMAPBoundedByContext(t *testing.T) {
	t.Parallel() // waits out DefaultTimeout
	addr := silentServer(t)
	t0 := time.Now()
	res := check.IMAP(ctxFor(t, 500*time.Millisecond), "imap://u:pass-word@"+addr+"/INBOX")
	if el := time.Since(t0); el > 5*time.Second {
		t.Errorf("took %v with a 500ms context", el)
	}
	last := expect(t, res, []string{"connect"}, "connect")
	if !strings.Contains(last.Detail, "no answer within 500ms") {
		t.Errorf("connect detail %q", last.Detail)
	}

	t0 = time.Now()
	res = check.IMAP(context.Background(), "imap://u:pass-word@"+addr+"/INBOX")
	el := time.Since(t0)
	if el < check.DefaultTimeout-time.Second || el > check.DefaultTimeout+5*time.Second {
		t.Errorf("took %v without a deadline, want about %v", el, check.DefaultTimeout)
	}
	last = expect(t, res, []string{"connect"}, "connect")
	if !strings.Contains(last.Detail, "no answer within 15s") {
		t.Errorf("connect detail %q", last.Detail)
	}
}

func TestIMAPBadURL(t *testing.T) {
	for _, raw := range []string{
		"imap://u:Secret-pa55@host:99999/INBOX",
		"imap://u:Secret-pa55@host/INBOX?bogus=1",
		"pop3://u:Secret-pa55@host/",
		"imap://u:Secret-pa55@ho st/",
	} {
		res := check.IMAP(context.Background(), raw)
		last := expect(t, res, []string{check.StepURL}, check.StepURL)
		if strings.Contains(last.Detail, "Secret-pa55") {
			t.Errorf("%q: password shown: %q", raw, last.Detail)
		}
	}
}

// smtpURL is SWITCHBOARD_TEST_SMTP_URL (.ci/mail.sh: Postfix, which hands
// every recipient to the IMAP test user's INBOX), plain on loopback.
func smtpURL(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(testenv.URL(t, testenv.SMTPURL, "SMTP"))
	if err != nil {
		t.Fatalf("%s does not parse", testenv.SMTPURL)
	}
	if !u.Query().Has("starttls") {
		q := u.Query()
		q.Set("starttls", "off") // the test listener offers no STARTTLS
		u.RawQuery = q.Encode()
	}
	return u.String()
}

func TestSMTPSendsAndMessageArrives(t *testing.T) {
	relay := smtpURL(t)
	srv := realIMAP(t)
	to := "check-" + randHex(6) + "@customer.example"
	res := check.SMTP(ctxFor(t, 30*time.Second), relay, "help@shop.example", to)
	last := expect(t, res, []string{"connect", "tls", "login", "send"}, "")
	if d := res.Steps[0].Detail; !strings.HasPrefix(d, "220 ") || !strings.Contains(d, "ESMTP") {
		t.Errorf("connect detail %q, want Postfix's 220 greeting", d)
	}
	if !strings.Contains(last.Detail, "<"+to+">") {
		t.Errorf("send detail %q", last.Detail)
	}

	// Postfix delivers every recipient to the test mailbox: find it by To.
	adm := srv.admin(t)
	if _, err := adm.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	crit := &goimap.SearchCriteria{Header: []goimap.SearchCriteriaHeaderField{{Key: "To", Value: to}}}
	var uids []goimap.UID
	for deadline := time.Now().Add(30 * time.Second); len(uids) == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("the test message to %s did not arrive within 30s", to)
		}
		time.Sleep(200 * time.Millisecond)
		data, err := adm.UIDSearch(crit, nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		uids = data.AllUIDs()
	}
	set := goimap.UIDSetNum(uids...)
	section := &goimap.FetchItemBodySection{Peek: true}
	msgs, err := adm.Fetch(set, &goimap.FetchOptions{BodySection: []*goimap.FetchItemBodySection{section}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch: %d messages, %v", len(msgs), err)
	}
	body := string(msgs[0].FindBodySection(section))
	if !strings.Contains(body, "Subject: "+check.TestSubject) || !strings.Contains(body, "\r\n\r\n"+check.TestSubject) {
		t.Errorf("received:\n%.1200s", body)
	}
	// Leave the shared mailbox as it was.
	if err := adm.Store(set, &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Silent: true, Flags: []goimap.Flag{goimap.FlagDeleted}}, nil).Close(); err == nil {
		adm.UIDExpunge(set).Close()
	}
}

func TestSMTPClosedPort(t *testing.T) {
	const pass = "Closed-pa55word"
	res := check.SMTP(ctxFor(t, 30*time.Second), "smtp://agent:"+pass+"@"+closedPort(t)+"?starttls=off", "help@shop.example", "c@example.org")
	last := expect(t, res, []string{"connect"}, "connect")
	if !strings.Contains(last.Detail, "refused") || strings.Contains(last.Detail, pass) {
		t.Errorf("connect detail %q", last.Detail)
	}
}

// scriptedRelay is an SMTP server speaking from a script: replies maps a
// command verb (EHLO, AUTH, MAIL, RCPT, DATA, and "." for the end of the
// data) to its raw reply; the rest succeed. The real test Postfix neither
// asks for a password nor refuses a recipient, so refusals are scripted.
func scriptedRelay(t *testing.T, banner string, replies map[string]string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	defaults := map[string]string{
		"EHLO": "250-relay.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME",
		"AUTH": "235 2.7.0 Authentication successful",
		"MAIL": "250 2.1.0 Ok",
		"RCPT": "250 2.1.5 Ok",
		"DATA": "354 End data with <CR><LF>.<CR><LF>",
		".":    "250 2.0.0 Ok: queued as 4F2B",
		"QUIT": "221 2.0.0 Bye",
	}
	replyTo := func(verb string) string {
		if r, ok := replies[verb]; ok {
			return r
		}
		if r, ok := defaults[verb]; ok {
			return r
		}
		return "502 5.5.2 Error: command not recognized"
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				io.WriteString(c, banner+"\r\n")
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					verb, _, _ := strings.Cut(strings.TrimSpace(line), " ")
					verb = strings.ToUpper(verb)
					r := replyTo(verb)
					io.WriteString(c, r+"\r\n")
					if verb == "QUIT" {
						return
					}
					if verb == "DATA" && strings.HasPrefix(r, "354") {
						for {
							l, err := br.ReadString('\n')
							if err != nil {
								return
							}
							if l == ".\r\n" {
								break
							}
						}
						io.WriteString(c, replyTo(".")+"\r\n")
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

func TestSMTPRelayRefusals(t *testing.T) {
	const pass = "Relay-s3cret-pa55"
	for _, tc := range []struct {
		name    string
		banner  string
		replies map[string]string
		steps   []string
		detail  string
	}{
		{name: "greeting", banner: "554 5.7.1 Service unavailable; client [127.0.0.1] blocked",
			steps: []string{"connect"}, detail: "554 5.7.1 Service unavailable; client [127.0.0.1] blocked"},
		{name: "wrong password", replies: map[string]string{"AUTH": "535 5.7.8 Authentication credentials invalid"},
			steps: []string{"connect", "tls", "login"}, detail: "535 5.7.8 Authentication credentials invalid (in reply to AUTH)"},
		{name: "relay denied", replies: map[string]string{"RCPT": "554 5.7.1 <c@example.org>: Relay access denied"},
			steps:  []string{"connect", "tls", "login", "send"},
			detail: "554 5.7.1 <c@example.org>: Relay access denied (in reply to RCPT TO <c@example.org>)"},
		{name: "sender refused", replies: map[string]string{"MAIL": "553 5.7.1 <help@shop.example>: Sender address rejected: not owned by user agent"},
			steps:  []string{"connect", "tls", "login", "send"},
			detail: "553 5.7.1 <help@shop.example>: Sender address rejected: not owned by user agent (in reply to MAIL FROM)"},
		{name: "message refused", replies: map[string]string{".": "550-5.7.1 Message rejected\r\n550 5.7.1 See https://help.example"},
			steps:  []string{"connect", "tls", "login", "send"},
			detail: "550-5.7.1 Message rejected\n550 5.7.1 See https://help.example (in reply to DATA)"},
		{name: "temporary", replies: map[string]string{"RCPT": "450 4.2.0 <c@example.org>: Recipient address rejected: Greylisted"},
			steps:  []string{"connect", "tls", "login", "send"},
			detail: "450 4.2.0 <c@example.org>: Recipient address rejected: Greylisted (in reply to RCPT TO <c@example.org>)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			banner := tc.banner
			if banner == "" {
				banner = "220 relay.test ESMTP"
			}
			addr := scriptedRelay(t, banner, tc.replies)
			res := check.SMTP(ctxFor(t, 30*time.Second), "smtp://agent:"+pass+"@"+addr+"?starttls=off", "help@shop.example", "c@example.org")
			last := expect(t, res, tc.steps, tc.steps[len(tc.steps)-1])
			if last.Detail != tc.detail {
				t.Errorf("detail %q\n          want %q", last.Detail, tc.detail)
			}
			for _, s := range res.Steps {
				if strings.Contains(s.Detail, pass) {
					t.Errorf("step %q shows the password: %q", s.Name, s.Detail)
				}
			}
		})
	}

	t.Run("ok with AUTH", func(t *testing.T) {
		addr := scriptedRelay(t, "220 relay.test ESMTP", nil)
		res := check.SMTP(ctxFor(t, 30*time.Second), "smtp://agent:"+pass+"@"+addr+"?starttls=off", "help@shop.example", "c@example.org")
		expect(t, res, []string{"connect", "tls", "login", "send"}, "")
		if d := res.Steps[2].Detail; d != "authenticated as agent" {
			t.Errorf("login detail %q", d)
		}
		if d := res.Steps[1].Detail; !strings.Contains(d, "clear text") {
			t.Errorf("tls detail %q", d)
		}
	})
}

func TestSMTPBadInput(t *testing.T) {
	for _, tc := range []struct{ url, from, to, step string }{
		{"smtp://agent:Bad-pa55word@relay.example:587?bogus=1", "a@b.example", "c@d.example", check.StepURL},
		{"smtp://agent:Bad-pa55word@relay.example:587?starttls=off", "a@b.example", "c@d.example", check.StepURL}, // clear text off loopback
		{"ftp://agent:Bad-pa55word@relay.example", "a@b.example", "c@d.example", check.StepURL},
		{"smtp://agent:Bad-pa55word@127.0.0.1:1?starttls=off", "not an address", "c@d.example", check.StepSend},
		{"smtp://agent:Bad-pa55word@127.0.0.1:1?starttls=off", "a@b.example", "", check.StepSend},
	} {
		res := check.SMTP(context.Background(), tc.url, tc.from, tc.to)
		last := expect(t, res, []string{tc.step}, tc.step)
		if strings.Contains(last.Detail, "Bad-pa55word") {
			t.Errorf("password shown: %q", last.Detail)
		}
	}
}
