package livechat

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// Tokens makes and checks visitor tokens: "v1.<site key>.<visitor
// id>.<mac>", the MAC an HMAC-SHA256 of the site and the visitor under a
// key derived from a secret every instance shares (the object store's
// signing key, as the e-mail reply tokens). A token names its site, so
// one site's visitor is refused on another's pages; it does not expire:
// the widget keeps it across visits, and the visitor's conversation is
// found again through it.
type Tokens struct{ key []byte }

// NewTokens derives the token key from secret.
func NewTokens(secret []byte) *Tokens {
	k := hmac.New(sha256.New, secret)
	k.Write([]byte("switchboard live-chat visitor tokens"))
	return &Tokens{key: k.Sum(nil)}
}

func (t *Tokens) mac(site, visitor string) string {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte("switchboard visitor token\x00" + site + "\x00" + visitor))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Make returns the token of a site's visitor.
func (t *Tokens) Make(site, visitor string) string {
	return "v1." + site + "." + visitor + "." + t.mac(site, visitor)
}

// Parse returns the site and visitor a token names, when its MAC is ours.
func (t *Tokens) Parse(token string) (site, visitor string, ok bool) {
	if len(token) > 256 {
		return "", "", false
	}
	parts := strings.Split(token, ".")
	if len(parts) != 4 || parts[0] != "v1" || !plainID(parts[1]) || !plainID(parts[2]) {
		return "", "", false
	}
	if !hmac.Equal([]byte(parts[3]), []byte(t.mac(parts[1], parts[2]))) {
		return "", "", false
	}
	return parts[1], parts[2], true
}

// plainID reports whether s is 1-64 letters, digits, '_' or '-': what
// site keys and visitor ids are made of.
func plainID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
