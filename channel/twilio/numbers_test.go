package twilio_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/twilio"
	"github.com/switchboard-inbox/switchboard/channel/twilio/twiliotest"
)

const (
	accountSID = "AC00000000000000000000000000000000"
	authToken  = "test_auth_token_0123456789abcdef"
	numberA    = "+14155550100"
	numberB    = "+14155550101"
	serviceA   = "MG0123456789abcdef0123456789abcdef"
	serviceB   = "MGfedcba9876543210fedcba9876543210"
)

var deployment = twilio.WebhookURLs{
	SmsURL:         "https://sb.example.com/webhooks/twilio/sms",
	StatusCallback: "https://sb.example.com/webhooks/twilio/status",
	VoiceURL:       "https://sb.example.com/webhooks/twilio/voice",
}

// requestLog counts the requests a test server got, by path.
type requestLog struct {
	mu    sync.Mutex
	paths []string
}

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.paths = append(l.paths, r.Method+" "+r.URL.RequestURI())
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (l *requestLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.paths)
}

// standIn serves a twiliotest.Server over TLS and returns a client for it
// and the log of requests it got.
func standIn(t *testing.T, opts ...twiliotest.Option) (*twiliotest.Server, *twilio.Client, *requestLog) {
	t.Helper()
	s := twiliotest.New(accountSID, authToken, opts...)
	log := &requestLog{}
	ts := httptest.NewTLSServer(log.wrap(s.Handler()))
	s.SetBaseURL(ts.URL)
	t.Cleanup(ts.Close)
	t.Cleanup(s.Close)
	return s, &twilio.Client{BaseURL: ts.URL, AccountSID: accountSID, AuthToken: authToken, HTTP: ts.Client()}, log
}

// fakeServer answers with handler over TLS and logs the requests.
func fakeServer(t *testing.T, handler http.HandlerFunc) (*httptest.Server, *requestLog) {
	t.Helper()
	log := &requestLog{}
	ts := httptest.NewTLSServer(log.wrap(handler))
	t.Cleanup(ts.Close)
	return ts, log
}

func apiError(t *testing.T, err error) *twilio.APIError {
	t.Helper()
	var e *twilio.APIError
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) carries no *twilio.APIError", err, err)
	}
	return e
}

func TestPhoneNumbersFollowsPages(t *testing.T) {
	// 2001 numbers are three pages of the 1000 the client asks for.
	numbers := make([]string, 2001)
	for i := range numbers {
		numbers[i] = fmt.Sprintf("+1415%07d", i)
	}
	s, c, log := standIn(t, twiliotest.WithPhoneNumbers(numbers...))

	got, err := c.PhoneNumbers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(numbers) {
		t.Fatalf("got %d numbers, want %d", len(got), len(numbers))
	}
	for i, n := range got {
		want, _ := s.Number(numbers[i])
		if n.PhoneNumber != numbers[i] || n.SID != want.SID || n.FriendlyName != want.FriendlyName {
			t.Fatalf("number %d = %+v, want %s %s %q", i, n, numbers[i], want.SID, want.FriendlyName)
		}
	}
	if got[0].FriendlyName != "(415) 000-0000" || got[0].SmsMethod != "POST" {
		t.Errorf("first number = %+v", got[0])
	}
	if n := log.count(); n != 3 {
		t.Errorf("%d requests (%v), want 3 pages", n, log.paths)
	}
	if !strings.Contains(log.paths[0], "PageSize=1000") {
		t.Errorf("first request %s does not ask for 1000 a page", log.paths[0])
	}
}

func TestPhoneNumbersEmptyAccount(t *testing.T) {
	_, c, _ := standIn(t)
	got, err := c.PhoneNumbers(context.Background())
	if err != nil || len(got) != 0 {
		t.Fatalf("PhoneNumbers = %v, %v; want none", got, err)
	}
}

