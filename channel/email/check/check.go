// Package check tests e-mail connection settings before an administrator
// saves them: IMAP logs in to the mailbox and opens the folder the way the
// Fetcher will, SMTP sends a test message through the relay with
// smtpout.Client.Send, the production path. Each reports its steps in
// order, stopping at the first that fails, with the server's exact answer
// in that step's Detail. No Detail ever contains the password.
package check

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/switchboard-inbox/switchboard/channel/email/imap"
	"github.com/switchboard-inbox/switchboard/channel/email/smtpout"
)

// DefaultTimeout bounds a check whose context has no deadline.
const DefaultTimeout = 15 * time.Second

// TestSubject is the subject (and first line) of the message SMTP sends.
const TestSubject = "Switchboard test message"

// Step names. IMAP's last step is "select " followed by the folder, e.g.
// "select INBOX". StepURL appears only when the URL is refused before any
// connection is made.
const (
	StepURL     = "url"
	StepConnect = "connect"
	StepTLS     = "tls"
	StepLogin   = "login"
	StepList    = "list"
	StepSelect  = "select" // + " " + folder
	StepSend    = "send"
)

// Result is the outcome of one check: OK when every step succeeded.
type Result struct {
	OK    bool
	Steps []Step
}

// Step is one stage of a check.
type Step struct {
	// Name is one of the Step constants, "select FOLDER" for IMAP's last.
	Name string
	OK   bool
	// Detail says what was found ("12 messages in INBOX") or, on failure,
	// the server's exact answer (`NO [AUTHENTICATIONFAILED] Authentication
	// failed.`, `535 5.7.8 Authentication credentials invalid (in reply to
	// AUTH)`), or the local error when the server gave none (connection
	// refused, certificate not trusted, no answer in time).
	Detail   string
	Duration time.Duration
}

// Failed returns the step that failed, if any.
func (r Result) Failed() (Step, bool) {
	for _, s := range r.Steps {
		if !s.OK {
			return s, true
		}
	}
	return Step{}, false
}

// run records the steps of one check.
type run struct {
	ctx    context.Context
	budget time.Duration // the time the check had, for "no answer within"
	secret string        // the password, scrubbed from every Detail
	res    Result
}

func newRun(ctx context.Context, rawURL string) (*run, context.CancelFunc) {
	cancel := context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok {
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
	}
	dl, _ := ctx.Deadline()
	r := &run{ctx: ctx, budget: time.Until(dl)}
	if u, err := url.Parse(rawURL); err == nil && u.User != nil {
		r.secret, _ = u.User.Password()
	}
	return r, cancel
}

// step runs f as the step name and records it; it reports whether f
// succeeded. explain turns f's error into the Detail.
func (r *run) step(name string, explain func(error) string, f func() (string, error)) bool {
	t0 := time.Now()
	detail, err := f()
	s := Step{Name: name, OK: err == nil, Detail: detail, Duration: time.Since(t0)}
	if err != nil {
		s.Detail = r.explain(err, explain)
	}
	r.add(s)
	return s.OK
}

func (r *run) add(s Step) {
	s.Detail = r.scrub(s.Detail)
	r.res.Steps = append(r.res.Steps, s)
}

func (r *run) explain(err error, explain func(error) string) string {
	d := explain(err)
	switch ctxErr := r.ctx.Err(); {
	case errors.Is(ctxErr, context.DeadlineExceeded):
		return fmt.Sprintf("no answer within %v: %s", r.budget.Round(100*time.Millisecond), d)
	case ctxErr != nil:
		return "cancelled: " + d
	}
	return d
}

// scrub is a last line of defence: none of the errors reported carry the
// password, but a Detail must never show it, even escaped. Passwords
// shorter than four characters are left alone, lest ordinary text be
// mangled.
func (r *run) scrub(s string) string {
	if len(r.secret) < 4 {
		return s
	}
	for _, form := range []string{r.secret, url.QueryEscape(r.secret), url.PathEscape(r.secret), url.UserPassword("", r.secret).String()[1:]} {
		if len(form) >= 4 {
			s = strings.ReplaceAll(s, form, "xxxxx")
		}
	}
	return s
}

func (r *run) done() Result {
	r.res.OK = len(r.res.Steps) > 0
	for _, s := range r.res.Steps {
		r.res.OK = r.res.OK && s.OK
	}
	return r.res
}

