package metatest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

const testAppID = "1234567890123456"

// oauthFixture is a stand-in with OAuth and a User token got through the
// dialog, plain HTTP, raw requests.
type oauthFixture struct {
	s         *Server
	ts        *httptest.Server
	userToken string
}

var continueRE = regexp.MustCompile(`<a id="continue" href="([^"]+)">Continue</a>`)

func newOAuthFixture(t *testing.T, opts ...Option) *oauthFixture {
	t.Helper()
	f := &oauthFixture{s: New(secret, token, append([]Option{WithOAuth(testAppID), WithClock(fixedClock)}, opts...)...)}
	f.ts = httptest.NewServer(f.s.Handler())
	t.Cleanup(func() {
		f.ts.Close()
		f.s.Close()
	})
	// No version: the stand-in answers without one too.
	redirect := "http://localhost:1/cb?x=1"
	q := url.Values{"client_id": {testAppID}, "redirect_uri": {redirect}, "scope": {"pages_show_list pages_messaging"}, "state": {"s"}}
	body := f.get(t, "/dialog/oauth?"+q.Encode(), "", http.StatusOK)
	m := continueRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no Continue link:\n%s", body)
	}
	if got := f.s.Scopes(); strings.Join(got, ",") != "pages_show_list,pages_messaging" {
		t.Errorf("scopes = %q", got)
	}
	nf := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := nf.Get(f.ts.URL + "/dialog/" + strings.ReplaceAll(m[1], "&amp;", "&"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, redirect+"&code=") || !strings.HasSuffix(loc, "&state=s#_=_") {
		t.Fatalf("continue: HTTP %d Location %q", resp.StatusCode, loc)
	}
	u, _ := url.Parse(loc)
	q = url.Values{"client_id": {testAppID}, "client_secret": {secret}, "redirect_uri": {redirect}, "code": {u.Query().Get("code")}}
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.Unmarshal([]byte(f.get(t, "/v25.0/oauth/access_token?"+q.Encode(), "", http.StatusOK)), &tok); err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == "" || tok.TokenType != "bearer" || tok.ExpiresIn != 3600 {
		t.Fatalf("token reply = %+v", tok)
	}
	f.userToken = tok.AccessToken
	return f
}

func (f *oauthFixture) do(t *testing.T, method, path, bearer string, want int) string {
	t.Helper()
	req, err := http.NewRequest(method, f.ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: HTTP %d, want %d\n%s", method, path, resp.StatusCode, want, b)
	}
	return string(b)
}

func (f *oauthFixture) get(t *testing.T, path, bearer string, want int) string {
	t.Helper()
	return f.do(t, http.MethodGet, path, bearer, want)
}

