package twiliotest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/sms"
	"github.com/switchboard-inbox/switchboard/channel/twilio"
)

var (
	jpeg = []byte("\xff\xd8\xff\xe0 not really a jpeg")
	pdf  = []byte("%PDF-1.7 not really a pdf")
)

func sendInbound(t *testing.T, s *Server, webhookURL string, p Inbound) {
	t.Helper()
	resp, err := s.SendInbound(context.Background(), nil, webhookURL, p)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("receiver answered %d", resp.StatusCode)
	}
}

func TestSendInboundMMS(t *testing.T) {
	rc := newReceiver(t)
	s, ts, c := standIn(t)
	body := "Hi, my order #1042 arrived damaged 😞"
	sendInbound(t, s, rc.URL+"/webhooks/twilio/sms", Inbound{
		From: customer, To: ourNumber, Body: body, MessagingServiceSid: serviceID,
		FromCity: "SAN FRANCISCO", FromState: "CA", FromZip: "94107",
		Media: []MediaFile{{ContentType: "image/jpeg", Data: jpeg}, {ContentType: "application/pdf", Data: pdf}},
	})
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	checkSigned(t, reqs)
	if ua := r.header.Get("User-Agent"); ua != "TwilioProxy/1.1" {
		t.Errorf("User-Agent = %q", ua)
	}

	sid := r.form.Get("MessageSid")
	if !validSID(sid, "MM") {
		t.Errorf("MessageSid = %q", sid)
	}
	mediaBase := ts.URL + "/2010-04-01/Accounts/" + testSID + "/Messages/" + sid + "/Media/"
	for i, ct := range []string{"image/jpeg", "application/pdf"} {
		n := string(rune('0' + i))
		u := r.form.Get("MediaUrl" + n)
		if !strings.HasPrefix(u, mediaBase) || !validSID(strings.TrimPrefix(u, mediaBase), "ME") {
			t.Errorf("MediaUrl%s = %q", n, u)
		}
		if got := r.form.Get("MediaContentType" + n); got != ct {
			t.Errorf("MediaContentType%s = %q", n, got)
		}
	}
	want := url.Values{
		"MessageSid": {sid}, "SmsSid": {sid}, "SmsMessageSid": {sid}, "AccountSid": {testSID},
		"MessagingServiceSid": {serviceID}, "From": {customer}, "To": {ourNumber}, "Body": {body},
		"NumMedia": {"2"}, "NumSegments": {"1"},
		"MediaUrl0": {r.form.Get("MediaUrl0")}, "MediaContentType0": {"image/jpeg"},
		"MediaUrl1": {r.form.Get("MediaUrl1")}, "MediaContentType1": {"application/pdf"},
		"FromCity": {"SAN FRANCISCO"}, "FromState": {"CA"}, "FromZip": {"94107"}, "FromCountry": {"US"},
		"ToCity": {""}, "ToState": {""}, "ToZip": {""}, "ToCountry": {"US"},
		"SmsStatus": {"received"}, "ApiVersion": {"2010-04-01"},
	}
	if !reflect.DeepEqual(r.form, want) {
		t.Errorf("form = %v\nwant %v", r.form, want)
	}

	// The platform's parser takes it as it is.
	in, err := sms.ParseInbound(r.form, "US", fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if in.ProviderID != sid || in.Text != body || in.Channel != switchboard.ChannelSMS ||
		!reflect.DeepEqual(in.Identities, []switchboard.IdentityRef{{Kind: switchboard.IdentityPhone, Value: customer}}) {
		t.Errorf("inbound = %+v", in)
	}
	var meta sms.InboundMetadata
	if err := json.Unmarshal(in.Metadata, &meta); err != nil {
		t.Fatal(err)
	}
	if meta.NumMedia != 2 || meta.Media[0].URL != r.form.Get("MediaUrl0") || meta.Media[1].ContentType != "application/pdf" ||
		meta.MessagingServiceSID != serviceID || meta.AccountSID != testSID || meta.FromCity != "SAN FRANCISCO" {
		t.Errorf("metadata = %+v", meta)
	}

	// Media: the real client fetches it with the account's credentials.
	for i, wantData := range [][]byte{jpeg, pdf} {
		data, ct, err := c.FetchMedia(context.Background(), meta.Media[i].URL, 0)
		if err != nil || !bytes.Equal(data, wantData) || ct != meta.Media[i].ContentType {
			t.Errorf("FetchMedia(%d) = %q, %q, %v", i, data, ct, err)
		}
	}
	// Without credentials, or with the wrong ones: 401 20003.
	for _, bad := range []*twilio.Client{
		{BaseURL: ts.URL, HTTP: ts.Client()},
		{BaseURL: ts.URL, AccountSID: testSID, AuthToken: "wrong", HTTP: ts.Client()},
	} {
		_, _, err := bad.FetchMedia(context.Background(), meta.Media[0].URL, 0)
		if e := asAPIError(t, err); e.Status != 401 || e.Code != 20003 || !switchboard.IsPermanent(err) {
			t.Errorf("unauthenticated fetch: %v", err)
		}
	}
	// Unknown media, and media deleted after the copy: 404.
	del, _ := http.NewRequest(http.MethodDelete, meta.Media[1].URL, nil)
	del.SetBasicAuth(testSID, testToken)
	resp, err := ts.Client().Do(del)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE: %d", resp.StatusCode)
	}
	for _, u := range []string{meta.Media[1].URL, mediaBase + "ME00000000000000000000000000000000"} {
		_, _, err := c.FetchMedia(context.Background(), u, 0)
		if e := asAPIError(t, err); e.Status != 404 || e.Code != 20404 {
			t.Errorf("fetch %s: %v", u, err)
		}
	}
}