// IMAP checks an imap:// or imaps:// mailbox URL (imap.ParseURL): connect,
// TLS as the URL says, log in, LIST the mailboxes, SELECT the configured
// folder and report its message count. ctx bounds the whole check;
// without a deadline, DefaultTimeout applies.
func IMAP(ctx context.Context, rawURL string) Result {
	r, cancel := newRun(ctx, rawURL)
	defer cancel()
	ctx = r.ctx

	mb, err := imap.ParseURL(rawURL) // its errors never contain the password
	if err != nil {
		r.add(Step{Name: StepURL, Detail: err.Error()})
		return r.done()
	}

	// connect: TCP and, unless TLS comes first, the greeting, which also
	// says whether STARTTLS is offered.
	offersStartTLS := false
	ok := r.step(StepConnect, imapAnswer, func() (string, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", mb.Addr)
		if err != nil {
			return "", err
		}
		defer conn.Close()
		if mb.TLS == imap.ImplicitTLS {
			return mb.Addr + " accepted the connection", nil
		}
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		defer stop()
		c := imapclient.New(conn, nil)
		defer c.Close()
		if err := c.WaitGreeting(); err != nil {
			return "", err
		}
		offersStartTLS = c.Caps().Has(goimap.CapStartTLS)
		_ = c.Logout().Wait()
		offer := "offers no STARTTLS"
		if offersStartTLS {
			offer = "offers STARTTLS"
		}
		return mb.Addr + " greeted; it " + offer, nil
	})
	if !ok {
		return r.done()
	}

	// tls: the Fetcher's own dial, which applies the URL's TLS rules.
	var c *imapclient.Client
	ok = r.step(StepTLS, imapAnswer, func() (string, error) {
		cl, err := imap.Dial(ctx, mb, nil)
		if err != nil {
			return "", err
		}
		c = cl
		return imapTLSDetail(mb, offersStartTLS), nil
	})
	if !ok {
		return r.done()
	}
	defer c.Close()
	// go-imap takes no contexts: closing the connection ends whatever
	// command is waiting when ctx ends.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	ok = r.step(StepLogin, imapAnswer, func() (string, error) {
		if err := imap.Login(c, mb); err != nil {
			return "", err
		}
		return "logged in as " + mb.Username, nil
	})
	if !ok {
		return r.done()
	}

	ok = r.step(StepList, imapAnswer, func() (string, error) {
		boxes, err := c.List("", "*", nil).Collect()
		if err != nil {
			return "", err
		}
		names := make([]string, 0, len(boxes))
		hasProcessed := false
		for _, b := range boxes {
			names = append(names, b.Mailbox)
			hasProcessed = hasProcessed || b.Mailbox == mb.Processed
		}
		// The folders this mailbox uses first: a long list is cut.
		rank := func(n string) int {
			switch {
			case n == mb.Folder:
				return 0
			case mb.Processed != "" && n == mb.Processed:
				return 1
			case strings.EqualFold(n, "INBOX"):
				return 2
			}
			return 3
		}
		slices.SortStableFunc(names, func(a, b string) int { return rank(a) - rank(b) })
		detail := plural(len(names), "mailbox", "mailboxes")
		const show = 10
		if len(names) > show {
			detail += ": " + strings.Join(names[:show], ", ") + ", …"
		} else if len(names) > 0 {
			detail += ": " + strings.Join(names, ", ")
		}
		if mb.Processed != "" && !hasProcessed {
			detail += fmt.Sprintf("; the processed folder %q does not exist yet and will be created", mb.Processed)
		}
		return detail, nil
	})
	if !ok {
		return r.done()
	}

	// SELECT, as the Fetcher does; what it finds missing fails here too.
	r.step(StepSelect+" "+mb.Folder, imapAnswer, func() (string, error) {
		sel, err := c.Select(mb.Folder, nil).Wait()
		if err != nil {
			return "", err
		}
		if sel.UIDValidity == 0 {
			return "", errors.New("the server sent no UIDVALIDITY: Switchboard cannot keep track of the messages it has read")
		}
		return plural(int(sel.NumMessages), "message", "messages") + " in " + mb.Folder, nil
	})
	_ = c.Logout().Wait()
	return r.done()
}

// imapAnswer is the server's answer in err as the server sent it
// ("NO [AUTHENTICATIONFAILED] Authentication failed."), or err's text.
func imapAnswer(err error) string {
	var ie *goimap.Error
	if errors.As(err, &ie) {
		s := string(ie.Type)
		if ie.Code != "" {
			s += " [" + string(ie.Code) + "]"
		}
		if ie.Text != "" {
			s += " " + ie.Text
		}
		return s
	}
	return err.Error()
}

