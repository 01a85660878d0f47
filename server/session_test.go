package server_test

// Sign-in, sessions and CSRF (docs/design.md §6.3, docs/security.md):
// what a browser, a script and a foreign page can and cannot do.

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
	"github.com/switchboard-inbox/switchboard/realtime"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

const password = "correct horse battery"

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	t    *testing.T
	e    *env
	jar  *cookiejar.Jar
	c    *http.Client
	csrf string // the session's, read from a page
}

func newBrowser(t *testing.T, e *env) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, e: e, jar: jar, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// req sends a request with extra headers and returns the answer and body.
func (b *browser) req(method, path, contentType, body string, headers map[string]string) (*http.Response, string) {
	b.t.Helper()
	r, _ := http.NewRequest(method, b.e.url+path, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	resp, err := b.c.Do(r)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)"`)

// login signs in through the form and returns the answer to the POST.
func (b *browser) login(email, pw string) *http.Response {
	b.t.Helper()
	resp, page := b.req("GET", "/login", "", "", nil)
	m := csrfField.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		b.t.Fatalf("GET /login: %d, no csrf field", resp.StatusCode)
	}
	form := url.Values{"email": {email}, "password": {pw}, "csrf": {m[1]}}
	resp, _ = b.req("POST", "/login", "application/x-www-form-urlencoded", form.Encode(), nil)
	if resp.StatusCode == http.StatusSeeOther {
		_, inboxPage := b.req("GET", "/", "", "", nil)
		if m := csrfMeta.FindStringSubmatch(inboxPage); m != nil {
			b.csrf = m[1]
		}
	}
	return resp
}

func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.e.url)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func setPassword(t *testing.T, e *env, email string) string {
	t.Helper()
	agents, err := e.svc.Agents(context.Background(), switchboard.System)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range agents {
		if a.Email == email {
			if err := e.svc.SetPassword(context.Background(), switchboard.System, a.ID, password); err != nil {
				t.Fatal(err)
			}
			return a.ID
		}
	}
	t.Fatalf("no agent %s", email)
	return ""
}

func TestSignIn(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		setPassword(t, e, "sam@team.example")
		b := newBrowser(t, e)

		// Anonymous: the inbox sends to sign in, keeping where it was.
		resp, _ := b.req("GET", "/?view=all", "", "", nil)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2F%3Fview%3Dall" {
			t.Fatalf("anonymous inbox: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if got := b.login("sam@team.example", "wrong password!"); got.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password: %d", got.StatusCode)
		}
		if b.cookie("sb_session") != nil {
			t.Fatal("a wrong password set a session cookie")
		}
		resp = b.login("SAM@team.example ", password)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Fatalf("sign in: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		// The cookie as the browser was told to keep it.
		var set *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == "sb_session" {
				set = c
			}
		}
		if set == nil || !set.HttpOnly || set.SameSite != http.SameSiteLaxMode || set.Secure || set.Path != "/" {
			t.Fatalf("session cookie: %+v", set)
		}
		resp, page := b.req("GET", "/", "", "", nil)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Sam") || b.csrf == "" {
			t.Fatalf("inbox after sign in: %d, csrf %q", resp.StatusCode, b.csrf)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Fatalf("CSP: %q", csp)
		}
		if strings.Contains(page, "<script>") || regexp.MustCompile(`\son[a-z]+=`).MatchString(page) {
			t.Fatal("the inbox page holds inline script")
		}
		// The same cookie authenticates the API, for reads and, with the
		// CSRF token, for changes.
		resp, body := b.req("GET", "/api/v1/agents", "", "", nil)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"sam@team.example"`) {
			t.Fatalf("API with the session: %d %s", resp.StatusCode, body)
		}
		resp, body = b.req("POST", "/api/v1/agents/"+e.agentID+"/status", "application/json", `{"status":"online"}`, map[string]string{"X-CSRF-Token": b.csrf})
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"online"`) {
			t.Fatalf("status with session and CSRF token: %d %s", resp.StatusCode, body)
		}

		// Signing out ends the session on the server: the old cookie,
		// replayed, opens nothing.
		old := b.cookie("sb_session").Value
		resp, _ = b.req("POST", "/logout", "application/x-www-form-urlencoded", "csrf="+b.csrf, nil)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout: %d", resp.StatusCode)
		}
		replay, _ := http.NewRequest("GET", e.url+"/api/v1/agents", nil)
		replay.AddCookie(&http.Cookie{Name: "sb_session", Value: old})
		r2, err := http.DefaultClient.Do(replay)
		if err != nil {
			t.Fatal(err)
		}
		r2.Body.Close()
		if r2.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a signed-out session's cookie: %d", r2.StatusCode)
		}
	})
}

