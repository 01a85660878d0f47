package twiliotest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/sms"
	"github.com/switchboard-inbox/switchboard/channel/twilio"
)

const (
	testSID   = "AC00000000000000000000000000000000"
	testToken = "test_auth_token_0123456789abcdef"
	customer  = "+14155550123"
	ourNumber = "+14155550100"
	serviceID = "MG0123456789abcdef0123456789abcdef"
)

var fixedNow = time.Date(2023, 8, 24, 5, 1, 45, 0, time.UTC)

// standIn starts a Server behind a TLS test server and returns it with a
// twilio.Client pointed at it. The Server is closed before the listener.
func standIn(t *testing.T, opts ...Option) (*Server, *httptest.Server, *twilio.Client) {
	t.Helper()
	opts = append([]Option{WithClock(func() time.Time { return fixedNow })}, opts...)
	s := New(testSID, testToken, opts...)
	ts := httptest.NewTLSServer(s.Handler())
	s.SetBaseURL(ts.URL)
	t.Cleanup(ts.Close)
	t.Cleanup(s.Close)
	return s, ts, &twilio.Client{BaseURL: ts.URL, AccountSID: testSID, AuthToken: testToken, HTTP: ts.Client()}
}

// request is one webhook a receiver got.
type request struct {
	publicURL string // receiver URL + request URI, what the signature covers
	header    http.Header
	form      url.Values
}

// receiver is an httptest server recording the form posts it gets.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []request
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Errorf("receiver: %v", err)
		}
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, request{twilio.PublicURL(rc.URL, r), r.Header.Clone(), r.PostForm})
		rc.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.reqs)
}

func asAPIError(t *testing.T, err error) *twilio.APIError {
	t.Helper()
	var e *twilio.APIError
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *APIError", err, err)
	}
	return e
}