func TestPointNumber(t *testing.T) {
	s, c, _ := standIn(t, twiliotest.WithPhoneNumbers(numberA, numberB))
	ctx := context.Background()
	a, _ := s.Number(numberA)

	got, err := c.PointNumber(ctx, a.SID, deployment)
	if err != nil {
		t.Fatal(err)
	}
	if got.SID != a.SID || got.PhoneNumber != numberA || got.SmsURL != deployment.SmsURL ||
		got.VoiceURL != deployment.VoiceURL || got.StatusCallback != deployment.StatusCallback {
		t.Errorf("answer = %+v", got)
	}
	if m := got.Mismatches(deployment); len(m) != 0 {
		t.Errorf("pointed number still differs: %q", m)
	}

	now, _ := s.Number(numberA)
	want := twiliotest.Number{
		SID: a.SID, PhoneNumber: numberA, FriendlyName: "(415) 555-0100",
		SmsURL: deployment.SmsURL, SmsMethod: "POST", VoiceURL: deployment.VoiceURL, VoiceMethod: "POST",
		StatusCallback: deployment.StatusCallback, StatusCallbackMethod: "POST",
		Created: now.Created, Updated: now.Updated,
	}
	if now != want {
		t.Errorf("stand-in has %+v\nwant %+v", now, want)
	}
	if b, _ := s.Number(numberB); b.SmsURL != "" || b.VoiceURL != "" || b.StatusCallback != "" {
		t.Errorf("the other number changed: %+v", b)
	}

	// Fields left empty keep the number's setting.
	if _, err := c.PointNumber(ctx, a.SID, twilio.WebhookURLs{SmsURL: "https://new.example.com/sms"}); err != nil {
		t.Fatal(err)
	}
	now, _ = s.Number(numberA)
	if now.SmsURL != "https://new.example.com/sms" || now.VoiceURL != deployment.VoiceURL || now.StatusCallback != deployment.StatusCallback {
		t.Errorf("after an SMS-only update the stand-in has %+v", now)
	}

	// The listing shows what is configured now.
	list, err := c.PhoneNumbers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].SmsURL != "https://new.example.com/sms" || list[1].SmsURL != "" {
		t.Fatalf("listing = %+v", list)
	}
	wantDiff := []string{
		"SMS webhook is not set; it should be " + deployment.SmsURL,
		"voice webhook is not set; it should be " + deployment.VoiceURL,
		"status callback is not set; it should be " + deployment.StatusCallback,
	}
	if m := list[1].Mismatches(deployment); !reflect.DeepEqual(m, wantDiff) {
		t.Errorf("mismatches of the unpointed number = %q\nwant %q", m, wantDiff)
	}
}

