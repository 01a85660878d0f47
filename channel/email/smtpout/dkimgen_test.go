package smtpout_test

import (
	"bytes"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/switchboard-inbox/switchboard/channel/email/smtpout"
)

// verifyWithRecord verifies raw's single DKIM signature with go-msgauth,
// answering the key lookup only at name, with record split into DNS
// character-strings of at most 255 bytes and joined again as resolvers
// (net.LookupTXT) do.
func verifyWithRecord(t *testing.T, raw []byte, name, record string) *dkim.Verification {
	t.Helper()
	var chunks []string
	for s := record; s != ""; {
		n := min(255, len(s))
		chunks = append(chunks, s[:n])
		s = s[n:]
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{
		LookupTXT: func(q string) ([]string, error) {
			if q != name {
				return nil, fmt.Errorf("no TXT record at %s", q)
			}
			return []string{strings.Join(chunks, "")}, nil
		},
	})
	if err != nil {
		t.Fatalf("dkim.Verify: %v", err)
	}
	if len(vs) != 1 {
		t.Fatalf("%d signatures, want 1", len(vs))
	}
	return vs[0]
}

func TestGenerateDKIM(t *testing.T) {
	d, pemKey, err := smtpout.GenerateDKIM("Mail.Shop.Example.", "sb2026")
	if err != nil {
		t.Fatal(err)
	}

	// The private key: PKCS#8 PEM, RSA-2048, read back by ParseDKIMKey.
	block, rest := pem.Decode(pemKey)
	if block == nil || block.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("key is not one PKCS#8 PEM block:\n%s", pemKey)
	}
	key, err := smtpout.ParseDKIMKey(pemKey)
	if err != nil {
		t.Fatalf("ParseDKIMKey: %v", err)
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok || rk.N.BitLen() != smtpout.GenerateBits || smtpout.GenerateBits != 2048 {
		t.Fatalf("key %T of %d bits, want RSA-2048", key, rk.N.BitLen())
	}
	if !rk.Equal(d.Key) {
		t.Fatal("the PEM key is not the DKIM's key")
	}

	// The record to publish.
	if d.Domain != "mail.shop.example" || d.Selector != "sb2026" {
		t.Errorf("domain %q, selector %q", d.Domain, d.Selector)
	}
	if got, want := d.RecordName(), "sb2026._domainkey.mail.shop.example"; got != want {
		t.Errorf("RecordName %q, want %q", got, want)
	}
	rec := d.TXTRecord()
	if !strings.HasPrefix(rec, "v=DKIM1; k=rsa; p=MII") || strings.ContainsAny(rec, "\"\n") {
		t.Errorf("TXTRecord %q", rec)
	}
	// Over one 255-byte string, as an RSA-2048 record is, but well within
	// what DNS providers take.
	if len(rec) <= 255 || len(rec) > 450 {
		t.Errorf("TXTRecord is %d bytes", len(rec))
	}
	t.Logf("%s TXT %d bytes", d.RecordName(), len(rec))

	// A message signed with the generated key verifies with the public key
	// from the record, and the signature names the domain and selector.
	c, err := smtpout.New(smtpout.Config{URL: "smtp://127.0.0.1:25", DKIM: d})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := c.Prepare(smtpout.Mail{
		From:      smtpout.Address{Name: "Shop", Addr: "help@mail.shop.example"},
		To:        []smtpout.Address{{Addr: "customer@example.org"}},
		Subject:   "Your order",
		MessageID: "m.dkimgen@mail.shop.example",
		Date:      time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		Text:      "Hello,\n\nyour order has shipped.\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	v := verifyWithRecord(t, raw, d.RecordName(), rec)
	if v.Err != nil {
		t.Fatalf("signature does not verify: %v", v.Err)
	}
	if v.Domain != "mail.shop.example" {
		t.Errorf("d=%q", v.Domain)
	}
	if !bytes.Contains(raw, []byte("s=sb2026")) || !bytes.Contains(raw, []byte("a=rsa-sha256")) {
		t.Errorf("signature header:\n%.600s", raw)
	}

	// Tampering breaks it: the verification is real.
	tampered := bytes.Replace(raw, []byte("has shipped"), []byte("was lost"), 1)
	if v := verifyWithRecord(t, tampered, d.RecordName(), rec); v.Err == nil {
		t.Error("a changed body still verifies")
	}
	// And another key's record does not verify it.
	other, _, err := smtpout.GenerateDKIM("mail.shop.example", "sb2026")
	if err != nil {
		t.Fatal(err)
	}
	if v := verifyWithRecord(t, raw, d.RecordName(), other.TXTRecord()); v.Err == nil {
		t.Error("verifies with another key's record")
	}
}

func TestGenerateDKIMRefusesBadNames(t *testing.T) {
	for _, tc := range []struct{ domain, selector string }{
		{"", "s1"},
		{"example.com", ""},
		{"localhost", "s1"},
		{"exa mple.com", "s1"},
		{"example.com", "s1; p=evil"},
		{"-bad.example.com", "s1"},
		{"münchen.example", "s1"},
		{"example..com", "s1"},
		{"example.com", strings.Repeat("a", 64)},
	} {
		if _, _, err := smtpout.GenerateDKIM(tc.domain, tc.selector); err == nil {
			t.Errorf("GenerateDKIM(%q, %q) accepted", tc.domain, tc.selector)
		}
	}
}