func TestSendMessage(t *testing.T) {
	s, _, c := standIn(t)
	m, err := c.SendMessage(context.Background(), twilio.SendParams{
		To: customer, From: ourNumber, Body: "Your order shipped",
		MediaURLs: []string{"https://cdn.example.com/label.png"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !validSID(m.SID, "SM") || m.Status != "queued" || m.NumSegments != 1 || m.ErrorCode != 0 {
		t.Errorf("message = %+v", m)
	}
	want := []SentMessage{{
		SID: m.SID, To: customer, From: ourNumber, Body: "Your order shipped",
		MediaURLs: []string{"https://cdn.example.com/label.png"}, NumSegments: 1,
		Statuses: []string{"queued", "sent", "delivered"}, At: fixedNow,
	}}
	if got := s.Messages(); !reflect.DeepEqual(got, want) {
		t.Errorf("Messages() = %+v\nwant %+v", got, want)
	}
}

// post sends a raw Messages.json request and decodes the JSON answer.
func post(t *testing.T, ts *httptest.Server, path, user, pass string, form url.Values) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ts.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("answer %s: %v", raw, err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
	return resp, out
}

const messagesPath = "/2010-04-01/Accounts/" + testSID + "/Messages.json"

func TestCreatedResource(t *testing.T) {
	_, ts, _ := standIn(t)
	resp, got := post(t, ts, messagesPath, testSID, testToken, url.Values{
		"To": {customer}, "From": {ourNumber}, "Body": {strings.Repeat("a", 161)},
	})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status = %d: %v", resp.StatusCode, got)
	}
	sid, _ := got["sid"].(string)
	if !validSID(sid, "SM") {
		t.Errorf("sid = %q", sid)
	}
	uri := "/2010-04-01/Accounts/" + testSID + "/Messages/" + sid
	want := map[string]any{
		"account_sid": testSID, "api_version": "2010-04-01", "body": strings.Repeat("a", 161),
		"date_created": "Thu, 24 Aug 2023 05:01:45 +0000", "date_sent": nil,
		"date_updated": "Thu, 24 Aug 2023 05:01:45 +0000", "direction": "outbound-api",
		"error_code": nil, "error_message": nil, "from": ourNumber, "messaging_service_sid": nil,
		"num_media": "0", "num_segments": "2", "price": nil, "price_unit": "USD", "sid": sid,
		"status": "queued", "subresource_uris": map[string]any{"media": uri + "/Media.json"},
		"to": customer, "uri": uri + ".json",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("resource = %v\nwant       %v", got, want)
	}

	// A messaging service without From: Twilio accepts, then picks a number.
	resp, got = post(t, ts, messagesPath, testSID, testToken, url.Values{
		"To": {customer}, "MessagingServiceSid": {serviceID}, "MediaUrl": {"https://cdn.example.com/a.png", "https://cdn.example.com/b.png"},
	})
	if resp.StatusCode != http.StatusCreated || got["status"] != "accepted" || got["from"] != nil ||
		got["messaging_service_sid"] != serviceID || got["num_media"] != "2" || got["num_segments"] != "1" || got["body"] != "" {
		t.Errorf("service send: %d %v", resp.StatusCode, got)
	}
}

func TestClientErrors(t *testing.T) {
	tests := []struct {
		name     string
		opts     []Option
		token    string
		to       string
		status   int
		code     int
		message  string
		isUnsub  bool
		retrying bool
	}{
		{"unsubscribed", []Option{WithUnsubscribed(customer)}, testToken, customer, 400, 21610, "Attempt to send to unsubscribed recipient", true, false},
		{"invalid To", nil, testToken, "12345", 400, 21211, "The 'To' number 12345 is not a valid phone number.", false, false},
		{"unassigned To", nil, testToken, "+19995550123", 400, 21211, "The 'To' number +19995550123 is not a valid phone number.", false, false},
		{"wrong token", nil, "wrong", customer, 401, 20003, "Authenticate", false, false},
		{"failure", []Option{WithFailures(1)}, testToken, customer, 500, 20500, "Internal Server Error", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, c := standIn(t, tt.opts...)
			c.AuthToken = tt.token
			_, err := c.SendMessage(context.Background(), twilio.SendParams{To: tt.to, From: ourNumber, Body: "hello"})
			e := asAPIError(t, err)
			want := twilio.APIError{Status: tt.status, Code: tt.code, Message: tt.message,
				MoreInfo: "https://www.twilio.com/docs/errors/" + strconv.Itoa(tt.code)}
			if *e != want {
				t.Errorf("error = %+v\nwant    %+v", *e, want)
			}
			if twilio.IsUnsubscribed(err) != tt.isUnsub {
				t.Errorf("IsUnsubscribed = %v", !tt.isUnsub)
			}
			if e.Retryable() != tt.retrying || switchboard.IsPermanent(err) == tt.retrying {
				t.Errorf("Retryable = %v, IsPermanent = %v", e.Retryable(), switchboard.IsPermanent(err))
			}
			if n := len(s.Messages()); n != 0 {
				t.Errorf("%d messages recorded", n)
			}
		})
	}
}

func TestFailuresThenSuccess(t *testing.T) {
	s, _, c := standIn(t, WithFailures(2))
	p := twilio.SendParams{To: customer, From: ourNumber, Body: "retry me"}
	for i := range 2 {
		_, err := c.SendMessage(context.Background(), p)
		if e := asAPIError(t, err); e.Status != 500 || e.Code != 20500 || !e.Retryable() || switchboard.IsPermanent(err) {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
	}
	m, err := c.SendMessage(context.Background(), p)
	if err != nil {
		t.Fatalf("attempt 3: %v", err)
	}
	if got := s.Messages(); len(got) != 1 || got[0].SID != m.SID {
		t.Errorf("Messages() = %+v", got)
	}
}

func TestRequestErrors(t *testing.T) {
	ok := func(edit func(url.Values)) url.Values {
		f := url.Values{"To": {customer}, "From": {ourNumber}, "Body": {"hi"}}
		edit(f)
		return f
	}
	eleven := make([]string, 11)
	for i := range eleven {
		eleven[i] = "https://cdn.example.com/x.png"
	}
	tests := []struct {
		name       string
		path       string
		user, pass string
		form       url.Values
		status     int
		code       int
	}{
		{"no auth", messagesPath, "", "", ok(func(url.Values) {}), 401, 20003},
		{"other account's credentials", messagesPath, "AC11111111111111111111111111111111", testToken, ok(func(url.Values) {}), 401, 20003},
		{"other account's path", "/2010-04-01/Accounts/AC11111111111111111111111111111111/Messages.json", testSID, testToken, ok(func(url.Values) {}), 404, 20404},
		{"unknown path", "/2010-04-01/Accounts/" + testSID + "/Calls.json", testSID, testToken, ok(func(url.Values) {}), 404, 20404},
		{"no To", messagesPath, testSID, testToken, ok(func(f url.Values) { f.Del("To") }), 400, 21604},
		{"national To", messagesPath, testSID, testToken, ok(func(f url.Values) { f.Set("To", "4155550123") }), 400, 21211},
		{"no From", messagesPath, testSID, testToken, ok(func(f url.Values) { f.Del("From") }), 400, 21603},
		{"bad From", messagesPath, testSID, testToken, ok(func(f url.Values) { f.Set("From", "not a sender!") }), 400, 21212},
		{"bad service", messagesPath, testSID, testToken, ok(func(f url.Values) { f.Del("From"); f.Set("MessagingServiceSid", "MG123") }), 400, 21701},
		{"no body", messagesPath, testSID, testToken, ok(func(f url.Values) { f.Del("Body") }), 400, 21602},
		{"body too long", messagesPath, testSID, testToken, ok(func(f url.Values) { f.Set("Body", strings.Repeat("é", 1601)) }), 400, 21617},
		{"too many media", messagesPath, testSID, testToken, ok(func(f url.Values) { f["MediaUrl"] = eleven }), 400, 21623},
		{"bad media", messagesPath, testSID, testToken, ok(func(f url.Values) { f.Set("MediaUrl", "ftp://x/y") }), 400, 21620},
		{"bad callback", messagesPath, testSID, testToken, ok(func(f url.Values) { f.Set("StatusCallback", "/relative") }), 400, 21609},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ts, _ := standIn(t)
			resp, got := post(t, ts, tt.path, tt.user, tt.pass, tt.form)
			msg, _ := got["message"].(string)
			want := map[string]any{"code": float64(tt.code), "message": msg,
				"more_info": "https://www.twilio.com/docs/errors/" + strconv.Itoa(tt.code), "status": float64(tt.status)}
			if resp.StatusCode != tt.status || !reflect.DeepEqual(got, want) || msg == "" {
				t.Errorf("%d %v, want %d %v", resp.StatusCode, got, tt.status, want)
			}
			if tt.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if n := len(s.Messages()); n != 0 {
				t.Errorf("%d messages recorded", n)
			}
		})
	}

	// The body limit counts characters, not bytes: 1600 "é" are fine.
	_, ts, _ := standIn(t)
	if resp, got := post(t, ts, messagesPath, testSID, testToken, ok(func(f url.Values) { f.Set("Body", strings.Repeat("é", 1600)) })); resp.StatusCode != 201 {
		t.Errorf("1600 characters: %d %v", resp.StatusCode, got)
	}
	// Methods other than POST.
	req, _ := http.NewRequest(http.MethodGet, ts.URL+messagesPath, nil)
	req.SetBasicAuth(testSID, testToken)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}
}

