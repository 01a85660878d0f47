package sms

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

// smsBody is the exact MMS webhook body of channels.md §1.
const smsBody = "AccountSid=AC00000000000000000000000000000000&ApiVersion=2010-04-01&Body=Hi%2C+my+order+%231042+arrived+damaged+%F0%9F%98%9E&From=%2B14155550123&FromCity=SAN+FRANCISCO&FromCountry=US&FromState=CA&FromZip=94107&MediaContentType0=image%2Fjpeg&MediaUrl0=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2FAC00000000000000000000000000000000%2FMessages%2FSM5f1c2e0a9b8d4c3e2f1a0b9c8d7e6f5a%2FMedia%2FME1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d&MessageSid=SM5f1c2e0a9b8d4c3e2f1a0b9c8d7e6f5a&MessagingServiceSid=MG0123456789abcdef0123456789abcdef&NumMedia=1&NumSegments=1&SmsMessageSid=SM5f1c2e0a9b8d4c3e2f1a0b9c8d7e6f5a&SmsSid=SM5f1c2e0a9b8d4c3e2f1a0b9c8d7e6f5a&SmsStatus=received&To=%2B14155550100&ToCity=SAN+FRANCISCO&ToCountry=US&ToState=CA&ToZip=94105"

const (
	sid      = "SM5f1c2e0a9b8d4c3e2f1a0b9c8d7e6f5a"
	mediaURL = "https://api.twilio.com/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages/SM5f1c2e0a9b8d4c3e2f1a0b9c8d7e6f5a/Media/ME1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d"
)

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))

