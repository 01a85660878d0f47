package messenger

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

const (
	pageID = "1067280970047460"
	psid   = "6922891234567890"
	igID   = "17841400000000000"
	igsid  = "1234567890123456"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ms(n int64) time.Time { return time.UnixMilli(n).UTC() }

// wantInbound is an expected Inbound; Original is checked separately.
type wantInbound struct {
	ch                                    switchboard.Channel
	id, customer, contentType, text, meta string
	at                                    int64
}

func (w wantInbound) inbound() switchboard.Inbound {
	kind := switchboard.IdentityMessengerPSID
	if w.ch == switchboard.ChannelInstagram {
		kind = switchboard.IdentityInstagramID
	}
	return switchboard.Inbound{
		Channel: w.ch, ProviderID: w.id, Identities: []switchboard.IdentityRef{{Kind: kind, Value: w.customer}},
		ContentType: w.contentType, Text: w.text, ReceivedAt: ms(w.at),
	}
}

func checkInbounds(t *testing.T, body []byte, msgs []Message, want []wantInbound) {
	t.Helper()
	if len(msgs) != len(want) {
		t.Fatalf("got %d messages, want %d", len(msgs), len(want))
	}
	for i, w := range want {
		in := msgs[i].Inbound()
		if err := in.Validate(); err != nil {
			t.Errorf("message %d: Validate: %v", i, err)
		}
		got := in
		got.Metadata, got.Original = nil, nil
		if !reflect.DeepEqual(got, w.inbound()) {
			t.Errorf("message %d:\n got  %+v\n want %+v", i, got, w.inbound())
		}
		if string(in.Metadata) != w.meta {
			t.Errorf("message %d metadata:\n got  %s\n want %s", i, in.Metadata, w.meta)
		}
		if !bytes.Contains(body, in.Original) || !json.Valid(in.Original) || !bytes.HasPrefix(in.Original, []byte("{")) {
			t.Errorf("message %d: Original is not the raw event: %s", i, in.Original)
		}
	}
}

func TestParseMessenger(t *testing.T) {
	const acct = `{"account_id":"` + pageID + `"`
	tests := []struct {
		file string
		want []wantInbound
	}{
		{"text.json", []wantInbound{{
			ch: switchboard.ChannelMessenger, id: "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P",
			customer: psid, contentType: "text", text: "Where is my parcel?", at: 1749416383201, meta: acct + `}`,
		}}},
		{"attachments.json", []wantInbound{{
			ch: switchboard.ChannelMessenger, id: "m_ATT1aXw4d2Vy0h7X2c8Gm2RrU1Zt", customer: psid,
			contentType: "image", text: "This is how it arrived", at: 1749416400201,
			meta: acct + `,"attachments":[{"type":"image","url":"https://scontent.xx.fbcdn.net/v/t1.15752-9/lid.jpg?stp=dst-jpg&_nc_sid=b96e70&oh=00_AfA"},` +
				`{"type":"video","url":"https://video.xx.fbcdn.net/v/t42.3356-2/unboxing.mp4?_nc_cat=1&oh=00_AfB"}]}`,
		}, {
			ch: switchboard.ChannelMessenger, id: "m_ATT2bYx5e3Wz1i8Y3d9Hn3SsV2Au", customer: psid,
			contentType: "audio", text: "", at: 1749416401201,
			meta: acct + `,"attachments":[{"type":"audio","url":"https://cdn.fbsbx.com/v/t59.3654-21/voice.mp4?_nc_cat=2"}]}`,
		}, {
			ch: switchboard.ChannelMessenger, id: "m_ATT3cZy6f4Xa2j9Z4e0Io4TtW3Bv", customer: psid,
			contentType: "file", text: "", at: 1749416402201,
			meta: acct + `,"attachments":[{"type":"file","url":"https://cdn.fbsbx.com/v/t59.2708-21/receipt.pdf?_nc_cat=3"}]}`,
		}, {
			ch: switchboard.ChannelMessenger, id: "m_ATT4dAz7g5Yb3k0A5f1Jp5UuX4Cw", customer: psid,
			contentType: "image", text: "", at: 1749416403201,
			meta: acct + `,"attachments":[{"type":"image","url":"https://scontent.xx.fbcdn.net/v/t39.1997-6/like.png","sticker_id":"369239263222822"}]}`,
		}}},
		{"echo.json", []wantInbound{{
			ch: switchboard.ChannelMessenger, id: "m_ECHO1Kq9Zt2Vw8Xy3Ab4Cd5Ef6Gh", customer: psid,
			contentType: "text", text: "It left our warehouse this morning.", at: 1749416390100, meta: acct + `,"echo":true}`,
		}}},
		{"batched.json", []wantInbound{{
			ch: switchboard.ChannelMessenger, id: "m_BAT1", customer: psid, contentType: "text", text: "Hello?", at: 1749416500100, meta: acct + `}`,
		}, {
			ch: switchboard.ChannelMessenger, id: "m_BAT2", customer: "7033902345678901", contentType: "text", text: "Do you ship to Norway?",
			at: 1749416501100, meta: acct + `,"quick_reply_payload":"SHIPPING"}`,
		}, {
			ch: switchboard.ChannelMessenger, id: "m_BAT3", customer: "8144013456789012", contentType: "text", text: "talking to the bot",
			at: 1749416501300, meta: acct + `,"reply_to":{"mid":"m_BOT1"},"standby":true}`,
		}}},
		{"postback.json", []wantInbound{{
			ch: switchboard.ChannelMessenger, id: "m_PB1xYz", customer: psid, contentType: "text", text: "Talk to a human",
			at: 1749416600100, meta: acct + `,"postback":{"title":"Talk to a human","payload":"HUMAN"}}`,
		}, {
			ch: switchboard.ChannelMessenger, id: "postback:6922891234567890:1749416600200", customer: psid, contentType: "text", text: "Get Started",
			at: 1749416600200, meta: acct + `,"postback":{"title":"Get Started","payload":"GET_STARTED"}}`,
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			body := readTestdata(t, tt.file)
			ev, err := Parse(body)
			if err != nil {
				t.Fatal(err)
			}
			checkInbounds(t, body, ev.Messages, tt.want)
		})
	}
}

func TestParseMessengerFlagsAndOther(t *testing.T) {
	ev, err := Parse(readTestdata(t, "echo.json"))
	if err != nil {
		t.Fatal(err)
	}
	if m := ev.Messages[0]; !m.Echo || m.SenderID != pageID || m.RecipientID != psid || m.CustomerID() != psid {
		t.Fatalf("echo = %+v", m)
	}

	ev, err = Parse(readTestdata(t, "batched.json"))
	if err != nil {
		t.Fatal(err)
	}
	if m := ev.Messages[2]; !m.Standby || m.ReplyTo == nil || m.ReplyTo.MID != "m_BOT1" {
		t.Fatalf("standby message = %+v", m)
	}
	if ev.Messages[0].Standby || ev.Messages[1].QuickReplyPayload != "SHIPPING" {
		t.Fatalf("messages = %+v", ev.Messages)
	}
	if len(ev.Other) != 1 {
		t.Fatalf("other = %+v", ev.Other)
	}
	o := ev.Other[0]
	if o.Kind != "reaction" || o.SenderID != psid || o.Channel != switchboard.ChannelMessenger || !bytes.Contains(o.Raw, []byte(`"emoji"`)) {
		t.Fatalf("other = %+v", o)
	}

	ev, err = Parse(readTestdata(t, "attachments.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Attachment{{Type: "image", URL: "https://scontent.xx.fbcdn.net/v/t39.1997-6/like.png", StickerID: "369239263222822"}}
	if got := ev.Messages[3].Attachments; !reflect.DeepEqual(got, want) {
		t.Fatalf("sticker attachments = %+v", got)
	}
}

func TestParseReceipts(t *testing.T) {
	ev, err := Parse(readTestdata(t, "receipts.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Messages) != 0 || len(ev.Other) != 0 {
		t.Fatalf("unexpected events: %+v", ev)
	}
	wantD := []Delivery{
		{Channel: switchboard.ChannelMessenger, SenderID: psid, RecipientID: pageID, MIDs: []string{"m_ECHO1Kq9Zt2Vw8Xy3Ab4Cd5Ef6Gh"}, Watermark: ms(1749416390000)},
		{Channel: switchboard.ChannelMessenger, SenderID: psid, RecipientID: pageID, Watermark: ms(1749416394000), Timestamp: ms(1749416395000)},
	}
	if !reflect.DeepEqual(ev.Deliveries, wantD) {
		t.Fatalf("deliveries:\n got  %+v\n want %+v", ev.Deliveries, wantD)
	}
	wantR := []Read{{Channel: switchboard.ChannelMessenger, SenderID: psid, RecipientID: pageID, Watermark: ms(1749416399000), Timestamp: ms(1749416400000)}}
	if !reflect.DeepEqual(ev.Reads, wantR) {
		t.Fatalf("reads:\n got  %+v\n want %+v", ev.Reads, wantR)
	}
}

func TestParseInstagram(t *testing.T) {
	const acct = `{"account_id":"` + igID + `"`
	const mid1 = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAwMDAwMDAwMDAwOjM0MDI4MjM2Njg0MTcxMDMwMTI0NDI1OTk1NTQ5NjgxNDk0MDU2MDozMTk5OQZDZD"
	const cdn = "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id="
	body := readTestdata(t, "instagram_message.json")
	ev, err := Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	ig := switchboard.ChannelInstagram
	checkInbounds(t, body, ev.Messages, []wantInbound{{
		ch: ig, id: mid1, customer: igsid, contentType: "text", text: "Is this still available?", at: 1749416700100,
		meta: acct + `,"reply_to":{"story_url":"` + cdn + `17900000000000000&signature=AbC","story_id":"17900000000000000"}}`,
	}, {
		ch: ig, id: "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAwMDAwMDAwMDAwOjM0MDI4MjM2Njg0MTcxMDMwMTI0NDI1OTk1NTQ5NjgxNDk0MDU2MDozMjAwMAZDZD",
		customer: igsid, contentType: "text", text: "Mentioned you in their story: " + cdn + "17911111111111111&signature=DeF", at: 1749416701100,
		meta: acct + `,"attachments":[{"type":"story_mention","url":"` + cdn + `17911111111111111&signature=DeF"}]}`,
	}, {
		ch: ig, id: "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAwMDAwMDAwMDAwOjM0MDI4MjM2Njg0MTcxMDMwMTI0NDI1OTk1NTQ5NjgxNDk0MDU2MDozMjAwMQZDZD",
		customer: igsid, contentType: "text", text: "Shared a reel “How we pack fragile orders”: " + cdn + "17922222222222222&signature=GhI", at: 1749416702100,
		meta: acct + `,"attachments":[{"type":"ig_reel","url":"` + cdn + `17922222222222222&signature=GhI","title":"How we pack fragile orders"}]}`,
	}, {
		ch: ig, id: "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAwMDAwMDAwMDAwOjM0MDI4MjM2Njg0MTcxMDMwMTI0NDI1OTk1NTQ5NjgxNDk0MDU2MDozMjAwMgZDZD",
		customer: igsid, contentType: "text", text: "Shared a post: " + cdn + "17933333333333333&signature=JkL", at: 1749416703100,
		meta: acct + `,"attachments":[{"type":"share","url":"` + cdn + `17933333333333333&signature=JkL"}]}`,
	}, {
		ch: ig, id: mid1, customer: igsid, contentType: "text", text: "[Message unsent by the customer]", at: 1749416704100,
		meta: acct + `,"deleted":true}`,
	}})
	if m := ev.Messages[4]; !m.Deleted || m.Echo {
		t.Fatalf("deleted message = %+v", m)
	}
	if m := ev.Messages[0]; m.ReplyTo == nil || m.ReplyTo.StoryID != "17900000000000000" || m.AccountID != igID {
		t.Fatalf("story reply = %+v", m)
	}
}

func TestParseInstagramRead(t *testing.T) {
	ev, err := Parse(readTestdata(t, "instagram_read.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Read{{
		Channel: switchboard.ChannelInstagram, SenderID: igsid, RecipientID: igID,
		MID:       "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAwMDAwMDAwMDAwOjM0MDI4MjM2Njg0MTcxMDMwMTI0NDI1OTk1NTQ5NjgxNDk0MDU2MDo5OTk5OQZDZD",
		Timestamp: ms(1749416800100),
	}}
	if !reflect.DeepEqual(ev.Reads, want) || len(ev.Messages) != 0 {
		t.Fatalf("reads:\n got  %+v\n want %+v", ev.Reads, want)
	}
}

func TestParseErrors(t *testing.T) {
	ev := func(event string) string {
		return `{"object":"page","entry":[{"id":"1","messaging":[` + event + `]}]}`
	}
	const who = `"sender":{"id":"6922891234567890"},"recipient":{"id":"1067280970047460"}`
	tests := []struct{ name, body, want string }{
		{"malformed JSON", `{"object":"page","entry":[`, "malformed JSON"},
		{"not an object", `"page"`, "malformed JSON"},
		{"messaging not a list", `{"object":"page","entry":[{"messaging":{}}]}`, "malformed JSON"},
		{"whatsapp object", `{"object":"whatsapp_business_account","entry":[]}`, `object is "whatsapp_business_account", want "page" or "instagram"`},
		{"no object", `{"entry":[]}`, `object is ""`},
		{"event not an object", ev(`7`), "messenger webhook: entry 0, messaging 0: invalid: malformed event"},
		{"message without mid", ev(`{` + who + `,"timestamp":1749416383201,"message":{"text":"x"}}`), "message has no mid"},
		{"message without sender", ev(`{"recipient":{"id":"1"},"timestamp":1749416383201,"message":{"mid":"m_1","text":"x"}}`), "message m_1 has no sender id"},
		{"echo without recipient", ev(`{"sender":{"id":"1"},"timestamp":1749416383201,"message":{"mid":"m_1","is_echo":true,"text":"x"}}`), "message m_1 has no recipient id"},
		{"missing timestamp", ev(`{` + who + `,"message":{"mid":"m_1","text":"x"}}`), "message m_1: invalid: timestamp is missing"},
		{"text timestamp", ev(`{` + who + `,"timestamp":"soon","message":{"mid":"m_1","text":"x"}}`), `timestamp "soon" is not unix milliseconds`},
		{"negative timestamp", ev(`{` + who + `,"timestamp":-1,"message":{"mid":"m_1","text":"x"}}`), "timestamp -1 is out of range"},
		{"object timestamp", ev(`{` + who + `,"timestamp":{},"message":{"mid":"m_1","text":"x"}}`), "timestamp {} is not a number"},
		{"bad watermark", ev(`{` + who + `,"delivery":{"watermark":"x"}}`), `delivery watermark: invalid: timestamp "x" is not unix milliseconds`},
		{"postback without anything", ev(`{"recipient":{"id":"1"},"postback":{"title":"x"}}`), "message has no mid"},
		{"standby location", `{"object":"instagram","entry":[{"id":"1","standby":[{"message":{"text":"x"}}]}]}`, "instagram webhook: entry 0, standby 0: invalid: message has no mid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tt.want)
			}
			if code := switchboard.ErrorCode(err); code != switchboard.EINVALID {
				t.Fatalf("code = %q", code)
			}
		})
	}
}

func TestParseLenient(t *testing.T) {
	t.Run("unsupported content", func(t *testing.T) {
		ev, err := Parse([]byte(`{"object":"instagram","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":1749416383201,"message":{"mid":"m_U","is_unsupported":true}}]}]}`))
		if err != nil {
			t.Fatal(err)
		}
		in := ev.Messages[0].Inbound()
		if in.Text != "[Unsupported message: open Instagram to see it]" || string(in.Metadata) != `{"account_id":"1","unsupported":true}` {
			t.Fatalf("got %q %s", in.Text, in.Metadata)
		}
	})
	t.Run("unknown and fallback attachments", func(t *testing.T) {
		ev, err := Parse([]byte(`{"object":"page","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":"1749416383201","message":{"mid":"m_F","attachments":[` +
			`{"type":"fallback","title":"A link","url":"https://example.com/a","payload":null},{"type":"location","payload":{}},{"payload":{"url":"https://example.com/b"}}]}}]}]}`))
		if err != nil {
			t.Fatal(err)
		}
		m := ev.Messages[0]
		want := "[fallback attachment]: https://example.com/a\n[location attachment]\n[attachment]: https://example.com/b"
		if m.Text != want || m.ContentType != "text" || m.Attachments[0].Title != "A link" {
			t.Fatalf("got %q %+v", m.Text, m.Attachments)
		}
	})
	t.Run("empty entries and unknown events", func(t *testing.T) {
		ev, err := Parse([]byte(`{"object":"page","entry":[{"id":"1"},{"id":"1","messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":1,"optin":{"ref":"x"}},{}]}]}`))
		if err != nil {
			t.Fatal(err)
		}
		if len(ev.Other) != 2 || ev.Other[0].Kind != "optin" || ev.Other[1].Kind != "unknown" {
			t.Fatalf("other = %+v", ev.Other)
		}
	})
}