// wantCallback is the form Twilio posts for one status of a message sent
// from ourNumber to customer.
func wantCallback(sid, status, errorCode string) url.Values {
	f := url.Values{
		"MessageSid": {sid}, "SmsSid": {sid}, "MessageStatus": {status}, "SmsStatus": {status},
		"AccountSid": {testSID}, "From": {ourNumber}, "To": {customer}, "ApiVersion": {"2010-04-01"},
	}
	if errorCode != "" {
		f.Set("ErrorCode", errorCode)
	}
	return f
}

// checkSigned fails unless every request carries a valid signature for the
// receiver's URL and a form Twilio's status callbacks have.
func checkSigned(t *testing.T, reqs []request) {
	t.Helper()
	tokens := map[string]bool{}
	for i, r := range reqs {
		if !twilio.ValidateSignature(testToken, r.publicURL, r.form, r.header.Get(twilio.SignatureHeader)) {
			t.Errorf("request %d to %s: signature %q does not validate", i, r.publicURL, r.header.Get(twilio.SignatureHeader))
		}
		if twilio.ValidateSignature("another token", r.publicURL, r.form, r.header.Get(twilio.SignatureHeader)) {
			t.Errorf("request %d validates under another token", i)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("request %d: Content-Type %q", i, ct)
		}
		tok := r.header.Get(IdempotencyHeader)
		if tok == "" || tokens[tok] {
			t.Errorf("request %d: idempotency token %q missing or repeated", i, tok)
		}
		tokens[tok] = true
	}
}

