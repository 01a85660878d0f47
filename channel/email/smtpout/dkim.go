package smtpout

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-msgauth/dkim"
)

// MinRSABits is the smallest RSA key LoadDKIM accepts: RFC 8301 forbids
// shorter ones and receivers (Gmail among them) ignore them. 2048 is what
// to generate.
const MinRSABits = 1024

// signedHeaders are the fields DKIM.Sign covers when present (channels.md
// §5): what identifies, addresses and threads the mail, and its structure.
var signedHeaders = []string{
	"From", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID",
	"In-Reply-To", "References", "MIME-Version", "Content-Type", "Auto-Submitted",
}

// DKIM signs outbound mail for one domain and selector.
type DKIM struct {
	Domain, Selector string
	Key              crypto.Signer // *rsa.PrivateKey or ed25519.PrivateKey
}

// LoadDKIM reads a PEM private key: PKCS#1 ("RSA PRIVATE KEY") or PKCS#8
// ("PRIVATE KEY") RSA of at least MinRSABits, or PKCS#8 ed25519.
func LoadDKIM(domain, selector, keyFile string) (*DKIM, error) {
	if domain == "" || selector == "" {
		return nil, errors.New("dkim: domain and selector are required")
	}
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("dkim: read key: %w", err)
	}
	key, err := ParseDKIMKey(b)
	if err != nil {
		return nil, fmt.Errorf("dkim: %s: %w", keyFile, err)
	}
	return &DKIM{Domain: domain, Selector: selector, Key: key}, nil
}

// ParseDKIMKey parses the PEM key LoadDKIM reads.
func ParseDKIMKey(pemBytes []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM block found (expected BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)")
	}
	if _, ok := block.Headers["DEK-Info"]; ok {
		return nil, errors.New("the key is encrypted; store it unencrypted with restrictive file permissions")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("the key is encrypted (PKCS#8); store it unencrypted with restrictive file permissions")
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key (expected PRIVATE KEY or RSA PRIVATE KEY)", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", block.Type, err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < MinRSABits {
			return nil, fmt.Errorf("RSA key has %d bits; DKIM needs at least %d (2048 recommended)", bits, MinRSABits)
		}
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	default:
		return nil, fmt.Errorf("unsupported key type %T: DKIM signs with RSA or ed25519", key)
	}
}

// algorithm returns the k= tag of the key.
func (d *DKIM) algorithm() (string, error) {
	switch d.Key.Public().(type) {
	case *rsa.PublicKey:
		return "rsa", nil
	case ed25519.PublicKey:
		return "ed25519", nil
	}
	return "", fmt.Errorf("dkim: unsupported key type %T", d.Key.Public())
}

// TXTRecord is the record to publish at <selector>._domainkey.<domain>.
// An RSA-2048 record is longer than 255 bytes: DNS providers split it into
// several strings, which verifiers join.
func (d *DKIM) TXTRecord() string {
	switch pub := d.Key.Public().(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return ""
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	case ed25519.PublicKey:
		// RFC 8463 §4.2: the raw 32-byte key, not a SubjectPublicKeyInfo.
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
	}
	return ""
}

// RecordName is the DNS name TXTRecord belongs at.
func (d *DKIM) RecordName() string {
	return d.Selector + "._domainkey." + d.Domain
}

// Sign returns raw with a DKIM-Signature field prepended: relaxed/relaxed,
// rsa-sha256 or ed25519-sha256 by the key, over the signedHeaders present,
// with From listed twice so that a second From added later breaks it.
func (d *DKIM) Sign(raw []byte) ([]byte, error) {
	if d == nil || d.Key == nil || d.Domain == "" || d.Selector == "" {
		return nil, errors.New("dkim: domain, selector and key are required")
	}
	if _, err := d.algorithm(); err != nil {
		return nil, err
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return nil, fmt.Errorf("dkim: read header: %w", err)
	}
	if !h.Has("From") {
		return nil, errors.New("dkim: the message has no From field")
	}
	keys := make([]string, 0, len(signedHeaders)+1)
	for _, k := range signedHeaders {
		for range h.FieldsByKey(k).Len() {
			keys = append(keys, k)
		}
	}
	keys = append(keys, "From")
	opts := &dkim.SignOptions{
		Domain:                 d.Domain,
		Selector:               d.Selector,
		Signer:                 d.Key,
		Hash:                   crypto.SHA256,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             keys,
	}
	s, err := dkim.NewSigner(opts)
	if err != nil {
		return nil, fmt.Errorf("dkim: %w", err)
	}
	if _, err := s.Write(raw); err != nil {
		s.Close()
		return nil, fmt.Errorf("dkim: sign: %w", err)
	}
	if err := s.Close(); err != nil {
		return nil, fmt.Errorf("dkim: sign: %w", err)
	}
	sig := s.Signature()
	out := make([]byte, 0, len(sig)+len(raw))
	out = append(out, sig...)
	return append(out, raw...), nil
}