func TestSendInboundSMS(t *testing.T) {
	rc := newReceiver(t)
	s, _, _ := standIn(t)
	body := strings.Repeat("long text ", 17) // 170 GSM-7 characters: two parts
	sendInbound(t, s, rc.URL+"/webhooks/twilio/sms?src=demo#rc=2", Inbound{
		From: "+447911123456", To: ourNumber, Body: body, MessageSid: "SM5f1c2e0a9b8d4c3e2f1a0b9c8d7e6f5a",
		Extra: url.Values{"OptOutType": {"HELP"}},
	})
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	checkSigned(t, reqs)
	f := reqs[0].form
	if reqs[0].publicURL != rc.URL+"/webhooks/twilio/sms?src=demo" {
		t.Errorf("URL = %s", reqs[0].publicURL)
	}
	if f.Get("MessageSid") != "SM5f1c2e0a9b8d4c3e2f1a0b9c8d7e6f5a" || f.Get("NumMedia") != "0" || f.Get("NumSegments") != "2" ||
		f.Has("MediaUrl0") || f.Has("MessagingServiceSid") || f.Get("FromCountry") != "GB" || f.Get("OptOutType") != "HELP" {
		t.Errorf("form = %v", f)
	}
	in, err := sms.ParseInbound(f, "US", fixedNow)
	if err != nil || in.ProviderID != "SM5f1c2e0a9b8d4c3e2f1a0b9c8d7e6f5a" || in.Text != body || in.ContentType != switchboard.ContentText {
		t.Errorf("ParseInbound = %+v, %v", in, err)
	}

	// A generated SID without media starts with SM.
	sendInbound(t, s, rc.URL+"/webhooks/twilio/sms", Inbound{From: customer, To: ourNumber, Body: "hello"})
	if sid := rc.requests()[1].form.Get("MessageSid"); !validSID(sid, "SM") {
		t.Errorf("MessageSid = %q", sid)
	}
}