// TestSignInRedirectsStayLocal: next= never sends a browser elsewhere.
func TestSignInRedirectsStayLocal(t *testing.T) {
	e := newEnv(t, "sqlite")
	setPassword(t, e, "sam@team.example")
	for next, want := range map[string]string{"/conversations/x": "/conversations/x", "//evil.example/": "/", "https://evil.example/": "/", "/\\evil.example": "/"} {
		b := newBrowser(t, e)
		_, page := b.req("GET", "/login?next="+url.QueryEscape(next), "", "", nil)
		token := csrfField.FindStringSubmatch(page)[1]
		form := url.Values{"email": {"sam@team.example"}, "password": {password}, "csrf": {token}, "next": {next}}
		resp, _ := b.req("POST", "/login", "application/x-www-form-urlencoded", form.Encode(), nil)
		if got := resp.Header.Get("Location"); got != want {
			t.Errorf("next=%q: redirected to %q, want %q", next, got, want)
		}
	}
}

// TestLoginCSRF: the sign-in form needs its own token, so a foreign page
// cannot sign a browser into the attacker's account.
func TestLoginCSRF(t *testing.T) {
	e := newEnv(t, "sqlite")
	setPassword(t, e, "sam@team.example")
	b := newBrowser(t, e)
	form := url.Values{"email": {"sam@team.example"}, "password": {password}}
	resp, _ := b.req("POST", "/login", "application/x-www-form-urlencoded", form.Encode(), nil)
	if resp.StatusCode != http.StatusForbidden || b.cookie("sb_session") != nil {
		t.Fatalf("sign-in without the form's token: %d", resp.StatusCode)
	}
}

// TestCSRF: a state change riding on the session cookie needs the
// session's token, whatever the request looks like.
func TestCSRF(t *testing.T) {
	e := newEnv(t, "sqlite")
	setPassword(t, e, "sam@team.example")
	b := newBrowser(t, e)
	b.login("sam@team.example", password)
	path := "/api/v1/agents/" + e.agentID + "/status"
	for name, h := range map[string]map[string]string{
		"no token":          nil,
		"wrong token":       {"X-CSRF-Token": "not-the-token"},
		"another origin":    {"X-CSRF-Token": b.csrf, "Origin": "https://evil.example"},
		"cross-site fetch":  {"X-CSRF-Token": b.csrf, "Sec-Fetch-Site": "cross-site"},
		"same-site sibling": {"X-CSRF-Token": b.csrf, "Sec-Fetch-Site": "same-site"},
	} {
		resp, body := b.req("POST", path, "application/json", `{"status":"away"}`, h)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `"forbidden"`) {
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
	}
	// A cross-site HTML form (no custom header can be set) is refused
	// too, before its content type is even read.
	resp, _ := b.req("POST", "/logout", "application/x-www-form-urlencoded", "", map[string]string{"Origin": "https://evil.example"})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site sign-out form: %d", resp.StatusCode)
	}
	resp, _ = b.req("POST", "/account/password", "application/x-www-form-urlencoded", "new=attacker-chosen-password", nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("password change without the token: %d", resp.StatusCode)
	}
	a, err := e.svc.Agent(context.Background(), switchboard.System, e.agentID)
	if err != nil || a.Status != switchboard.AgentOffline {
		t.Fatalf("a refused request changed the status: %v %v", a.Status, err)
	}
	// With the token, and from this origin, it works.
	resp, _ = b.req("POST", path, "application/json", `{"status":"away"}`, map[string]string{"X-CSRF-Token": b.csrf, "Origin": e.url, "Sec-Fetch-Site": "same-origin"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with the token: %d", resp.StatusCode)
	}
	// A bearer token is no ambient credential: no CSRF token needed.
	if code := e.api("POST", path, e.agent, map[string]string{"status": "online"}, nil); code != http.StatusOK {
		t.Fatalf("bearer: %d", code)
	}
}

