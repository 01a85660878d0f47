package check_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/switchboard-inbox/switchboard/channel/email/check"
)

// tlsRelay is a go-smtp server with a self-signed certificate, offering
// STARTTLS or speaking TLS from the first byte, that accepts any login
// and any mail. (The test Postfix speaks no TLS.)
func tlsRelay(t *testing.T, implicit bool) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "check test relay"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}

	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return acceptAll{}, nil }))
	s.Domain = "relay.test"
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	s.ErrorLog = quiet{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if implicit {
		l = tls.NewListener(l, tlsCfg)
	} else {
		s.TLSConfig = tlsCfg
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(l) }()
	t.Cleanup(func() { l.Close(); s.Close(); <-done })
	return l.Addr().String()
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}
func (quiet) Println(...any)        {}

type acceptAll struct{}

func (acceptAll) AuthMechanisms() []string { return []string{sasl.Plain} }
func (acceptAll) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, _, _ string) error { return nil }), nil
}
func (acceptAll) Mail(string, *smtp.MailOptions) error { return nil }
func (acceptAll) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (acceptAll) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }
func (acceptAll) Reset()                               {}
func (acceptAll) Logout() error                        { return nil }

func TestSMTPOverTLS(t *testing.T) {
	const pass = "Tls-pa55word"
	for _, tc := range []struct {
		name, scheme string
		implicit     bool
	}{{"starttls", "smtp", false}, {"smtps", "smtps", true}} {
		t.Run(tc.name, func(t *testing.T) {
			addr := tlsRelay(t, tc.implicit)
			base := tc.scheme + "://agent:" + pass + "@" + addr

			res := check.SMTP(ctxFor(t, 30*time.Second), base+"?insecure=true", "help@shop.example", "c@example.org")
			expect(t, res, []string{"connect", "tls", "login", "send"}, "")
			want := "STARTTLS, TLS 1.3; certificate NOT verified (insecure=true)"
			if tc.implicit {
				want = "implicit TLS (smtps), TLS 1.3; certificate NOT verified (insecure=true)"
			}
			if d := res.Steps[1].Detail; d != want {
				t.Errorf("tls detail %q, want %q", d, want)
			}
			if res.Steps[1].Duration <= 0 {
				t.Errorf("tls took %v", res.Steps[1].Duration)
			}

			// Self-signed: refused at the tls step when verified.
			res = check.SMTP(ctxFor(t, 30*time.Second), base, "help@shop.example", "c@example.org")
			last := expect(t, res, []string{"connect", "tls"}, "tls")
			if !strings.Contains(last.Detail, "certificate") || strings.Contains(last.Detail, pass) {
				t.Errorf("tls detail %q", last.Detail)
			}
		})
	}

	// smtp:// requires STARTTLS unless the URL says otherwise.
	t.Run("STARTTLS not offered", func(t *testing.T) {
		addr := scriptedRelay(t, "220 relay.test ESMTP", nil)
		res := check.SMTP(ctxFor(t, 30*time.Second), "smtp://"+addr, "help@shop.example", "c@example.org")
		last := expect(t, res, []string{"connect", "tls"}, "tls")
		if !strings.Contains(last.Detail, "STARTTLS") {
			t.Errorf("tls detail %q", last.Detail)
		}
	})
}
