package smtpout_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/switchboard-inbox/switchboard/channel/email/smtpout"
)

const (
	dkimDomain   = "shop.example"
	dkimSelector = "sb2026"
)

var (
	rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
	edKey = sync.OnceValue(func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

func testDKIMs() map[string]*smtpout.DKIM {
	return map[string]*smtpout.DKIM{
		"rsa":     {Domain: dkimDomain, Selector: dkimSelector, Key: rsaKey()},
		"ed25519": {Domain: dkimDomain, Selector: dkimSelector, Key: edKey()},
	}
}

// goVerify checks raw with go-msgauth, answering the key lookup with d's
// record only, and returns the verification of the single signature.
func goVerify(t *testing.T, d *smtpout.DKIM, raw []byte) *dkim.Verification {
	t.Helper()
	var asked []string
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			asked = append(asked, name)
			if name != d.RecordName() {
				return nil, fmt.Errorf("no TXT record at %s", name)
			}
			return []string{d.TXTRecord()}, nil
		},
	})
	if err != nil {
		t.Fatalf("dkim.Verify: %v", err)
	}
	if len(vs) != 1 {
		t.Fatalf("%d signatures, want 1", len(vs))
	}
	if len(asked) > 1 || len(asked) == 1 && asked[0] != dkimSelector+"._domainkey."+dkimDomain {
		t.Fatalf("looked up %v", asked)
	}
	return vs[0]
}

// pythonDKIM returns a Python interpreter with dkimpy: the independent
// verifier. Missing, it fails the test in CI and skips it elsewhere.
func pythonDKIM(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if path, err := exec.LookPath(py); err == nil {
			if exec.Command(path, "-c", "import dkim, nacl").Run() == nil {
				return path
			}
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("python3 with the dkim module (Debian: python3-dkim, python3-nacl) is required in CI")
	}
	t.Skip("python3 with the dkim module is not installed (apt-get install python3-dkim python3-nacl)")
	return ""
}

// pyVerify runs dkimpy on raw; it reports pass/fail and dkimpy's log.
func pyVerify(t *testing.T, py string, d *smtpout.DKIM, raw []byte) (bool, string) {
	t.Helper()
	cmd := exec.Command(py, filepath.Join("testdata", "dkimverify.py"), d.RecordName(), d.TXTRecord())
	cmd.Stdin = bytes.NewReader(raw)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := strings.TrimSpace(stdout.String())
	switch {
	case err == nil && out == "pass":
		return true, stderr.String()
	case out == "fail":
		return false, stderr.String()
	}
	t.Fatalf("dkimverify.py: %v, stdout %q, stderr:\n%s", err, out, stderr.String())
	return false, ""
}

func TestDKIMSignVerify(t *testing.T) {
	py := pythonDKIM(t)
	m := fullMail()
	m.Auto = true
	raw := mustBuild(t, m)
	for name, d := range testDKIMs() {
		t.Run(name, func(t *testing.T) {
			signed, err := d.Sign(raw)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if !bytes.HasPrefix(signed, []byte("DKIM-Signature: ")) || !bytes.HasSuffix(signed, raw) {
				t.Fatalf("Sign must prepend one field to the unchanged message")
			}
			v := goVerify(t, d, signed)
			if v.Err != nil {
				t.Fatalf("go-msgauth: %v", v.Err)
			}
			if v.Domain != dkimDomain {
				t.Errorf("d= %q", v.Domain)
			}
			wantKeys := "From Reply-To To Cc Subject Date Message-ID In-Reply-To References MIME-Version Content-Type Auto-Submitted From"
			if got := strings.Join(v.HeaderKeys, " "); got != wantKeys {
				t.Errorf("h=\n got %s\nwant %s", got, wantKeys)
			}
			sig := string(signed[:len(signed)-len(raw)])
			wantAlg := map[string]string{"rsa": "a=rsa-sha256", "ed25519": "a=ed25519-sha256"}[name]
			for _, tag := range []string{wantAlg, "c=relaxed/relaxed", "d=" + dkimDomain, "s=" + dkimSelector} {
				if !strings.Contains(sig, tag) {
					t.Errorf("signature lacks %s:\n%s", tag, sig)
				}
			}
			if ok, log := pyVerify(t, py, d, signed); !ok {
				t.Fatalf("dkimpy refused the signature:\n%s", log)
			}

			// A changed body fails both verifiers.
			tampered := bytes.Replace(signed, []byte("ships tomorrow"), []byte("ships next week"), 1)
			if bytes.Equal(tampered, signed) {
				t.Fatal("tampering changed nothing")
			}
			if v := goVerify(t, d, tampered); v.Err == nil {
				t.Errorf("go-msgauth accepted a changed body")
			}
			if ok, _ := pyVerify(t, py, d, tampered); ok {
				t.Errorf("dkimpy accepted a changed body")
			}

			// A second From added after signing fails: From is oversigned.
			i := bytes.Index(signed, []byte("\r\nFrom: "))
			added := append(append(append([]byte{}, signed[:i+2]...), "From: attacker@evil.example\r\n"...), signed[i+2:]...)
			if v := goVerify(t, d, added); v.Err == nil {
				t.Errorf("go-msgauth accepted an added From")
			}
			if ok, _ := pyVerify(t, py, d, added); ok {
				t.Errorf("dkimpy accepted an added From")
			}

			// Refolding headers and re-spacing the body is what relaxed
			// canonicalization forgives: still valid.
			refolded := bytes.Replace(signed, []byte("\r\nSubject: "), []byte("\r\nSubject:\r\n\t  "), 1)
			if v := goVerify(t, d, refolded); v.Err != nil {
				t.Errorf("go-msgauth refused a refolded Subject: %v", v.Err)
			}
			if ok, log := pyVerify(t, py, d, refolded); !ok {
				t.Errorf("dkimpy refused a refolded Subject:\n%s", log)
			}
		})
	}
}