func imapTLSDetail(mb imap.Mailbox, offered bool) string {
	cert := "certificate verified for " + mb.Host
	if mb.Insecure {
		cert = "certificate NOT verified (insecure=true)"
	}
	switch mb.TLS {
	case imap.ImplicitTLS:
		return "implicit TLS (imaps); " + cert
	case imap.StartTLSOff:
		return "not encrypted (starttls=off): the password is sent in clear text"
	case imap.StartTLSAuto:
		if !offered {
			return "not encrypted: the server offers no STARTTLS, allowed only because it is on this machine"
		}
	}
	return "STARTTLS; " + cert
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// SMTP checks an SMTP relay URL (smtpout.Config.URL) by sending a short
// test message from from to to with smtpout.Client.Send, exactly as
// replies are sent. Before that it connects once on its own, to time the
// connection and show the relay's greeting. The relay's exact reply is in
// the failing step's Detail, with the command it answered. ctx bounds the
// whole check; without a deadline, DefaultTimeout applies.
//
// Send runs tls, login and send in one session: the tls step's Duration
// ends when the handshake did, login is not timed on its own (zero), and
// send has the rest of the session.
func SMTP(ctx context.Context, rawURL string, from, to string) Result {
	r, cancel := newRun(ctx, rawURL)
	defer cancel()
	ctx = r.ctx

	var handshake struct {
		at time.Time
		cs tls.ConnectionState
	}
	client, err := smtpout.New(smtpout.Config{
		URL: rawURL,
		TLSConfig: &tls.Config{
			// Runs after the certificate is checked (or not, with
			// insecure=true), in the goroutine that calls Send.
			VerifyConnection: func(cs tls.ConnectionState) error {
				handshake.at, handshake.cs = time.Now(), cs
				return nil
			},
		},
		Timeout: r.budget,
	})
	if err != nil { // New's errors never contain the password
		r.add(Step{Name: StepURL, Detail: err.Error()})
		return r.done()
	}
	// New accepted it, so it parses.
	u, _ := url.Parse(rawURL)
	implicitTLS := u.Scheme == "smtps"
	startTLS := !implicitTLS && u.Query().Get("starttls") != "off" && u.Query().Get("starttls") != "false"
	insecure := u.Query().Get("insecure") == "true" || u.Query().Get("insecure") == "1"
	port := u.Port()
	switch {
	case port != "":
	case implicitTLS:
		port = "465" // smtpout's defaults
	default:
		port = "587"
	}
	addr := net.JoinHostPort(u.Hostname(), port)

	m := smtpout.Mail{
		From:      smtpout.Address{Name: "Switchboard", Addr: from},
		To:        []smtpout.Address{{Addr: to}},
		Subject:   TestSubject,
		MessageID: messageID(from),
		Text: TestSubject + "\n\nSwitchboard sent this message to test its outgoing mail settings " +
			"(relay " + client.String() + "). No reply is needed.\n",
	}
	// A From or To that cannot be sent fails before anything connects.
	if _, err := client.Prepare(m); err != nil {
		r.add(Step{Name: StepSend, Detail: "the test message cannot be sent: " + err.Error()})
		return r.done()
	}

	ok := r.step(StepConnect, smtpAnswer, func() (string, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return "", err
		}
		defer conn.Close()
		if implicitTLS {
			return addr + " accepted the connection", nil
		}
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		defer stop()
		tp := textproto.NewConn(conn)
		code, msg, err := tp.ReadResponse(220)
		if err != nil {
			return "", err
		}
		if _, err := tp.Cmd("QUIT"); err == nil {
			_, _, _ = tp.ReadResponse(221)
		}
		return wireReply(code, msg), nil
	})
	if !ok {
		return r.done()
	}

	t0 := time.Now()
	_, err = client.Send(ctx, m)
	end := time.Now()
	tlsDone := t0
	if !handshake.at.IsZero() {
		tlsDone = handshake.at
	}

	tlsStep := Step{Name: StepTLS, OK: true, Duration: tlsDone.Sub(t0)}
	switch {
	case !implicitTLS && !startTLS:
		tlsStep.Detail = "not encrypted (starttls=off)"
		if u.User != nil {
			tlsStep.Detail += ": the password is sent in clear text"
		}
	case handshake.at.IsZero():
		tlsStep.Detail = "no TLS handshake"
	default:
		how := "STARTTLS"
		if implicitTLS {
			how = "implicit TLS (smtps)"
		}
		cert := "certificate verified for " + u.Hostname()
		if insecure {
			cert = "certificate NOT verified (insecure=true)"
		}
		tlsStep.Detail = how + ", " + tls.VersionName(handshake.cs.Version) + "; " + cert
	}
	loginStep := Step{Name: StepLogin, OK: true, Detail: "no user name in the URL: sent without AUTH"}
	if u.User != nil && u.User.Username() != "" {
		loginStep.Detail = "authenticated as " + u.User.Username()
	}
	sendStep := Step{Name: StepSend, OK: true, Duration: end.Sub(tlsDone),
		Detail: fmt.Sprintf("the relay accepted the message for <%s> (Message-ID <%s>)", to, m.MessageID)}

	if err == nil {
		r.add(tlsStep)
		r.add(loginStep)
		r.add(sendStep)
		return r.done()
	}

	stage := client.Stage(err)
	failed := StepSend
	switch {
	case stage == smtpout.StageDial:
		failed = StepTLS // the TCP connection worked a moment ago: with smtps, the handshake failed
		var oe *net.OpError
		if !implicitTLS || errors.As(err, &oe) && oe.Op == "dial" {
			failed = StepConnect
		}
	case stage == smtpout.StageStartTLS:
		failed = StepTLS
	case stage == smtpout.StageEHLO && startTLS && handshake.at.IsZero():
		// go-smtp shakes hands after STARTTLS lazily, with the EHLO that
		// follows: a handshake that never finished failed there.
		failed = StepTLS
	case stage == smtpout.StageEHLO || stage == smtpout.StageAuth:
		// EHLO comes after TLS and introduces the client, as AUTH does.
		failed = StepLogin
	}
	detail := smtpout.Reply(err)
	if detail != "" {
		if cmd := smtpCommand(stage); cmd != "" {
			detail += " (in reply to " + cmd + ")"
		}
	} else {
		detail = err.Error()
	}
	detail = r.explain(errors.New(detail), func(e error) string { return e.Error() })

	switch failed {
	case StepConnect:
		r.res.Steps = r.res.Steps[:len(r.res.Steps)-1] // connect failed this time
		r.add(Step{Name: StepConnect, Detail: detail, Duration: end.Sub(t0)})
	case StepTLS:
		r.add(Step{Name: StepTLS, Detail: detail, Duration: end.Sub(t0)})
	case StepLogin:
		r.add(tlsStep)
		r.add(Step{Name: StepLogin, Detail: detail, Duration: end.Sub(tlsDone)})
	default:
		r.add(tlsStep)
		r.add(loginStep)
		sendStep.OK, sendStep.Detail = false, detail
		r.add(sendStep)
	}
	return r.done()
}

