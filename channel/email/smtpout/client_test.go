package smtpout_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/email/smtpout"
)

const (
	testUser = "agent@shop.example"
	testPass = "pa55:w0rd/with@odd&chars"
)

// session is what the test server saw of one connection.
type session struct {
	helo     string
	tls      bool
	authUser string
	authPass string
	from     []string // one per MAIL
	rcpts    []string
	data     [][]byte
}

// fakeServer is an in-process go-smtp server whose answers tests script.
type fakeServer struct {
	mu          sync.Mutex
	sessions    []*session
	requireAuth bool
	rcptErr     map[string]error // by recipient
	mailErr     error
	dataErr     error
	dataHold    chan struct{} // when set, DATA waits for it to close
	dataSeen    chan struct{} // closed when DATA starts (with dataHold)
}

func (f *fakeServer) snapshot() []session {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]session, len(f.sessions))
	for i, s := range f.sessions {
		out[i] = *s
	}
	return out
}

// totals counts MAIL and DATA over all sessions.
func (f *fakeServer) totals() (mails, datas int) {
	for _, s := range f.snapshot() {
		mails += len(s.from)
		datas += len(s.data)
	}
	return mails, datas
}

// last is the latest session: after STARTTLS, go-smtp starts a new one.
func (f *fakeServer) last(t *testing.T) session {
	t.Helper()
	ss := f.snapshot()
	if len(ss) == 0 {
		t.Fatal("no session")
	}
	return ss[len(ss)-1]
}

type fakeSession struct {
	f *fakeServer
	s *session
}

func (f *fakeServer) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	s := &session{helo: c.Hostname(), tls: isTLS}
	f.mu.Lock()
	f.sessions = append(f.sessions, s)
	f.mu.Unlock()
	return &fakeSession{f: f, s: s}, nil
}

func (s *fakeSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *fakeSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		s.f.mu.Lock()
		s.s.authUser, s.s.authPass = user, pass
		s.f.mu.Unlock()
		if user != testUser || pass != testPass {
			return smtp.ErrAuthFailed
		}
		return nil
	}), nil
}

func (s *fakeSession) Mail(from string, _ *smtp.MailOptions) error {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if s.f.requireAuth && s.s.authUser == "" {
		return smtp.ErrAuthRequired
	}
	s.s.from = append(s.s.from, from)
	return s.f.mailErr
}

func (s *fakeSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.s.rcpts = append(s.s.rcpts, to)
	return s.f.rcptErr[to]
}

