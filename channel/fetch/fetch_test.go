package fetch_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/fetch"
)

// secretServer stands for an internal service: it counts the requests
// that reached it and answers with a secret.
type secretServer struct {
	*httptest.Server
	hits atomic.Int32
	auth atomic.Value // the last Authorization seen
}

const secret = "internal-secret-do-not-serve"

func newSecret(t *testing.T) *secretServer {
	s := &secretServer{}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.auth.Store(r.Header.Get("Authorization"))
		w.Write([]byte(secret))
	}))
	t.Cleanup(s.Close)
	return s
}

func wantRefusal(t *testing.T, err error, rule string) *fetch.Refusal {
	t.Helper()
	var r *fetch.Refusal
	if !errors.As(err, &r) || r.Rule != rule {
		t.Fatalf("err = %v, want a refusal by the %s rule", err, rule)
	}
	if !fetch.IsRefusal(err) || !strings.Contains(err.Error(), "refused by the "+rule+" rule") {
		t.Fatalf("err = %v does not say which rule refused", err)
	}
	if code := switchboard.ErrorCode(err); code != switchboard.EFORBIDDEN && (rule != fetch.RuleURL || code != switchboard.EINVALID) {
		t.Fatalf("err = %v has code %s", err, code)
	}
	return r
}

func TestCheck(t *testing.T) {
	f := fetch.New(fetch.Policy{Provider: "Twilio", Hosts: []string{"*.twilio.com", "media.example.net"},
		StandIns: []string{"http://127.0.0.1:5000/base"}}, nil)
	ok := []string{
		"https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
		"https://API.Twilio.COM./x", "https://api.dublin.ie1.twilio.com/x", "https://api.twilio.com:443/x",
		"https://media.example.net/x?sig=1",
		"http://127.0.0.1:5000/other/path", // the stand-in's origin, any path
	}
	for _, u := range ok {
		if err := f.Check(u); err != nil {
			t.Errorf("Check(%q) = %v", u, err)
		}
	}
	refused := map[string]string{
		"":                                         fetch.RuleURL,
		"/relative":                                fetch.RuleURL,
		"ftp://api.twilio.com/x":                   fetch.RuleURL,
		"file:///etc/passwd":                       fetch.RuleURL,
		"https://":                                 fetch.RuleURL,
		"mailto:x@api.twilio.com":                  fetch.RuleURL,
		"http://api.twilio.com/x":                  fetch.RuleScheme,
		"http://127.0.0.1:5001/x":                  fetch.RuleHost,
		"https://user:pw@api.twilio.com/x":         fetch.RuleCredentials,
		"http://user@127.0.0.1:5000/x":             fetch.RuleCredentials,
		"https://twilio.com/x":                     fetch.RuleHost,
		"https://evil-twilio.com/x":                fetch.RuleHost,
		"https://api.twilio.com.evil.example/x":    fetch.RuleHost,
		"https://x.media.example.net/x":            fetch.RuleHost,
		"https://127.0.0.1:5000/x":                 fetch.RuleHost, // the stand-in is http
		"https://169.254.169.254/latest/meta-data": fetch.RuleHost,
		"https://[::1]/x":                          fetch.RuleHost,
		"https://api.twilio.com:8443/x":            fetch.RulePort,
	}
	for u, rule := range refused {
		var r *fetch.Refusal
		if err := f.Check(u); !errors.As(err, &r) || r.Rule != rule {
			t.Errorf("Check(%q) = %v, want the %s rule", u, err, rule)
		}
	}
	err := f.Check("https://10.0.0.1/x")
	if !strings.Contains(err.Error(), "10.0.0.1 is not one of Twilio's media hosts (*.twilio.com, media.example.net)") {
		t.Errorf("message: %v", err)
	}
}

