package imap

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// TLSMode says how a connection is secured.
type TLSMode int

const (
	// StartTLSAuto upgrades with STARTTLS when the server offers it (imap://,
	// the default). A server that does not offer it is refused, since an
	// attacker on the path can strip the offer, except on loopback.
	StartTLSAuto TLSMode = iota
	// StartTLSRequired fails unless STARTTLS succeeds (imap://...?starttls=required).
	StartTLSRequired
	// StartTLSOff never encrypts (imap://...?starttls=off): loopback and tests.
	StartTLSOff
	// ImplicitTLS speaks TLS from the first byte (imaps://).
	ImplicitTLS
)

func (m TLSMode) String() string {
	switch m {
	case StartTLSAuto:
		return "auto"
	case StartTLSRequired:
		return "required"
	case StartTLSOff:
		return "off"
	case ImplicitTLS:
		return "implicit"
	}
	return "TLSMode(" + strconv.Itoa(int(m)) + ")"
}

// Mailbox is one configured mailbox, parsed from a URL by ParseURL:
//
//	imap://user:pass@host:143/INBOX?processed=Processed&poll=30s
//	imaps://user:pass@host:993/INBOX
//
// Query parameters: processed=FOLDER moves delivered messages there
// (otherwise they are flagged \Seen); poll=DURATION overrides the
// Fetcher's poll interval for servers without IDLE; starttls=auto|required|off
// (imap:// only, default auto); insecure=true skips certificate
// verification (tests only).
//
// The password is kept unexported and never printed: String, GoString and
// LogValue show the URL without it.
type Mailbox struct {
	// Name is the stable key of this mailbox for State and for messages:
	// user@host/folder, with :port after the host when it is not the
	// scheme's default.
	Name      string
	Addr      string // host:port
	Host      string // for certificate verification
	Username  string
	Folder    string // the mailbox to read, e.g. INBOX
	Processed string // folder to move delivered messages to; "" flags them \Seen
	TLS       TLSMode
	Insecure  bool          // skip certificate verification
	Poll      time.Duration // 0: the Fetcher's
	password  string
}

// ParseURL parses an imap:// or imaps:// mailbox URL. Its errors never
// contain the password.
func ParseURL(raw string) (Mailbox, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole input, password included: keep only
		// the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Mailbox{}, fmt.Errorf("imap: invalid mailbox URL: %w", err)
	}
	var mb Mailbox
	var defPort string
	switch u.Scheme {
	case "imap":
		defPort = "143"
	case "imaps":
		defPort = "993"
		mb.TLS = ImplicitTLS
	default:
		return Mailbox{}, fmt.Errorf("imap: mailbox URL %s: scheme must be imap or imaps", redact(u))
	}
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return Mailbox{}, fmt.Errorf("imap: mailbox URL %s: missing host", redact(u))
	}
	if u.User == nil || u.User.Username() == "" {
		return Mailbox{}, fmt.Errorf("imap: mailbox URL %s: missing user name", redact(u))
	}
	pass, ok := u.User.Password()
	if !ok || pass == "" {
		return Mailbox{}, fmt.Errorf("imap: mailbox URL %s: missing password", redact(u))
	}
	mb.Username = u.User.Username()
	mb.password = pass
	mb.Host = u.Hostname()
	port := u.Port()
	if port == "" {
		port = defPort
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return Mailbox{}, fmt.Errorf("imap: mailbox URL %s: bad port %q", redact(u), port)
	}
	mb.Addr = net.JoinHostPort(mb.Host, port)
	mb.Folder = strings.TrimPrefix(u.Path, "/")
	if mb.Folder == "" {
		mb.Folder = "INBOX"
	}

	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Mailbox{}, fmt.Errorf("imap: mailbox URL %s: query: %w", redact(u), err)
	}
	for k, v := range q {
		val := v[len(v)-1]
		switch k {
		case "processed":
			if val == "" {
				return Mailbox{}, fmt.Errorf("imap: mailbox URL %s: processed is empty", redact(u))
			}
			mb.Processed = val
		case "poll":
			d, err := time.ParseDuration(val)
			if err != nil || d <= 0 {
				return Mailbox{}, fmt.Errorf("imap: mailbox URL %s: poll %q is not a positive duration", redact(u), val)
			}
			mb.Poll = d
		case "starttls":
			if mb.TLS == ImplicitTLS {
				return Mailbox{}, fmt.Errorf("imap: mailbox URL %s: starttls applies to imap:// only", redact(u))
			}
			switch strings.ToLower(val) {
			case "auto", "":
				mb.TLS = StartTLSAuto
			case "required", "on", "true":
				mb.TLS = StartTLSRequired
			case "off", "false":
				mb.TLS = StartTLSOff
			default:
				return Mailbox{}, fmt.Errorf("imap: mailbox URL %s: starttls %q: want auto, required or off", redact(u), val)
			}
		case "insecure":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return Mailbox{}, fmt.Errorf("imap: mailbox URL %s: insecure %q is not a boolean", redact(u), val)
			}
			mb.Insecure = b
		default:
			// A misspelt option silently ignored would, say, flag instead
			// of move: refuse it.
			return Mailbox{}, fmt.Errorf("imap: mailbox URL %s: unknown parameter %q", redact(u), k)
		}
	}
	if mb.Processed != "" && strings.EqualFold(mb.Processed, mb.Folder) {
		return Mailbox{}, fmt.Errorf("imap: mailbox URL %s: processed folder is the folder read", redact(u))
	}

	hostKey := mb.Host
	if port != defPort {
		hostKey = mb.Addr
	}
	mb.Name = mb.Username + "@" + hostKey + "/" + mb.Folder
	return mb, nil
}

// redact is u without its password, for messages. Without a password
// the user name goes too: it may be the password, its colon forgotten.
func redact(u *url.URL) string {
	c := *u
	if c.User != nil {
		if _, ok := c.User.Password(); ok {
			c.User = url.User(c.User.Username())
		} else {
			c.User = nil
		}
	}
	return c.String()
}

// String is the mailbox's URL without the password.
func (m Mailbox) String() string {
	scheme := "imap"
	if m.TLS == ImplicitTLS {
		scheme = "imaps"
	}
	u := url.URL{Scheme: scheme, User: url.User(m.Username), Host: m.Addr, Path: "/" + m.Folder}
	q := url.Values{}
	if m.Processed != "" {
		q.Set("processed", m.Processed)
	}
	if m.Poll > 0 {
		q.Set("poll", m.Poll.String())
	}
	if m.TLS == StartTLSRequired || m.TLS == StartTLSOff {
		q.Set("starttls", m.TLS.String())
	}
	if m.Insecure {
		q.Set("insecure", "true")
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// GoString keeps %#v from printing the password.
func (m Mailbox) GoString() string { return "imap.Mailbox(" + m.String() + ")" }

// LogValue keeps slog from printing the password.
func (m Mailbox) LogValue() slog.Value { return slog.StringValue(m.String()) }