func TestDKIMSignsOnlyPresentHeaders(t *testing.T) {
	m := smtpout.Mail{
		From: smtpout.Address{Addr: "a@shop.example"}, To: []smtpout.Address{{Addr: "b@c.example"}},
		MessageID: "x@shop.example", Date: testDate, Text: "hi",
	}
	d := testDKIMs()["ed25519"]
	signed, err := d.Sign(mustBuild(t, m))
	if err != nil {
		t.Fatal(err)
	}
	v := goVerify(t, d, signed)
	if v.Err != nil {
		t.Fatal(v.Err)
	}
	if got, want := strings.Join(v.HeaderKeys, " "), "From To Subject Date Message-ID MIME-Version Content-Type From"; got != want {
		t.Errorf("h= %s, want %s", got, want)
	}
}

func TestDKIMSignRejects(t *testing.T) {
	d := testDKIMs()["ed25519"]
	if _, err := d.Sign([]byte("To: a@b.example\r\nSubject: x\r\n\r\nbody\r\n")); err == nil || !strings.Contains(err.Error(), "no From") {
		t.Errorf("signing a message without From: %v", err)
	}
	if _, err := (&smtpout.DKIM{Domain: dkimDomain, Key: edKey()}).Sign([]byte("From: a@b\r\n\r\n")); err == nil {
		t.Errorf("signed without a selector")
	}
	var nilD *smtpout.DKIM
	if _, err := nilD.Sign([]byte("From: a@b\r\n\r\n")); err == nil {
		t.Errorf("nil DKIM signed")
	}
}

func TestTXTRecord(t *testing.T) {
	d := testDKIMs()
	ed := d["ed25519"].TXTRecord()
	pub := edKey().Public().(ed25519.PublicKey)
	if want := "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub); ed != want {
		t.Errorf("ed25519 record %q, want %q", ed, want)
	}
	r := d["rsa"].TXTRecord()
	p, ok := strings.CutPrefix(r, "v=DKIM1; k=rsa; p=")
	if !ok {
		t.Fatalf("rsa record %q", r)
	}
	der, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatal(err)
	}
	if !rsaKey().PublicKey.Equal(got) {
		t.Errorf("rsa record holds another key")
	}
	if n := d["rsa"].RecordName(); n != "sb2026._domainkey.shop.example" {
		t.Errorf("RecordName %q", n)
	}
}

func writePEM(t *testing.T, typ string, der []byte) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func pkcs8(t *testing.T, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestLoadDKIM(t *testing.T) {
	for _, c := range []struct {
		name string
		file string
		want crypto.PublicKey
	}{
		{"rsa pkcs1", writePEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey())), rsaKey().Public()},
		{"rsa pkcs8", writePEM(t, "PRIVATE KEY", pkcs8(t, rsaKey())), rsaKey().Public()},
		{"ed25519 pkcs8", writePEM(t, "PRIVATE KEY", pkcs8(t, edKey())), edKey().Public()},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := smtpout.LoadDKIM(dkimDomain, dkimSelector, c.file)
			if err != nil {
				t.Fatal(err)
			}
			if d.Domain != dkimDomain || d.Selector != dkimSelector {
				t.Errorf("loaded %+v", d)
			}
			if !d.Key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(c.want) {
				t.Errorf("loaded another key")
			}
			signed, err := d.Sign(mustBuild(t, fullMail()))
			if err != nil {
				t.Fatal(err)
			}
			if v := goVerify(t, d, signed); v.Err != nil {
				t.Errorf("verify: %v", v.Err)
			}
		})
	}
}

func TestLoadDKIMErrors(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(edKey().Public())
	small := smallRSA(t)
	for _, c := range []struct {
		name, domain, file, want string
	}{
		{"missing file", dkimDomain, filepath.Join(dir, "nope.pem"), "read key"},
		{"not PEM", dkimDomain, garbage, "no PEM block"},
		{"public key", dkimDomain, writePEM(t, "PUBLIC KEY", pubDER), `"PUBLIC KEY" is not a private key`},
		{"encrypted", dkimDomain, writePEM(t, "ENCRYPTED PRIVATE KEY", []byte{1, 2}), "encrypted"},
		{"ecdsa", dkimDomain, writePEM(t, "PRIVATE KEY", pkcs8(t, ec)), "unsupported key type *ecdsa.PrivateKey"},
		{"corrupt", dkimDomain, writePEM(t, "RSA PRIVATE KEY", []byte{0x30, 0x03, 1, 2, 3}), "parse RSA PRIVATE KEY"},
		{"rsa 768", dkimDomain, small, "768 bits; DKIM needs at least 1024"},
		{"no domain", "", writePEM(t, "PRIVATE KEY", pkcs8(t, edKey())), "domain and selector are required"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := smtpout.LoadDKIM(c.domain, dkimSelector, c.file)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("LoadDKIM = %v, %v; want error with %q", d, err, c.want)
			}
		})
	}
}

// smallRSA writes a 768-bit key; Go generates one only with the
// rsa1024min=0 GODEBUG setting.
func smallRSA(t *testing.T) string {
	t.Helper()
	t.Setenv("GODEBUG", "rsa1024min=0")
	k, err := rsa.GenerateKey(rand.Reader, 768)
	if err != nil {
		t.Fatalf("generate 768-bit key: %v", err)
	}
	return writePEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k))
}