func (s *fakeSession) Data(r io.Reader) error {
	if s.f.dataHold != nil {
		close(s.f.dataSeen)
		<-s.f.dataHold
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.s.data = append(s.s.data, b)
	return s.f.dataErr
}

func (s *fakeSession) Reset()        {}
func (s *fakeSession) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1 and localhost.
var selfSigned = sync.OnceValues(func() (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "switchboard test relay"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
})

type serverMode int

const (
	plainMode    serverMode = iota // no TLS at all
	startTLSMode                   // STARTTLS offered
	implicitMode                   // TLS from the first byte
)

// start runs f on a loopback port and returns host:port.
func (f *fakeServer) start(t *testing.T, mode serverMode, configure func(*smtp.Server)) string {
	t.Helper()
	s := smtp.NewServer(f)
	s.Domain = "relay.test"
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	s.ErrorLog = nopLogger{}
	cert, _ := selfSigned()
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	switch mode {
	case startTLSMode:
		s.TLSConfig = tlsCfg
	case implicitMode:
		l = tls.NewListener(l, tlsCfg)
	case plainMode:
		s.AllowInsecureAuth = true
	}
	if configure != nil {
		configure(s)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(l)
	}()
	t.Cleanup(func() {
		// Close the listener too: Server.Close misses it when Serve has
		// not registered it yet.
		l.Close()
		s.Close()
		<-done
	})
	return l.Addr().String()
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

func newClient(t *testing.T, url string, mod func(*smtpout.Config)) (*smtpout.Client, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	cfg := smtpout.Config{
		URL:      url,
		HeloName: "switchboard.shop.example",
		Timeout:  10 * time.Second,
		Logger:   slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := smtpout.New(cfg)
	if err != nil {
		t.Fatalf("New(%q): %v", url, err)
	}
	return c, &logs
}

func userURL(scheme, addr, query string) string {
	u := scheme + "://" + strings.ReplaceAll(strings.ReplaceAll(testUser, "@", "%40"), ":", "%3A") + ":" +
		strings.NewReplacer("@", "%40", ":", "%3A", "/", "%2F", "&", "%26").Replace(testPass) + "@" + addr
	if query != "" {
		u += "?" + query
	}
	return u
}

func TestSendStartTLSAuthPlain(t *testing.T) {
	f := &fakeServer{requireAuth: true}
	addr := f.start(t, startTLSMode, nil)
	d := testDKIMs()["rsa"]
	c, logs := newClient(t, userURL("smtp", addr, "insecure=true"), func(cfg *smtpout.Config) { cfg.DKIM = d })

	m := fullMail()
	m.Cc = append(m.Cc, smtpout.Address{Addr: "JOSE@customer.example"}) // same as To, other case
	raw, err := c.Send(context.Background(), m)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	// go-smtp starts a session at each EHLO: the one before STARTTLS (in
	// clear, EHLO localhost, nothing else) and the one after it.
	ss := f.snapshot()
	if len(ss) != 2 {
		t.Fatalf("%d sessions, want 2 (before and after STARTTLS)", len(ss))
	}
	if pre := ss[0]; pre.tls || pre.authUser != "" || len(pre.from) != 0 {
		t.Errorf("something happened before STARTTLS: %+v", pre)
	}
	s := ss[1]
	if !s.tls {
		t.Fatal("the transaction ran without TLS")
	}
	if s.helo != "switchboard.shop.example" {
		t.Errorf("EHLO %q", s.helo)
	}
	if s.authUser != testUser || s.authPass != testPass {
		t.Errorf("AUTH PLAIN as %q/%q", s.authUser, s.authPass)
	}
	if strings.Join(s.from, ",") != "support@shop.example" {
		t.Errorf("MAIL FROM %q", s.from)
	}
	if got, want := strings.Join(s.rcpts, ","), "jose@customer.example,ops@customer.example,audit@shop.example"; got != want {
		t.Errorf("RCPT TO %s, want %s", got, want)
	}
	if len(s.data) != 1 || !bytes.Equal(s.data[0], raw) {
		t.Fatalf("the server received other bytes than Send returned")
	}
	if bytes.Contains(raw, []byte("audit@shop.example")) {
		t.Errorf("Bcc address in the data")
	}
	if v := goVerify(t, d, s.data[0]); v.Err != nil {
		t.Errorf("DKIM of the received copy: %v", v.Err)
	}
	if strings.Contains(logs.String(), testPass) {
		t.Errorf("the password is in the logs:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "smtp sent") || !strings.Contains(logs.String(), m.MessageID) {
		t.Errorf("no send log line:\n%s", logs)
	}
}

func TestSendSTARTTLSIsUsed(t *testing.T) {
	// Without STARTTLS on offer, Send refuses rather than fall back to
	// clear text, and the server never sees MAIL.
	f := &fakeServer{}
	addr := f.start(t, plainMode, nil)
	c, _ := newClient(t, "smtp://"+addr, nil)
	_, err := c.Send(context.Background(), fullMail())
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("Send to a server without STARTTLS: %v", err)
	}
	if switchboard.IsPermanent(err) {
		t.Errorf("a missing STARTTLS is marked permanent")
	}
	for _, s := range f.snapshot() {
		if len(s.from) > 0 {
			t.Fatalf("MAIL sent without TLS")
		}
	}

	// starttls=off is the explicit way to talk in clear text.
	c, _ = newClient(t, "smtp://"+addr+"?starttls=off", nil)
	if _, err := c.Send(context.Background(), fullMail()); err != nil {
		t.Fatalf("starttls=off: %v", err)
	}
	if s := f.last(t); s.tls || len(s.data) != 1 {
		t.Fatalf("session %+v", s)
	}
}

func TestSendImplicitTLS(t *testing.T) {
	f := &fakeServer{requireAuth: true}
	addr := f.start(t, implicitMode, nil)
	c, _ := newClient(t, userURL("smtps", addr, "insecure=true"), nil)
	raw, err := c.Send(context.Background(), fullMail())
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	ss := f.snapshot()
	if len(ss) != 1 || !ss[0].tls || ss[0].authUser != testUser || len(ss[0].data) != 1 || !bytes.Equal(ss[0].data[0], raw) {
		t.Fatalf("sessions %+v", ss)
	}
}

func TestSendVerifiesCertificates(t *testing.T) {
	f := &fakeServer{}
	addr := f.start(t, implicitMode, nil)
	c, _ := newClient(t, "smtps://"+addr, nil)
	_, err := c.Send(context.Background(), fullMail())
	var uerr x509.UnknownAuthorityError
	if !errors.As(err, &uerr) {
		t.Fatalf("self-signed certificate accepted or other error: %v", err)
	}
	if switchboard.IsPermanent(err) {
		t.Errorf("certificate error marked permanent")
	}
	_, pool := selfSigned()
	c, _ = newClient(t, "smtps://"+addr, func(cfg *smtpout.Config) { cfg.TLSConfig = &tls.Config{RootCAs: pool} })
	if _, err := c.Send(context.Background(), fullMail()); err != nil {
		t.Fatalf("with the CA trusted: %v", err)
	}
}

func TestSendWrongPassword(t *testing.T) {
	f := &fakeServer{}
	addr := f.start(t, startTLSMode, nil)
	url := strings.Replace(userURL("smtp", addr, "insecure=true"), "w0rd", "WRONG", 1)
	c, logs := newClient(t, url, nil)
	_, err := c.Send(context.Background(), fullMail())
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 535 {
		t.Fatalf("err %v, want 535", err)
	}
	if switchboard.IsPermanent(err) {
		t.Errorf("535 marked permanent: every queued reply would fail while the password is fixed")
	}
	if strings.Contains(err.Error(), "WRONG") || strings.Contains(logs.String(), "WRONG") {
		t.Errorf("the password leaks: %v\n%s", err, logs)
	}
}

func TestSendSizeLimit(t *testing.T) {
	f := &fakeServer{}
	addr := f.start(t, startTLSMode, func(s *smtp.Server) { s.MaxMessageBytes = 4000 })
	c, _ := newClient(t, "smtp://"+addr+"?insecure=true", nil)
	m := fullMail() // about 3 KB
	if _, err := c.Send(context.Background(), m); err != nil {
		t.Fatalf("a mail under the limit: %v", err)
	}
	m.Attachments = append(m.Attachments, smtpout.Attachment{Name: "big.bin", Data: bytes.Repeat([]byte{7}, 3000)})
	_, err := c.Send(context.Background(), m)
	if err == nil {
		t.Fatal("a mail over SIZE was sent")
	}
	if !switchboard.IsPermanent(err) || switchboard.ErrorCode(err) != switchboard.ETOOLARGE {
		t.Errorf("err %v: permanent %v, code %q; want permanent %s", err, switchboard.IsPermanent(err), switchboard.ErrorCode(err), switchboard.ETOOLARGE)
	}
	if !strings.Contains(err.Error(), "at most 4000") {
		t.Errorf("err %v does not name the limit", err)
	}
	if mails, datas := f.totals(); mails != 1 || datas != 1 {
		t.Fatalf("the server saw %d MAIL and %d DATA, want only the small mail's", mails, datas)
	}
}

func TestSendReplies(t *testing.T) {
	rej := func(code int, enh smtp.EnhancedCode, msg string) error {
		return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg}
	}
	for _, c := range []struct {
		name      string
		f         *fakeServer
		code      int
		permanent bool
		stage     string
		wantData  bool
	}{
		{"rcpt 550", &fakeServer{rcptErr: map[string]error{"jose@customer.example": rej(550, smtp.EnhancedCode{5, 1, 1}, "no such user")}}, 550, true, "rcpt to <jose@customer.example>", false},
		{"cc rcpt 451", &fakeServer{rcptErr: map[string]error{"ops@customer.example": rej(451, smtp.EnhancedCode{4, 7, 1}, "greylisted")}}, 451, false, "rcpt to <ops@customer.example>", false},
		{"rcpt 451", &fakeServer{rcptErr: map[string]error{"jose@customer.example": rej(451, smtp.EnhancedCode{4, 7, 1}, "greylisted, try later")}}, 451, false, "rcpt to <jose@customer.example>", false},
		{"mail 550", &fakeServer{mailErr: rej(550, smtp.EnhancedCode{5, 7, 1}, "sender rejected")}, 550, true, "mail from", false},
		{"mail 421", &fakeServer{mailErr: rej(421, smtp.EnhancedCode{4, 3, 0}, "shutting down")}, 421, false, "mail from", false},
		{"data 554", &fakeServer{dataErr: rej(554, smtp.EnhancedCode{5, 7, 1}, "spam")}, 554, true, "data", true},
		{"data 451", &fakeServer{dataErr: rej(451, smtp.EnhancedCode{4, 3, 0}, "local error")}, 451, false, "data", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := c.f
			addr := f.start(t, startTLSMode, nil)
			cl, _ := newClient(t, "smtp://"+addr+"?insecure=true", nil)
			raw, err := cl.Send(context.Background(), fullMail())
			if err == nil || raw != nil {
				t.Fatalf("Send = %d bytes, %v; want an error", len(raw), err)
			}
			var se *smtp.SMTPError
			if !errors.As(err, &se) || se.Code != c.code {
				t.Fatalf("err %v, want SMTP %d", err, c.code)
			}
			if got := switchboard.IsPermanent(err); got != c.permanent {
				t.Errorf("permanent = %v, want %v (%v)", got, c.permanent, err)
			}
			if !strings.Contains(err.Error(), ": "+c.stage+": ") {
				t.Errorf("err %q does not name the stage %q", err, c.stage)
			}
			if _, datas := f.totals(); (datas == 1) != c.wantData {
				t.Errorf("server got %d DATA, want data: %v", datas, c.wantData)
			}
		})
	}
}

// A copy's address the relay refuses for good is left out; the customer
// still gets the reply.
func TestSendSkipsRefusedCopy(t *testing.T) {
	f := &fakeServer{rcptErr: map[string]error{"ops@customer.example": &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}}}
	addr := f.start(t, startTLSMode, nil)
	c, _ := newClient(t, "smtp://"+addr+"?insecure=true", nil)
	if _, err := c.Send(context.Background(), fullMail()); err != nil {
		t.Fatalf("a refused Cc failed the reply: %v", err)
	}
	if _, datas := f.totals(); datas != 1 {
		t.Errorf("server got %d DATA, want 1", datas)
	}
}

