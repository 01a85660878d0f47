package sms

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/identity"
)

func FuzzParseInbound(f *testing.F) {
	f.Add([]byte(smsBody))
	f.Add([]byte("MessageSid=SM1&From=%2B14155550123&Body=STOP"))
	f.Add([]byte("SmsSid=SM1&From=whatsapp%3A%2B447911123456&Body=&NumMedia=1&MediaUrl0=https%3A%2F%2Fx.example%2Fm&MediaContentType0=audio%2Famr"))
	f.Add([]byte("MessageSid=SM1&From=(415)+555-0123&Body=caf%E9&NumMedia=11"))
	f.Add([]byte("MessageSid=SM1&From=%2B14155550123&Body=a%00b&NumSegments=3&OptOutType=HELP"))
	f.Add([]byte("MessageSid=SM1&MessageSid=SM2&From=%2B1&From=%2B14155550123&NumMedia=2&MediaUrl0=https://a&MediaUrl1=https://u:p@b"))
	f.Fuzz(func(t *testing.T, body []byte) {
		form, _ := url.ParseQuery(string(body)) // Twilio's bodies always parse; fuzz the partial ones too
		in, err := ParseInbound(form, "US", testNow)
		if err != nil {
			if switchboard.ErrorCode(err) != switchboard.EINVALID {
				t.Fatalf("error %v has code %q, want EINVALID", err, switchboard.ErrorCode(err))
			}
			return
		}
		if err := in.Validate(); err != nil {
			t.Fatalf("accepted inbound fails Validate: %v", err)
		}
		if in.Channel != switchboard.ChannelSMS || len(in.Identities) != 1 || in.Identities[0].Kind != switchboard.IdentityPhone {
			t.Fatalf("inbound = %+v", in)
		}
		phone := in.Identities[0].Value
		if again, err := identity.Phone(phone, ""); err != nil || again != phone || !strings.HasPrefix(phone, "+") {
			t.Fatalf("identity %q is not E.164: %q, %v", phone, again, err)
		}
		if !utf8.ValidString(in.Text) || strings.ContainsRune(in.Text, 0) {
			t.Fatalf("text %q is not valid UTF-8 without NUL", in.Text)
		}
		switch in.ContentType {
		case switchboard.ContentText, switchboard.ContentImage, switchboard.ContentAudio, switchboard.ContentFile:
		default:
			t.Fatalf("content type %q", in.ContentType)
		}
		var meta InboundMetadata
		if err := json.Unmarshal(in.Metadata, &meta); err != nil {
			t.Fatalf("metadata %s: %v", in.Metadata, err)
		}
		if meta.NumMedia != len(meta.Media) || meta.NumMedia > MaxMedia {
			t.Fatalf("num_media %d with %d media", meta.NumMedia, len(meta.Media))
		}
		for _, m := range meta.Media {
			u, err := url.Parse(m.URL)
			if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || !strings.Contains(m.ContentType, "/") {
				t.Fatalf("media %+v accepted", m)
			}
		}
		if in.ContentType != switchboard.ContentText && len(meta.Media) == 0 {
			t.Fatalf("content type %q without media", in.ContentType)
		}
	})
}

// FuzzParseStatus: any status callback form either parses to a known
// delivery status or is refused; nothing panics.
func FuzzParseStatus(f *testing.F) {
	f.Add("MessageSid=SM5f1c2e0a9b8d4c3e2f1a0b9c8d7e6f5a&MessageStatus=delivered&To=%2B14155550123")
	f.Add("MessageSid=SM5f1c2e0a9b8d4c3e2f1a0b9c8d7e6f5a&MessageStatus=undelivered&ErrorCode=30003")
	f.Add("MessageSid=&MessageStatus=sent")
	f.Add("MessageStatus=read&ErrorCode=abc")
	f.Add("%zz")
	f.Fuzz(func(t *testing.T, raw string) {
		form, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		st, err := ParseStatus(form)
		if err != nil {
			return
		}
		if st.MessageSID == "" {
			t.Fatalf("accepted a status without MessageSid: %+v", st)
		}
	})
}