// TestPointNumberWireFormat checks the request against the documented
// update: form parameters, path, auth, and the decoded answer.
func TestPointNumberWireFormat(t *testing.T) {
	const sid = "PN0123456789abcdef0123456789abcdef"
	var gotForm url.Values
	ts, _ := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if want := "/2010-04-01/Accounts/" + accountSID + "/IncomingPhoneNumbers/" + sid + ".json"; r.Method != "POST" || r.URL.Path != want {
			t.Errorf("request %s %s, want POST %s", r.Method, r.URL.Path, want)
		}
		if u, p, ok := r.BasicAuth(); !ok || u != accountSID || p != authToken {
			t.Errorf("basic auth %q %q %v", u, p, ok)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("Content-Type = %q", ct)
		}
		raw, _ := io.ReadAll(r.Body)
		gotForm, _ = url.ParseQuery(string(raw))
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"sid":"`+sid+`","phone_number":"+14155550100","friendly_name":"Support",
			"sms_url":"https://sb.example.com/webhooks/twilio/sms","sms_method":"POST","sms_application_sid":null,
			"voice_url":"https://sb.example.com/webhooks/twilio/voice","voice_method":"POST","voice_application_sid":"",
			"status_callback":"https://sb.example.com/webhooks/twilio/status","status_callback_method":"POST",
			"capabilities":{"sms":true},"trunk_sid":null}`)
	})
	c := &twilio.Client{BaseURL: ts.URL, AccountSID: accountSID, AuthToken: authToken, HTTP: ts.Client()}

	got, err := c.PointNumber(context.Background(), sid, deployment)
	if err != nil {
		t.Fatal(err)
	}
	wantForm := url.Values{
		"SmsUrl": {deployment.SmsURL}, "SmsMethod": {"POST"},
		"VoiceUrl": {deployment.VoiceURL}, "VoiceMethod": {"POST"},
		"StatusCallback": {deployment.StatusCallback}, "StatusCallbackMethod": {"POST"},
	}
	if !reflect.DeepEqual(gotForm, wantForm) {
		t.Errorf("form = %v\nwant %v", gotForm, wantForm)
	}
	want := twilio.PhoneNumber{
		SID: sid, PhoneNumber: "+14155550100", FriendlyName: "Support",
		SmsURL: deployment.SmsURL, SmsMethod: "POST", VoiceURL: deployment.VoiceURL, VoiceMethod: "POST",
		StatusCallback: deployment.StatusCallback, StatusCallbackMethod: "POST",
	}
	if got != want {
		t.Errorf("number = %+v\nwant %+v", got, want)
	}

	// Without a voice URL, voice settings are not sent at all.
	if _, err := c.PointNumber(context.Background(), sid, twilio.WebhookURLs{SmsURL: deployment.SmsURL}); err != nil {
		t.Fatal(err)
	}
	if want := (url.Values{"SmsUrl": {deployment.SmsURL}, "SmsMethod": {"POST"}}); !reflect.DeepEqual(gotForm, want) {
		t.Errorf("SMS-only form = %v, want %v", gotForm, want)
	}
}

func TestPointNumberUnknownSID(t *testing.T) {
	s, c, _ := standIn(t, twiliotest.WithPhoneNumbers(numberA))
	_, err := c.PointNumber(context.Background(), "PN00000000000000000000000000000000", deployment)
	e := apiError(t, err)
	if e.Status != http.StatusNotFound || e.Code != 20404 {
		t.Errorf("error = %+v, want 404 / 20404", e)
	}
	if a, _ := s.Number(numberA); a.SmsURL != "" {
		t.Errorf("another number changed: %+v", a)
	}
}

func TestPointNumberRefusesBadInputBeforeCalling(t *testing.T) {
	s, c, log := standIn(t, twiliotest.WithPhoneNumbers(numberA))
	a, _ := s.Number(numberA)
	for name, tc := range map[string]struct {
		sid string
		u   twilio.WebhookURLs
	}{
		"short SID":        {"PN123", deployment},
		"service SID":      {serviceA, deployment},
		"not hex":          {"PNzz23456789abcdef0123456789abcdef", deployment},
		"path in SID":      {"PN0123456789abcdef0123456789abc/..", deployment},
		"no URL":           {a.SID, twilio.WebhookURLs{}},
		"ftp SMS URL":      {a.SID, twilio.WebhookURLs{SmsURL: "ftp://sb.example.com/sms"}},
		"relative voice":   {a.SID, twilio.WebhookURLs{VoiceURL: "/webhooks/twilio/voice"}},
		"hostless status":  {a.SID, twilio.WebhookURLs{StatusCallback: "https:///status"}},
		"one bad of three": {a.SID, twilio.WebhookURLs{SmsURL: deployment.SmsURL, VoiceURL: "voice"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.PointNumber(context.Background(), tc.sid, tc.u)
			if switchboard.ErrorCode(err) != switchboard.EINVALID {
				t.Errorf("error = %v, want EINVALID", err)
			}
		})
	}
	if n := log.count(); n != 0 {
		t.Errorf("%d requests were made: %v", n, log.paths)
	}
}

func TestWrongAuthToken(t *testing.T) {
	s, c, _ := standIn(t, twiliotest.WithPhoneNumbers(numberA), twiliotest.WithMessagingService(serviceA, "Support"))
	c.AuthToken = "wrong"
	a, _ := s.Number(numberA)
	ctx := context.Background()
	_, err1 := c.PhoneNumbers(ctx)
	_, err2 := c.PointNumber(ctx, a.SID, deployment)
	_, err3 := c.MessagingServices(ctx)
	for i, err := range []error{err1, err2, err3} {
		if e := apiError(t, err); e.Status != http.StatusUnauthorized || e.Code != 20003 {
			t.Errorf("call %d: error = %+v, want 401 / 20003", i+1, e)
		}
	}
	if now, _ := s.Number(numberA); now.SmsURL != "" {
		t.Errorf("the number changed without auth: %+v", now)
	}
}

func TestNotConfigured(t *testing.T) {
	_, c, log := standIn(t)
	c.AuthToken = ""
	ctx := context.Background()
	_, err1 := c.PhoneNumbers(ctx)
	_, err2 := c.PointNumber(ctx, "PN0123456789abcdef0123456789abcdef", deployment)
	_, err3 := c.MessagingServices(ctx)
	for i, err := range []error{err1, err2, err3} {
		if switchboard.ErrorCode(err) != switchboard.EINVALID {
			t.Errorf("call %d: error = %v, want EINVALID", i+1, err)
		}
	}
	if n := log.count(); n != 0 {
		t.Errorf("%d requests without credentials", n)
	}
}

func TestMessagingServices(t *testing.T) {
	_, c, log := standIn(t,
		twiliotest.WithMessagingService(serviceA, "Support"),
		twiliotest.WithMessagingService(serviceB, "Sales"))
	got, err := c.MessagingServices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []twilio.MessagingService{{SID: serviceA, FriendlyName: "Support"}, {SID: serviceB, FriendlyName: "Sales"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("services = %+v\nwant %+v", got, want)
	}
	if n := log.count(); n != 1 || !strings.HasPrefix(log.paths[0], "GET /v1/Services?") {
		t.Errorf("requests = %v", log.paths)
	}
}

// TestMessagingServicesPaging follows a same-origin next_page_url, decodes
// the documented fields, and will not send credentials to another host.
func TestMessagingServicesPaging(t *testing.T) {
	other, otherLog := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"services":[],"meta":{"next_page_url":null}}`)
	})
	var foreign bool
	var ts *httptest.Server
	ts, log := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != accountSID || p != authToken {
			t.Errorf("basic auth %q %q %v", u, p, ok)
		}
		if r.URL.Path != "/v1/Services" {
			t.Errorf("path %s", r.URL.Path)
		}
		switch r.URL.Query().Get("Page") {
		case "":
			fmt.Fprintf(w, `{"services":[{"sid":%q,"friendly_name":"Support","inbound_request_url":"https://sb.example.com/in",
				"status_callback":null,"use_inbound_webhook_on_number":true}],
				"meta":{"page":0,"page_size":1,"key":"services","next_page_url":%q}}`,
				serviceA, ts.URL+"/v1/Services?PageSize=1&Page=1&PageToken=PT1")
		case "1":
			next := ts.URL + "/v1/Services?PageSize=1&Page=2"
			if foreign {
				next = other.URL + "/v1/Services?PageSize=1&Page=2"
			}
			fmt.Fprintf(w, `{"services":[{"sid":%q,"friendly_name":"Sales","inbound_request_url":null,
				"status_callback":"https://sb.example.com/status","use_inbound_webhook_on_number":false}],
				"meta":{"page":1,"page_size":1,"key":"services","next_page_url":%q}}`, serviceB, next)
		default:
			io.WriteString(w, `{"services":[],"meta":{"page":2,"next_page_url":null}}`)
		}
	})
	c := &twilio.Client{BaseURL: "https://api.twilio.com", MessagingBaseURL: ts.URL + "/",
		AccountSID: accountSID, AuthToken: authToken, HTTP: ts.Client()}

	got, err := c.MessagingServices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []twilio.MessagingService{
		{SID: serviceA, FriendlyName: "Support", InboundRequestURL: "https://sb.example.com/in", UseInboundWebhookOnNumber: true},
		{SID: serviceB, FriendlyName: "Sales", StatusCallback: "https://sb.example.com/status"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("services = %+v\nwant %+v", got, want)
	}
	if n := log.count(); n != 3 {
		t.Errorf("%d requests, want 3: %v", n, log.paths)
	}

	foreign = true
	if _, err := c.MessagingServices(context.Background()); err == nil || !strings.Contains(err.Error(), "next_page_url") {
		t.Errorf("a next page on another host: error = %v", err)
	}
	if n := otherLog.count(); n != 0 {
		t.Errorf("the other host got %d requests", n)
	}
}