func docForm(t testing.TB) url.Values {
	t.Helper()
	f, err := url.ParseQuery(smsBody)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestParseInboundDocumentedBody(t *testing.T) {
	in, err := ParseInbound(docForm(t), "US", testNow)
	if err != nil {
		t.Fatal(err)
	}
	if in.Channel != switchboard.ChannelSMS || in.ProviderID != sid || in.SenderName != "" ||
		in.ContentType != switchboard.ContentText || in.Text != "Hi, my order #1042 arrived damaged 😞" {
		t.Errorf("inbound = %+v", in)
	}
	if want := []switchboard.IdentityRef{{Kind: switchboard.IdentityPhone, Value: "+14155550123"}}; !reflect.DeepEqual(in.Identities, want) {
		t.Errorf("identities = %v, want %v", in.Identities, want)
	}
	if !in.ReceivedAt.Equal(testNow) || in.ReceivedAt.Location() != time.UTC {
		t.Errorf("ReceivedAt = %v, want %v in UTC", in.ReceivedAt, testNow)
	}
	if in.Original != nil || in.Attachments != nil || !in.AcceptedAt.IsZero() {
		t.Errorf("Original, Attachments and AcceptedAt are the caller's: %+v", in)
	}
	wantMeta := `{"to":"+14155550100","account_sid":"AC00000000000000000000000000000000","messaging_service_sid":"MG0123456789abcdef0123456789abcdef","num_segments":1,"num_media":1,"from_city":"SAN FRANCISCO","from_state":"CA","from_country":"US","media":[{"url":"` + mediaURL + `","content_type":"image/jpeg"}]}`
	if string(in.Metadata) != wantMeta {
		t.Errorf("metadata =\n%s\nwant\n%s", in.Metadata, wantMeta)
	}
	if err := in.Validate(); err != nil {
		t.Error(err)
	}
}

func TestParseInbound(t *testing.T) {
	// minimal is a plain SMS with only the fields that matter.
	minimal := func(kv ...string) url.Values {
		f := url.Values{"MessageSid": {sid}, "From": {"+14155550123"}, "To": {"+14155550100"}, "Body": {"hello"}, "NumMedia": {"0"}}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "<del>" {
				f.Del(kv[i])
			} else {
				f.Set(kv[i], kv[i+1])
			}
		}
		return f
	}
	ok := []struct {
		name        string
		form        url.Values
		region      string
		providerID  string
		phone       string
		contentType string
		text        string
		meta        string // substring of the metadata JSON
	}{
		{"plain", minimal(), "", sid, "+14155550123", "text", "hello", `"num_media":0`},
		{"SmsMessageSid fallback", minimal("MessageSid", "<del>", "SmsMessageSid", "SM1", "SmsSid", "SM2"), "", "SM1", "+14155550123", "text", "hello", ""},
		{"SmsSid fallback", minimal("MessageSid", "<del>", "SmsSid", "SM2"), "", "SM2", "+14155550123", "text", "hello", ""},
		{"whatsapp prefix", minimal("From", "whatsapp:+14155550123"), "", sid, "+14155550123", "text", "hello", ""},
		{"national number in region", minimal("From", "(415) 555-0123"), "US", sid, "+14155550123", "text", "hello", ""},
		{"UK number", minimal("From", "+447911123456"), "US", sid, "+447911123456", "text", "hello", ""},
		{"no NumMedia", minimal("NumMedia", "<del>"), "", sid, "+14155550123", "text", "hello", `"num_media":0`},
		{"empty body", minimal("Body", ""), "", sid, "+14155550123", "text", "", ""},
		{"NUL removed", minimal("Body", "a\x00b"), "", sid, "+14155550123", "text", "ab", ""},
		{"unknown fields", minimal("FutureField", "\xff", "AddOns", `{"status":"successful"}`), "", sid, "+14155550123", "text", "hello", ""},
		{"STOP keyword", minimal("Body", " stop ", "OptOutType", "stop"), "", sid, "+14155550123", "text", " stop ", `"opt_out_type":"STOP","keyword":"opt_out"`},
		{"START keyword", minimal("Body", "Start"), "", sid, "+14155550123", "text", "Start", `"keyword":"opt_in"`},
		{"no keyword in prose", minimal("Body", "please stop texting"), "", sid, "+14155550123", "text", "please stop texting", `"num_media":0}`},
		{"image only", minimal("Body", "", "NumMedia", "2", "MediaUrl0", mediaURL, "MediaContentType0", "image/jpeg", "MediaUrl1", mediaURL+"2", "MediaContentType1", "video/mp4"),
			"", sid, "+14155550123", "image", "", `"media":[{"url":"` + mediaURL + `","content_type":"image/jpeg"},{"url":"` + mediaURL + `2","content_type":"video/mp4"}]`},
		{"image with blank body", minimal("Body", " \n", "NumMedia", "1", "MediaUrl0", mediaURL, "MediaContentType0", "IMAGE/PNG; name=x"),
			"", sid, "+14155550123", "image", " \n", `"content_type":"image/png"`},
		{"audio only", minimal("Body", "", "NumMedia", "1", "MediaUrl0", mediaURL, "MediaContentType0", "audio/amr"), "", sid, "+14155550123", "audio", "", ""},
		{"file only", minimal("Body", "", "NumMedia", "1", "MediaUrl0", mediaURL, "MediaContentType0", "application/pdf"), "", sid, "+14155550123", "file", "", ""},
		{"untyped media", minimal("Body", "", "NumMedia", "1", "MediaUrl0", mediaURL), "", sid, "+14155550123", "file", "", `"content_type":"application/octet-stream"`},
		{"text with media", minimal("NumMedia", "1", "MediaUrl0", mediaURL, "MediaContentType0", "image/gif"), "", sid, "+14155550123", "text", "hello", `"num_media":1`},
		{"media beyond NumMedia ignored", minimal("MediaUrl0", "http://insecure.example/x"), "", sid, "+14155550123", "text", "hello", `"num_media":0`},
		{"ten media", withMedia(minimal("Body", ""), 10), "", sid, "+14155550123", "image", "", `"num_media":10`},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			in, err := ParseInbound(tt.form, tt.region, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if in.ProviderID != tt.providerID || in.Identities[0].Value != tt.phone || in.ContentType != tt.contentType || in.Text != tt.text {
				t.Errorf("got id %q phone %q type %q text %q", in.ProviderID, in.Identities[0].Value, in.ContentType, in.Text)
			}
			if !strings.Contains(string(in.Metadata), tt.meta) {
				t.Errorf("metadata %s lacks %s", in.Metadata, tt.meta)
			}
			if !json.Valid(in.Metadata) {
				t.Errorf("metadata is not JSON: %s", in.Metadata)
			}
		})
	}

	bad := []struct {
		name   string
		form   url.Values
		region string
		errHas string
	}{
		{"no sid", minimal("MessageSid", "<del>"), "", "MessageSid is required"},
		{"blank sid", minimal("MessageSid", "  "), "", "MessageSid is required"},
		{"sid with slash", minimal("MessageSid", "SM/../x"), "", "letters and digits"},
		{"sid too long", minimal("MessageSid", strings.Repeat("a", 65)), "", "2 to 64"},
		{"no From", minimal("From", "<del>"), "", "From is required"},
		{"short code From", minimal("From", "12345"), "US", "From is not a usable phone number"},
		{"alphanumeric From", minimal("From", "ACME"), "US", "From is not a usable phone number"},
		{"national From without region", minimal("From", "(415) 555-0123"), "", "country code"},
		{"invalid UTF-8 body", minimal("Body", "caf\xe9"), "", "UTF-8"},
		{"NumMedia 11", withMedia(minimal(), 11), "", "NumMedia must be a whole number from 0 to 10"},
		{"NumMedia negative", minimal("NumMedia", "-1"), "", "NumMedia"},
		{"NumMedia plus sign", minimal("NumMedia", "+1", "MediaUrl0", mediaURL), "", "NumMedia"},
		{"NumMedia not a number", minimal("NumMedia", "one"), "", "NumMedia"},
		{"NumMedia huge", minimal("NumMedia", "99999999999999999999999"), "", "NumMedia"},
		{"missing MediaUrl0", minimal("NumMedia", "1"), "", "MediaUrl0 is missing"},
		{"missing MediaUrl1", minimal("NumMedia", "2", "MediaUrl0", mediaURL), "", "MediaUrl1 is missing"},
		{"http media", minimal("NumMedia", "1", "MediaUrl0", "http://api.twilio.com/x"), "", "https"},
		{"relative media", minimal("NumMedia", "1", "MediaUrl0", "/2010-04-01/x"), "", "https"},
		{"opaque media", minimal("NumMedia", "1", "MediaUrl0", "https:x"), "", "https"},
		{"file media", minimal("NumMedia", "1", "MediaUrl0", "file:///etc/passwd"), "", "https"},
		{"media with credentials", minimal("NumMedia", "1", "MediaUrl0", "https://u:p@api.twilio.com/x"), "", "credentials"},
		{"media URL huge", minimal("NumMedia", "1", "MediaUrl0", "https://a.example/"+strings.Repeat("x", 2048)), "", "longer"},
		{"NumSegments garbage", minimal("NumSegments", "2x"), "", "NumSegments"},
		{"NumSegments over 255", minimal("NumSegments", "256"), "", "NumSegments"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			in, err := ParseInbound(tt.form, tt.region, testNow)
			if err == nil {
				t.Fatalf("ParseInbound = %+v, want an error", in)
			}
			if switchboard.ErrorCode(err) != switchboard.EINVALID {
				t.Errorf("code = %q, want EINVALID (%v)", switchboard.ErrorCode(err), err)
			}
			if !strings.Contains(err.Error(), tt.errHas) || !strings.HasPrefix(err.Error(), "sms: parse inbound: ") {
				t.Errorf("error %q lacks %q or context", err, tt.errHas)
			}
		})
	}
}

func withMedia(f url.Values, n int) url.Values {
	f.Set("NumMedia", strconv.Itoa(n))
	for i := range n {
		f.Set("MediaUrl"+strconv.Itoa(i), mediaURL+strconv.Itoa(i))
		f.Set("MediaContentType"+strconv.Itoa(i), "image/jpeg")
	}
	return f
}

func TestMediaRefs(t *testing.T) {
	got, err := MediaRefs(docForm(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := []Media{{URL: mediaURL, ContentType: "image/jpeg"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("MediaRefs = %v, want %v", got, want)
	}
	if got, err := MediaRefs(url.Values{}); err != nil || got != nil {
		t.Errorf("no media: %v, %v", got, err)
	}
}
