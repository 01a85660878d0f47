package smtpout

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
)

// GenerateBits is the size of the RSA keys GenerateDKIM makes.
//
// 2048 bits is what RFC 8301 recommends and every receiver verifies. Its
// TXT record (about 410 characters) already exceeds the 255 bytes of one
// DNS character-string, which DNS providers handle by splitting it into
// several strings that verifiers join; a 4096-bit record (about 740
// characters) breaks many providers' forms and risks responses too large
// for UDP, so it is not offered.
const GenerateBits = 2048

// GenerateDKIM makes a new RSA-2048 DKIM key for domain and selector and
// returns the DKIM that signs with it and the private key as PKCS#8 PEM
// ("BEGIN PRIVATE KEY"), which ParseDKIMKey and LoadDKIM read back. The
// record to publish is d.TXTRecord() at d.RecordName():
//
//	selector._domainkey.example.com  TXT  "v=DKIM1; k=rsa; p=MIIBIjANBg..."
//
// Why RSA and not ed25519 (RFC 8463) alone: many receivers, large mailbox
// providers among them, still do not verify ed25519-sha256 signatures and
// treat mail signed only that way as unsigned, which fails DMARC. An
// ed25519 key is only worth having next to an RSA one, and DKIM signs with
// one key.
func GenerateDKIM(domain, selector string) (*DKIM, []byte, error) {
	domain = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(domain)), ".")
	selector = strings.ToLower(strings.TrimSpace(selector))
	if err := checkDNSName("domain", domain, true); err != nil {
		return nil, nil, err
	}
	if err := checkDNSName("selector", selector, false); err != nil {
		return nil, nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, GenerateBits)
	if err != nil {
		return nil, nil, fmt.Errorf("dkim: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("dkim: encode key: %w", err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	return &DKIM{Domain: domain, Selector: selector, Key: key}, pemBytes, nil
}

// checkDNSName accepts dot-separated labels of ASCII letters, digits,
// hyphens and underscores (an internationalised domain must be given in
// its xn-- form), at most 63 bytes each and 253 in all. A domain needs at
// least two labels.
func checkDNSName(what, name string, domain bool) error {
	if name == "" {
		return fmt.Errorf("dkim: the %s is required", what)
	}
	if len(name) > 253 {
		return fmt.Errorf("dkim: the %s %q is longer than 253 characters", what, name)
	}
	labels := strings.Split(name, ".")
	if domain && len(labels) < 2 {
		return fmt.Errorf("dkim: the domain %q has no dot (expected a domain such as example.com)", name)
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("dkim: the %s %q is not a valid DNS name", what, name)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("dkim: the %s %q is not a valid DNS name (ASCII letters, digits and hyphens; xn-- form for other scripts)", what, name)
			}
		}
	}
	return nil
}
