package smtpout

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/switchboard-inbox/switchboard"
)

// DefaultTimeout bounds one Send when Config.Timeout is zero: connect,
// handshake and the whole transaction.
const DefaultTimeout = 2 * time.Minute

// Config configures a Client.
type Config struct {
	// URL is the relay: smtp://user:pass@host:587 submits with STARTTLS
	// (required unless ?starttls=off), smtps://user:pass@host:465 with
	// implicit TLS. ?insecure=true skips certificate checks (tests only).
	// Without a user there is no AUTH.
	URL      string
	HeloName string        // EHLO name; the host name when empty
	DKIM     *DKIM         // signs every mail when set
	Timeout  time.Duration // per Send; DefaultTimeout when zero
	// TLSConfig is the base TLS configuration (RootCAs, say); ServerName
	// comes from the URL. Optional.
	TLSConfig *tls.Config
	Logger    *slog.Logger // slog.Default() when nil
}

// Client submits mail to one relay. It keeps no connection between sends,
// so it is safe for concurrent use.
type Client struct {
	addr, host  string
	implicitTLS bool
	startTLS    bool
	tls         *tls.Config
	user, pass  string
	helo        string
	dkim        *DKIM
	timeout     time.Duration
	log         *slog.Logger
	redacted    string // the URL without the password, for logs and errors
}