func TestInboundRetryAndBadSignature(t *testing.T) {
	rc := newReceiver(t)
	s, _, _ := standIn(t)
	wh, err := s.InboundWebhook(rc.URL+"/webhooks/twilio/sms", Inbound{From: customer, To: ourNumber, Body: "same message twice"})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []Webhook{wh, wh, wh.WithBadSignature()} {
		resp, err := s.SendWebhook(context.Background(), nil, w)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	reqs := rc.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests", len(reqs))
	}
	first, retry, forged := reqs[0], reqs[1], reqs[2]
	if !reflect.DeepEqual(first.form, retry.form) || !reflect.DeepEqual(first.form, forged.form) {
		t.Errorf("forms differ:\n%v\n%v\n%v", first.form, retry.form, forged.form)
	}
	for _, h := range []string{twilio.SignatureHeader, IdempotencyHeader} {
		if first.header.Get(h) == "" || first.header.Get(h) != retry.header.Get(h) {
			t.Errorf("%s: %q then %q", h, first.header.Get(h), retry.header.Get(h))
		}
	}
	for i, r := range reqs {
		valid := twilio.ValidateSignature(testToken, r.publicURL, r.form, r.header.Get(twilio.SignatureHeader))
		if valid != (i < 2) {
			t.Errorf("request %d: signature valid = %v", i, valid)
		}
	}
	if sig := forged.header.Get(twilio.SignatureHeader); sig == "" || sig == first.header.Get(twilio.SignatureHeader) {
		t.Errorf("forged signature %q", sig)
	}
}

func TestInboundOptOut(t *testing.T) {
	rc := newReceiver(t)
	s, _, c := standIn(t)
	p := twilio.SendParams{To: customer, From: ourNumber, Body: "hello"}
	sendInbound(t, s, rc.URL+"/sms", Inbound{From: customer, To: ourNumber, Body: " Stop\n"})
	if _, err := c.SendMessage(context.Background(), p); !twilio.IsUnsubscribed(err) {
		t.Fatalf("send after STOP: %v", err)
	}
	sendInbound(t, s, rc.URL+"/sms", Inbound{From: customer, To: ourNumber, Body: "START"})
	if _, err := c.SendMessage(context.Background(), p); err != nil {
		t.Fatalf("send after START: %v", err)
	}
}

func TestInboundInvalid(t *testing.T) {
	s := New(testSID, testToken)
	defer s.Close()
	if _, err := s.InboundWebhook("/relative", Inbound{From: customer, To: ourNumber, Body: "x"}); err == nil {
		t.Error("relative URL accepted")
	}
	media := slices.Repeat([]MediaFile{{ContentType: "image/png", Data: []byte("x")}}, 11)
	if _, err := s.InboundWebhook("https://sb.example.com/webhooks/twilio/sms", Inbound{From: customer, To: ourNumber, Media: media}); err == nil {
		t.Error("11 media accepted")
	}
}

// TestInboundVector reproduces the signed example of channels.md §9 from
// the stand-in's own form.
func TestInboundVector(t *testing.T) {
	s := New(testSID, testToken)
	defer s.Close()
	wh, err := s.InboundWebhook("https://switchboard.example.com/webhooks/twilio/sms", Inbound{
		From: customer, To: ourNumber, Body: "Hi, my order #1042 arrived damaged 😞",
		MessageSid: "SM5f1c2e0a9b8d4c3e2f1a0b9c8d7e6f5a", MessagingServiceSid: serviceID,
		FromCity: "SAN FRANCISCO", FromState: "CA", FromZip: "94107",
		ToCity: "SAN FRANCISCO", ToState: "CA", ToZip: "94105",
		Media: []MediaFile{{ContentType: "image/jpeg", Data: jpeg}},
		// The documented example's media SID; the stand-in's own is random.
		Extra: url.Values{"MediaUrl0": {"https://api.twilio.com/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages/SM5f1c2e0a9b8d4c3e2f1a0b9c8d7e6f5a/Media/ME1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if wh.Signature != "nwj6OSJYQrbKugXgp5apKNlfHoo=" {
		t.Errorf("signature = %s, form %s", wh.Signature, wh.Form.Encode())
	}
}
