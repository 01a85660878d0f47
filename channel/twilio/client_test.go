package twilio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/fetch"
)

const (
	testSID   = "AC00000000000000000000000000000000"
	testToken = "test_auth_token_0123456789abcdef"
)

// createdBody is Twilio's documented 201 answer to a message create.
const createdBody = `{
  "account_sid": "AC00000000000000000000000000000000",
  "api_version": "2010-04-01",
  "body": "Your order shipped",
  "date_created": "Thu, 24 Aug 2023 05:01:45 +0000",
  "date_sent": null,
  "date_updated": "Thu, 24 Aug 2023 05:01:45 +0000",
  "direction": "outbound-api",
  "error_code": null,
  "error_message": null,
  "from": "+14155550100",
  "messaging_service_sid": null,
  "num_media": "0",
  "num_segments": "2",
  "price": null,
  "price_unit": null,
  "sid": "SM1f2e3d4c5b6a79880f1e2d3c4b5a6978",
  "status": "queued",
  "subresource_uris": {"media": "/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages/SM1f2e3d4c5b6a79880f1e2d3c4b5a6978/Media.json"},
  "to": "+14155550123",
  "uri": "/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages/SM1f2e3d4c5b6a79880f1e2d3c4b5a6978.json"
}`

func twilioError(code int, msg string, status int) string {
	return fmt.Sprintf(`{"code": %d, "message": %q, "more_info": "https://www.twilio.com/docs/errors/%d", "status": %d}`, code, msg, code, status)
}

