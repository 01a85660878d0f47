package main

// The live-chat widget end to end: a real Switchboard, a shop page on
// another origin (the site's) that embeds GET /widget.js, a real headless
// Chromium as the visitor, and an agent on the agent socket and the API
// (docs/design.md §6.1, §6.2).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/internal/browsertest"
)

// widgetRoot is the widget's shadow root, in page JavaScript.
const widgetRoot = `document.querySelector('switchboard-chat').shadowRoot`

func widgetQ(sel string) chromedp.JSPath {
	return chromedp.JSPath(widgetRoot + `.querySelector(` + strconv.Quote(sel) + `)`)
}

// widgetEvent is one event of the agent socket.
type widgetEvent struct {
	ID             string          `json:"id"`
	Type           string          `json:"type"`
	ConversationID string          `json:"conversation_id"`
	Data           json.RawMessage `json:"data"`
}

type widgetMessage struct {
	ID          string `json:"id"`
	Direction   string `json:"direction"`
	Channel     string `json:"channel"`
	Text        string `json:"text"`
	Status      string `json:"status"`
	Attachments []struct {
		ID, URL, Name string
		ContentType   string `json:"content_type"`
		Size          int64  `json:"size"`
	} `json:"attachments"`
}

// widgetAgent is an agent: a socket and an API client.
type widgetAgent struct {
	t      *testing.T
	base   string
	token  string
	conn   *websocket.Conn
	events chan widgetEvent
}

func (a *widgetAgent) api(method, path string, body any, out any) int {
	a.t.Helper()
	return callAPI(a.t, a.base, a.token, method, path, body, out)
}

func (a *widgetAgent) send(frame map[string]any) {
	a.t.Helper()
	b, _ := json.Marshal(frame)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.conn.Write(ctx, websocket.MessageText, b); err != nil {
		a.t.Fatal(err)
	}
}

// wait returns the first event of the type for which ok holds.
func (a *widgetAgent) wait(what, typ string, ok func(widgetEvent, widgetMessage) bool) (widgetEvent, widgetMessage) {
	a.t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-a.events:
			if ev.Type != typ {
				continue
			}
			var m widgetMessage
			json.Unmarshal(ev.Data, &m)
			if ok(ev, m) {
				return ev, m
			}
		case <-timeout:
			a.t.Fatalf("the agent's socket had no %s within 20s", what)
		}
	}
}

