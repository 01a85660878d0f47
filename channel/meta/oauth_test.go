package meta_test

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/messenger"
	"github.com/switchboard-inbox/switchboard/channel/meta"
	"github.com/switchboard-inbox/switchboard/channel/meta/metatest"
)

const (
	oauthAppID    = "1234567890123456"
	oauthSecret   = "0123456789abcdef0123456789abcdef"
	oauthToken    = "EAAGstand-in-master-token"
	oauthRedirect = "https://switchboard.example/connect/meta/callback"
	secondPageID  = "109876543210987"
)

// testClock is a clock tests move by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Unix(1749416383, 0).UTC()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type oauthEnv struct {
	graph *metatest.Server
	ts    *httptest.Server
	clock *testClock
	o     *meta.OAuth
	// noFollow is the TLS client that returns redirects instead of
	// following them, as a test reads the dialog's answer.
	noFollow *http.Client
}

func newOAuthEnv(t *testing.T, opts ...metatest.Option) *oauthEnv {
	t.Helper()
	e := &oauthEnv{clock: newTestClock()}
	pages := []metatest.StandInPage{
		{ID: metatest.DefaultPageID, Name: "Acme Support", InstagramID: metatest.DefaultInstagramAccountID, InstagramUsername: "acme.support"},
		{ID: secondPageID, Name: "Acme Outlet"},
	}
	opts = append([]metatest.Option{metatest.WithOAuth(oauthAppID, pages...), metatest.WithClock(e.clock.Now)}, opts...)
	e.graph = metatest.New(oauthSecret, oauthToken, opts...)
	e.ts = httptest.NewTLSServer(e.graph.Handler())
	e.graph.SetBaseURL(e.ts.URL)
	t.Cleanup(func() {
		e.ts.Close()
		e.graph.Close()
	})
	e.o = &meta.OAuth{
		AppID: oauthAppID, AppSecret: oauthSecret, RedirectURL: oauthRedirect,
		DialogURL: e.ts.URL, GraphURL: e.ts.URL + "/v25.0", HTTP: e.ts.Client(), Now: e.clock.Now,
	}
	nf := *e.ts.Client()
	nf.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	e.noFollow = &nf
	return e
}

var linkRE = regexp.MustCompile(`<a id="(continue|cancel)" href="([^"]+)">(Continue|Cancel)</a>`)

// dialog opens the Login dialog at u and returns the absolute URL of its
// link named text ("Continue" or "Cancel").
func (e *oauthEnv) dialog(t *testing.T, u, text string) string {
	t.Helper()
	resp, err := e.noFollow.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("dialog: HTTP %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	for _, m := range linkRE.FindAllStringSubmatch(string(body), -1) {
		if m[3] == text {
			ref, err := url.Parse(html.UnescapeString(m[2]))
			if err != nil {
				t.Fatal(err)
			}
			return resp.Request.URL.ResolveReference(ref).String()
		}
	}
	t.Fatalf("dialog has no %q link:\n%s", text, body)
	return ""
}