// TestStandIn: the configured stand-in is fetched like the provider,
// headers and all, whatever its address.
func TestStandIn(t *testing.T) {
	var auth atomic.Value
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "image/png")
		w.Write([]byte("png bytes"))
	}))
	defer ts.Close()
	f := fetch.New(fetch.Policy{Provider: "Twilio", Hosts: []string{"*.twilio.com"}, StandIns: []string{ts.URL}}, ts.Client())
	resp, err := f.Get(context.Background(), ts.URL+"/media/1", http.Header{"Authorization": {"Basic abc"}}, 100)
	if err != nil || !resp.OK() || string(resp.Body) != "png bytes" || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("Get = %+v, %v", resp, err)
	}
	if auth.Load() != "Basic abc" {
		t.Errorf("Authorization = %v", auth.Load())
	}
}

// TestInternalRefused: an address nobody configured is never contacted,
// whether named directly, by a name that resolves to it, or by a redirect
// from an allowed origin.
func TestInternalRefused(t *testing.T) {
	internal := newSecret(t)
	var standInHits atomic.Int32
	var redirectTo atomic.Value
	standIn := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		standInHits.Add(1)
		http.Redirect(w, r, redirectTo.Load().(string), http.StatusFound)
	}))
	defer standIn.Close()
	// localhost is on the list here, so only the address rule stands
	// between it and 127.0.0.1.
	f := fetch.New(fetch.Policy{Provider: "Meta", Hosts: []string{"localhost", "*.fbcdn.net"}, StandIns: []string{standIn.URL}}, standIn.Client())
	ctx := context.Background()

	_, err := f.Get(ctx, internal.URL+"/secret", nil, 1<<20)
	wantRefusal(t, err, fetch.RuleHost)

	_, err = f.Get(ctx, "https://localhost/secret", nil, 1<<20)
	r := wantRefusal(t, err, fetch.RuleAddress)
	if !strings.Contains(r.Reason, "loopback") {
		t.Errorf("reason = %q", r.Reason)
	}

	redirectTo.Store(internal.URL + "/secret")
	_, err = f.Get(ctx, standIn.URL+"/media", nil, 1<<20)
	wantRefusal(t, err, fetch.RuleHost)

	redirectTo.Store("https://localhost/secret")
	_, err = f.Get(ctx, standIn.URL+"/media", nil, 1<<20)
	wantRefusal(t, err, fetch.RuleAddress)

	redirectTo.Store("http://169.254.169.254/latest/meta-data/")
	_, err = f.Get(ctx, standIn.URL+"/media", nil, 1<<20)
	wantRefusal(t, err, fetch.RuleHost)

	redirectTo.Store("http://localhost/secret") // listed, but not https
	_, err = f.Get(ctx, standIn.URL+"/media", nil, 1<<20)
	wantRefusal(t, err, fetch.RuleScheme)

	// The restricted client refuses the same way for callers that use it
	// directly.
	req, _ := http.NewRequest(http.MethodGet, internal.URL+"/secret", nil)
	_, err = f.Client().Do(req)
	wantRefusal(t, err, fetch.RuleHost)

	if n := internal.hits.Load(); n != 0 {
		t.Fatalf("the internal server was reached %d times", n)
	}
	if n := standInHits.Load(); n != 4 {
		t.Fatalf("stand-in hit %d times, want 4", n)
	}
}

// TestRedirects: at most five are followed, and credentials stay with the
// origin they were given for.
func TestRedirects(t *testing.T) {
	other := newSecret(t) // a second stand-in, which must not see the credentials
	var api *httptest.Server
	api = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n := r.URL.Query().Get("n"); {
		case r.URL.Path == "/cdn":
			http.Redirect(w, r, other.URL+"/file", http.StatusTemporaryRedirect)
		case n == "":
			w.Write([]byte("auth=" + r.Header.Get("Authorization")))
		default:
			left := strings.Repeat("x", len(n)-1)
			if left == "" {
				http.Redirect(w, r, "/final", http.StatusFound)
				return
			}
			http.Redirect(w, r, "/?n="+left, http.StatusFound)
		}
	}))
	defer api.Close()
	f := fetch.New(fetch.Policy{Provider: "Twilio", StandIns: []string{api.URL, other.URL}}, api.Client())
	ctx := context.Background()
	auth := http.Header{"Authorization": {"Basic c2VjcmV0"}}

	// Five redirects (n of length 5 redirects five times) are followed,
	// and the same origin keeps the credentials.
	resp, err := f.Get(ctx, api.URL+"/?n=xxxxx", auth, 100)
	if err != nil || string(resp.Body) != "auth=Basic c2VjcmV0" {
		t.Fatalf("five redirects: %+v, %v", resp, err)
	}
	_, err = f.Get(ctx, api.URL+"/?n=xxxxxx", auth, 100)
	wantRefusal(t, err, fetch.RuleRedirects)

	// Another origin (here the same host on another port) gets none.
	resp, err = f.Get(ctx, api.URL+"/cdn", auth, 100)
	if err != nil || string(resp.Body) != secret {
		t.Fatalf("cross-origin redirect: %+v, %v", resp, err)
	}
	if got := other.auth.Load(); got != "" {
		t.Fatalf("credentials followed the redirect: %q", got)
	}
}