// fakeAPI answers one canned response and checks the request like Twilio
// would: method, path, Basic auth, content type and exact form fields.
func fakeAPI(t *testing.T, wantForm url.Values, status int, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			t.Errorf("method = %s, want POST", r.Method)
		}
		if want := "/2010-04-01/Accounts/" + testSID + "/Messages.json"; r.URL.Path != want {
			t.Errorf("path = %s, want %s", r.URL.Path, want)
		}
		user, pass, ok := r.BasicAuth()
		if !ok || user != testSID || pass != testToken {
			t.Errorf("basic auth = %q %q %v", user, pass, ok)
			w.WriteHeader(401)
			io.WriteString(w, twilioError(20003, "Authenticate", 401))
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("Content-Type = %q", ct)
		}
		raw, _ := io.ReadAll(r.Body)
		got, err := url.ParseQuery(string(raw))
		if err != nil {
			t.Errorf("body %q: %v", raw, err)
		}
		if !reflect.DeepEqual(got, wantForm) {
			t.Errorf("form = %v\nwant %v", got, wantForm)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func client(srv *httptest.Server) *Client {
	return &Client{BaseURL: srv.URL + "/", AccountSID: testSID, AuthToken: testToken, HTTP: srv.Client()}
}

func TestSendMessageSuccess(t *testing.T) {
	p := SendParams{
		To: "+14155550123", From: "+14155550100", Body: "Your order shipped",
		MediaURLs:      []string{"https://cdn.example.com/a.jpg", "https://cdn.example.com/b.png"},
		StatusCallback: "https://sb.example.com/webhooks/twilio/status",
	}
	want := url.Values{
		"To": {"+14155550123"}, "From": {"+14155550100"}, "Body": {"Your order shipped"},
		"MediaUrl":       {"https://cdn.example.com/a.jpg", "https://cdn.example.com/b.png"},
		"StatusCallback": {"https://sb.example.com/webhooks/twilio/status"},
	}
	srv := fakeAPI(t, want, http.StatusCreated, createdBody)
	m, err := client(srv).SendMessage(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	wantMsg := Message{SID: "SM1f2e3d4c5b6a79880f1e2d3c4b5a6978", Status: "queued", NumSegments: 2}
	if m != wantMsg {
		t.Errorf("message = %+v, want %+v", m, wantMsg)
	}
}

func TestSendMessageServiceOnly(t *testing.T) {
	want := url.Values{"To": {"+14155550123"}, "MessagingServiceSid": {"MG0123456789abcdef0123456789abcdef"}, "Body": {"hi"}}
	body := `{"sid":"SM1","status":"accepted","num_segments":1,"error_code":30007,"error_message":"filtered"}`
	srv := fakeAPI(t, want, http.StatusCreated, body)
	m, err := client(srv).SendMessage(context.Background(), SendParams{
		To: "+14155550123", MessagingServiceSID: "MG0123456789abcdef0123456789abcdef", Body: "hi",
	})
	if err != nil {
		t.Fatal(err)
	}
	// Numbers as JSON numbers decode as well as Twilio's strings.
	if want := (Message{SID: "SM1", Status: "accepted", NumSegments: 1, ErrorCode: 30007, ErrorMessage: "filtered"}); m != want {
		t.Errorf("message = %+v, want %+v", m, want)
	}
}

func TestSendMessageErrors(t *testing.T) {
	p := SendParams{To: "+14155550123", From: "+14155550100", Body: "hello"}
	form := url.Values{"To": {"+14155550123"}, "From": {"+14155550100"}, "Body": {"hello"}}
	tests := []struct {
		name      string
		status    int
		body      string
		want      APIError
		permanent bool
		unsub     bool
	}{
		{"unsubscribed", 400, twilioError(21610, "Attempt to send to unsubscribed recipient", 400),
			APIError{400, 21610, "Attempt to send to unsubscribed recipient", "https://www.twilio.com/docs/errors/21610"}, true, true},
		{"invalid To", 400, twilioError(21211, "The 'To' number +1415555012 is not a valid phone number.", 400),
			APIError{400, 21211, "The 'To' number +1415555012 is not a valid phone number.", "https://www.twilio.com/docs/errors/21211"}, true, false},
		{"auth", 401, twilioError(20003, "Authenticate", 401),
			APIError{401, 20003, "Authenticate", "https://www.twilio.com/docs/errors/20003"}, true, false},
		{"too many requests", 429, twilioError(20429, "Too Many Requests", 429),
			APIError{429, 20429, "Too Many Requests", "https://www.twilio.com/docs/errors/20429"}, false, false},
		{"server error", 500, twilioError(20500, "An internal server error has occurred", 500),
			APIError{500, 20500, "An internal server error has occurred", "https://www.twilio.com/docs/errors/20500"}, false, false},
		{"proxy HTML", 502, "<html><body>Bad Gateway</body></html>",
			APIError{Status: 502, Message: "<html><body>Bad Gateway</body></html>"}, false, false},
		{"empty 503", 503, "", APIError{Status: 503, Message: "Service Unavailable"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeAPI(t, form, tt.status, tt.body)
			_, err := client(srv).SendMessage(context.Background(), p)
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want an *APIError", err)
			}
			if *ae != tt.want {
				t.Errorf("APIError = %+v, want %+v", *ae, tt.want)
			}
			if got := switchboard.IsPermanent(err); got != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v (%v)", got, tt.permanent, err)
			}
			if got := IsUnsubscribed(err); got != tt.unsub {
				t.Errorf("IsUnsubscribed = %v, want %v", got, tt.unsub)
			}
			if !strings.Contains(err.Error(), "twilio: send message") {
				t.Errorf("error lacks context: %v", err)
			}
		})
	}
}

func TestSendMessageUnreadableSuccessIsPermanent(t *testing.T) {
	for _, body := range []string{`not json`, `{"status":"queued"}`} {
		srv := fakeAPI(t, url.Values{"To": {"+1"}, "From": {"+2"}, "Body": {"x"}}, 201, body)
		_, err := client(srv).SendMessage(context.Background(), SendParams{To: "+1", From: "+2", Body: "x"})
		if err == nil || !switchboard.IsPermanent(err) {
			t.Errorf("body %q: err = %v, want a permanent error (a retry could send twice)", body, err)
		}
	}
}