// follow GETs link and returns the Location of its redirect.
func (e *oauthEnv) follow(t *testing.T, link string) *url.URL {
	t.Helper()
	resp, err := e.noFollow.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET %s: HTTP %d, want 302\n%s", link, resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// code runs the dialog to its Continue link and returns the code sent to
// the redirect URL, checking state comes back unchanged.
func (e *oauthEnv) code(t *testing.T, state string) string {
	t.Helper()
	loc := e.follow(t, e.dialog(t, e.o.AuthCodeURL(state, nil), "Continue"))
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != oauthRedirect {
		t.Fatalf("redirected to %s, want %s", loc, oauthRedirect)
	}
	q := loc.Query()
	if q.Get("state") != state {
		t.Fatalf("state = %q, want %q", q.Get("state"), state)
	}
	if q.Get("code") == "" {
		t.Fatalf("no code in %s", loc)
	}
	return q.Get("code")
}

// apiError returns the *meta.APIError in err, failing the test when there
// is none.
func apiError(t *testing.T, err error) *meta.APIError {
	t.Helper()
	e, ok := meta.AsAPIError(err)
	if !ok {
		t.Fatalf("error %v (%T) is not a Graph API error", err, err)
	}
	return e
}

// noSecrets fails the test when err's message holds any of secrets.
func noSecrets(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, s := range secrets {
		if s != "" && (strings.Contains(msg, s) || strings.Contains(msg, url.QueryEscape(s))) {
			t.Errorf("error %q contains the secret %q", msg, s)
		}
	}
}

func TestAuthCodeURL(t *testing.T) {
	o := &meta.OAuth{AppID: oauthAppID, AppSecret: oauthSecret, RedirectURL: oauthRedirect}
	got := o.AuthCodeURL("s t&a=te", nil)
	want := "https://www.facebook.com/v25.0/dialog/oauth?client_id=" + oauthAppID +
		"&redirect_uri=" + url.QueryEscape(oauthRedirect) + "&response_type=code" +
		"&scope=pages_show_list%2Cpages_messaging%2Cpages_manage_metadata%2Cinstagram_basic%2Cinstagram_manage_messages%2Cbusiness_management" +
		"&state=s+t%26a%3Dte"
	if got != want {
		t.Errorf("AuthCodeURL =\n%s\nwant\n%s", got, want)
	}

	o.GraphURL, o.DialogURL = "http://127.0.0.1:9", "http://127.0.0.1:9/"
	if got, want := o.AuthCodeURL("x", []string{"pages_show_list"}), "http://127.0.0.1:9/dialog/oauth?client_id="+oauthAppID+"&redirect_uri="+url.QueryEscape(oauthRedirect)+"&response_type=code&scope=pages_show_list&state=x"; got != want {
		t.Errorf("AuthCodeURL without a version = %s, want %s", got, want)
	}
	o.GraphURL = "https://graph.facebook.com/v19.0/"
	if got := o.AuthCodeURL("x", []string{}); !strings.HasPrefix(got, "http://127.0.0.1:9/v19.0/dialog/oauth?") || strings.Contains(got, "scope=") {
		t.Errorf("AuthCodeURL with v19.0 and no scopes = %s", got)
	}
	o.RedirectURL = ""
	if got := o.AuthCodeURL("x", nil); got != "" {
		t.Errorf("AuthCodeURL without a redirect URL = %q, want \"\"", got)
	}
}

func TestOAuthFlow(t *testing.T) {
	e := newOAuthEnv(t)
	ctx := context.Background()
	start := e.clock.Now()

	code := e.code(t, "st@te/+&=ü")
	if got := e.graph.Scopes(); !slices.Equal(got, meta.MessagingScopes) {
		t.Errorf("dialog scopes = %q, want %q", got, meta.MessagingScopes)
	}

	short, err := e.o.Exchange(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	if short.AccessToken == "" || !short.ExpiresAt.Equal(start.Add(metatest.ShortLivedTokenLifetime)) {
		t.Fatalf("short-lived token = %+v, want one expiring at %v", short, start.Add(metatest.ShortLivedTokenLifetime))
	}
	info, err := e.o.DebugToken(ctx, short.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Valid || info.Type != "USER" || info.AppID != oauthAppID || info.UserID != metatest.DefaultUserID ||
		!info.ExpiresAt.Equal(short.ExpiresAt) || !slices.Equal(info.Scopes, meta.MessagingScopes) || info.Error != "" {
		t.Errorf("debug short-lived token = %+v", info)
	}

	e.clock.Add(time.Minute)
	long, err := e.o.LongLived(ctx, short.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if long.AccessToken == "" || long.AccessToken == short.AccessToken || !long.ExpiresAt.Equal(e.clock.Now().Add(60*24*time.Hour)) {
		t.Fatalf("long-lived token = %+v, want a new one expiring in 60 days", long)
	}

	pages, err := e.o.Pages(ctx, long.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != 2 {
		t.Fatalf("pages = %+v, want 2", pages)
	}
	p, p2 := pages[0], pages[1]
	if p.ID != metatest.DefaultPageID || p.Name != "Acme Support" || p.Instagram == nil ||
		*p.Instagram != (meta.InstagramAccount{ID: metatest.DefaultInstagramAccountID, Username: "acme.support"}) ||
		!slices.Contains(p.Tasks, "MESSAGING") {
		t.Errorf("page 0 = %+v (instagram %+v)", p, p.Instagram)
	}
	if p2.ID != secondPageID || p2.Name != "Acme Outlet" || p2.Instagram != nil {
		t.Errorf("page 1 = %+v, want %s without Instagram", p2, secondPageID)
	}
	if p.AccessToken == "" || p.AccessToken == p2.AccessToken || p.AccessToken == long.AccessToken || p.AccessToken != e.graph.IssuedPageToken(p.ID) {
		t.Errorf("page tokens %q, %q are not distinct Page tokens (issued %q)", p.AccessToken, p2.AccessToken, e.graph.IssuedPageToken(p.ID))
	}

	if err := e.o.Subscribe(ctx, p.ID, p.AccessToken, nil); err != nil {
		t.Fatal(err)
	}
	if got := e.graph.Subscriptions(p.ID); !slices.Equal(got, meta.MessagingFields) {
		t.Errorf("subscribed fields = %q, want %q", got, meta.MessagingFields)
	}
	if got, err := e.o.SubscribedFields(ctx, p.ID, p.AccessToken); err != nil || !slices.Equal(got, meta.MessagingFields) {
		t.Errorf("SubscribedFields = %q, %v; want %q", got, err, meta.MessagingFields)
	}
	if got := e.graph.Subscriptions(p2.ID); got != nil {
		t.Errorf("page 1 subscribed to %q, want nothing", got)
	}

	pinfo, err := e.o.DebugToken(ctx, p.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if !pinfo.Valid || pinfo.Type != "PAGE" || pinfo.ProfileID != p.ID || !pinfo.ExpiresAt.IsZero() ||
		!pinfo.DataAccessExpiresAt.Equal(start.Add(metatest.DataAccessLifetime)) {
		t.Errorf("debug page token = %+v, want a valid PAGE token for %s that never expires", pinfo, p.ID)
	}

	// A Messenger reply with the stored Page token goes out; a made-up
	// token, or the other Page's, does not.
	send := func(token string) error {
		c := &messenger.Client{BaseURL: e.ts.URL + "/v25.0", PageID: p.ID, Token: token, HTTP: e.ts.Client()}
		_, err := c.Send(ctx, "1254459154682919", "Thanks, on it!", "")
		return err
	}
	if err := send(p.AccessToken); err != nil {
		t.Fatalf("send with the Page token: %v", err)
	}
	if sends := e.graph.MessengerSends(); len(sends) != 1 || sends[0].Text != "Thanks, on it!" {
		t.Errorf("sends = %+v", sends)
	}
	for _, tok := range []string{"EAArandom" + strconv.Itoa(int(start.Unix())), p2.AccessToken, long.AccessToken} {
		if err := send(tok); err == nil || apiError(t, err).Code != 190 {
			t.Errorf("send with token %q: %v, want code 190", tok, err)
		}
	}

	// Revoking the User token invalidates the Page tokens got with it.
	if !e.graph.RevokeToken(long.AccessToken) {
		t.Fatal("RevokeToken did not know the token")
	}
	for _, tok := range []string{long.AccessToken, p.AccessToken} {
		info, err := e.o.DebugToken(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		if info.Valid || info.ErrorCode != 190 || info.ErrorSubcode != 460 || info.Error == "" {
			t.Errorf("debug revoked token = %+v, want invalid with 190/460", info)
		}
	}
	if err := send(p.AccessToken); err == nil || apiError(t, err).Subcode != 460 {
		t.Errorf("send with a revoked Page token: %v, want subcode 460", err)
	}
	// The short-lived token was not revoked.
	if info, err := e.o.DebugToken(ctx, short.AccessToken); err != nil || !info.Valid {
		t.Errorf("debug short-lived token after revoking the long-lived one = %+v, %v", info, err)
	}
}

func TestTokenExpiry(t *testing.T) {
	e := newOAuthEnv(t)
	ctx := context.Background()
	short, err := e.o.Exchange(ctx, e.code(t, "s"))
	if err != nil {
		t.Fatal(err)
	}
	pages, err := e.o.Pages(ctx, short.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	// A Page token got with a short-lived User token expires with it.
	info, err := e.o.DebugToken(ctx, pages[0].AccessToken)
	if err != nil || !info.Valid || !info.ExpiresAt.Equal(short.ExpiresAt) {
		t.Fatalf("debug page token = %+v, %v; want valid until %v", info, err, short.ExpiresAt)
	}
	e.clock.Add(metatest.ShortLivedTokenLifetime)
	for _, tok := range []string{short.AccessToken, pages[0].AccessToken} {
		info, err := e.o.DebugToken(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		if info.Valid || info.ErrorSubcode != 463 || !strings.Contains(info.Error, "Session has expired") {
			t.Errorf("debug expired token = %+v, want invalid with subcode 463", info)
		}
	}
	if _, err := e.o.LongLived(ctx, short.AccessToken); err == nil || apiError(t, err).Subcode != 463 {
		t.Errorf("LongLived with an expired token: %v, want subcode 463", err)
	}
	if _, err := e.o.Pages(ctx, short.AccessToken); err == nil || apiError(t, err).Code != 190 {
		t.Errorf("Pages with an expired token: %v, want code 190", err)
	}

	// ExpireTokens ends even the tokens that never expire.
	short2, err := e.o.Exchange(ctx, e.code(t, "s2"))
	if err != nil {
		t.Fatal(err)
	}
	long, err := e.o.LongLived(ctx, short2.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	pages, err = e.o.Pages(ctx, long.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := e.o.DebugToken(ctx, pages[0].AccessToken); err != nil || !info.Valid || !info.ExpiresAt.IsZero() {
		t.Fatalf("debug page token = %+v, %v; want valid, never expiring", info, err)
	}
	e.graph.ExpireTokens()
	if info, err := e.o.DebugToken(ctx, pages[0].AccessToken); err != nil || info.Valid || info.ErrorSubcode != 463 {
		t.Errorf("debug page token after ExpireTokens = %+v, %v; want invalid", info, err)
	}
}

func TestExchangeRefusals(t *testing.T) {
	ctx := context.Background()

	t.Run("code replay", func(t *testing.T) {
		e := newOAuthEnv(t)
		code := e.code(t, "s")
		if _, err := e.o.Exchange(ctx, code); err != nil {
			t.Fatal(err)
		}
		_, err := e.o.Exchange(ctx, code)
		if a := apiError(t, err); a.Code != 100 || a.Subcode != 36009 || !switchboard.IsPermanent(err) {
			t.Errorf("replayed code: %v, want code 100 / 36009, permanent", err)
		}
		noSecrets(t, err, code, oauthSecret)
	})

	t.Run("wrong redirect_uri", func(t *testing.T) {
		e := newOAuthEnv(t)
		code := e.code(t, "s")
		other := *e.o
		other.RedirectURL = oauthRedirect + "/other"
		_, err := other.Exchange(ctx, code)
		if a := apiError(t, err); a.Code != 100 || a.Subcode != 36008 {
			t.Errorf("other redirect_uri: %v, want code 100 / 36008", err)
		}
		noSecrets(t, err, code, oauthSecret)
		// The refusal did not use the code up.
		if _, err := e.o.Exchange(ctx, code); err != nil {
			t.Errorf("exchange with the right redirect_uri after a refusal: %v", err)
		}
	})

	t.Run("wrong secret", func(t *testing.T) {
		e := newOAuthEnv(t)
		code := e.code(t, "s")
		bad := *e.o
		bad.AppSecret = "fedcba9876543210fedcba9876543210"
		_, err := bad.Exchange(ctx, code)
		if a := apiError(t, err); a.Code != 1 || a.Type != "OAuthException" || a.Message != "Error validating client secret." {
			t.Errorf("wrong secret: %+v, want code 1 Error validating client secret.", a)
		}
		noSecrets(t, err, code, bad.AppSecret, oauthSecret)
		_, err = bad.DebugToken(ctx, "EAAsome-token-to-inspect")
		if a := apiError(t, err); a.Code != 190 {
			t.Errorf("debug_token with a wrong secret: %v, want code 190", err)
		}
		noSecrets(t, err, bad.AppSecret, "EAAsome-token-to-inspect")
	})

	t.Run("expired code", func(t *testing.T) {
		e := newOAuthEnv(t)
		code := e.code(t, "s")
		e.clock.Add(metatest.CodeLifetime + time.Second)
		_, err := e.o.Exchange(ctx, code)
		if a := apiError(t, err); a.Code != 100 || a.Subcode != 36007 {
			t.Errorf("expired code: %v, want code 100 / 36007", err)
		}
	})

	t.Run("unknown code and wrong app", func(t *testing.T) {
		e := newOAuthEnv(t)
		_, err := e.o.Exchange(ctx, "AQmade-up-code-1234")
		if a := apiError(t, err); a.Code != 100 || a.Message != "Invalid verification code format." {
			t.Errorf("made-up code: %v", err)
		}
		noSecrets(t, err, "AQmade-up-code-1234")
		other := *e.o
		other.AppID = "999"
		if _, err := other.Exchange(ctx, e.code(t, "s")); err == nil || apiError(t, err).Code != 101 {
			t.Errorf("another app id: %v, want code 101", err)
		}
		if _, err := e.o.Exchange(ctx, " "); switchboard.ErrorCode(err) != switchboard.EINVALID {
			t.Errorf("empty code: %v, want EINVALID", err)
		}
	})
}

func TestDialog(t *testing.T) {
	e := newOAuthEnv(t, metatest.WithRedirectURIs(oauthRedirect))

	// Cancel sends the person back with Meta's error and the state.
	loc := e.follow(t, e.dialog(t, e.o.AuthCodeURL("abc 123", []string{"pages_show_list"}), "Cancel"))
	q := loc.Query()
	if q.Get("error") != "access_denied" || q.Get("error_reason") != "user_denied" || q.Get("error_description") == "" ||
		q.Get("state") != "abc 123" || q.Has("code") {
		t.Errorf("cancel redirect = %s", loc)
	}
	if got := e.graph.Scopes(); !slices.Equal(got, []string{"pages_show_list"}) {
		t.Errorf("scopes = %q", got)
	}

	// Each consent link works once.
	link := e.dialog(t, e.o.AuthCodeURL("s", nil), "Continue")
	e.follow(t, link)
	resp, err := e.noFollow.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("second use of a Continue link: HTTP %d, want 400", resp.StatusCode)
	}

	// The dialog refuses another app, a redirect_uri not on the list and
	// another response_type.
	for name, o := range map[string]meta.OAuth{
		"client_id":     {AppID: "42", RedirectURL: oauthRedirect},
		"redirect_uri":  {AppID: oauthAppID, RedirectURL: "https://evil.example/callback"},
		"not absolute":  {AppID: oauthAppID, RedirectURL: "/callback"},
		"response_type": {AppID: oauthAppID, RedirectURL: oauthRedirect},
	} {
		o.DialogURL, o.GraphURL = e.ts.URL, e.ts.URL+"/v25.0"
		u := o.AuthCodeURL("s", nil)
		if name == "response_type" {
			u = strings.Replace(u, "response_type=code", "response_type=token", 1)
		}
		resp, err := e.noFollow.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(body), "Continue") {
			t.Errorf("%s: dialog answered HTTP %d\n%s", name, resp.StatusCode, body)
		}
	}
}

func TestPagesPaging(t *testing.T) {
	var pages []metatest.StandInPage
	for i := range 205 {
		pages = append(pages, metatest.StandInPage{ID: strconv.Itoa(100000 + i), Name: fmt.Sprintf("Page %d", i)})
	}
	pages[204].InstagramID, pages[204].InstagramUsername = "17841400000000204", "last.page"
	graph := metatest.New(oauthSecret, oauthToken, metatest.WithOAuth(oauthAppID, pages...))
	ts := httptest.NewTLSServer(graph.Handler())
	defer ts.Close()
	defer graph.Close()
	e := &oauthEnv{graph: graph, ts: ts, clock: newTestClock()}
	e.o = &meta.OAuth{AppID: oauthAppID, AppSecret: oauthSecret, RedirectURL: oauthRedirect, DialogURL: ts.URL, GraphURL: ts.URL + "/v25.0", HTTP: ts.Client()}
	nf := *ts.Client()
	nf.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	e.noFollow = &nf

	tok, err := e.o.Exchange(context.Background(), e.code(t, "s"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.o.Pages(context.Background(), tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(pages) {
		t.Fatalf("got %d pages, want %d", len(got), len(pages))
	}
	for i, p := range got {
		if p.ID != pages[i].ID || p.AccessToken == "" {
			t.Fatalf("page %d = %+v, want %s with a token", i, p, pages[i].ID)
		}
	}
	if last := got[204]; last.Instagram == nil || last.Instagram.Username != "last.page" {
		t.Errorf("last page = %+v", last)
	}
}

// graphStub serves fixed answers, recording the requests.
type graphStub struct {
	mu   sync.Mutex
	reqs []*http.Request
	h    func(w http.ResponseWriter, r *http.Request)
}

func (g *graphStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.reqs = append(g.reqs, r.Clone(context.Background()))
	g.mu.Unlock()
	g.h(w, r)
}

func (g *graphStub) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.reqs)
}

func TestPagesPagingBounds(t *testing.T) {
	var next string
	stub := &graphStub{h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"data":[{"id":"1","name":"P","access_token":"EAApage"}],"paging":{"next":%q}}`, next)
	}}
	ts := httptest.NewServer(stub)
	defer ts.Close()
	o := &meta.OAuth{AppID: oauthAppID, AppSecret: oauthSecret, GraphURL: ts.URL + "/v25.0"}

	// Another origin (here another port) is not followed: the User token
	// would go with it.
	elsewhere := &graphStub{h: stub.h}
	ets := httptest.NewServer(elsewhere)
	defer ets.Close()
	next = ets.URL + "/v25.0/me/accounts?access_token=EAAuser-token-xyz&after=x"
	_, err := o.Pages(context.Background(), "EAAuser-token-xyz")
	if err == nil || stub.count() != 1 || elsewhere.count() != 0 {
		t.Fatalf("foreign paging.next: %v after %d requests here and %d there, want an error after 1 here", err, stub.count(), elsewhere.count())
	}
	noSecrets(t, err, "EAAuser-token-xyz")

	// A next link that repeats is caught.
	next = ts.URL + "/v25.0/me/accounts?after=same"
	if _, err := o.Pages(context.Background(), "EAAuser-token-xyz"); err == nil || stub.count() > 4 {
		t.Errorf("repeating paging.next: %v after %d requests", err, stub.count())
	}

	// Endless distinct next links stop at the bound.
	n := 0
	stub.h = func(w http.ResponseWriter, r *http.Request) {
		n++
		if r.Header.Get("Authorization") != "Bearer EAAuser-token-xyz" || r.URL.Query().Has("access_token") {
			t.Errorf("page request without the bearer token, or with it in the URL: %s %v", r.URL, r.Header)
		}
		fmt.Fprintf(w, `{"data":[{"id":"%d"}],"paging":{"next":"%s/v25.0/me/accounts?access_token=EAAuser-token-xyz&after=%d"}}`, n, ts.URL, n)
	}
	if _, err := o.Pages(context.Background(), "EAAuser-token-xyz"); err == nil || n != 50 {
		t.Errorf("endless paging: %v after %d requests, want an error after 50", err, n)
	}
}

func TestErrorsHideSecrets(t *testing.T) {
	ctx := context.Background()
	const (
		code      = "AQsecret-code-0123456789"
		userToken = "EAAsecret-user-token-0123456789"
		pageToken = "EAAsecret-page-token-0123456789"
	)
	secrets := []string{code, userToken, pageToken, oauthSecret}

	// Graph errors that echo what they were sent.
	stub := &graphStub{h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		msg := "Malformed access token " + r.Header.Get("Authorization") + " for " + r.URL.String() + " " + r.URL.Query().Get("fb_exchange_token")
		fmt.Fprintf(w, `{"error":{"message":%q,"type":"OAuthException","code":190,"error_user_msg":%q,"fbtrace_id":"x"}}`, msg, r.URL.RawQuery)
	}}
	ts := httptest.NewServer(stub)
	o := &meta.OAuth{AppID: oauthAppID, AppSecret: oauthSecret, RedirectURL: oauthRedirect, GraphURL: ts.URL + "/v25.0"}
	calls := map[string]func() error{
		"exchange":   func() error { _, err := o.Exchange(ctx, code); return err },
		"long-lived": func() error { _, err := o.LongLived(ctx, userToken); return err },
		"pages":      func() error { _, err := o.Pages(ctx, userToken); return err },
		"subscribe":  func() error { return o.Subscribe(ctx, "123", pageToken, nil) },
		"debug":      func() error { _, err := o.DebugToken(ctx, userToken); return err },
	}
	for name, call := range calls {
		err := call()
		if a := apiError(t, err); a.Code != 190 || !strings.Contains(a.Message, "Malformed access token") {
			t.Errorf("%s: %v", name, err)
		}
		noSecrets(t, err, secrets...)
		if a, _ := meta.AsAPIError(err); a != nil {
			noSecrets(t, errors.New(a.UserMessage), secrets...)
		}
	}

	// A non-JSON error page that echoes the URL.
	stub.h = func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<html>bad gateway for "+r.URL.String()+"</html>")
	}
	for name, call := range calls {
		err := call()
		if err == nil || switchboard.IsPermanent(err) {
			t.Errorf("%s: %v, want a retryable error", name, err)
		}
		noSecrets(t, err, secrets...)
	}

	// A redirect is not followed: the secrets in the query stay here.
	elsewhere := &graphStub{h: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"access_token":"EAAstolen"}`) }}
	ets := httptest.NewServer(elsewhere)
	defer ets.Close()
	stub.h = func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, ets.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}
	for name, call := range calls {
		err := call()
		noSecrets(t, err, secrets...)
		if elsewhere.count() != 0 {
			t.Fatalf("%s: the redirect was followed", name)
		}
	}

	// Transport errors carry the URL; it is redacted.
	ts.Close()
	for name, call := range calls {
		err := call()
		noSecrets(t, err, secrets...)
		if !strings.Contains(err.Error(), "REDACTED") && name != "pages" && name != "subscribe" {
			t.Errorf("%s: %v, want the URL with its secrets redacted", name, err)
		}
	}

	// A cancelled context still shows through the redaction.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err := o.Exchange(cctx, code)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled exchange: %v, want context.Canceled", err)
	}
	noSecrets(t, err, secrets...)
}

func TestSubscribeRefusals(t *testing.T) {
	e := newOAuthEnv(t)
	ctx := context.Background()
	tok, err := e.o.Exchange(ctx, e.code(t, "s"))
	if err != nil {
		t.Fatal(err)
	}
	pages, err := e.o.Pages(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	// The User token, or the other Page's token, is not this Page's.
	for _, bad := range []string{tok.AccessToken, pages[1].AccessToken} {
		err := e.o.Subscribe(ctx, pages[0].ID, bad, nil)
		if a := apiError(t, err); a.Code != 210 {
			t.Errorf("subscribe with a token not the Page's: %v, want code 210", err)
		}
		noSecrets(t, err, bad)
	}
	if err := e.o.Subscribe(ctx, pages[0].ID, pages[0].AccessToken, []string{"messages,feed"}); switchboard.ErrorCode(err) != switchboard.EINVALID {
		t.Errorf("field with a comma: %v, want EINVALID", err)
	}
	err = e.o.Subscribe(ctx, pages[0].ID, pages[0].AccessToken, []string{"messages", "no_such_field"})
	if a := apiError(t, err); a.Code != 100 {
		t.Errorf("unknown field: %v, want code 100", err)
	}
	if got := e.graph.Subscriptions(pages[0].ID); got != nil {
		t.Errorf("subscriptions after refusals = %q", got)
	}
	if err := e.o.Subscribe(ctx, pages[1].ID, pages[1].AccessToken, []string{"messages", "message_echoes"}); err != nil {
		t.Fatal(err)
	}
	if got := e.graph.Subscriptions(pages[1].ID); !slices.Equal(got, []string{"messages", "message_echoes"}) {
		t.Errorf("subscriptions = %q", got)
	}
}

func TestDebugTokenUnknown(t *testing.T) {
	e := newOAuthEnv(t)
	info, err := e.o.DebugToken(context.Background(), "EAAnever-issued-token")
	if err != nil {
		t.Fatal(err)
	}
	if info.Valid || info.ErrorCode != 190 || info.Error == "" {
		t.Errorf("debug unknown token = %+v, want invalid with code 190", info)
	}
}

// Without WithOAuth the stand-in serves none of it.
func TestNoOAuthWithoutOption(t *testing.T) {
	graph := metatest.New(oauthSecret, oauthToken)
	ts := httptest.NewServer(graph.Handler())
	defer ts.Close()
	defer graph.Close()
	for _, path := range []string{"/v25.0/dialog/oauth?client_id=" + oauthAppID, "/v25.0/oauth/access_token?client_id=" + oauthAppID, "/v25.0/debug_token", "/v25.0/me/accounts"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without WithOAuth: HTTP %d, want 401", path, resp.StatusCode)
		}
	}
}