func TestWidgetEndToEnd(t *testing.T) {
	b := browsertest.Start(t)

	// The shop: its own page, its own style sheet (buttons, labels and a
	// .panel of its own, and rules a careless theme has), on an origin
	// that is not Switchboard's.
	shop := newWidgetShop(t)

	addr := freeAddr(t)
	m := &Main{Config: Config{
		Addr: addr, PublicURL: "http://" + addr, DataDir: t.TempDir(), LogLevel: "warn", LogFormat: "text",
		IngestBatch: 64, OutboxMaxAttempts: 3, RoutingOff: true,
	}}
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	// localhost: another origin, and another site, than the shop's
	// 127.0.0.1.
	site, err := m.Inbox.AddSite(context.Background(), switchboard.System, switchboard.Site{Name: "Shop", Origins: []string{shop.URL}})
	if err != nil {
		t.Fatal(err)
	}
	shop.serve(strings.Replace(m.URL(), "127.0.0.1", "localhost", 1), site.Key)

	ag, token := addAgent(t, m, switchboard.Agent{Name: "Sarah", Email: "sarah@team.example", Role: switchboard.RoleAdmin})
	agent := &widgetAgent{t: t, base: m.URL(), token: token, events: make(chan widgetEvent, 1000)}
	if code := agent.api("POST", "/api/v1/agents/"+ag.ID+"/status", map[string]string{"status": "online"}, nil); code != 200 {
		t.Fatalf("agent status: %d", code)
	}
	conn, _, err := websocket.Dial(context.Background(), "ws://"+addr+"/api/v1/realtime", &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadLimit(1 << 20)
	agent.conn = conn
	t.Cleanup(func() { conn.CloseNow() })
	go func() {
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				return
			}
			var ev widgetEvent
			if json.Unmarshal(data, &ev) == nil {
				agent.events <- ev
			}
		}
	}()

	p := b.NewTab(t)
	p.Do(chromedp.Navigate(shop.URL + "/"))
	p.Wait("the launcher", widgetRoot+`.querySelector('.launcher')`)
	// The page's CSS does not reach the widget's shadow root, and the
	// widget's does not reach the page.
	style := func(expr, prop string) string {
		return browsertest.Eval[string](p, `getComputedStyle(`+expr+`).getPropertyValue('`+prop+`')`)
	}
	for _, c := range []struct{ expr, prop, want string }{
		{`document.querySelector('#buy')`, "text-transform", "uppercase"},
		{`document.querySelector('#buy')`, "background-color", "rgb(255, 102, 0)"},
		{`document.querySelector('.panel')`, "position", "static"},
		{`document.querySelector('.panel')`, "box-shadow", "none"},
		{`document.querySelector('label')`, "display", "inline"},
		{widgetRoot + `.querySelector('.launcher')`, "text-transform", "none"},
		{widgetRoot + `.querySelector('.launcher')`, "background-color", "rgb(36, 87, 214)"},
		{widgetRoot + `.querySelector('.launcher')`, "border-radius", "50%"},
		{widgetRoot + `.querySelector('label')`, "display", "flex"},
		{widgetRoot + `.querySelector('label')`, "font-family", `system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif`},
		{`document.querySelector('switchboard-chat')`, "display", "block"},
		{`document.querySelector('switchboard-chat')`, "letter-spacing", "normal"},
	} {
		if got := style(c.expr, c.prop); got != c.want {
			t.Errorf("%s %s: %q, want %q", c.expr, c.prop, got, c.want)
		}
	}

	// The visitor opens the chat, gives a name and writes.
	p.Do(chromedp.Click(widgetQ(".launcher")))
	p.Wait("the pre-chat form", `!`+widgetRoot+`.querySelector('form[aria-label="Start a chat"]').hidden`)
	p.Do(chromedp.SendKeys(widgetQ("input[name=name]"), "Vera Visitor"), chromedp.Click(widgetQ(`form[aria-label="Start a chat"] button`)))
	p.Wait("the composer", `!`+widgetRoot+`.querySelector('.compose').hidden`)
	p.Wait("the live status", `/^(Typical response time: |We are online)/.test(`+widgetRoot+`.querySelector('#sb-status').textContent)`)
	p.Do(chromedp.SendKeys(widgetQ("textarea"), "Hi! My order #1042 has not arrived yet."), browsertest.Enter)
	created, first := agent.wait("the visitor's message", "message.created", func(_ widgetEvent, m widgetMessage) bool {
		return m.Direction == "in" && m.Text == "Hi! My order #1042 has not arrived yet."
	})
	if first.Channel != "livechat" {
		t.Fatalf("visitor message on %q", first.Channel)
	}
	conv := created.ConversationID
	p.Wait("the echo", widgetRoot+`.querySelector('.msg.me').dataset.status !== 'sending'`)

	// The agent types; the visitor sees it.
	agent.send(map[string]any{"type": "typing", "conversation_id": conv})
	p.Wait("the typing indicator", widgetRoot+`.querySelector('.typing').textContent === 'Sarah is typing…'`)

	// The agent answers; the visitor sees it, reads it, and the agent
	// sees it read.
	reply := "Sorry about that, Vera! It left our warehouse this morning: you will have it tomorrow."
	var sent widgetMessage
	if code := agent.api("POST", "/api/v1/conversations/"+conv+"/messages", map[string]any{"text": reply}, &sent); code != http.StatusAccepted {
		t.Fatalf("reply: %d %+v", code, sent)
	}
	p.Wait("the reply", `[...`+widgetRoot+`.querySelectorAll('.msg:not(.me) .bubble')].some(b => b.textContent === `+strconv.Quote(reply)+`)`)
	if got := browsertest.Eval[string](p, widgetRoot+`.querySelector('.msg:not(.me) .who').textContent`); got != "Sarah" {
		t.Errorf("the reply is signed %q", got)
	}
	agent.wait("the reply read", "message.updated", func(_ widgetEvent, m widgetMessage) bool { return m.ID == sent.ID && m.Status == "read" })
	p.Wait("the typing indicator to go", widgetRoot+`.querySelector('.typing').textContent === ''`)
	// The agent has the conversation open: the visitor's message is read.
	agent.send(map[string]any{"type": "viewing", "conversation_id": conv})
	p.Wait("the visitor's message read", widgetRoot+`.querySelector('.msg.me').dataset.status === 'read' && `+widgetRoot+`.querySelector('.msg.me .meta').textContent.endsWith('Read')`)
	agent.send(map[string]any{"type": "viewing", "conversation_id": ""})

	// The visitor sends a photo; the agent's message has it.
	png := filepath.Join(t.TempDir(), "parcel.png")
	if err := os.WriteFile(png, widgetPNG, 0o600); err != nil {
		t.Fatal(err)
	}
	p.Do(chromedp.SetUploadFiles(widgetQ("input[type=file]"), []string{png}))
	p.Wait("the attachment chip", widgetRoot+`.querySelector('.chip button[aria-label="Remove parcel.png"]')`)
	p.Do(chromedp.SendKeys(widgetQ("textarea"), "Here is the label on the box I got instead."), browsertest.Enter)
	_, withFile := agent.wait("the visitor's photo", "message.created", func(_ widgetEvent, m widgetMessage) bool {
		return m.Direction == "in" && len(m.Attachments) > 0
	})
	if a := withFile.Attachments[0]; a.Name != "parcel.png" || a.ContentType != "image/png" || a.Size != int64(len(widgetPNG)) || withFile.Text != "Here is the label on the box I got instead." {
		t.Fatalf("the agent got %+v", withFile)
	}
	p.Wait("the photo's link", widgetRoot+`.querySelector('.msg.me a.att')?.textContent === 'parcel.png'`)

	// A reload shows the conversation so far, with the same visitor.
	p.Do(chromedp.Reload())
	p.Wait("the conversation after the reload", `(t => t.includes('order #1042') && t.includes('warehouse this morning') && t.includes('parcel.png'))(`+widgetRoot+`.querySelector('.log').textContent)`)
	if n := browsertest.Eval[int](p, widgetRoot+`.querySelectorAll('.msg').length`); n != 3 {
		t.Fatalf("%d messages after the reload, want 3", n)
	}
	p.Do(chromedp.Click(widgetQ(".launcher")))
	p.Wait("the composer after the reload", `!`+widgetRoot+`.querySelector('.compose').hidden`)
	p.Do(chromedp.SendKeys(widgetQ("textarea"), "Thanks!"), browsertest.Enter)
	agent.wait("the visitor's thanks", "message.created", func(ev widgetEvent, m widgetMessage) bool {
		if m.Text == "Thanks!" && ev.ConversationID != conv {
			t.Fatalf("after the reload the visitor wrote into %s, not %s", ev.ConversationID, conv)
		}
		return m.Text == "Thanks!"
	})
	var shown struct{ Messages []widgetMessage }
	agent.api("GET", "/api/v1/conversations/"+conv, nil, &shown)
	if len(shown.Messages) != 4 {
		t.Fatalf("the conversation has %d messages, want 4 (nothing twice): %+v", len(shown.Messages), shown.Messages)
	}

	if path := os.Getenv("SWITCHBOARD_WIDGET_PNG"); path != "" {
		// The README's picture: the agent answers once more, so the last
		// word in view is the team's.
		if code := agent.api("POST", "/api/v1/conversations/"+conv+"/messages", map[string]any{"text": "You're welcome! I've also sent a prepaid return label to swap the wrong item."}, nil); code != http.StatusAccepted {
			t.Fatalf("reply: %d", code)
		}
		p.Wait("the last reply", widgetRoot+`.querySelector('.log').textContent.includes('prepaid return label')`)
		p.Do(chromedp.Blur(widgetQ("textarea")))
		png, err := chromedp.Run(p.Ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// With nobody online the widget promises an e-mail answer and asks for
	// an address; the address reaches the visitor (and the customer, as a
	// claim, with the next message).
	if code := agent.api("POST", "/api/v1/agents/"+ag.ID+"/status", map[string]string{"status": "offline"}, nil); code != 200 {
		t.Fatalf("agent status: %d", code)
	}
	site2, err := m.Inbox.AddSite(context.Background(), switchboard.System, switchboard.Site{Name: "Shop, after hours", Origins: []string{shop.URL}})
	if err != nil {
		t.Fatal(err)
	}
	shop.serve(shop.chatURL(), site2.Key) // another key: another visitor in the same browser
	q := b.NewTab(t)
	q.Do(chromedp.Navigate(shop.URL + "/"))
	q.Wait("the launcher", widgetRoot+`.querySelector('.launcher')`)
	q.Do(chromedp.Click(widgetQ(".launcher")), chromedp.Click(widgetQ(`form[aria-label="Start a chat"] button`)))
	q.Wait("the async promise", widgetRoot+`.querySelector('#sb-status').textContent.startsWith('We will respond by e-mail')`)
	q.Wait("the e-mail question", `!`+widgetRoot+`.querySelector('form[aria-label="Your e-mail address"]').hidden`)
	q.Do(chromedp.SendKeys(widgetQ(`form[aria-label="Your e-mail address"] input`), "ann@example.com"), chromedp.Click(widgetQ(`form[aria-label="Your e-mail address"] button`)))
	q.Wait("the e-mail form to go", widgetRoot+`.querySelector('form[aria-label="Your e-mail address"]').hidden`)
	q.Do(chromedp.SendKeys(widgetQ("textarea"), "Do you ship to Norway?"), browsertest.Enter)
	asked, _ := agent.wait("the after-hours question", "message.created", func(_ widgetEvent, m widgetMessage) bool { return m.Text == "Do you ship to Norway?" })
	var after struct{ Customer struct{ ID string } }
	agent.api("GET", "/api/v1/conversations/"+asked.ConversationID, nil, &after)
	var cust struct {
		Claims []struct{ Kind, Value string }
	}
	agent.api("GET", "/api/v1/customers/"+after.Customer.ID, nil, &cust)
	if len(cust.Claims) != 1 || cust.Claims[0].Value != "ann@example.com" {
		t.Fatalf("customer claims %+v, want the address the visitor gave", cust.Claims)
	}
	if asked.ConversationID == conv {
		t.Fatal("the second site's visitor wrote into the first visitor's conversation")
	}

	// Replies that piled up while the panel was closed are all reported
	// read once it opens, within the server's limit of frames a second.
	q.Do(chromedp.Click(widgetQ(".x")))
	replies := map[string]bool{}
	for i := range 12 {
		var r widgetMessage
		if code := agent.api("POST", "/api/v1/conversations/"+asked.ConversationID+"/messages", map[string]any{"text": fmt.Sprintf("Answer %d", i+1)}, &r); code != http.StatusAccepted {
			t.Fatalf("reply %d: %d", i, code)
		}
		replies[r.ID] = true
	}
	q.Wait("the unread badge", widgetRoot+`.querySelector('.badge').textContent === '9+'`)
	q.Do(chromedp.Click(widgetQ(".launcher")))
	for len(replies) > 0 {
		_, m := agent.wait("every reply read", "message.updated", func(_ widgetEvent, m widgetMessage) bool { return replies[m.ID] && m.Status == "read" })
		delete(replies, m.ID)
	}

	for _, line := range b.Console() {
		if strings.Contains(line, "exception") || strings.Contains(line, "Refused") {
			t.Errorf("browser console: %s", line)
		}
	}
}

// widgetPNG is a 1×1 PNG.
var widgetPNG = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82")

const widgetShopPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tea &amp; Kettle</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/shop.css"></head>
<body>
<header><strong>Tea &amp; Kettle</strong><nav>Teas · Kettles · Gifts</nav></header>
<main>
<h1>Gooseneck kettle, matte black</h1>
<p>Pour-over precision: a 1 litre kettle with a thermometer in the lid.</p>
<p class="price">€ 49.00</p>
<label>Quantity <input value="1" size="2"></label>
<button id="buy">Add to basket</button>
<div class="panel">Free delivery from € 40</div>
</main>
<script src="%s/widget.js" data-site="%s" data-title="Tea &amp; Kettle support" async></script>
</body></html>`

// widgetShopCSS is a theme with the rules that break embedded widgets:
// everything, buttons and divs restyled, some with !important.
const widgetShopCSS = `
* { letter-spacing: .02em; font-family: Georgia, serif; }
body { margin: 0; background: #faf6ef; color: #3b2f25; }
header { display: flex; justify-content: space-between; padding: 18px 40px; background: #3b2f25; color: #faf6ef; }
main { max-width: 640px; margin: 40px; }
h1 { font-size: 34px; }
.price { font-size: 24px; font-weight: bold; }
button { text-transform: uppercase !important; background: #ff6600 !important; color: #fff; border: 0; border-radius: 0 !important; padding: 12px 24px; font-size: 16px; }
div { border: 2px dashed #c9b8a0; padding: 12px; margin-top: 24px; }
label { margin-right: 12px; }
switchboard-chat { letter-spacing: 1em; }
`

// widgetShop is a shop's site, on an origin of its own, with its own
// style sheet, embedding the widget of the Switchboard and site it is
// told to serve.
type widgetShop struct {
	*httptest.Server
	mu            sync.Mutex
	chat, siteKey string
}

func newWidgetShop(t *testing.T) *widgetShop {
	t.Helper()
	s := &widgetShop{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/shop.css" {
			w.Header().Set("Content-Type", "text/css")
			io.WriteString(w, widgetShopCSS)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		s.mu.Lock()
		defer s.mu.Unlock()
		fmt.Fprintf(w, widgetShopPage, s.chat, s.siteKey)
	}))
	t.Cleanup(s.Close)
	return s
}

// serve makes the shop's page embed the widget of chatURL for siteKey.
func (s *widgetShop) serve(chatURL, siteKey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chat, s.siteKey = chatURL, siteKey
}

func (s *widgetShop) chatURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.chat
}