func TestSendAutoNullSender(t *testing.T) {
	f := &fakeServer{}
	addr := f.start(t, startTLSMode, nil)
	c, _ := newClient(t, "smtp://"+addr+"?insecure=true", nil)
	m := fullMail()
	m.Auto = true
	raw, err := c.Send(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if s := f.last(t); len(s.from) != 1 || s.from[0] != "" {
		t.Fatalf("MAIL FROM %q, want the null sender", s.from)
	}
	if !bytes.Contains(raw, []byte("\r\nAuto-Submitted: auto-replied\r\n")) || !bytes.Contains(raw, []byte("\r\nFrom: ")) {
		t.Errorf("auto mail lacks Auto-Submitted or From")
	}
}

func TestSendInvalidMailIsPermanent(t *testing.T) {
	f := &fakeServer{}
	addr := f.start(t, startTLSMode, nil)
	c, _ := newClient(t, "smtp://"+addr+"?insecure=true", nil)
	m := fullMail()
	m.Subject = "x\r\nBcc: victim@example.com"
	_, err := c.Send(context.Background(), m)
	if !switchboard.IsPermanent(err) || switchboard.ErrorCode(err) != switchboard.EINVALID {
		t.Fatalf("err %v, want permanent EINVALID", err)
	}
	if len(f.snapshot()) != 0 {
		t.Errorf("connected for an invalid mail")
	}
}

func TestSendContextCancel(t *testing.T) {
	t.Run("during data", func(t *testing.T) {
		f := &fakeServer{dataHold: make(chan struct{}), dataSeen: make(chan struct{})}
		defer close(f.dataHold)
		addr := f.start(t, startTLSMode, nil)
		c, _ := newClient(t, "smtp://"+addr+"?insecure=true", nil)
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-f.dataSeen
			cancel()
		}()
		start := time.Now()
		_, err := c.Send(ctx, fullMail())
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
		if switchboard.IsPermanent(err) {
			t.Errorf("cancel marked permanent")
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Send took %v after cancel", d)
		}
	})
	t.Run("silent server", func(t *testing.T) {
		// A listener that accepts and never greets: only the deadline
		// ends the wait.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				conn, err := l.Accept()
				if err != nil {
					return
				}
				defer conn.Close()
			}
		}()
		c, _ := newClient(t, "smtp://"+l.Addr().String()+"?insecure=true", nil)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = c.Send(ctx, fullMail())
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Send took %v with a 300ms deadline", d)
		}
	})
	t.Run("config timeout", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				conn, err := l.Accept()
				if err != nil {
					return
				}
				defer conn.Close()
			}
		}()
		c, _ := newClient(t, "smtp://"+l.Addr().String(), func(cfg *smtpout.Config) { cfg.Timeout = 200 * time.Millisecond })
		start := time.Now()
		_, err = c.Send(context.Background(), fullMail())
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
			t.Fatalf("err %v after %v, want DeadlineExceeded near 200ms", err, time.Since(start))
		}
	})
}

