package livechat_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/livechat"
)

// TestTokens: a token names its site and visitor; another key, another
// site or visitor, a changed MAC or a malformed token is refused.
func TestTokens(t *testing.T) {
	tk := livechat.NewTokens([]byte("a key every instance shares, 32+ bytes"))
	tok := tk.Make("site_abc", "v123")
	site, visitor, ok := tk.Parse(tok)
	if !ok || site != "site_abc" || visitor != "v123" {
		t.Fatalf("Parse(%s) = %q %q %v", tok, site, visitor, ok)
	}
	other := livechat.NewTokens([]byte("another deployment's key, 32+ bytes"))
	parts := strings.Split(tok, ".")
	for _, bad := range []string{
		"", "v1", "v1.site_abc.v123", tok + "x", strings.Replace(tok, "site_abc", "site_abd", 1),
		strings.Replace(tok, ".v123.", ".v124.", 1), "v2." + strings.Join(parts[1:], "."), other.Make("site_abc", "v123"),
		"v1.site.abc.v123." + parts[3], "v1.s\x00.v." + parts[3],
	} {
		if _, _, ok := tk.Parse(bad); ok {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

// TestUserHash is the documented computation: hex HMAC-SHA256 of the
// user id under the site's secret (RFC 4231's test case 2).
func TestUserHash(t *testing.T) {
	if got := livechat.UserHash("Jefe", "what do ya want for nothing?"); got != "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" {
		t.Fatalf("UserHash = %s", got)
	}
}

func TestDecodeFrame(t *testing.T) {
	for _, c := range []struct {
		in   string
		ok   bool
		want livechat.Frame
	}{
		{`{"type":"message","client_id":"c1","text":"hi"}`, true, livechat.Frame{Type: "message", ClientID: "c1", Text: "hi"}},
		{`{"type":"message","client_id":"c1","attachments":["a1"]}`, true, livechat.Frame{Type: "message", ClientID: "c1", Attachments: []string{"a1"}}},
		{`{"type":"typing"}`, true, livechat.Frame{Type: "typing"}},
		{`{"type":"read","message_id":"m1"}`, true, livechat.Frame{Type: "read", MessageID: "m1"}},
		{`{"type":"message","client_id":"c1","text":"  "}`, false, livechat.Frame{}},
		{`{"type":"message","client_id":"c 1","text":"x"}`, false, livechat.Frame{}},
		{`{"type":"message","client_id":"` + strings.Repeat("c", 129) + `","text":"x"}`, false, livechat.Frame{}},
		{`{"type":"message","client_id":"c","text":"x","attachments":["../etc"]}`, false, livechat.Frame{}},
		{`{"type":"read","message_id":""}`, false, livechat.Frame{}},
		{`{"type":"dance"}`, false, livechat.Frame{}},
		{`{}`, false, livechat.Frame{}},
		{`[]`, false, livechat.Frame{}},
		{`"message"`, false, livechat.Frame{}},
		{`{"type":"message","client_id":1}`, false, livechat.Frame{}},
	} {
		f, err := livechat.DecodeFrame([]byte(c.in))
		if (err == nil) != c.ok {
			t.Errorf("%s: err %v, want ok=%v", c.in, err, c.ok)
			continue
		}
		if err != nil && switchboard.ErrorCode(err) != switchboard.EINVALID {
			t.Errorf("%s: code %s, want invalid", c.in, switchboard.ErrorCode(err))
		}
		if c.ok {
			a, _ := json.Marshal(f)
			b, _ := json.Marshal(c.want)
			if string(a) != string(b) {
				t.Errorf("%s: %s, want %s", c.in, a, b)
			}
		}
	}
}

// FuzzVisitorFrame: the decoder never panics, refuses with EINVALID and
// a message, and what it accepts keeps the frame's invariants: a known
// type, a message with a short visible client id, bounded valid text and
// attachment ids, a read frame with a message id.
func FuzzVisitorFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"message","client_id":"c1","text":"hi"}`, `{"type":"typing"}`, `{"type":"read","message_id":"m1"}`,
		`{"type":"message","client_id":"c1","attachments":["a1","a2"]}`, `{"type":"message","client_id":"c1","text":"\u0000\ud800"}`,
		`{"type":null}`, `{"type":"message","text":{"x":1}}`, `{"type":"read","message_id":"a.b"}`, `{`, ``, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := livechat.DecodeFrame(b)
		if err != nil {
			if switchboard.ErrorCode(err) != switchboard.EINVALID || switchboard.ErrorMessage(err) == "" {
				t.Fatalf("error %v: want EINVALID with a message", err)
			}
			return
		}
		switch fr.Type {
		case "message":
			if fr.ClientID == "" || len(fr.ClientID) > livechat.MaxClientID || strings.ContainsAny(fr.ClientID, " \t\n") {
				t.Fatalf("client id %q accepted", fr.ClientID)
			}
			if len(fr.Text) > livechat.MaxText || len(fr.Attachments) > livechat.MaxAttachments {
				t.Fatalf("oversized message accepted: %d bytes, %d attachments", len(fr.Text), len(fr.Attachments))
			}
			if strings.TrimSpace(switchboard.CleanText(fr.Text)) == "" && len(fr.Attachments) == 0 {
				t.Fatal("an empty message accepted")
			}
			for _, a := range fr.Attachments {
				if a == "" || strings.ContainsAny(a, "./ ") {
					t.Fatalf("attachment id %q accepted", a)
				}
			}
		case "read":
			if fr.MessageID == "" || strings.ContainsAny(fr.MessageID, "./ ") {
				t.Fatalf("message id %q accepted", fr.MessageID)
			}
		case "typing":
		default:
			t.Fatalf("type %q accepted", fr.Type)
		}
	})
}