func statuses(reqs []request) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.form.Get("MessageStatus"))
	}
	return out
}

func TestStatusCallbacks(t *testing.T) {
	rc := newReceiver(t)
	s, _, c := standIn(t)
	// The query is signed; Twilio's retry overrides in the fragment are
	// neither sent nor signed.
	callback := rc.URL + "/webhooks/twilio/status?tenant=7#rc=3&rp=all"
	m, err := c.SendMessage(context.Background(), twilio.SendParams{To: customer, From: ourNumber, Body: "hi", StatusCallback: callback})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	reqs := rc.requests()
	if got, want := statuses(reqs), []string{"queued", "sent", "delivered"}; !slices.Equal(got, want) {
		t.Fatalf("statuses = %v, want %v", got, want)
	}
	checkSigned(t, reqs)
	for i, r := range reqs {
		if want := rc.URL + "/webhooks/twilio/status?tenant=7"; r.publicURL != want {
			t.Errorf("request %d went to %s, want %s", i, r.publicURL, want)
		}
		if want := wantCallback(m.SID, r.form.Get("MessageStatus"), ""); !reflect.DeepEqual(r.form, want) {
			t.Errorf("request %d form = %v\nwant %v", i, r.form, want)
		}
		st, err := sms.ParseStatus(r.form)
		if err != nil || st.MessageSID != m.SID || st.ErrorCode != 0 {
			t.Errorf("ParseStatus(%d) = %+v, %v", i, st, err)
		}
	}
	cbs := s.Callbacks()
	if len(cbs) != 3 {
		t.Fatalf("Callbacks() has %d", len(cbs))
	}
	for _, cb := range cbs {
		if cb.StatusCode != http.StatusNoContent || cb.Err != nil || cb.MessageSid != m.SID || cb.URL != rc.URL+"/webhooks/twilio/status?tenant=7" {
			t.Errorf("callback = %+v", cb)
		}
	}
}

