package meta

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/switchboard-inbox/switchboard"
)

// The research notes' §9 vector: secret, the 499-byte body in testdata,
// and the signature Meta would send for it.
const (
	vectorSecret    = "test_app_secret"
	vectorSignature = "sha256=ded1d1d9621cffa39832ccf2b330fa476b4dc8ec2a5d102e1e554312b3f21d42"
)

func vectorBody(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/whatsapp_text.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 499 {
		t.Fatalf("testdata/whatsapp_text.json is %d bytes, want the documented 499", len(b))
	}
	return b
}

func TestSignatureDocumentedVector(t *testing.T) {
	body := vectorBody(t)
	if got := Sign(vectorSecret, body); got != vectorSignature {
		t.Fatalf("Sign = %s, want %s", got, vectorSignature)
	}
	if !ValidSignature(vectorSecret, body, vectorSignature) {
		t.Fatal("ValidSignature rejected the documented vector")
	}
}

func TestValidSignatureRejects(t *testing.T) {
	body := vectorBody(t)
	hexSig := strings.TrimPrefix(vectorSignature, "sha256=")
	tampered := bytes.Replace(body, []byte("another color"), []byte("another colour"), 1)
	tests := []struct {
		name   string
		secret string
		body   []byte
		header string
		want   bool
	}{
		{"documented", vectorSecret, body, vectorSignature, true},
		{"upper-case prefix and hex", vectorSecret, body, "SHA256=" + strings.ToUpper(hexSig), true},
		{"surrounding spaces", vectorSecret, body, "  " + vectorSignature + " ", true},
		{"wrong secret", "other_secret", body, vectorSignature, false},
		{"empty secret", "", body, Sign("", body), false},
		{"tampered body", vectorSecret, tampered, vectorSignature, false},
		{"empty header", vectorSecret, body, "", false},
		{"prefix only", vectorSecret, body, "sha256=", false},
		{"no prefix", vectorSecret, body, hexSig, false},
		{"sha1 prefix", vectorSecret, body, "sha1=" + hexSig, false},
		{"not hex", vectorSecret, body, "sha256=" + strings.Repeat("zz", 32), false},
		{"odd length hex", vectorSecret, body, vectorSignature[:len(vectorSignature)-1], false},
		{"truncated", vectorSecret, body, vectorSignature[:len(vectorSignature)-2], false},
		{"too long", vectorSecret, body, vectorSignature + "00", false},
		{"two signatures", vectorSecret, body, vectorSignature + "," + vectorSignature, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidSignature(tt.secret, tt.body, tt.header); got != tt.want {
				t.Fatalf("ValidSignature = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestReserialisedBodyFailsSignature is why handlers must verify the raw
// request bytes: any decode + encode round trip changes what was signed.
func TestReserialisedBodyFailsSignature(t *testing.T) {
	bodies := map[string][]byte{
		"documented vector": vectorBody(t),
		// Meta escapes non-ASCII as \uXXXX; Go writes it back as UTF-8.
		"escaped text": []byte(`{"object":"page","entry":[{"id":"1","messaging":[{"message":{"text":"caf\u00e9 \u003c3"}}]}]}`),
	}
	for name, raw := range bodies {
		t.Run(name, func(t *testing.T) {
			sig := Sign(vectorSecret, raw)
			var v any
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Fatal(err)
			}
			re, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(re, raw) {
				t.Fatal("re-encoding left the body unchanged; the test proves nothing")
			}
			if ValidSignature(vectorSecret, re, sig) {
				t.Fatal("signature still valid after re-serialising the body")
			}
			if !ValidSignature(vectorSecret, raw, sig) {
				t.Fatal("signature invalid on the raw body")
			}
		})
	}
}

func TestVerifyChallenge(t *testing.T) {
	q := func(mode, token, challenge string) url.Values {
		v := url.Values{}
		if mode != "" {
			v.Set("hub.mode", mode)
		}
		if token != "" {
			v.Set("hub.verify_token", token)
		}
		if challenge != "" {
			v.Set("hub.challenge", challenge)
		}
		return v
	}
	tests := []struct {
		name     string
		q        url.Values
		token    string
		want     string
		wantOK   bool
		rawQuery string
	}{
		{name: "documented", q: q("subscribe", "s3cret", "1158201444"), token: "s3cret", want: "1158201444", wantOK: true},
		{name: "wrong token", q: q("subscribe", "guess", "1158201444"), token: "s3cret"},
		{name: "token prefix", q: q("subscribe", "s3cre", "1158201444"), token: "s3cret"},
		{name: "missing token", q: q("subscribe", "", "1158201444"), token: "s3cret"},
		{name: "unconfigured token", q: q("subscribe", "", "1158201444"), token: ""},
		{name: "wrong mode", q: q("unsubscribe", "s3cret", "1158201444"), token: "s3cret"},
		{name: "missing mode", q: q("", "s3cret", "1158201444"), token: "s3cret"},
		{name: "missing challenge", q: q("subscribe", "s3cret", ""), token: "s3cret"},
		{name: "challenge with markup", q: q("subscribe", "s3cret", "<script>"), token: "s3cret", want: "<script>", wantOK: true},
		{name: "challenge with space", q: q("subscribe", "s3cret", "a b"), token: "s3cret"},
		{name: "challenge with newline", q: q("subscribe", "s3cret", "1\n2"), token: "s3cret"},
		{name: "challenge too long", q: q("subscribe", "s3cret", strings.Repeat("9", maxChallengeLen+1)), token: "s3cret"},
		{name: "from raw query", rawQuery: "hub.mode=subscribe&hub.verify_token=s3cret&hub.challenge=42", token: "s3cret", want: "42", wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vals := tt.q
			if tt.rawQuery != "" {
				var err error
				if vals, err = url.ParseQuery(tt.rawQuery); err != nil {
					t.Fatal(err)
				}
			}
			// A handler passes r.URL.Query(); markup in the challenge is
			// still echoed, so it must answer text/plain with nosniff.
			got, ok := VerifyChallenge(vals, tt.token)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("VerifyChallenge = %q, %v; want %q, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestParseEnvelope(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		object  string
		entries int
		ch      switchboard.Channel
		known   bool
		errSub  string
	}{
		{name: "whatsapp", body: `{"object":"whatsapp_business_account","entry":[{"id":"1"},{"id":"2"}]}`, object: ObjectWhatsApp, entries: 2, ch: switchboard.ChannelWhatsApp, known: true},
		{name: "messenger", body: `{"object":"page","entry":[{"id":"1","time":1,"messaging":[]}]}`, object: ObjectPage, entries: 1, ch: switchboard.ChannelMessenger, known: true},
		{name: "instagram", body: `{"object":"instagram","entry":[]}`, object: ObjectInstagram, ch: switchboard.ChannelInstagram, known: true},
		{name: "unknown object", body: `{"object":"user","entry":[{}]}`, object: "user", entries: 1},
		{name: "no entry", body: `{"object":"page"}`, object: ObjectPage, ch: switchboard.ChannelMessenger, known: true},
		{name: "missing object", body: `{"entry":[]}`, errSub: `"object" is missing`},
		{name: "malformed", body: `{"object":"page",`, errSub: "malformed JSON"},
		{name: "entry not a list", body: `{"object":"page","entry":{}}`, errSub: "malformed JSON"},
		{name: "trailing garbage", body: `{"object":"page"} x`, errSub: "malformed JSON"},
		{name: "not an object", body: `[]`, errSub: "malformed JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := ParseEnvelope([]byte(tt.body))
			if tt.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errSub) {
					t.Fatalf("err = %v, want one containing %q", err, tt.errSub)
				}
				if code := switchboard.ErrorCode(err); code != switchboard.EINVALID {
					t.Fatalf("error code = %q, want %q", code, switchboard.EINVALID)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if env.Object != tt.object || len(env.Entry) != tt.entries {
				t.Fatalf("envelope = %q with %d entries, want %q with %d", env.Object, len(env.Entry), tt.object, tt.entries)
			}
			ch, ok := env.Channel()
			if ch != tt.ch || ok != tt.known {
				t.Fatalf("Channel() = %q, %v; want %q, %v", ch, ok, tt.ch, tt.known)
			}
		})
	}
}

func TestEnvelopeOfDocumentedVector(t *testing.T) {
	env, err := ParseEnvelope(vectorBody(t))
	if err != nil {
		t.Fatal(err)
	}
	if ch, ok := env.Channel(); !ok || ch != switchboard.ChannelWhatsApp || len(env.Entry) != 1 {
		t.Fatalf("got %q %v with %d entries", ch, ok, len(env.Entry))
	}
	if !bytes.HasPrefix(env.Entry[0], []byte(`{"id":"102290129340398"`)) {
		t.Fatalf("entry not kept raw: %.40s", env.Entry[0])
	}
}