func TestLimits(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/sized":
			w.Write(make([]byte, 1000))
		case "/chunked":
			for range 10 {
				w.Write(make([]byte, 100))
				w.(http.Flusher).Flush()
			}
		case "/gone":
			w.WriteHeader(http.StatusNotFound)
			w.Write(bytes.Repeat([]byte("e"), 100<<10))
		case "/slow":
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}
	}))
	defer ts.Close()
	f := fetch.New(fetch.Policy{StandIns: []string{ts.URL}, Timeout: 200 * time.Millisecond}, ts.Client())
	ctx := context.Background()
	for _, path := range []string{"/sized", "/chunked"} {
		if resp, err := f.Get(ctx, ts.URL+path, nil, 1000); err != nil || len(resp.Body) != 1000 {
			t.Errorf("%s at the limit: %v", path, err)
		}
		_, err := f.Get(ctx, ts.URL+path, nil, 999)
		if switchboard.ErrorCode(err) != switchboard.ETOOLARGE || !strings.Contains(err.Error(), "larger than 999 bytes") {
			t.Errorf("%s over the limit: %v", path, err)
		}
	}
	resp, err := f.Get(ctx, ts.URL+"/gone", nil, 10)
	if err != nil || resp.OK() || resp.StatusCode != 404 || len(resp.Body) != 64<<10 {
		t.Errorf("error answer: %d, %d bytes, %v", resp.StatusCode, len(resp.Body), err)
	}
	start := time.Now()
	if _, err := f.Get(ctx, ts.URL+"/slow", nil, 10); err == nil || fetch.IsRefusal(err) || time.Since(start) > 3*time.Second {
		t.Errorf("slow answer: %v after %s, want a timeout", err, time.Since(start))
	}
	if _, err := f.Get(ctx, ts.URL+"/sized", nil, 0); switchboard.ErrorCode(err) != switchboard.EINVALID {
		t.Errorf("no limit: %v", err)
	}
}

// TestNoProxy: a proxy from the configuration would pick the address
// itself, so it is never used.
func TestNoProxy(t *testing.T) {
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { proxied.Add(1) }))
	defer proxy.Close()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("direct")) }))
	defer ts.Close()
	pu, _ := url.Parse(proxy.URL)
	base := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	f := fetch.New(fetch.Policy{StandIns: []string{ts.URL}}, base)
	resp, err := f.Get(context.Background(), ts.URL+"/x", nil, 100)
	if err != nil || string(resp.Body) != "direct" || proxied.Load() != 0 {
		t.Fatalf("Get = %+v, %v; proxy hit %d times", resp, err, proxied.Load())
	}
}

type customTransport struct{}

func (customTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("custom transport used")
}

func TestUnrestrictableTransport(t *testing.T) {
	f := fetch.New(fetch.Policy{StandIns: []string{"http://127.0.0.1:1"}}, &http.Client{Transport: customTransport{}})
	_, err := f.Get(context.Background(), "http://127.0.0.1:1/x", nil, 10)
	if err == nil || !strings.Contains(err.Error(), "only an *http.Transport") {
		t.Fatalf("err = %v", err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:1/x", nil)
	if _, err := f.Client().Do(req); err == nil || !strings.Contains(err.Error(), "only an *http.Transport") {
		t.Fatalf("Client: err = %v", err)
	}
}
