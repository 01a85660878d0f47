package email

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// Tokens makes and checks the reply addresses outbound mail carries in
// Reply-To: local+c<conversation>.<mac>@domain (RFC 5233 sub-addressing).
// A customer's reply to that address names its conversation even when the
// mail client dropped In-Reply-To; the MAC keeps anyone from writing into
// a conversation by guessing its id.
type Tokens struct {
	Key    []byte
	Local  string // the mailbox part, e.g. "support"
	Domain string // e.g. "example.com"
}

// NewTokens returns the reply addresses for the mailbox from (an address,
// "support@example.com"). The MAC key is derived from secret, a key every
// instance already shares (the object store's signing key), so that no
// new secret has to be configured.
func NewTokens(secret []byte, from string) *Tokens {
	local, domain, _ := strings.Cut(strings.ToLower(from), "@")
	k := hmac.New(sha256.New, secret)
	k.Write([]byte("switchboard e-mail reply tokens"))
	return &Tokens{Key: k.Sum(nil), Local: local, Domain: domain}
}

var tokenEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func (t *Tokens) mac(conversationID string) string {
	m := hmac.New(sha256.New, t.Key)
	m.Write([]byte("switchboard reply token\x00"))
	m.Write([]byte(conversationID))
	// 10 bytes (80 bits) is plenty against guessing and keeps the address
	// short; lower case survives mail systems that fold local parts.
	return strings.ToLower(tokenEncoding.EncodeToString(m.Sum(nil)[:10]))
}

// Address returns the reply address for a conversation.
func (t *Tokens) Address(conversationID string) string {
	return t.Local + "+c" + strings.ToLower(conversationID) + "." + t.mac(strings.ToLower(conversationID)) + "@" + t.Domain
}

// Conversation returns the conversation a reply address names, if addr is
// one of ours with a valid MAC.
func (t *Tokens) Conversation(addr string) (string, bool) {
	addr = strings.ToLower(strings.TrimSpace(addr))
	at := strings.LastIndexByte(addr, '@')
	if at < 0 || !strings.EqualFold(addr[at+1:], t.Domain) {
		return "", false
	}
	local, tag, ok := strings.Cut(addr[:at], "+")
	if !ok || !strings.EqualFold(local, t.Local) || !strings.HasPrefix(tag, "c") {
		return "", false
	}
	id, mac, ok := strings.Cut(tag[1:], ".")
	if !ok || id == "" || len(id) > 64 {
		return "", false
	}
	if !hmac.Equal([]byte(mac), []byte(t.mac(id))) {
		return "", false
	}
	return id, true
}

// Find returns the conversation named by the first of addrs that is a
// valid reply address.
func (t *Tokens) Find(addrs ...string) (string, bool) {
	if t == nil || len(t.Key) == 0 {
		return "", false
	}
	for _, a := range addrs {
		if id, ok := t.Conversation(a); ok {
			return id, true
		}
	}
	return "", false
}