func TestNewConfig(t *testing.T) {
	const secret = "s3cr3t-PW"
	for _, c := range []struct{ url, want string }{
		{"http://u:" + secret + "@mail.example:25", `scheme "http"`},
		{"smtp://u:" + secret + "@:25", "has no host"},
		{"smtp://u:" + secret + "@mail.example:587?starttls=maybe", `starttls="maybe"`},
		{"smtp://u:" + secret + "@mail.example:587?insecure=yes", `insecure="yes"`},
		{"smtp://u:" + secret + "@mail.example:587?tls=off", `unknown URL option "tls"`},
		{"smtps://u:" + secret + "@mail.example?starttls=off", "makes no sense"},
		{"smtp://u:" + secret + "@mail.example:25?starttls=off", "clear text"},
		{"smtp://u:" + secret + "@mail.example:bad port", "does not parse"},
		{"smtp://u:" + secret + "@mail.example\r\n:25", "does not parse"},
	} {
		_, err := smtpout.New(smtpout.Config{URL: c.url})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%q) = %v, want error with %q", c.url, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("New(%q) error shows the password: %v", c.url, err)
		}
	}
	if _, err := smtpout.New(smtpout.Config{URL: "smtp://relay.example", HeloName: "a b"}); err == nil {
		t.Errorf("HeloName with a space accepted")
	}
	// Clear text to a loopback relay is fine (a local MTA).
	c, err := smtpout.New(smtpout.Config{URL: "smtp://u:" + secret + "@127.0.0.1:25?starttls=off"})
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprint(c); strings.Contains(s, secret) || !strings.Contains(s, "127.0.0.1:25") {
		t.Errorf("String() = %q", s)
	}
}