// New parses and checks cfg. Errors never contain the password.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		// url.Parse quotes the whole URL, password included: do not wrap it.
		return nil, errors.New("smtp: config: the URL does not parse (expected smtp://user:pass@host:587 or smtps://...)")
	}
	c := &Client{dkim: cfg.DKIM, timeout: cfg.Timeout, log: cfg.Logger, redacted: u.Redacted()}
	port := ""
	switch u.Scheme {
	case "smtp":
		port, c.startTLS = "587", true
	case "smtps":
		port, c.implicitTLS = "465", true
	default:
		return nil, fmt.Errorf("smtp: config: URL scheme %q: want smtp or smtps", u.Scheme)
	}
	c.host = u.Hostname()
	if c.host == "" {
		return nil, fmt.Errorf("smtp: config: %s has no host", c.redacted)
	}
	if p := u.Port(); p != "" {
		port = p
	}
	c.addr = net.JoinHostPort(c.host, port)
	if u.User != nil {
		c.user = u.User.Username()
		c.pass, _ = u.User.Password()
	}
	insecure := false
	for k, v := range u.Query() {
		val := v[len(v)-1]
		switch k {
		case "starttls":
			switch val {
			case "off", "false":
				if c.implicitTLS {
					return nil, fmt.Errorf("smtp: config: starttls=off makes no sense with smtps")
				}
				c.startTLS = false
			case "on", "true":
			default:
				return nil, fmt.Errorf("smtp: config: starttls=%q: want on or off", val)
			}
		case "insecure":
			switch val {
			case "true", "1":
				insecure = true
			case "false", "0":
			default:
				return nil, fmt.Errorf("smtp: config: insecure=%q: want true or false", val)
			}
		default:
			// A mistyped option must not silently weaken the connection.
			return nil, fmt.Errorf("smtp: config: unknown URL option %q", k)
		}
	}
	if c.user != "" && !c.startTLS && !c.implicitTLS && !isLoopback(c.host) {
		return nil, fmt.Errorf("smtp: config: %s would send the password in clear text; use STARTTLS or smtps", c.redacted)
	}
	if cfg.TLSConfig != nil {
		c.tls = cfg.TLSConfig.Clone()
	} else {
		c.tls = &tls.Config{}
	}
	c.tls.ServerName = c.host
	c.tls.InsecureSkipVerify = insecure
	if c.tls.MinVersion == 0 {
		c.tls.MinVersion = tls.VersionTLS12
	}
	c.helo = cfg.HeloName
	if c.helo == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			c.helo = h
		} else {
			c.helo = "localhost"
		}
	}
	if hasBreak(c.helo) || strings.ContainsAny(c.helo, " \t") {
		return nil, errors.New("smtp: config: HeloName must be one word")
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.dkim != nil {
		if _, err := c.dkim.algorithm(); err != nil {
			return nil, fmt.Errorf("smtp: config: %w", err)
		}
	}
	return c, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// String describes the relay without the password.
func (c *Client) String() string { return c.redacted }

// Prepare builds m and signs it when the client has a DKIM key: the exact
// bytes Send would submit.
func (c *Client) Prepare(m Mail) ([]byte, error) {
	raw, err := Build(m)
	if err != nil {
		return nil, err
	}
	if c.dkim != nil {
		if raw, err = c.dkim.Sign(raw); err != nil {
			return nil, err
		}
	}
	return raw, nil
}

// Send builds, signs and submits m, and returns the bytes it sent. Invalid
// mail, SMTP 5xx replies and a message over the relay's SIZE are permanent
// errors (switchboard.IsPermanent); 4xx replies, network errors and ctx
// ending are not.
func (c *Client) Send(ctx context.Context, m Mail) ([]byte, error) {
	raw, err := c.Prepare(m)
	if err != nil {
		return nil, switchboard.Permanent(fmt.Errorf("smtp: prepare %s: %w", m.MessageID, err))
	}
	from := m.From.Addr
	if m.Auto {
		from = "" // RFC 3834 §3.3: MAIL FROM:<> so nothing answers an auto-reply
	}
	rcpts := m.recipients()
	required := min(len(m.To), len(rcpts)) // To comes first in rcpts
	start := time.Now()
	if err := c.submit(ctx, from, rcpts, required, raw); err != nil {
		c.log.WarnContext(ctx, "smtp send failed", "relay", c.redacted, "message_id", m.MessageID,
			"permanent", switchboard.IsPermanent(err), "err", err)
		return nil, err
	}
	c.log.InfoContext(ctx, "smtp sent", "relay", c.redacted, "message_id", m.MessageID,
		"recipients", len(rcpts), "bytes", len(raw), "auto", m.Auto, "took", time.Since(start))
	return raw, nil
}

// submit runs one SMTP session: dial, TLS, EHLO, AUTH, SIZE check, MAIL,
// RCPT, DATA, QUIT. The first required recipients must be accepted; a copy
// (Cc, Bcc) the relay refuses for good is logged and left out, so that one
// wrong colleague's address does not keep the reply from the customer.
func (c *Client) submit(ctx context.Context, from string, rcpts []string, required int, raw []byte) (err error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	stage := "dial"
	// Every return goes through here, so the stage, the reply class and
	// the context decide alike whether a failure is permanent.
	defer func() {
		if err != nil {
			err = c.classify(ctx, stage, err)
		}
	}()

	d := &net.Dialer{}
	var conn net.Conn
	if c.implicitTLS {
		conn, err = (&tls.Dialer{NetDialer: d, Config: c.tls}).DialContext(ctx, "tcp", c.addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", c.addr)
	}
	if err != nil {
		return err
	}
	// go-smtp sets and clears its own deadlines per command, so ctx is
	// enforced by closing the connection, which fails whatever I/O is on.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var sc *smtp.Client
	if c.startTLS {
		stage = "starttls"
		// The EHLO before STARTTLS says "localhost" (go-smtp offers no
		// other way); the one after it, which counts, says c.helo.
		if sc, err = smtp.NewClientStartTLS(conn, c.tls); err != nil {
			conn.Close()
			return err
		}
	} else {
		sc = smtp.NewClient(conn)
	}
	defer sc.Close()
	sc.CommandTimeout = c.timeout
	sc.SubmissionTimeout = c.timeout

	stage = "ehlo"
	if err = sc.Hello(c.helo); err != nil {
		return err
	}
	if c.user != "" {
		stage = "auth"
		var mech sasl.Client
		switch {
		case sc.SupportsAuth(sasl.Plain):
			mech = sasl.NewPlainClient("", c.user, c.pass)
		case sc.SupportsAuth(sasl.Login):
			mech = sasl.NewLoginClient(c.user, c.pass)
		default:
			return errors.New("the server offers neither AUTH PLAIN nor AUTH LOGIN")
		}
		if err = sc.Auth(mech); err != nil {
			return err
		}
	}
	stage = "size"
	if limit, ok := sc.MaxMessageSize(); ok && limit > 0 && len(raw) > limit {
		_ = sc.Quit()
		return switchboard.Errorf(switchboard.ETOOLARGE,
			"the message is %d bytes; the relay accepts at most %d", len(raw), limit)
	}
	stage = "mail from"
	if err = sc.Mail(from, &smtp.MailOptions{Size: int64(len(raw))}); err != nil {
		return err
	}
	var accepted int
	var firstRefusal error
	for i, r := range rcpts {
		stage = "rcpt to <" + r + ">"
		if err = sc.Rcpt(r, nil); err != nil {
			var se *smtp.SMTPError
			if i >= required && errors.As(err, &se) && se.Code >= 500 && se.Code < 600 {
				c.log.WarnContext(ctx, "smtp: a copy's recipient refused", "relay", c.redacted, "recipient", r, "err", err)
				if firstRefusal == nil {
					firstRefusal = err
				}
				err = nil
				continue
			}
			return err
		}
		accepted++
	}
	if accepted == 0 && firstRefusal != nil {
		return firstRefusal // nobody left to send to
	}
	stage = "data"
	w, err := sc.Data()
	if err != nil {
		return err
	}
	if _, err = w.Write(raw); err != nil {
		return err
	}
	if err = w.Close(); err != nil {
		return err
	}
	// The relay has taken the message; a failing QUIT changes nothing.
	if qerr := sc.Quit(); qerr != nil {
		c.log.DebugContext(ctx, "smtp quit", "relay", c.redacted, "err", qerr)
	}
	return nil
}

// classify wraps err with the stage and marks what retrying cannot fix.
func (c *Client) classify(ctx context.Context, stage string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		// The close that enforced ctx surfaces as a network error; say why.
		return fmt.Errorf("smtp %s: %s: %w (%w)", c.host, stage, ctxErr, err)
	}
	wrapped := fmt.Errorf("smtp %s: %s: %w", c.host, stage, err)
	var se *smtp.SMTPError
	// A refused login is the relay's configuration, not this message: the
	// outbox keeps retrying while someone fixes the credentials.
	if errors.As(err, &se) && se.Code >= 500 && se.Code < 600 && stage != "auth" {
		return switchboard.Permanent(wrapped)
	}
	if switchboard.ErrorCode(err) == switchboard.ETOOLARGE {
		return switchboard.Permanent(wrapped)
	}
	return wrapped
}
