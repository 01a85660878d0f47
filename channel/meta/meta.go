// Package meta holds what Meta's three messaging products share: the
// webhook's GET verification handshake and POST signature
// (X-Hub-Signature-256), the top-level envelope that tells WhatsApp,
// Messenger and Instagram apart, and Graph API calls with their error
// replies (docs/design.md §4, research/channels.md §3-4).
//
// Everything here is pure and safe for concurrent use; the HTTP handlers
// that use it live elsewhere. A handler must check the signature against
// the raw request body before decoding anything: Meta signs the bytes it
// sent, and a decode and re-encode changes them (escapes, key order,
// spacing), so a signature checked on re-serialised JSON fails.
package meta

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/url"
	"strings"
)

// SignatureHeader is the header Meta signs webhook POSTs with. The older
// SHA-1 X-Hub-Signature is ignored on purpose.
const SignatureHeader = "X-Hub-Signature-256"

const signaturePrefix = "sha256="

// maxChallengeLen bounds the echoed hub.challenge. Meta sends a short
// number; a longer value is not Meta, and echoing it helps nobody.
const maxChallengeLen = 256

// ValidSignature reports whether header, the value of X-Hub-Signature-256
// ("sha256=<hex>"), is the HMAC-SHA256 of rawBody under appSecret.
//
// rawBody must be the request body exactly as received. An empty secret
// never validates: an unconfigured secret would otherwise make anyone who
// signs with the empty key look like Meta. A malformed header (missing
// prefix, bad hex, wrong length) is simply invalid. The comparison is
// constant-time.
func ValidSignature(appSecret string, rawBody []byte, header string) bool {
	if appSecret == "" {
		return false
	}
	h := strings.TrimSpace(header)
	if len(h) < len(signaturePrefix) || !strings.EqualFold(h[:len(signaturePrefix)], signaturePrefix) {
		return false
	}
	got, err := hex.DecodeString(h[len(signaturePrefix):])
	if err != nil || len(got) != sha256.Size {
		return false
	}
	return hmac.Equal(got, mac(appSecret, rawBody))
}

// Sign returns the X-Hub-Signature-256 value Meta would send for body, for
// stand-ins and tests that play Meta.
func Sign(appSecret string, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(appSecret, body))
}

func mac(secret string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return m.Sum(nil)
}

// VerifyChallenge checks the GET handshake Meta makes when a webhook is
// subscribed (hub.mode=subscribe&hub.verify_token=…&hub.challenge=…). On
// success the handler answers 200 with challenge as the plain-text body;
// otherwise 403.
//
// An empty verifyToken refuses every handshake, so an unconfigured
// deployment cannot be subscribed by a stranger. The token comparison is
// constant-time. The challenge must be non-empty, short and printable
// ASCII without spaces, since it is written back verbatim.
func VerifyChallenge(q url.Values, verifyToken string) (challenge string, ok bool) {
	if verifyToken == "" || q.Get("hub.mode") != "subscribe" {
		return "", false
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("hub.verify_token")), []byte(verifyToken)) != 1 {
		return "", false
	}
	c := q.Get("hub.challenge")
	if c == "" || len(c) > maxChallengeLen {
		return "", false
	}
	for i := 0; i < len(c); i++ {
		if c[i] < 0x21 || c[i] > 0x7e {
			return "", false
		}
	}
	return c, true
}
