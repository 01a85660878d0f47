package whatsapp

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

// testNow is after every timestamp in testdata, so nothing is clamped.
var testNow = time.Date(2025, 6, 10, 0, 0, 0, 0, time.UTC)

const metaBiz = `"phone_number_id":"106540352242922","display_phone_number":"15550783881"`

var (
	sheenaPhone = switchboard.IdentityRef{Kind: switchboard.IdentityPhone, Value: "+16505551234"}
	sheenaBSUID = switchboard.IdentityRef{Kind: switchboard.IdentityWhatsAppBSUID, Value: "US.13491208655302741918"}
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func unix(s int64) time.Time { return time.Unix(s, 0).UTC() }

// wantInbound is an expected Inbound; Original is checked separately.
type wantInbound struct {
	id, name, contentType, text, metadata string
	ids                                   []switchboard.IdentityRef
	at                                    int64
}

func TestParseMessages(t *testing.T) {
	tests := []struct {
		file string
		want []wantInbound
	}{
		{"text.json", []wantInbound{{
			id: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=", name: "Sheena Nelson",
			contentType: "text", text: "Does it come in another color?", ids: []switchboard.IdentityRef{sheenaPhone}, at: 1749416383,
			metadata: `{"type":"text",` + metaBiz + `}`,
		}}},
		{"image.json", []wantInbound{{
			id: "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBRJTUcA", name: "Sheena Nelson",
			contentType: "image", text: "broken lid", ids: []switchboard.IdentityRef{sheenaPhone}, at: 1749416400,
			metadata: `{"type":"image",` + metaBiz + `,"media":{"id":"1003383421387256","mime_type":"image/jpeg","sha256":"uDP2mFmMwfHVc+ZOv1s9XDtsEK/Dp3Q04W0G/qB1wKw=","caption":"broken lid"}}`,
		}}},
		{"voice.json", []wantInbound{{
			id: "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBRBVUQA", name: "Sheena Nelson",
			contentType: "audio", text: "", ids: []switchboard.IdentityRef{sheenaPhone, sheenaBSUID}, at: 1749416410,
			metadata: `{"type":"audio",` + metaBiz + `,"media":{"id":"1219406869564329","mime_type":"audio/ogg; codecs=opus","sha256":"6d0a8c3e1b2f4a5c7e9d0b1a3c5e7f9a2b4d6f8a0c2e4a6b8d0f2a4c6e8b0d2f","voice":true}}`,
		}}},
		{"document.json", []wantInbound{{
			id: "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBRET0MA", name: "Sheena Nelson",
			contentType: "file", text: "Invoice attached", ids: []switchboard.IdentityRef{sheenaPhone}, at: 1749416420,
			metadata: `{"type":"document",` + metaBiz + `,"context":{"from":"15550783881","id":"wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJPVVQxAA=="},` +
				`"media":{"id":"2053749808405577","mime_type":"application/pdf","sha256":"c2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1","caption":"Invoice attached","filename":"invoice-1042.pdf"}}`,
		}}},
		{"location.json", []wantInbound{{
			id: "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBRMT0MA", name: "Sheena Nelson",
			contentType: "text", text: "📍 Meta Headquarters, 1 Hacker Way, Menlo Park, CA 94025 (37.4843428, -122.1482006)",
			ids: []switchboard.IdentityRef{sheenaPhone}, at: 1749416430,
			metadata: `{"type":"location",` + metaBiz + `,"location":{"latitude":37.4843428,"longitude":-122.1482006,"name":"Meta Headquarters","address":"1 Hacker Way, Menlo Park, CA 94025","url":"https://www.meta.com"}}`,
		}}},
		{"reaction.json", []wantInbound{{
			id: "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBRSRUEA", name: "Sheena Nelson",
			contentType: "text", text: "👍", ids: []switchboard.IdentityRef{sheenaPhone}, at: 1749416440,
			metadata: `{"type":"reaction",` + metaBiz + `,"reaction":{"message_id":"wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJPVVQxAA==","emoji":"👍"}}`,
		}}},
		{"interactive_button_reply.json", []wantInbound{{
			id: "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBRCVE4A", name: "Sheena Nelson",
			contentType: "text", text: "Yes, deliver it", ids: []switchboard.IdentityRef{sheenaPhone}, at: 1749416450,
			metadata: `{"type":"interactive",` + metaBiz + `,"context":{"from":"15550783881","id":"wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJPVVQyAA=="},` +
				`"reply":{"type":"button_reply","id":"confirm_delivery","title":"Yes, deliver it"}}`,
		}}},
		{"interactive_list_reply.json", []wantInbound{{
			id: "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBRMU1QA", name: "Sheena Nelson",
			contentType: "text", text: "Tuesday morning", ids: []switchboard.IdentityRef{sheenaPhone}, at: 1749416460,
			metadata: `{"type":"interactive",` + metaBiz + `,"context":{"from":"15550783881","id":"wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJPVVQzAA=="},` +
				`"reply":{"type":"list_reply","id":"slot_tue_am","title":"Tuesday morning","description":"8am - 12pm"}}`,
		}}},
		{"button.json", []wantInbound{{
			id: "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBRCVVQA", name: "Sheena Nelson",
			contentType: "text", text: "Stop promotions", ids: []switchboard.IdentityRef{sheenaPhone}, at: 1749416470,
			metadata: `{"type":"button",` + metaBiz + `,"context":{"from":"15550783881","id":"wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJPVVQ0AA=="},` +
				`"button":{"payload":"STOP_PROMOS","text":"Stop promotions"}}`,
		}}},
		{"contacts.json", []wantInbound{{
			id: "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBRDTlQA", name: "Sheena Nelson",
			contentType: "text", text: "Shared contact: Barbara J. Johnson (+1 (940) 555-1234)", ids: []switchboard.IdentityRef{sheenaPhone}, at: 1749416480,
			metadata: `{"type":"contacts",` + metaBiz + `,"contacts":[{"name":"Barbara J. Johnson","phones":["+1 (940) 555-1234"]}]}`,
		}}},
		{"unsupported.json", []wantInbound{{
			id: "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBRVTlMA", name: "Sheena Nelson",
			contentType: "text", text: "[Unsupported WhatsApp message: unsupported] Message type unknown",
			ids: []switchboard.IdentityRef{sheenaPhone}, at: 1749416490,
			metadata: `{"type":"unsupported",` + metaBiz + `,"errors":[{"code":131051,"title":"Message type unknown","message":"Message type unknown","details":"Message type is currently not supported."}]}`,
		}}},
		{"unknown_type.json", []wantInbound{{
			id: "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBRPUkQA", name: "Sheena Nelson",
			contentType: "text", text: "[Unsupported WhatsApp message: order]", ids: []switchboard.IdentityRef{sheenaPhone}, at: 1749416500,
			metadata: `{"type":"order",` + metaBiz + `}`,
		}}},
		{"bsuid_only.json", []wantInbound{{
			id: "wamid.HBgSR0guODg0MjA5MzM3MTY1MDAyMRUCABIYFEJTVQA=", name: "Kofi",
			contentType: "text", text: "Hi, is the shop open on Sunday?",
			ids: []switchboard.IdentityRef{{Kind: switchboard.IdentityWhatsAppBSUID, Value: "GH.8842093371650021"}}, at: 1749416510,
			metadata: `{"type":"text",` + metaBiz + `,"username":"@kofi.builds"}`,
		}}},
		{"video_sticker.json", []wantInbound{{
			id: "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBRWSUQA", name: "Sheena Nelson",
			contentType: "file", text: "", ids: []switchboard.IdentityRef{sheenaPhone}, at: 1749416520,
			metadata: `{"type":"video",` + metaBiz + `,"media":{"id":"1529411507864021","mime_type":"video/mp4","sha256":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}}`,
		}, {
			id: "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBRTVEsA", name: "Sheena Nelson",
			contentType: "image", text: "", ids: []switchboard.IdentityRef{sheenaPhone}, at: 1749416530,
			metadata: `{"type":"sticker",` + metaBiz + `,"media":{"id":"868237041858722","mime_type":"image/webp","sha256":"a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8"}}`,
		}}},
		{"system.json", []wantInbound{{
			id: "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBRTWVMA", name: "",
			contentType: "text", text: "User Sheena Nelson changed from 16505551234 to 16505559876", ids: []switchboard.IdentityRef{sheenaPhone}, at: 1749416540,
			metadata: `{"type":"system",` + metaBiz + `,"system":{"type":"user_changed_number","body":"User Sheena Nelson changed from 16505551234 to 16505559876","new_wa_id":"16505559876"}}`,
		}}},
		{"batched.json", []wantInbound{{
			id: "wamid.HBgNNDkxNTExMjM0NTY3OBUCABIYFEJBVDEA", name: "Jonas Weber",
			contentType: "text", text: "Hallo, wo bleibt mein Paket?", at: 1749416600,
			ids: []switchboard.IdentityRef{
				{Kind: switchboard.IdentityPhone, Value: "+4915112345678"},
				{Kind: switchboard.IdentityWhatsAppBSUID, Value: "DE.55018823346712004"},
			},
			metadata: `{"type":"text",` + metaBiz + `}`,
		}, {
			id: "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBRCQVQyAA==", name: "Sheena Nelson",
			contentType: "text", text: "Any update?", ids: []switchboard.IdentityRef{sheenaPhone}, at: 1749416601,
			metadata: `{"type":"text",` + metaBiz + `}`,
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			body := readTestdata(t, tt.file)
			ev, err := Parse(body, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if len(ev.Messages) != len(tt.want) {
				t.Fatalf("got %d messages, want %d", len(ev.Messages), len(tt.want))
			}
			for i, w := range tt.want {
				m := ev.Messages[i]
				in := m.Inbound()
				if err := in.Validate(); err != nil {
					t.Fatalf("message %d: Validate: %v", i, err)
				}
				want := switchboard.Inbound{
					Channel: switchboard.ChannelWhatsApp, ProviderID: w.id, SenderName: w.name,
					Identities: w.ids, ContentType: w.contentType, Text: w.text,
					ReceivedAt: unix(w.at), AcceptedAt: testNow,
				}
				got := in
				got.Metadata, got.Original = nil, nil
				if !reflect.DeepEqual(got, want) {
					t.Errorf("message %d:\n got  %+v\n want %+v", i, got, want)
				}
				if string(in.Metadata) != w.metadata {
					t.Errorf("message %d metadata:\n got  %s\n want %s", i, in.Metadata, w.metadata)
				}
				// Original is this message's object, byte for byte as sent.
				if !bytes.Contains(body, in.Original) || !json.Valid(in.Original) ||
					!bytes.HasPrefix(in.Original, []byte("{")) || !bytes.Contains(in.Original, []byte(w.id)) {
					t.Errorf("message %d: Original is not the raw message object: %s", i, in.Original)
				}
				if !m.Timestamp.Equal(unix(w.at)) {
					t.Errorf("message %d: Timestamp = %v", i, m.Timestamp)
				}
			}
		})
	}
}

// TestParseTypedFields checks the typed fields callers act on (media to
// fetch, the message reacted to, button payloads) beyond the Inbound.
func TestParseTypedFields(t *testing.T) {
	one := func(t *testing.T, file string) Message {
		t.Helper()
		ev, err := Parse(readTestdata(t, file), testNow)
		if err != nil {
			t.Fatal(err)
		}
		if len(ev.Messages) < 1 {
			t.Fatal("no message")
		}
		return ev.Messages[0]
	}
	t.Run("image", func(t *testing.T) {
		m := one(t, "image.json")
		want := &MediaRef{ID: "1003383421387256", MimeType: "image/jpeg", SHA256: "uDP2mFmMwfHVc+ZOv1s9XDtsEK/Dp3Q04W0G/qB1wKw=", Caption: "broken lid"}
		if !reflect.DeepEqual(m.Media, want) || m.Type != TypeImage || m.From != "16505551234" || m.Phone != "+16505551234" {
			t.Fatalf("got %+v", m)
		}
	})
	t.Run("voice", func(t *testing.T) {
		m := one(t, "voice.json")
		if m.Media == nil || !m.Media.Voice || m.Media.ID != "1219406869564329" || m.UserID != "US.13491208655302741918" {
			t.Fatalf("got %+v / %+v", m, m.Media)
		}
	})
	t.Run("document", func(t *testing.T) {
		m := one(t, "document.json")
		if m.Media == nil || m.Media.Filename != "invoice-1042.pdf" || m.Context == nil || m.Context.ID != "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJPVVQxAA==" {
			t.Fatalf("got %+v", m)
		}
	})
	t.Run("reaction", func(t *testing.T) {
		m := one(t, "reaction.json")
		want := &Reaction{MessageID: "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJPVVQxAA==", Emoji: "👍"}
		if !reflect.DeepEqual(m.Reaction, want) || m.Media != nil {
			t.Fatalf("got %+v", m.Reaction)
		}
	})
	t.Run("button reply", func(t *testing.T) {
		m := one(t, "interactive_button_reply.json")
		want := &Reply{Type: "button_reply", ID: "confirm_delivery", Title: "Yes, deliver it"}
		if !reflect.DeepEqual(m.Reply, want) {
			t.Fatalf("got %+v", m.Reply)
		}
	})
	t.Run("template button", func(t *testing.T) {
		m := one(t, "button.json")
		if !reflect.DeepEqual(m.Button, &Button{Payload: "STOP_PROMOS", Text: "Stop promotions"}) {
			t.Fatalf("got %+v", m.Button)
		}
	})
	t.Run("location", func(t *testing.T) {
		m := one(t, "location.json")
		want := &Location{Latitude: 37.4843428, Longitude: -122.1482006, Name: "Meta Headquarters", Address: "1 Hacker Way, Menlo Park, CA 94025", URL: "https://www.meta.com"}
		if !reflect.DeepEqual(m.Location, want) {
			t.Fatalf("got %+v", m.Location)
		}
	})
	t.Run("bsuid only", func(t *testing.T) {
		m := one(t, "bsuid_only.json")
		if m.From != "" || m.Phone != "" || m.UserID != "GH.8842093371650021" || m.Username != "@kofi.builds" {
			t.Fatalf("got %+v", m)
		}
	})
}

func TestParseStatuses(t *testing.T) {
	ev, err := Parse(readTestdata(t, "statuses.json"), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Messages) != 0 {
		t.Fatalf("got %d messages", len(ev.Messages))
	}
	const biz = "106540352242922"
	want := []Status{
		{ID: "wamid.OUT1", Status: "sent", Timestamp: unix(1749502790), RecipientID: "16505551234", PhoneNumberID: biz},
		{ID: "wamid.OUT1", Status: "failed", Timestamp: unix(1749502800), RecipientID: "16505551234", PhoneNumberID: biz,
			Errors: []ErrorDetail{{Code: 131047, Title: "Re-engagement message", Message: "Re-engagement message",
				Details: "Message failed to send because more than 24 hours have passed since the customer last replied to this number."}}},
		{ID: "wamid.OUT2", Status: "delivered", Timestamp: unix(1749502810), RecipientID: "16505551234", RecipientUserID: "US.13491208655302741918", PhoneNumberID: biz},
		{ID: "wamid.OUT3", Status: "read", Timestamp: unix(1749502820), RecipientID: "US.13491208655302741918", RecipientUserID: "US.13491208655302741918", PhoneNumberID: biz},
		{ID: "wamid.OUT4", Status: "played", Timestamp: unix(1749502830), RecipientID: "16505551234", PhoneNumberID: biz},
	}
	wantDelivery := []switchboard.DeliveryStatus{"sent", "failed", "delivered", "read", "read"}
	if len(ev.Statuses) != len(want) {
		t.Fatalf("got %d statuses, want %d", len(ev.Statuses), len(want))
	}
	for i, s := range ev.Statuses {
		if !json.Valid(s.Raw) || !bytes.Contains(s.Raw, []byte(s.ID)) {
			t.Errorf("status %d: Raw = %s", i, s.Raw)
		}
		s.Raw = nil
		if !reflect.DeepEqual(s, want[i]) {
			t.Errorf("status %d:\n got  %+v\n want %+v", i, s, want[i])
		}
		if d := s.Delivery(); d != wantDelivery[i] {
			t.Errorf("status %d: Delivery() = %q, want %q", i, d, wantDelivery[i])
		}
	}
	if got := ev.Statuses[1].Errors[0].String(); !strings.HasPrefix(got, "131047 Re-engagement message: Message failed") {
		t.Errorf("ErrorDetail.String() = %q", got)
	}
	if (Status{Status: "deleted"}).Delivery() != "" {
		t.Error("unknown status maps to a delivery status")
	}
}

func TestParseBatchedStatuses(t *testing.T) {
	ev, err := Parse(readTestdata(t, "batched.json"), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Statuses) != 1 || ev.Statuses[0].ID != "wamid.OUT9" || ev.Statuses[0].PhoneNumberID != "106540352242923" {
		t.Fatalf("statuses = %+v", ev.Statuses)
	}
}

// wrap puts one messages[] / statuses[] value into a full webhook body.
func wrap(value string) []byte {
	return []byte(`{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":` + value + `}]}]}`)
}

func TestParseLenient(t *testing.T) {
	t.Run("future timestamp is clamped to now", func(t *testing.T) {
		now := unix(1749416000) // before the message's own timestamp
		ev, err := Parse(readTestdata(t, "text.json"), now)
		if err != nil {
			t.Fatal(err)
		}
		in := ev.Messages[0].Inbound()
		if !in.ReceivedAt.Equal(now) || !ev.Messages[0].Timestamp.Equal(unix(1749416383)) {
			t.Fatalf("ReceivedAt = %v, Timestamp = %v", in.ReceivedAt, ev.Messages[0].Timestamp)
		}
	})
	t.Run("numeric timestamp", func(t *testing.T) {
		ev, err := Parse(wrap(`{"messages":[{"from":"16505551234","id":"wamid.N","timestamp":1749416383,"type":"text","text":{"body":"x"}}]}`), testNow)
		if err != nil || !ev.Messages[0].Timestamp.Equal(unix(1749416383)) {
			t.Fatalf("%v %+v", err, ev)
		}
	})
	t.Run("wa_id unusable but BSUID present", func(t *testing.T) {
		ev, err := Parse(wrap(`{"contacts":[{"profile":{"name":"A"},"wa_id":"447700900123","user_id":"GB.1"}],`+
			`"messages":[{"from":"447700900123","id":"wamid.W","timestamp":"1749416383","type":"text","text":{"body":"x"}}]}`), testNow)
		if err != nil {
			t.Fatal(err)
		}
		in := ev.Messages[0].Inbound()
		if len(in.Identities) != 1 || in.Identities[0] != (switchboard.IdentityRef{Kind: switchboard.IdentityWhatsAppBSUID, Value: "GB.1"}) {
			t.Fatalf("identities = %+v", in.Identities)
		}
		if !bytes.Contains(in.Metadata, []byte(`"wa_id":"447700900123"`)) {
			t.Fatalf("metadata lost the wa_id: %s", in.Metadata)
		}
	})
	t.Run("BSUID in from_user_id", func(t *testing.T) {
		ev, err := Parse(wrap(`{"contacts":[{"profile":{"name":"B"},"user_id":"US.2"},{"profile":{"name":"C"},"user_id":"US.3"}],`+
			`"messages":[{"from_user_id":"US.3","id":"wamid.U","timestamp":"1749416383","type":"text","text":{"body":"x"}}]}`), testNow)
		if err != nil {
			t.Fatal(err)
		}
		if m := ev.Messages[0]; m.UserID != "US.3" || m.Name != "C" {
			t.Fatalf("got %+v", m)
		}
	})
	t.Run("type object missing is unsupported, not empty", func(t *testing.T) {
		ev, err := Parse(wrap(`{"messages":[{"from":"16505551234","id":"wamid.I","timestamp":"1749416383","type":"image"}]}`), testNow)
		if err != nil {
			t.Fatal(err)
		}
		m := ev.Messages[0]
		if m.Media != nil || m.ContentType != "text" || m.Text != "[Unsupported WhatsApp message: image]" {
			t.Fatalf("got %+v", m)
		}
	})
	t.Run("removed reaction and empty context", func(t *testing.T) {
		ev, err := Parse(wrap(`{"messages":[{"from":"16505551234","id":"wamid.R","timestamp":"1749416383","type":"reaction","context":{},`+
			`"reaction":{"message_id":"wamid.X","emoji":""}}]}`), testNow)
		if err != nil {
			t.Fatal(err)
		}
		if m := ev.Messages[0]; m.Text != "(reaction removed)" || m.Context != nil || m.Reaction.MessageID != "wamid.X" {
			t.Fatalf("got %+v", m)
		}
	})
	t.Run("location without name", func(t *testing.T) {
		ev, err := Parse(wrap(`{"messages":[{"from":"16505551234","id":"wamid.L","timestamp":"1749416383","type":"location","location":{"latitude":"51.5","longitude":-0.12}}]}`), testNow)
		if err != nil {
			t.Fatal(err)
		}
		if m := ev.Messages[0]; m.Text != "📍 (51.5, -0.12)" {
			t.Fatalf("text = %q", m.Text)
		}
	})
	t.Run("value errors", func(t *testing.T) {
		ev, err := Parse(wrap(`{"errors":[{"code":131000,"title":"Something went wrong","error_data":{"details":"x"}}]}`), testNow)
		if err != nil || len(ev.Errors) != 1 || ev.Errors[0].Code != 131000 || ev.Errors[0].Details != "x" {
			t.Fatalf("%v %+v", err, ev.Errors)
		}
	})
	t.Run("other fields and null values are skipped", func(t *testing.T) {
		body := `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"account_update","value":{"event":"X"}},{"field":"messages","value":null},{"field":"messages"}]}]}`
		ev, err := Parse([]byte(body), testNow)
		if err != nil || len(ev.Messages)+len(ev.Statuses) != 0 {
			t.Fatalf("%v %+v", err, ev)
		}
	})
}

func TestParseErrors(t *testing.T) {
	const okMsg = `"from":"16505551234","type":"text","text":{"body":"x"}`
	tests := []struct {
		name, body, want string
	}{
		{"malformed JSON", `{"object":`, "malformed JSON"},
		{"not an object", `[1,2]`, "malformed JSON"},
		{"other object", `{"object":"page","entry":[]}`, `object is "page", want "whatsapp_business_account"`},
		{"missing object", `{"entry":[]}`, `object is ""`},
		{"value not an object", string(wrap(`[]`)), "entry 0, change 0: malformed value"},
		{"messages not a list", string(wrap(`{"messages":{}}`)), "malformed value"},
		{"message not an object", string(wrap(`{"messages":["x"]}`)), "message 0: invalid: malformed message"},
		{"message without id", string(wrap(`{"messages":[{` + okMsg + `,"timestamp":"1749416383"}]}`)), "message 0: invalid: message has no id"},
		{"blank id", string(wrap(`{"messages":[{` + okMsg + `,"id":"  ","timestamp":"1749416383"}]}`)), "message has no id"},
		{"missing timestamp", string(wrap(`{"messages":[{` + okMsg + `,"id":"wamid.A"}]}`)), "message wamid.A: invalid: timestamp is missing"},
		{"text timestamp", string(wrap(`{"messages":[{` + okMsg + `,"id":"wamid.A","timestamp":"yesterday"}]}`)), `timestamp "yesterday" is not unix seconds`},
		{"fractional timestamp", string(wrap(`{"messages":[{` + okMsg + `,"id":"wamid.A","timestamp":1.5}]}`)), `timestamp "1.5" is not unix seconds`},
		{"zero timestamp", string(wrap(`{"messages":[{` + okMsg + `,"id":"wamid.A","timestamp":"0"}]}`)), "timestamp 0 is out of range"},
		{"huge timestamp", string(wrap(`{"messages":[{` + okMsg + `,"id":"wamid.A","timestamp":"99999999999999"}]}`)), "out of range"},
		{"bool timestamp", string(wrap(`{"messages":[{` + okMsg + `,"id":"wamid.A","timestamp":true}]}`)), "timestamp true is not a string or number"},
		{"bad wa_id", string(wrap(`{"messages":[{"from":"0123","id":"wamid.A","timestamp":"1749416383","type":"text","text":{"body":"x"}}]}`)), "message wamid.A: sender: invalid: WhatsApp id must start with a country code"},
		{"no sender", string(wrap(`{"messages":[{"id":"wamid.A","timestamp":"1749416383","type":"text","text":{"body":"x"}}]}`)), "message wamid.A has no sender"},
		{"status without status", string(wrap(`{"statuses":[{"id":"wamid.O","timestamp":"1749416383"}]}`)), "status 0: invalid: status of wamid.O has no status"},
		{"status without id", string(wrap(`{"statuses":[{"status":"read","timestamp":"1749416383"}]}`)), "status has no id"},
		{"status bad timestamp", string(wrap(`{"statuses":[{"id":"wamid.O","status":"read","timestamp":"-5"}]}`)), "status of wamid.O: invalid: timestamp -5 is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.body), testNow)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tt.want)
			}
			if code := switchboard.ErrorCode(err); code != switchboard.EINVALID {
				t.Fatalf("code = %q, want %q", code, switchboard.EINVALID)
			}
		})
	}
}