func TestSendMessageNetworkErrorRetryable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	base := srv.URL
	srv.Close() // connection refused from now on
	c := &Client{BaseURL: base, AccountSID: testSID, AuthToken: testToken}
	_, err := c.SendMessage(context.Background(), SendParams{To: "+1", From: "+2", Body: "x"})
	if err == nil || switchboard.IsPermanent(err) {
		t.Fatalf("err = %v, want a retryable error", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.SendMessage(ctx, SendParams{To: "+1", From: "+2", Body: "x"})
	if !errors.Is(err, context.Canceled) || switchboard.IsPermanent(err) {
		t.Fatalf("err = %v, want context.Canceled, retryable", err)
	}
}

func TestSendMessageInvalidParams(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls++ }))
	defer srv.Close()
	c := client(srv)
	tests := map[string]SendParams{
		"no To":          {From: "+2", Body: "x"},
		"no sender":      {To: "+1", Body: "x"},
		"no content":     {To: "+1", From: "+2"},
		"too long":       {To: "+1", From: "+2", Body: strings.Repeat("a", MaxBodyChars+1)},
		"bad UTF-8":      {To: "+1", From: "+2", Body: "a\xffb"},
		"too much media": {To: "+1", From: "+2", MediaURLs: make([]string, MaxMediaURLs+1)},
	}
	for name, p := range tests {
		_, err := c.SendMessage(context.Background(), p)
		if switchboard.ErrorCode(err) != switchboard.EINVALID || !switchboard.IsPermanent(err) {
			t.Errorf("%s: err = %v, want permanent EINVALID", name, err)
		}
	}
	unconfigured := &Client{BaseURL: srv.URL}
	if _, err := unconfigured.SendMessage(context.Background(), SendParams{To: "+1", From: "+2", Body: "x"}); !switchboard.IsPermanent(err) {
		t.Errorf("unconfigured client: err = %v, want permanent", err)
	}
	if calls != 0 {
		t.Errorf("%d requests sent for invalid params", calls)
	}
	// Exactly 1600 characters (multi-byte) is allowed.
	ok := SendParams{To: "+1", From: "+2", Body: strings.Repeat("é", MaxBodyChars)}
	if err := ok.validate(); err != nil {
		t.Errorf("1600 characters refused: %v", err)
	}
}

func TestFetchMedia(t *testing.T) {
	jpeg := bytes.Repeat([]byte{0xff, 0xd8, 0x42}, 100)
	var mux http.ServeMux
	mux.HandleFunc("/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			t.Errorf("method = %s", r.Method)
		}
		if u, p, ok := r.BasicAuth(); !ok || u != testSID || p != testToken {
			w.WriteHeader(401)
			io.WriteString(w, twilioError(20003, "Authenticate", 401))
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		w.Write(jpeg)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		// No Content-Length: the limit must hold while reading.
		w.Header().Set("Content-Type", "video/mp4")
		for range 10 {
			w.Write(make([]byte, 100))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/untyped", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil // suppress sniffing
		w.Write([]byte("x"))
	})
	mux.HandleFunc("/gone", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(404)
		io.WriteString(w, twilioError(20404, "The requested resource was not found", 404))
	})
	mux.HandleFunc("/busy", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	srv := httptest.NewServer(&mux)
	defer srv.Close()
	c := client(srv)
	ctx := context.Background()

	body, ct, err := c.FetchMedia(ctx, srv.URL+"/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", 1000)
	if err != nil || ct != "image/jpeg" || !bytes.Equal(body, jpeg) {
		t.Fatalf("FetchMedia = %d bytes, %q, %v", len(body), ct, err)
	}
	if body, _, err := c.FetchMedia(ctx, srv.URL+"/redirect", 300); err != nil || len(body) != 300 {
		t.Errorf("redirect, exact limit: %d bytes, %v", len(body), err)
	}
	_, _, err = c.FetchMedia(ctx, srv.URL+"/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", 299)
	if switchboard.ErrorCode(err) != switchboard.ETOOLARGE || !switchboard.IsPermanent(err) {
		t.Errorf("over the limit by Content-Length: err = %v, want permanent ETOOLARGE", err)
	}
	_, _, err = c.FetchMedia(ctx, srv.URL+"/chunked", 999)
	if switchboard.ErrorCode(err) != switchboard.ETOOLARGE || !strings.Contains(err.Error(), "999 bytes") {
		t.Errorf("over the limit while streaming: err = %v", err)
	}
	if body, ct, err := c.FetchMedia(ctx, srv.URL+"/chunked", 1000); err != nil || len(body) != 1000 || ct != "video/mp4" {
		t.Errorf("streamed at the limit: %d bytes, %q, %v", len(body), ct, err)
	}
	if _, ct, err := c.FetchMedia(ctx, srv.URL+"/untyped", 0); err != nil || ct != "application/octet-stream" {
		t.Errorf("untyped: %q, %v", ct, err)
	}
	_, _, err = c.FetchMedia(ctx, srv.URL+"/gone", 0)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Code != 20404 || !switchboard.IsPermanent(err) {
		t.Errorf("404: err = %v", err)
	}
	_, _, err = c.FetchMedia(ctx, srv.URL+"/busy", 0)
	if !errors.As(err, &ae) || ae.Status != 503 || switchboard.IsPermanent(err) {
		t.Errorf("503: err = %v, want retryable APIError", err)
	}
	for _, bad := range []string{"", "ftp://x/y", "/relative", "https://", "::"} {
		if _, _, err := c.FetchMedia(ctx, bad, 0); switchboard.ErrorCode(err) != switchboard.EINVALID {
			t.Errorf("FetchMedia(%q): err = %v, want EINVALID", bad, err)
		}
	}
}

