package main

import (
	"bytes"
	"context"
	"html"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/twilio/twiliotest"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

// webClient is a signed-in browser session over plain HTTP: it keeps
// cookies, does not follow redirects and posts forms with the page's
// CSRF token.
type webClient struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

var (
	formCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	metaCSRF = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)"`)
)

func webSignIn(t *testing.T, base, email, password string) *webClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	w := &webClient{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	_, page := w.get("/login")
	m := formCSRF.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("the sign-in form has no csrf field")
	}
	resp, _ := w.post("/login", url.Values{"email": {email}, "password": {password}, "csrf": {m[1]}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in as %s: %d", email, resp.StatusCode)
	}
	_, inboxPage := w.get("/")
	if m := metaCSRF.FindStringSubmatch(inboxPage); m != nil {
		w.csrf = m[1]
	}
	return w
}

func (w *webClient) do(req *http.Request) (*http.Response, string) {
	w.t.Helper()
	resp, err := w.c.Do(req)
	if err != nil {
		w.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (w *webClient) get(path string) (*http.Response, string) {
	w.t.Helper()
	u := path
	if !strings.HasPrefix(u, "http") {
		u = w.base + path
	}
	req, _ := http.NewRequest("GET", u, nil)
	return w.do(req)
}

func (w *webClient) post(path string, form url.Values) (*http.Response, string) {
	w.t.Helper()
	form = maps.Clone(form)
	if w.csrf != "" && form.Get("csrf") == "" {
		form.Set("csrf", w.csrf)
	}
	req, _ := http.NewRequest("POST", w.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return w.do(req)
}

const connectPassword = "correct horse battery staple"

// connectEnv is Switchboard with no channel configured but the providers'
// addresses (the stand-ins), an admin and an agent with passwords.
type connectEnv struct {
	m      *Main
	twilio *twiliotest.Server
	admin  *webClient
	agent  *webClient
	stored chan []switchboard.IngestResult
}

func newConnectEnv(t *testing.T, dbURL string, cfg func(*Config)) *connectEnv {
	t.Helper()
	e := &connectEnv{stored: make(chan []switchboard.IngestResult, 16)}
	e.twilio = twiliotest.New(testSID, testToken, twiliotest.WithPhoneNumbers(ourNumber, "+15557654321"))
	ts := httptest.NewTLSServer(e.twilio.Handler())
	e.twilio.SetBaseURL(ts.URL)
	t.Cleanup(func() { e.twilio.Close(); ts.Close() })
	addr := freeAddr(t)
	e.m = &Main{Config: Config{
		Addr: addr, PublicURL: "http://" + addr, DataDir: t.TempDir(), LogLevel: "warn", LogFormat: "text",
		IngestBatch: 64, OutboxMaxAttempts: 3, RoutingOff: true, DatabaseURL: dbURL,
		TwilioAPIURL: ts.URL, PhoneRegion: "US", VoiceGreeting: "Leave a message after the tone.",
	}}
	if cfg != nil {
		cfg(&e.m.Config)
	}
	e.m.ProviderHTTP = ts.Client()
	e.m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	e.m.OnStored = func(_ []switchboard.Inbound, res []switchboard.IngestResult) { e.stored <- res }
	if err := e.m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.m.Close() })
	ctx := context.Background()
	for _, a := range []switchboard.Agent{
		{Name: "Ada Admin", Email: "ada@team.example", Role: switchboard.RoleAdmin},
		{Name: "Al Agent", Email: "al@team.example", Role: switchboard.RoleAgent},
	} {
		got, _ := addAgent(t, e.m, a)
		if err := e.m.Inbox.SetPassword(ctx, switchboard.System, got.ID, connectPassword); err != nil {
			t.Fatal(err)
		}
	}
	e.admin = webSignIn(t, e.m.URL(), "ada@team.example", connectPassword)
	e.agent = webSignIn(t, e.m.URL(), "al@team.example", connectPassword)
	return e
}

// TestChannelSettingsFromTheAdminPages: with no Twilio settings in the
// environment, an admin enters them on the channels page; SMS works at
// once, without a restart; the auth token is nowhere in clear (pages,
// audit log, database file); agents cannot change settings; a setting
// fixed by the environment cannot be changed here; and the account's
// number is pointed at this deployment through Twilio's API.
func TestChannelSettingsFromTheAdminPages(t *testing.T) {
	e := newConnectEnv(t, "", nil)
	hook := e.m.URL() + "/webhooks/twilio/sms"
	send := func(body string) *http.Response {
		t.Helper()
		resp, err := e.twilio.SendInbound(context.Background(), http.DefaultClient, hook, twiliotest.Inbound{From: "+14155552671", To: ourNumber, Body: body})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusBadRequest {
			t.Logf("webhook refused: %s", b)
		}
		return resp
	}
	if resp := send("before"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("SMS webhook before Twilio is set up: %d, want 404", resp.StatusCode)
	}

	twilioForm := url.Values{"group": {"twilio"}, "TWILIO_ACCOUNT_SID": {testSID}, "TWILIO_AUTH_TOKEN": {testToken}, "TWILIO_FROM": {ourNumber}}
	if resp, _ := e.agent.post("/admin/channels/settings", twilioForm); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an agent saving channel settings: %d, want 403", resp.StatusCode)
	}
	// A half-set provider is refused before anything is stored.
	resp, page := e.admin.post("/admin/channels/settings", url.Values{"group": {"twilio"}, "TWILIO_ACCOUNT_SID": {testSID}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(html.UnescapeString(page), "set both SWITCHBOARD_TWILIO_ACCOUNT_SID and SWITCHBOARD_TWILIO_AUTH_TOKEN") {
		t.Fatalf("SID without token: %d, want 400 with the reason", resp.StatusCode)
	}
	if resp, page := e.admin.post("/admin/channels/settings", url.Values{"group": {"twilio"}, "VOICE_GREETING": {"Hi"}}); resp.StatusCode != http.StatusBadRequest ||
		!strings.Contains(page, "SWITCHBOARD_VOICE_GREETING in the environment") {
		t.Fatalf("changing a setting the environment fixes: %d, want 400 naming the variable", resp.StatusCode)
	}
	if resp, page := e.admin.post("/admin/channels/settings", twilioForm); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("saving Twilio settings: %d\n%s", resp.StatusCode, testResults(page))
	}
	if resp := send("after"); resp.StatusCode/100 != 2 {
		t.Fatalf("SMS webhook after saving the settings: %d, want 2xx", resp.StatusCode)
	}
	select {
	case res := <-e.stored:
		if len(res) != 1 {
			t.Fatalf("stored %d", len(res))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the SMS was not stored")
	}

	_, page = e.admin.get("/admin/channels")
	if strings.Contains(page, testToken) {
		t.Error("the channels page shows the auth token")
	}
	if !strings.Contains(page, `value="`+testSID+`"`) || !strings.Contains(page, "set: leave blank to keep") || !strings.Contains(page, "SWITCHBOARD_VOICE_GREETING") {
		t.Error("the channels page does not show the SID, the token as set, and the greeting fixed by the environment")
	}
	// Saving the form again with the token left blank keeps it.
	if resp, _ := e.admin.post("/admin/channels/settings", url.Values{"group": {"twilio"}, "TWILIO_ACCOUNT_SID": {testSID}, "TWILIO_AUTH_TOKEN": {""}, "TWILIO_FROM": {ourNumber}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("saving again: %d", resp.StatusCode)
	}
	if resp := send("still"); resp.StatusCode/100 != 2 {
		t.Fatalf("a blank token field replaced the token: webhook %d", resp.StatusCode)
	}

	// The audit log says who set what, and never the token.
	_, audit := e.admin.get("/admin/audit")
	if strings.Contains(audit, testToken) || !regexp.MustCompile(`Ada Admin</td>\s*<td data-label="What">setting.set</td>\s*<td data-label="Of">TWILIO_AUTH_TOKEN</td>\s*<td data-label="Detail">set</td>`).MatchString(audit) {
		t.Errorf("the audit log does not record the token being set by Ada, or shows it:\n%s", audit)
	}
	if resp, _ := e.agent.get("/admin/audit"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("an agent reading the audit log: %d, want 403", resp.StatusCode)
	}

	// At rest: the token is in no row and nowhere in the database files.
	rows, err := storeOf(t, e.m).Settings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var value string
	for _, r := range rows {
		if r.Name == "TWILIO_AUTH_TOKEN" {
			value = r.Value
		}
	}
	if value == "" || strings.Contains(value, testToken) || !strings.HasPrefix(value, "v1:") {
		t.Errorf("stored token %q: want it sealed", value)
	}
	files, _ := filepath.Glob(filepath.Join(e.m.Config.DataDir, "switchboard.db*"))
	if len(files) == 0 {
		t.Fatal("no database files found")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(testToken)) {
			t.Errorf("%s holds the auth token in clear", filepath.Base(f))
		}
	}

	// Twilio registration: the number points elsewhere until the admin
	// points it here through Twilio's API.
	_, page = e.admin.get("/admin/channels/twilio")
	page = html.UnescapeString(page)
	if !strings.Contains(page, ourNumber) || !strings.Contains(page, "SMS webhook is not set") {
		i := strings.Index(page, "twilio-numbers\"")
		t.Fatalf("the numbers list does not show %s unpointed:\n%s", ourNumber, page[max(0, i):min(len(page), max(0, i)+3000)])
	}
	n, ok := e.twilio.Number(ourNumber)
	if !ok {
		t.Fatal("the stand-in has no number")
	}
	if resp, _ := e.agent.post("/admin/channels/twilio/"+n.SID+"/point", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an agent pointing a number: %d, want 403", resp.StatusCode)
	}
	if resp, _ := e.admin.post("/admin/channels/twilio/"+n.SID+"/point", url.Values{}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("pointing the number: %d", resp.StatusCode)
	}
	n, _ = e.twilio.Number(ourNumber)
	public := e.m.Config.PublicURL
	if n.SmsURL != public+"/webhooks/twilio/sms" || n.StatusCallback != public+"/webhooks/twilio/status" || n.VoiceURL != public+"/webhooks/twilio/voice" {
		t.Fatalf("the number now: SMS %q, status %q, voice %q; want this deployment's webhooks", n.SmsURL, n.StatusCallback, n.VoiceURL)
	}
	if other, _ := e.twilio.Number("+15557654321"); other.SmsURL != "" {
		t.Errorf("the other number was changed too: %q", other.SmsURL)
	}
	_, page = e.admin.get("/admin/channels/twilio")
	if !strings.Contains(page, "points here") {
		t.Error("the numbers list does not show the number pointing here")
	}
	_, audit = e.admin.get("/admin/audit")
	if !strings.Contains(audit, "twilio.point_number") {
		t.Error("pointing the number is not in the audit log")
	}
}

// TestChannelSettingsReachOtherInstances: a setting stored through one
// instance is applied by another one sharing the database (PostgreSQL
// and Redis), within its poll.
func TestChannelSettingsReachOtherInstances(t *testing.T) {
	a, b := twoInstances(t)
	admin, _ := addAgent(t, a, switchboard.Agent{Name: "Ada Admin", Email: "ada-instances@team.example", Role: switchboard.RoleAdmin})
	actor := switchboard.Actor{ID: admin.ID, Name: admin.Name, Role: switchboard.RoleAdmin}
	if b.Inbox.Sender(switchboard.ChannelSMS) != nil {
		t.Fatal("SMS replies are on before any setting")
	}
	if _, err := a.Inbox.PutSettings(context.Background(), actor, inbox.SettingsChange{Set: map[string]string{
		"TWILIO_ACCOUNT_SID": testSID, "TWILIO_AUTH_TOKEN": testToken, "TWILIO_FROM": ourNumber,
	}}); err != nil {
		t.Fatal(err)
	}
	if a.Inbox.Sender(switchboard.ChannelSMS) == nil {
		t.Fatal("the instance that stored the settings does not use them")
	}
	deadline := time.Now().Add(3 * defaultSettingsPoll)
	for b.Inbox.Sender(switchboard.ChannelSMS) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the other instance did not apply the stored settings")
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, err := http.Post(b.URL()+"/webhooks/twilio/sms", "application/x-www-form-urlencoded", strings.NewReader("From=%2B15551230001"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an unsigned SMS webhook on the other instance: %d, want it refused by the signature check (the channel is on)", resp.StatusCode)
	}
}

// TestEmailConnectionTest: the channels page tests IMAP and SMTP
// connections against the real Dovecot and Postfix before they are
// saved: the right password succeeds, a wrong one shows the server's
// refusal (and not the password).
func TestEmailConnectionTest(t *testing.T) {
	// The test Dovecot's certificate is self-signed.
	imapURL := testenv.URL(t, testenv.IMAPURL, "real IMAP") + "/INBOX?insecure=true"
	smtpURL := testenv.URL(t, testenv.SMTPURL, "real SMTP")
	e := newConnectEnv(t, storetest.URL(t, "postgres"), nil)
	resp, page := e.admin.post("/admin/channels/email/test", url.Values{"group": {"email"}, "IMAP_URLS": {imapURL}, "SMTP_URL": {smtpURL + "?starttls=off"}, "EMAIL_FROM": {"Acme <support@acme.test>"}})
	page = html.UnescapeString(page)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "login ✓") || !regexp.MustCompile(`select INBOX ✓ <q>\d+ messages? in INBOX</q>`).MatchString(page) ||
		!strings.Contains(page, "send ✓") {
		t.Fatalf("testing the right settings: %d\n%s", resp.StatusCode, testResults(page))
	}
	u, _ := url.Parse(imapURL)
	wrong := "not-" + strings.Repeat("the-password", 1)
	u.User = url.UserPassword(u.User.Username(), wrong)
	resp, page = e.admin.post("/admin/channels/email/test", url.Values{"group": {"email"}, "IMAP_URLS": {u.String()}})
	page = html.UnescapeString(page)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "login ✗ <q>NO [AUTHENTICATIONFAILED]") {
		t.Fatalf("testing a wrong password: %d\n%s", resp.StatusCode, testResults(page))
	}
	if strings.Contains(page, wrong) {
		t.Error("the page shows the password that was tested")
	}
	if resp, _ := e.agent.post("/admin/channels/email/test", url.Values{"IMAP_URLS": {imapURL}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("an agent testing connections: %d, want 403", resp.StatusCode)
	}
}

func testResults(page string) string {
	if i := strings.Index(page, `class="check-results"`); i >= 0 {
		return page[i:min(len(page), i+2000)]
	}
	if i := strings.Index(page, `role="alert"`); i >= 0 {
		return page[i:min(len(page), i+500)]
	}
	return "(no results on the page)"
}

// TestWhatsAppEnteredSyncsTemplates: WhatsApp entered on the channels
// page (business account and phone number) syncs the account's message
// templates at once, without a restart.
func TestWhatsAppEnteredSyncsTemplates(t *testing.T) {
	const waba = "102290129340398"
	graph := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+metaToken || r.URL.Path != "/"+waba+"/message_templates" {
			http.Error(w, `{"error":{"message":"unknown path","type":"OAuthException","code":100}}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"data":[{"name":"order_update","language":"en_US","status":"APPROVED","category":"UTILITY","components":[{"type":"BODY","text":"Your order {{1}} is {{2}}."}]}]}`)
	}))
	t.Cleanup(graph.Close)
	e := newConnectEnv(t, "", func(c *Config) { c.GraphAPIURL = graph.URL })
	_, token := addAgent(t, e.m, switchboard.Agent{Name: "Api", Email: "api@team.example", Role: switchboard.RoleAdmin})
	var list struct {
		Templates []struct{ Name string } `json:"templates"`
	}
	callAPI(t, e.m.URL(), token, "GET", "/api/v1/templates", nil, &list)
	if len(list.Templates) != 0 {
		t.Fatalf("templates before WhatsApp is set up: %+v", list.Templates)
	}
	form := url.Values{"group": {"meta"}, "META_APP_SECRET": {metaSecret}, "META_VERIFY_TOKEN": {metaVerify}, "META_ACCESS_TOKEN": {metaToken},
		"WHATSAPP_PHONE_NUMBER_ID": {"106540352242922"}, "WHATSAPP_BUSINESS_ACCOUNT_ID": {waba}}
	if resp, page := e.admin.post("/admin/channels/settings", form); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("saving Meta settings: %d %s", resp.StatusCode, testResults(page))
	}
	wait(t, "the templates synced", func() bool {
		list.Templates = nil
		callAPI(t, e.m.URL(), token, "GET", "/api/v1/templates", nil, &list)
		return len(list.Templates) == 1 && list.Templates[0].Name == "order_update"
	})
	if e.m.Inbox.Sender(switchboard.ChannelWhatsApp) == nil {
		t.Error("WhatsApp replies are not on after the settings were saved")
	}
}