// smtpCommand is the command a reply at stage answered, for Details.
func smtpCommand(stage string) string {
	switch {
	case stage == smtpout.StageEHLO:
		return "EHLO"
	case stage == smtpout.StageAuth:
		return "AUTH"
	case stage == smtpout.StageMailFrom:
		return "MAIL FROM"
	case strings.HasPrefix(stage, smtpout.StageRcpt+" "):
		return "RCPT TO " + strings.TrimPrefix(stage, smtpout.StageRcpt+" ")
	case stage == smtpout.StageData:
		return "DATA"
	}
	return ""
}

// smtpAnswer is the reply in err as the server sent it, or err's text.
func smtpAnswer(err error) string {
	var te *textproto.Error
	if errors.As(err, &te) {
		return wireReply(te.Code, te.Msg)
	}
	return err.Error()
}

// wireReply renders a reply as it was on the wire: textproto joins the
// lines of a multi-line reply with "\n" and drops their codes.
func wireReply(code int, msg string) string {
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		sep := " "
		if i < len(lines)-1 {
			sep = "-"
		}
		lines[i] = strings.TrimRight(fmt.Sprintf("%03d%s%s", code, sep, l), " ")
	}
	return strings.Join(lines, "\n")
}

// messageID is a fresh Message-ID for the test message, in from's domain.
func messageID(from string) string {
	var b [12]byte
	rand.Read(b[:])
	domain := "switchboard.invalid"
	if _, d, ok := strings.Cut(from, "@"); ok && d != "" && !strings.ContainsAny(d, "<>@ \t\r\n") {
		domain = d
	}
	return "check." + hex.EncodeToString(b[:]) + "@" + domain
}