// TestLoginThrottle: wrong passwords lock the account for the window,
// and one address cannot try accounts without end.
func TestLoginThrottle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string) {
		clock := testenv.NewClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
		e := newEnvClock(t, backend, switchboard.Channels, clock)
		setPassword(t, e, "sam@team.example")
		setPassword(t, e, "alex@team.example")
		b := newBrowser(t, e)
		for i := 0; i < inbox.LoginAccountLimit; i++ {
			if code := b.login("sam@team.example", "guess number "+string(rune('a'+i))).StatusCode; code != http.StatusUnauthorized {
				t.Fatalf("guess %d: %d", i, code)
			}
		}
		// The right password now is refused too: a guesser learns nothing.
		if code := b.login("sam@team.example", password).StatusCode; code != http.StatusTooManyRequests {
			t.Fatalf("after %d failures: %d, want 429", inbox.LoginAccountLimit, code)
		}
		// Another account from the same address is still open (the
		// address has fewer failures than its own limit).
		if code := newBrowser(t, e).login("alex@team.example", password).StatusCode; code != http.StatusSeeOther {
			t.Fatalf("another account: %d", code)
		}
		clock.Advance(inbox.LoginWindow + time.Second)
		if code := b.login("sam@team.example", password).StatusCode; code != http.StatusSeeOther {
			t.Fatalf("after the window: %d", code)
		}
		// One address spraying many accounts is stopped by its own count.
		for i := 0; i < inbox.LoginAddressLimit; i++ {
			b.login("nobody"+string(rune('a'+i))+"@team.example", "whatever password")
		}
		if code := newBrowser(t, e).login("alex@team.example", password).StatusCode; code != http.StatusTooManyRequests {
			t.Fatalf("address over its limit: %d, want 429", code)
		}
	})
}

// TestPasswordChangeSignsOutEverywhere: the other sessions end, the one
// that changed it stays.
func TestPasswordChangeSignsOutEverywhere(t *testing.T) {
	e := newEnv(t, "sqlite")
	setPassword(t, e, "sam@team.example")
	here, there := newBrowser(t, e), newBrowser(t, e)
	here.login("sam@team.example", password)
	there.login("sam@team.example", password)
	form := url.Values{"csrf": {here.csrf}, "current": {"not the password"}, "new": {"a brand new password"}}
	if resp, _ := here.req("POST", "/account/password", "application/x-www-form-urlencoded", form.Encode(), nil); !strings.Contains(resp.Header.Get("Location"), "error=") {
		t.Fatalf("a wrong current password: %q", resp.Header.Get("Location"))
	}
	form.Set("current", password)
	if resp, _ := here.req("POST", "/account/password", "application/x-www-form-urlencoded", form.Encode(), nil); !strings.Contains(resp.Header.Get("Location"), "notice=") {
		t.Fatalf("password change: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := here.req("GET", "/", "", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the session that changed it: %d", resp.StatusCode)
	}
	if resp, _ := there.req("GET", "/", "", "", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the other session: %d, want a redirect to sign in", resp.StatusCode)
	}
	if code := newBrowser(t, e).login("sam@team.example", password).StatusCode; code != http.StatusUnauthorized {
		t.Fatalf("the old password: %d", code)
	}
	if code := newBrowser(t, e).login("sam@team.example", "a brand new password").StatusCode; code != http.StatusSeeOther {
		t.Fatalf("the new password: %d", code)
	}
}

// TestSecureCookieOnHTTPS: behind an https public URL the cookie is Secure.
func TestSecureCookieOnHTTPS(t *testing.T) {
	e := newEnv(t, "sqlite")
	e.srv.PublicURL = "https://inbox.example"
	setPassword(t, e, "sam@team.example")
	b := newBrowser(t, e)
	_, page := b.req("GET", "/login", "", "", nil)
	form := url.Values{"email": {"sam@team.example"}, "password": {password}, "csrf": {csrfField.FindStringSubmatch(page)[1]}}
	// The jar keeps no Secure cookie over http: send the login cookie by hand.
	r, _ := http.NewRequest("POST", e.url+"/login", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(&http.Cookie{Name: "sb_login", Value: form.Get("csrf")})
	resp, err := b.c.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var set *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "sb_session" {
			set = c
		}
	}
	if set == nil || !set.Secure || !set.HttpOnly || set.SameSite != http.SameSiteLaxMode {
		t.Fatalf("session cookie behind https: %d %+v", resp.StatusCode, set)
	}
}

// routePatterns reads the routes this package registers, from its source.
func routePatterns(t *testing.T, file string, re *regexp.Regexp) []string {
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range re.FindAllStringSubmatch(string(src), -1) {
		out = append(out, m[1])
	}
	if len(out) == 0 {
		t.Fatalf("no routes found in %s", file)
	}
	return out
}

