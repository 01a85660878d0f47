package main

import (
	"bytes"
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/meta/metatest"
	"github.com/switchboard-inbox/switchboard/internal/browsertest"
)

const metaAppID = "1029384756102938"

// TestConnectFacebookBrowser connects a Facebook Page the way an admin
// does, in headless Chromium, against the Graph stand-in's Login dialog,
// token exchange, me/accounts, subscribed_apps and debug_token: Connect
// Facebook, Continue on the dialog, pick the Page. Then a signed
// Messenger webhook arrives and a reply goes out with the stored Page
// token (no other token is configured, and the stand-in refuses any
// other). The token is sealed at rest; a forged or replayed state is
// refused.
func TestConnectFacebookBrowser(t *testing.T) {
	addr := freeAddr(t)
	graph := metatest.New(metaSecret, metaToken, metatest.WithWebhook("http://"+addr+"/webhooks/meta"), metatest.WithOAuth(metaAppID))
	graphTS := httptest.NewServer(graph.Handler())
	graph.SetBaseURL(graphTS.URL)
	t.Cleanup(func() { graph.Close(); graphTS.Close() })
	stored := make(chan []switchboard.IngestResult, 16)
	m := &Main{Config: Config{
		Addr: addr, PublicURL: "http://" + addr, DataDir: t.TempDir(), LogLevel: "warn", LogFormat: "text",
		IngestBatch: 64, OutboxMaxAttempts: 3, RoutingOff: true,
		MetaAppID: metaAppID, MetaAppSecret: metaSecret, MetaVerifyToken: metaVerify, GraphAPIURL: graphTS.URL,
	}}
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	m.OnStored = func(_ []switchboard.Inbound, res []switchboard.IngestResult) { stored <- res }
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	base := m.URL()
	admin, apiToken := addAgent(t, m, switchboard.Agent{Name: "Ada Admin", Email: "ada@team.example", Role: switchboard.RoleAdmin})
	if err := m.Inbox.SetPassword(context.Background(), switchboard.System, admin.ID, wsPassword); err != nil {
		t.Fatal(err)
	}
	pageID := graph.PageID()
	b := browsertest.Start(t)

	t.Run("Connect", func(t *testing.T) {
		p := b.NewTab(t)
		signIn(t, p, base, "ada@team.example")
		p.Do(chromedp.Navigate(base + "/admin/channels"))
		p.Wait("the channels page", `location.pathname === '/admin/channels'`)
		clickOn(t, p, "link", "Connect Facebook")
		p.Wait("Facebook's Login dialog", `!!document.getElementById('continue')`)
		if got := graph.Scopes(); !slices.Contains(got, "pages_messaging") || !slices.Contains(got, "instagram_manage_messages") {
			t.Errorf("the dialog was asked for %v, want the messaging permissions", got)
		}
		p.Do(chromedp.Click(chromedp.CSS(`#continue`)))
		p.Wait("the Page picker", `location.pathname === '/admin/channels/facebook/pages' && !!document.querySelector('input[name=page]')`)
		clickOn(t, p, "button", "Connect this Page")
		p.Wait("the channels page saying the Page is connected", `location.pathname === '/admin/channels' && document.querySelector('.notice') !== null && document.querySelector('.notice').textContent.includes('The Page is connected')`)
		health := browsertest.Eval[string](p, `document.querySelector('tr[data-group=meta] .health').textContent`)
		if health != "connected" {
			t.Errorf("the Meta connection shows %q after connecting, want connected (%s)", health,
				browsertest.Eval[string](p, `document.querySelector('tr[data-group=meta]').textContent`))
		}
	})
	if t.Failed() {
		return
	}
	if got := graph.Subscriptions(pageID); !slices.Contains(got, "messages") || !slices.Contains(got, "messaging_postbacks") {
		t.Errorf("the app's subscription to the Page: %v, want its messaging fields", got)
	}
	pageToken := graph.IssuedPageToken(pageID)
	if pageToken == "" {
		t.Fatal("the stand-in issued no Page token")
	}

	// At rest the Page token is sealed, in the settings and everywhere in
	// the database's files.
	rows, err := storeOf(t, m).Settings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rows {
		got[r.Name] = r.Value
	}
	if got["MESSENGER_PAGE_ID"] != pageID || got["INSTAGRAM_ACCOUNT_ID"] != graph.InstagramAccountID() || !strings.HasPrefix(got["MESSENGER_PAGE_TOKEN"], "v1:") {
		t.Errorf("stored settings %v: want the Page, its Instagram account and the sealed token", got)
	}
	files, _ := filepath.Glob(filepath.Join(m.Config.DataDir, "switchboard.db*"))
	for _, f := range files {
		if b, _ := os.ReadFile(f); bytes.Contains(b, []byte(pageToken)) {
			t.Errorf("%s holds the Page token in clear", filepath.Base(f))
		}
	}

	// A signed Messenger webhook arrives; the reply goes out with the
	// stored Page token.
	if _, resp, err := graph.SendMessengerText(context.Background(), nil, base+"/webhooks/meta", "6922891234567890", "Is my order on its way?"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("Messenger webhook: %v %v", resp, err)
	}
	var conv string
	select {
	case res := <-stored:
		conv = res[0].ConversationID
	case <-time.After(10 * time.Second):
		t.Fatal("the Messenger message was not stored")
	}
	var sent map[string]any
	if code := callAPI(t, base, apiToken, "POST", "/api/v1/conversations/"+conv+"/messages", map[string]string{"text": "It ships today."}, &sent); code != http.StatusAccepted {
		t.Fatalf("reply: %d %v", code, sent)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(graph.MessengerSends()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the reply did not reach Messenger")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s := graph.MessengerSends()[0]; s.PageID != pageID || s.Text != "It ships today." || s.RecipientID != "6922891234567890" {
		t.Errorf("sent %+v", s)
	}

	// Admins see the connection's health in /healthz too; others do not.
	var health struct {
		Status   string `json:"status"`
		Channels []struct {
			Group        string     `json:"group"`
			State        string     `json:"state"`
			TokenExpires *time.Time `json:"token_expires"`
			LastWebhook  *time.Time `json:"last_webhook"`
		} `json:"channels"`
	}
	if code := callAPI(t, base, apiToken, "GET", "/healthz", nil, &health); code != http.StatusOK || len(health.Channels) != 3 {
		t.Fatalf("/healthz for an admin: %d %+v", code, health)
	}
	for _, c := range health.Channels {
		// A Page token from a long-lived user token does not expire.
		if c.Group == "meta" && (c.State != "connected" || c.TokenExpires != nil || c.LastWebhook == nil) {
			t.Errorf("/healthz Meta: %+v, want connected, a token that does not expire and the last webhook", c)
		}
		if c.Group == "twilio" && c.State != "disconnected" {
			t.Errorf("/healthz Twilio: %+v, want disconnected", c)
		}
	}
	_, agentToken := addAgent(t, m, switchboard.Agent{Name: "Al Agent", Email: "al@team.example"})
	var anon map[string]any
	if callAPI(t, base, agentToken, "GET", "/healthz", nil, &anon); anon["channels"] != nil {
		t.Errorf("/healthz shows an agent the channels: %v", anon)
	}

	// A token Meta no longer accepts shows before sends start failing.
	m.Connect.TokenCheckEvery = time.Nanosecond
	if !graph.RevokeToken(pageToken) {
		t.Fatal("the stand-in did not know the Page token")
	}
	var full struct {
		Channels []struct {
			Group   string   `json:"group"`
			State   string   `json:"state"`
			Reasons []string `json:"reasons"`
		} `json:"channels"`
	}
	callAPI(t, base, apiToken, "GET", "/healthz", nil, &full)
	for _, c := range full.Channels {
		if c.Group == "meta" && (c.State != "degraded" || !strings.Contains(strings.Join(c.Reasons, " "), "rejected by Meta")) {
			t.Errorf("after Meta revoked the Page token, /healthz says %+v, want degraded: rejected", c)
		}
	}

	t.Run("ForgedAndReplayedState", func(t *testing.T) {
		w := webSignIn(t, base, "ada@team.example", wsPassword)
		if resp, page := w.get("/admin/channels/facebook/callback?state=forged-state&code=stolen"); resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "not started here") {
			t.Errorf("a forged state: %d, want 403 with the reason", resp.StatusCode)
		}
		// A real flow, driven by hand: its callback works once.
		resp, _ := w.get("/admin/channels/facebook/start")
		dialog := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(dialog, graphTS.URL) {
			t.Fatalf("start: %d to %q", resp.StatusCode, dialog)
		}
		_, consent := w.get(dialog)
		link := regexp.MustCompile(`id="continue" href="([^"]+)"`).FindStringSubmatch(consent)
		if link == nil {
			t.Fatalf("no Continue link on the dialog:\n%s", consent)
		}
		du, _ := url.Parse(dialog)
		cont, _ := du.Parse(html.UnescapeString(link[1]))
		resp, _ = w.get(cont.String())
		callback := resp.Header.Get("Location")
		if !strings.HasPrefix(callback, base+"/admin/channels/facebook/callback?") {
			t.Fatalf("the dialog returned to %q", callback)
		}
		if resp, _ := w.get(callback); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("the callback: %d, want 303 to the Page picker", resp.StatusCode)
		}
		if resp, page := w.get(callback); resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "already used") {
			t.Errorf("the same callback again: %d, want 403", resp.StatusCode)
		}
		// Another admin's session cannot use a state it did not start.
		other, _ := addAgent(t, m, switchboard.Agent{Name: "Otto Admin", Email: "otto@team.example", Role: switchboard.RoleAdmin})
		if err := m.Inbox.SetPassword(context.Background(), switchboard.System, other.ID, wsPassword); err != nil {
			t.Fatal(err)
		}
		resp, _ = w.get("/admin/channels/facebook/start")
		_, consent = w.get(resp.Header.Get("Location"))
		link = regexp.MustCompile(`id="continue" href="([^"]+)"`).FindStringSubmatch(consent)
		cont, _ = du.Parse(html.UnescapeString(link[1]))
		resp, _ = w.get(cont.String())
		otto := webSignIn(t, base, "otto@team.example", wsPassword)
		if resp, _ := otto.get(resp.Header.Get("Location")); resp.StatusCode != http.StatusForbidden {
			t.Errorf("another admin's session using the state: %d, want 403", resp.StatusCode)
		}
	})
}