// TestFetchMediaStaysWithTwilio: media is fetched from the API (here the
// configured stand-in) and Twilio's media hosts only. Another host, an
// internal address or a redirect to one is refused before any request
// reaches it, permanently (retrying cannot help), so the account's
// credentials and the server's network stay out of reach.
func TestFetchMediaStaysWithTwilio(t *testing.T) {
	var otherHits atomic.Int32
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherHits.Add(1)
		w.Write([]byte("internal secret"))
	}))
	defer other.Close()
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/cdn", http.StatusTemporaryRedirect)
	}))
	defer api.Close()
	c := &Client{BaseURL: api.URL, AccountSID: testSID, AuthToken: testToken, HTTP: api.Client()}
	ctx := context.Background()
	for _, u := range []string{
		other.URL + "/direct",                      // another host
		"http://169.254.169.254/latest/meta-data/", // cloud metadata
		"https://10.0.0.1/2010-04-01/Accounts/AC1/Recordings/RE1",
		api.URL + "/media", // the API redirecting to another host
	} {
		_, _, err := c.FetchMedia(ctx, u, 0)
		if !fetch.IsRefusal(err) || !switchboard.IsPermanent(err) || switchboard.ErrorCode(err) != switchboard.EFORBIDDEN {
			t.Errorf("FetchMedia(%s): err = %v, want a permanent refusal", u, err)
		}
	}
	if n := otherHits.Load(); n != 0 {
		t.Fatalf("the other host was reached %d times", n)
	}
	if err := c.CheckMediaURL(api.URL + "/2010-04-01/Accounts/AC1/Recordings/RE1"); err != nil {
		t.Errorf("CheckMediaURL(stand-in) = %v", err)
	}
	for u, ok := range map[string]bool{
		"https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1":                    true,
		"https://api.sydney.au1.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1": true,
		"http://api.twilio.com/x":   false,
		other.URL + "/x":            false,
		"https://mms.twiliocdn.com": true,
	} {
		if err := c.CheckMediaURL(u); (err == nil) != ok {
			t.Errorf("CheckMediaURL(%s) = %v", u, err)
		}
	}
	// Without a stand-in configured, only Twilio's own hosts are allowed.
	prod := &Client{AccountSID: testSID, AuthToken: testToken}
	if err := prod.CheckMediaURL(api.URL + "/media"); !fetch.IsRefusal(err) {
		t.Errorf("production client: CheckMediaURL(local) = %v", err)
	}
}