func TestUndeliverable(t *testing.T) {
	rc := newReceiver(t)
	s, _, c := standIn(t, WithUndeliverable(customer))
	m, err := c.SendMessage(context.Background(), twilio.SendParams{To: customer, From: ourNumber, Body: "hi", StatusCallback: rc.URL + "/status"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	reqs := rc.requests()
	if got, want := statuses(reqs), []string{"queued", "sent", "undelivered"}; !slices.Equal(got, want) {
		t.Fatalf("statuses = %v, want %v", got, want)
	}
	checkSigned(t, reqs)
	if got, want := reqs[2].form, wantCallback(m.SID, "undelivered", "30003"); !reflect.DeepEqual(got, want) {
		t.Errorf("form = %v\nwant %v", got, want)
	}
	if st, err := sms.ParseStatus(reqs[2].form); err != nil || st.Delivery != switchboard.DeliveryFailed || st.ErrorCode != 30003 {
		t.Errorf("ParseStatus = %+v, %v", st, err)
	}
	if got := s.Messages()[0].Statuses; !slices.Equal(got, []string{"queued", "sent", "undelivered"}) {
		t.Errorf("Statuses = %v", got)
	}
}

func TestStatusSequence(t *testing.T) {
	rc := newReceiver(t)
	s, _, c := standIn(t, WithStatusSequence("accepted", "queued", "sending", "sent", "failed"))
	m, err := c.SendMessage(context.Background(), twilio.SendParams{
		To: customer, MessagingServiceSID: serviceID, Body: "hi", StatusCallback: rc.URL + "/status",
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != "accepted" {
		t.Errorf("status = %q", m.Status)
	}
	s.Close()
	reqs := rc.requests()
	if got, want := statuses(reqs), []string{"accepted", "queued", "sending", "sent", "failed"}; !slices.Equal(got, want) {
		t.Fatalf("statuses = %v, want %v", got, want)
	}
	checkSigned(t, reqs)
	last := reqs[4].form
	if last.Get("ErrorCode") != "30008" || last.Get("From") != DefaultPoolNumber || last.Get("MessagingServiceSid") != serviceID {
		t.Errorf("last callback = %v", last)
	}
}

func TestShuffledCallbacks(t *testing.T) {
	rc := newReceiver(t)
	s, _, c := standIn(t, WithShuffledCallbacks())
	const n = 5
	for range n {
		if _, err := c.SendMessage(context.Background(), twilio.SendParams{To: customer, From: ourNumber, Body: "hi", StatusCallback: rc.URL + "/status"}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	reqs := rc.requests()
	checkSigned(t, reqs)
	bySID := map[string][]string{}
	for _, r := range reqs {
		sid := r.form.Get("MessageSid")
		bySID[sid] = append(bySID[sid], r.form.Get("MessageStatus"))
	}
	if len(bySID) != n {
		t.Fatalf("callbacks for %d messages, want %d", len(bySID), n)
	}
	for sid, got := range bySID {
		if slices.Equal(got, []string{"queued", "sent", "delivered"}) {
			t.Errorf("%s: callbacks in order %v", sid, got)
		}
		if sorted := slices.Sorted(slices.Values(got)); !slices.Equal(sorted, []string{"delivered", "queued", "sent"}) {
			t.Errorf("%s: statuses %v", sid, got)
		}
		// What the platform does with them: apply only what advances.
		var current switchboard.DeliveryStatus
		for _, st := range got {
			if d := deliveryOf(t, sid, st); sms.Advances(current, d) {
				current = d
			}
		}
		if current != switchboard.DeliveryDelivered {
			t.Errorf("%s: %v ends at %q", sid, got, current)
		}
	}
}

func deliveryOf(t *testing.T, sid, status string) switchboard.DeliveryStatus {
	st, err := sms.ParseStatus(url.Values{"MessageSid": {sid}, "MessageStatus": {status}})
	if err != nil {
		t.Fatal(err)
	}
	return st.Delivery
}

func TestCloseStopsCallbacks(t *testing.T) {
	rc := newReceiver(t)
	s, _, c := standIn(t)
	s.Close()
	if _, err := c.SendMessage(context.Background(), twilio.SendParams{To: customer, From: ourNumber, Body: "hi", StatusCallback: rc.URL + "/status"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if n := len(rc.requests()); n != 0 {
		t.Errorf("%d callbacks after Close", n)
	}
	if n := len(s.Messages()); n != 1 {
		t.Errorf("%d messages", n)
	}
}

func TestCloseCutsCallbackDelay(t *testing.T) {
	rc := newReceiver(t)
	s, _, c := standIn(t, WithCallbackDelay(time.Hour))
	if _, err := c.SendMessage(context.Background(), twilio.SendParams{To: customer, From: ourNumber, Body: "hi", StatusCallback: rc.URL + "/status"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Close took %v", d)
	}
	if got := statuses(rc.requests()); !slices.Equal(got, []string{"queued", "sent", "delivered"}) {
		t.Errorf("statuses = %v", got)
	}
}

func TestCallbackReceiverDown(t *testing.T) {
	rc := newReceiver(t)
	dead := rc.URL
	rc.Close()
	s, _, c := standIn(t)
	if _, err := c.SendMessage(context.Background(), twilio.SendParams{To: customer, From: ourNumber, Body: "hi", StatusCallback: dead + "/status"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	cbs := s.Callbacks()
	if len(cbs) != 3 {
		t.Fatalf("%d callbacks", len(cbs))
	}
	for _, cb := range cbs {
		if cb.Err == nil || cb.StatusCode != 0 {
			t.Errorf("callback = %+v", cb)
		}
	}
}