func TestOAuthAccountsFields(t *testing.T) {
	f := newOAuthFixture(t)
	// Without fields: Meta's defaults, and the default Page is the
	// Server's page.
	body := f.get(t, "/v25.0/me/accounts", f.userToken, http.StatusOK)
	var reply struct {
		Data []map[string]any `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &reply); err != nil {
		t.Fatal(err)
	}
	if len(reply.Data) != 1 || reply.Data[0]["id"] != DefaultPageID || reply.Data[0]["access_token"] != f.s.IssuedPageToken(DefaultPageID) ||
		reply.Data[0]["instagram_business_account"] != nil {
		t.Errorf("accounts = %s", body)
	}
	// The same User token gets the same Page token.
	pageToken := f.s.IssuedPageToken(DefaultPageID)
	body = f.get(t, "/v25.0/me/accounts?fields=id,instagram_business_account", f.userToken, http.StatusOK)
	if want := `{"data":[{"id":"` + DefaultPageID + `","instagram_business_account":{"id":"` + DefaultInstagramAccountID + `"}}]`; !strings.HasPrefix(body, want) {
		t.Errorf("accounts = %s, want %s…", body, want)
	}
	if f.s.IssuedPageToken(DefaultPageID) != pageToken {
		t.Error("the Page token changed")
	}
	f.get(t, "/v25.0/me/accounts?fields=id,bogus", f.userToken, http.StatusBadRequest)
	f.get(t, "/v25.0/me/accounts?fields=instagram_business_account{id,bogus}", f.userToken, http.StatusBadRequest)
	// A Page token has no accounts; the master token is not a User token.
	f.get(t, "/v25.0/me/accounts", pageToken, http.StatusBadRequest)
	f.get(t, "/v25.0/me/accounts", token, http.StatusUnauthorized)
}

func TestOAuthPageTokenScope(t *testing.T) {
	f := newOAuthFixture(t)
	f.get(t, "/v25.0/me/accounts", f.userToken, http.StatusOK)
	pageToken := f.s.IssuedPageToken(DefaultPageID)
	// A Page token reaches its Page's routes only: not WhatsApp's, not
	// media, not another object.
	f.do(t, http.MethodPost, "/v25.0/"+DefaultPhoneNumberID+"/messages", pageToken, http.StatusUnauthorized)
	f.get(t, "/v25.0/123456", pageToken, http.StatusUnauthorized)
	f.do(t, http.MethodPost, "/v25.0/"+DefaultPageID+"/messages", f.userToken, http.StatusUnauthorized)
	// Its own Page's send route lets it in (and then wants a body).
	f.do(t, http.MethodPost, "/v25.0/"+DefaultPageID+"/messages", pageToken, http.StatusBadRequest)
	f.do(t, http.MethodPost, "/v25.0/"+DefaultInstagramAccountID+"/messages", pageToken, http.StatusBadRequest)
	// The master token still works.
	f.do(t, http.MethodPost, "/v25.0/"+DefaultPageID+"/messages", token, http.StatusBadRequest)
}

func TestOAuthSubscribedAppsAndDebug(t *testing.T) {
	f := newOAuthFixture(t)
	f.get(t, "/v25.0/me/accounts", f.userToken, http.StatusOK)
	pageToken := f.s.IssuedPageToken(DefaultPageID)
	path := "/v25.0/" + DefaultPageID + "/subscribed_apps"
	if got := f.get(t, path, pageToken, http.StatusOK); got != `{"data":[]}` {
		t.Errorf("before subscribing: %s", got)
	}
	f.do(t, http.MethodPost, path, pageToken, http.StatusBadRequest) // no subscribed_fields
	if got := f.do(t, http.MethodPost, path+"?subscribed_fields=messages,messages,standby", pageToken, http.StatusOK); got != `{"success":true}` {
		t.Errorf("subscribe: %s", got)
	}
	if got := f.s.Subscriptions(DefaultPageID); strings.Join(got, ",") != "messages,standby" {
		t.Errorf("subscriptions = %q", got)
	}
	want := `{"data":[{"id":"` + testAppID + `","name":"` + DefaultAppName + `","subscribed_fields":["messages","standby"]}]}`
	if got := f.get(t, path, pageToken, http.StatusOK); got != want {
		t.Errorf("subscribed apps = %s, want %s", got, want)
	}
	if got := f.get(t, "/v25.0/me/subscribed_apps", pageToken, http.StatusOK); got != want {
		t.Errorf("me/subscribed_apps = %s, want %s", got, want)
	}
	f.do(t, http.MethodDelete, path, pageToken, http.StatusOK)
	if got := f.s.Subscriptions(DefaultPageID); got != nil {
		t.Errorf("subscriptions after DELETE = %q", got)
	}
	f.get(t, "/v25.0/999/subscribed_apps", pageToken, http.StatusBadRequest)

	// debug_token wants the app token, in the query or as the bearer.
	appToken := testAppID + "|" + secret
	f.get(t, "/v25.0/debug_token?input_token="+url.QueryEscape(pageToken), "", http.StatusBadRequest)
	f.get(t, "/v25.0/debug_token?input_token="+url.QueryEscape(pageToken), f.userToken, http.StatusBadRequest)
	f.get(t, "/v25.0/debug_token", appToken, http.StatusBadRequest)
	body := f.get(t, "/v25.0/debug_token?input_token="+url.QueryEscape(pageToken)+"&access_token="+url.QueryEscape(appToken), "", http.StatusOK)
	var d struct {
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	if d.Data["is_valid"] != true || d.Data["type"] != "PAGE" || d.Data["profile_id"] != DefaultPageID || d.Data["expires_at"] != float64(fixedClock().Add(ShortLivedTokenLifetime).Unix()) {
		t.Errorf("debug_token = %s", body)
	}
	if body := f.get(t, "/v25.0/debug_token?input_token="+url.QueryEscape(appToken), appToken, http.StatusOK); !strings.Contains(body, `"type":"APP"`) {
		t.Errorf("debug app token = %s", body)
	}
}

func TestOAuthDefaults(t *testing.T) {
	// WithPageID after WithOAuth still names the default Page.
	s := New(secret, token, WithOAuth(testAppID), WithPageID("555"), WithInstagramAccountID("777"))
	defer s.Close()
	if p := s.oauth.pages; len(p) != 1 || p[0].ID != "555" || p[0].InstagramID != "777" {
		t.Errorf("default pages = %+v", p)
	}
	// An empty app id leaves OAuth off.
	off := New(secret, token, WithOAuth(""))
	defer off.Close()
	if off.oauth != nil {
		t.Error("WithOAuth(\"\") turned OAuth on")
	}
}