func TestPhoneNumbersRefusesForeignNextPage(t *testing.T) {
	for _, next := range []string{"https://evil.example/2010-04-01/x.json", "//evil.example/x.json", "x.json"} {
		ts, log := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"incoming_phone_numbers":[{"sid":"PN0123456789abcdef0123456789abcdef"}],"next_page_uri":%q}`, next)
		})
		c := &twilio.Client{BaseURL: ts.URL, AccountSID: accountSID, AuthToken: authToken, HTTP: ts.Client()}
		if _, err := c.PhoneNumbers(context.Background()); err == nil || !strings.Contains(err.Error(), "next_page_uri") {
			t.Errorf("next_page_uri %q: error = %v", next, err)
		}
		if n := log.count(); n != 1 {
			t.Errorf("next_page_uri %q: %d requests", next, n)
		}
	}
}

// TestPhoneNumbersPageBound stops a server that never ends its list.
func TestPhoneNumbersPageBound(t *testing.T) {
	var ts *httptest.Server
	ts, log := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		page := 0
		fmt.Sscan(r.URL.Query().Get("Page"), &page)
		fmt.Fprintf(w, `{"incoming_phone_numbers":[],"next_page_uri":"%s?Page=%d"}`, r.URL.Path, page+1)
	})
	c := &twilio.Client{BaseURL: ts.URL, AccountSID: accountSID, AuthToken: authToken, HTTP: ts.Client()}
	if _, err := c.PhoneNumbers(context.Background()); err == nil || !strings.Contains(err.Error(), "pages") {
		t.Errorf("error = %v, want the page bound", err)
	}
	if n := log.count(); n != 50 {
		t.Errorf("%d requests, want 50", n)
	}
}

// hostRecorder fails every request after noting its URL.
type hostRecorder struct {
	mu   sync.Mutex
	urls []string
}

func (h *hostRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.urls = append(h.urls, r.URL.Scheme+"://"+r.URL.Host+r.URL.Path)
	h.mu.Unlock()
	return nil, errors.New("offline")
}

func TestAPIHosts(t *testing.T) {
	for _, tc := range []struct {
		base, messaging string
		want            []string
	}{
		{"", "", []string{"https://api.twilio.com", "https://messaging.twilio.com"}},
		{"https://api.twilio.com/", "", []string{"https://api.twilio.com", "https://messaging.twilio.com"}},
		{"https://twilio.test:8443", "", []string{"https://twilio.test:8443", "https://twilio.test:8443"}},
		{"", "https://messaging.test/", []string{"https://api.twilio.com", "https://messaging.test"}},
	} {
		rec := &hostRecorder{}
		c := &twilio.Client{BaseURL: tc.base, MessagingBaseURL: tc.messaging, AccountSID: accountSID, AuthToken: authToken,
			HTTP: &http.Client{Transport: rec}}
		_, err1 := c.PhoneNumbers(context.Background())
		_, err2 := c.MessagingServices(context.Background())
		if err1 == nil || err2 == nil {
			t.Fatalf("offline calls succeeded: %v %v", err1, err2)
		}
		want := []string{
			tc.want[0] + "/2010-04-01/Accounts/" + accountSID + "/IncomingPhoneNumbers.json",
			tc.want[1] + "/v1/Services",
		}
		if !reflect.DeepEqual(rec.urls, want) {
			t.Errorf("base %q, messaging %q: requested %q, want %q", tc.base, tc.messaging, rec.urls, want)
		}
	}
}

func TestCanceledContext(t *testing.T) {
	s, c, _ := standIn(t, twiliotest.WithPhoneNumbers(numberA))
	a, _ := s.Number(numberA)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err1 := c.PhoneNumbers(ctx)
	_, err2 := c.PointNumber(ctx, a.SID, deployment)
	_, err3 := c.MessagingServices(ctx)
	for i, err := range []error{err1, err2, err3} {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("call %d: error = %v, want context.Canceled", i+1, err)
		}
	}
}

func TestMismatches(t *testing.T) {
	pointed := twilio.PhoneNumber{
		SmsURL: deployment.SmsURL, SmsMethod: "POST", VoiceURL: deployment.VoiceURL, VoiceMethod: "POST",
		StatusCallback: deployment.StatusCallback, StatusCallbackMethod: "POST",
	}
	for name, tc := range map[string]struct {
		p    func(*twilio.PhoneNumber)
		u    twilio.WebhookURLs
		want []string
	}{
		"all match": {func(*twilio.PhoneNumber) {}, deployment, nil},
		"methods unset count as POST": {func(p *twilio.PhoneNumber) { p.SmsMethod, p.VoiceMethod, p.StatusCallbackMethod = "", "", "" },
			deployment, nil},
		"elsewhere": {func(p *twilio.PhoneNumber) { p.SmsURL = "https://old.example.com/sms" }, deployment,
			[]string{"SMS webhook points at https://old.example.com/sms, not " + deployment.SmsURL}},
		"GET": {func(p *twilio.PhoneNumber) { p.VoiceMethod = "get" }, deployment,
			[]string{"voice webhook is called with GET, not POST"}},
		"status callback GET": {func(p *twilio.PhoneNumber) { p.StatusCallbackMethod = "GET" }, deployment,
			[]string{"status callback is called with GET, not POST"}},
		"TwiML App": {func(p *twilio.PhoneNumber) { p.SmsApplicationSID = "AP0123456789abcdef0123456789abcdef" }, deployment,
			[]string{"SMS webhook is overridden by the TwiML App AP0123456789abcdef0123456789abcdef; Twilio calls that app, not " + deployment.SmsURL}},
		"only what is asked": {func(p *twilio.PhoneNumber) { p.VoiceURL = "" },
			twilio.WebhookURLs{SmsURL: deployment.SmsURL}, nil},
		"several": {func(p *twilio.PhoneNumber) { p.SmsURL, p.StatusCallback = "", "https://old.example.com/status" }, deployment,
			[]string{"SMS webhook is not set; it should be " + deployment.SmsURL,
				"status callback points at https://old.example.com/status, not " + deployment.StatusCallback}},
	} {
		t.Run(name, func(t *testing.T) {
			p := pointed
			tc.p(&p)
			if got := p.Mismatches(tc.u); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Mismatches = %q\nwant %q", got, tc.want)
			}
		})
	}
}