// TestEverythingRefusesAnonymous: every /api/v1 endpoint and every page
// of the workspace, asked without a token or session.
func TestEverythingRefusesAnonymous(t *testing.T) {
	e := newEnv(t, "sqlite")
	api := routePatterns(t, "api.go", regexp.MustCompile(`h\("([A-Z]+ /api/v1/[^"]*)"`))
	pages := []string{}
	for pattern := range e.srv.Pages.Routes() {
		pages = append(pages, pattern)
	}
	pages = append(pages, "POST /logout", "POST /account/password")
	fill := strings.NewReplacer("{id}", "x1", "{key}", "x2", "{message}", "x3", "{$}", "")
	b := newBrowser(t, e)
	for _, p := range api {
		method, path, _ := strings.Cut(p, " ")
		resp, body := b.req(method, fill.Replace(path), "application/json", "{}", nil)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"unauthorized"`) {
			t.Errorf("anonymous %s: %d %s", p, resp.StatusCode, body)
		}
	}
	for _, p := range pages {
		method, path, _ := strings.Cut(p, " ")
		resp, _ := b.req(method, fill.Replace(path), "application/x-www-form-urlencoded", "", nil)
		switch {
		case method == "GET" && resp.StatusCode == http.StatusSeeOther && strings.HasPrefix(resp.Header.Get("Location"), "/login"):
		case method != "GET" && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden):
		default:
			t.Errorf("anonymous %s: %d %q", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// The socket too, wired as the binary wires it.
	e.srv.Realtime = &realtime.Hub{Inbox: e.svc.Service, Authenticate: e.srv.AuthenticateSocket}
	ts := httpServer(t, e.srv.Handler())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, strings.Replace(ts, "http", "ws", 1)+"/api/v1/realtime", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous socket: %v %v", err, resp)
	}
}

// TestAgentsCannotAdminister: every admin-only endpoint refuses an agent
// (and a supervisor), through the token and through the session.
func TestAgentsCannotAdminister(t *testing.T) {
	e := newEnv(t, "sqlite")
	setPassword(t, e, "sam@team.example")
	admin := map[string]string{
		"PATCH /api/v1/agents/" + e.agentID: `{"role":"admin"}`,
		"PUT /api/v1/routing":               `{"teams":{}}`,
		"GET /api/v1/sites":                 ``,
		"POST /api/v1/sites":                `{"name":"Shop","origins":["https://shop.example"]}`,
		"PATCH /api/v1/sites/site_x":        `{"name":"Other"}`,
		"PUT /api/v1/templates":             `{"name":"t","language":"en","body":"Hi","status":"APPROVED"}`,
	}
	b := newBrowser(t, e)
	b.login("sam@team.example", password)
	for p, body := range admin {
		method, path, _ := strings.Cut(p, " ")
		var out apiError
		if code := e.do(method, path, e.agent, "application/json", []byte(body), &out); code != http.StatusForbidden || out.Error.Code != "forbidden" {
			t.Errorf("agent token %s: %d %+v", p, code, out)
		}
		resp, got := b.req(method, path, "application/json", body, map[string]string{"X-CSRF-Token": b.csrf})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("agent session %s: %d %s", p, resp.StatusCode, got)
		}
	}
	a, err := e.svc.Agent(context.Background(), switchboard.System, e.agentID)
	if err != nil || a.Role != switchboard.RoleAgent {
		t.Fatalf("the agent's role after refused changes: %v %v", a.Role, err)
	}
}

// TestSessionSocketOrigin: the socket takes the session cookie only from
// this deployment's pages (§6.1); a bearer token from anywhere.
func TestSessionSocketOrigin(t *testing.T) {
	e := newEnv(t, "sqlite")
	e.srv.Realtime = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		actor, err := e.srv.AuthenticateSocket(r)
		if err != nil {
			code := http.StatusUnauthorized
			if switchboard.ErrorCode(err) == switchboard.EFORBIDDEN {
				code = http.StatusForbidden
			}
			http.Error(w, err.Error(), code)
			return
		}
		io.WriteString(w, actor.Name)
	})
	setPassword(t, e, "sam@team.example")
	b := newBrowser(t, e)
	b.login("sam@team.example", password)
	// The handler changed after Handler() was built: rebuild through a
	// fresh server on the same service.
	ts := httpServer(t, e.srv.Handler())
	cookie := b.cookie("sb_session").Value
	for origin, want := range map[string]int{ts: http.StatusOK, "https://evil.example": http.StatusForbidden, "": http.StatusForbidden} {
		r, _ := http.NewRequest("GET", ts+"/api/v1/realtime", nil)
		r.AddCookie(&http.Cookie{Name: "sb_session", Value: cookie})
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (want == http.StatusOK && string(body) != "Sam") {
			t.Errorf("origin %q: %d %s, want %d", origin, resp.StatusCode, body, want)
		}
	}
}

func httpServer(t *testing.T, h http.Handler) string {
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}
