package web_test

// The widget in a real headless Chromium against a stand-in for the
// visitor API (docs/design.md §6.2), served on another origin than the
// visitor's page: what the widget sends, byte for byte, and what it shows
// for each frame, including the cases the real server makes hard to
// produce on demand (a socket dropped before the echo, a refused upload).
// cmd/switchboard's widget tests run the same widget against the real
// server.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
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

	"github.com/switchboard-inbox/switchboard/internal/browsertest"
	"github.com/switchboard-inbox/switchboard/web"
)

// standIn plays the server's side of §6.2.
type standIn struct {
	t    *testing.T
	chat *httptest.Server // the Switchboard the script comes from
	site *httptest.Server // the shop that embeds it

	mu       sync.Mutex
	status   map[string]any
	sessions []map[string]any // bodies of POST /chat/sessions
	tokens   map[string]bool
	conn     *websocket.Conn // the latest visitor socket
	sockets  int
	frames   []map[string]any // visitor → server, in order
	uploads  []string         // file names
	// dropNext closes the socket on the next message frame, before the
	// echo, as a server restart would.
	dropNext bool
}

func newStandIn(t *testing.T) *standIn {
	s := &standIn{t: t, tokens: map[string]bool{}, status: map[string]any{"mode": "live", "typical_response_seconds": 90, "agents_online": 2}}
	s.site = httptest.NewServer(http.HandlerFunc(s.serveSite))
	t.Cleanup(s.site.Close)
	mux := http.NewServeMux()
	mux.Handle("GET /widget.js", web.Widget())
	mux.HandleFunc("/chat/sessions", s.cors(s.serveSession))
	mux.HandleFunc("/chat/uploads", s.cors(s.serveUpload))
	mux.HandleFunc("GET /chat/ws", s.serveSocket)
	// localhost, not 127.0.0.1: another origin, and another site, than
	// the shop's.
	s.chat = httptest.NewUnstartedServer(mux)
	s.chat.Start()
	t.Cleanup(func() {
		s.mu.Lock()
		if s.conn != nil {
			s.conn.CloseNow()
		}
		s.mu.Unlock()
		s.chat.Close()
	})
	return s
}

func (s *standIn) chatURL() string { return strings.Replace(s.chat.URL, "127.0.0.1", "localhost", 1) }

func (s *standIn) cors(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") != s.site.URL {
			http.Error(w, `{"error":{"code":"forbidden","message":"origin not allowed"}}`, http.StatusForbidden)
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", s.site.URL)
		w.Header().Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
		w.Header().Set("Access-Control-Allow-Methods", "POST")
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		h(w, r)
	}
}

func (s *standIn) serveSession(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	json.NewDecoder(r.Body).Decode(&body)
	s.mu.Lock()
	defer s.mu.Unlock()
	if body == nil {
		body = map[string]any{}
	}
	// A visitor's token goes on with the same visitor (channel/livechat
	// does the same).
	token, again := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if again {
		body["bearer"] = token
	}
	s.sessions = append(s.sessions, body)
	if again && !s.tokens[token] {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":{"code":"unauthorized","message":"the visitor token is not valid; start a session without it"}}`)
		return
	}
	if !again {
		token = fmt.Sprintf("token-%d", len(s.sessions))
		s.tokens[token] = true
	}
	json.NewEncoder(w).Encode(map[string]any{"visitor_token": token, "conversation_id": nil, "status": s.status})
}

func (s *standIn) serveUpload(w http.ResponseWriter, r *http.Request) {
	if token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); !s.known(token) {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	f, h, err := r.FormFile("file")
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	if ct := http.DetectContentType(head[:n]); !strings.HasPrefix(ct, "image/png") {
		w.WriteHeader(http.StatusUnprocessableEntity)
		fmt.Fprintf(w, `{"error":{"code":"unprocessable","message":"files of type %s cannot be attached"}}`, ct)
		return
	}
	s.mu.Lock()
	s.uploads = append(s.uploads, h.Filename)
	id := fmt.Sprintf("att-%d", len(s.uploads))
	s.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]any{"id": id, "name": h.Filename, "content_type": "image/png", "url": "/blobs/" + id})
}

func (s *standIn) known(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens[token]
}

func (s *standIn) serveSocket(w http.ResponseWriter, r *http.Request) {
	if !s.known(r.URL.Query().Get("token")) {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: []string{strings.TrimPrefix(s.site.URL, "http://")}})
	if err != nil {
		return
	}
	s.mu.Lock()
	s.conn = c
	s.sockets++
	status := s.status
	s.mu.Unlock()
	ctx := r.Context()
	s.write(c, map[string]any{"type": "status", "mode": status["mode"], "typical_response_seconds": status["typical_response_seconds"], "agents_online": status["agents_online"]})
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return
		}
		var f map[string]any
		if json.Unmarshal(data, &f) != nil {
			continue
		}
		s.mu.Lock()
		s.frames = append(s.frames, f)
		drop := s.dropNext && f["type"] == "message"
		if drop {
			s.dropNext = false
		}
		s.mu.Unlock()
		if drop {
			c.CloseNow()
			return
		}
	}
}

func (s *standIn) write(c *websocket.Conn, frame map[string]any) {
	data, _ := json.Marshal(frame)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.Write(ctx, websocket.MessageText, data)
}

// push sends a frame to the visitor's latest socket.
func (s *standIn) push(frame map[string]any) {
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c == nil {
		s.t.Fatal("no visitor socket")
	}
	s.write(c, frame)
}

// sessionList returns the bodies of POST /chat/sessions so far.
func (s *standIn) sessionList() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.sessions...)
}

// framesOf returns the frames of one type the visitor sent so far.
func (s *standIn) framesOf(typ string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, f := range s.frames {
		if f["type"] == typ {
			out = append(out, f)
		}
	}
	return out
}

// waitFrames waits until the visitor has sent n frames of the type.
func (s *standIn) waitFrames(typ string, n int) []map[string]any {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if fs := s.framesOf(typ); len(fs) >= n {
			return fs
		}
		if time.Now().After(deadline) {
			s.mu.Lock()
			all := fmt.Sprint(s.frames)
			s.mu.Unlock()
			s.t.Fatalf("the visitor sent %d %q frames, want %d (all: %s)", len(s.framesOf(typ)), typ, n, all)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serveSite is the shop: a page with the script tag, under a strict
// Content-Security-Policy (no inline script or style, no eval) that lets
// the widget reach its own server only. ?css=hostile adds a style sheet
// that tries to restyle everything; ?site= names the site key.
func (s *standIn) serveSite(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/hostile.css" {
		w.Header().Set("Content-Type", "text/css")
		io.WriteString(w, `* { color: rgb(255, 0, 0) !important; font: italic 31px/3 serif !important; letter-spacing: 4px !important; }
div, button, textarea, input, form, label, span { display: block !important; background: rgb(0, 255, 0) !important; border: 9px solid black !important; width: 50px !important; }
switchboard-chat { display: none !important; opacity: 0 !important; }
body { transform: none; }`)
		return
	}
	site := r.URL.Query().Get("site")
	chat := s.chatURL()
	css := ""
	if r.URL.Query().Get("css") == "hostile" {
		css = `<link rel="stylesheet" href="/hostile.css">`
	}
	w.Header().Set("Content-Security-Policy", fmt.Sprintf("default-src 'self'; script-src %s; connect-src %s %s; img-src 'self' %s; style-src 'self'", chat, chat, strings.Replace(chat, "http", "ws", 1), chat))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>%s</head>
<body><h1>The shop</h1>
<div class="panel" id="p-panel">page panel</div><button class="launcher" id="p-launcher">page button</button>
<label id="p-label">page label</label><div class="msg me" id="p-msg"><div class="bubble" id="p-bubble">page bubble</div></div>
<script src="%s/widget.js" data-site="%s" data-title="Acme support" async></script>
</body></html>`, css, chat, site)
}

// root is the widget's shadow root, in page JavaScript.
const root = `document.querySelector('switchboard-chat').shadowRoot`

// startChat is the pre-chat form's button.
const startChat = `form[aria-label="Start a chat"] button`

func q(sel string) chromedp.JSPath {
	return chromedp.JSPath(root + `.querySelector(` + strconv.Quote(sel) + `)`)
}

// text is the widget's visible text in one element.
func text(p *tab, sel string) string {
	return eval[string](p, root+`.querySelector(`+strconv.Quote(sel)+`).textContent`)
}

// open loads url and opens the widget.
func open(p *tab, url string) {
	p.Do(chromedp.Navigate(url))
	p.Wait("the launcher", root+`.querySelector('.launcher')`)
	p.Do(chromedp.Click(q(".launcher")))
	p.Wait("the panel", `!`+root+`.querySelector('.panel').hidden`)
}

type tab = browsertest.Tab

func eval[T any](p *tab, expr string) T { return browsertest.Eval[T](p, expr) }

func TestWidgetStandIn(t *testing.T) {
	b := browsertest.Start(t)
	s := newStandIn(t)

	t.Run("conversation", func(t *testing.T) {
		p := b.NewTab(t)
		open(p, s.site.URL+"/?site=conv")
		// The pre-chat form first; the name goes with the session.
		p.Wait("the pre-chat form", root+`.activeElement === `+root+`.querySelector('input[name=name]')`)
		p.Do(chromedp.SendKeys(q("input[name=name]"), "Vera"), chromedp.Click(q(startChat)))
		p.Wait("the composer", `!`+root+`.querySelector('.compose').hidden && `+root+`.activeElement === `+root+`.querySelector('textarea')`)
		if ss := s.sessionList(); len(ss) != 1 || ss[0]["site"] != "conv" || ss[0]["name"] != "Vera" || ss[0]["email"] != nil {
			t.Fatalf("sessions: %v", ss)
		}
		p.Wait("the status", root+`.querySelector('#sb-status').textContent === 'Typical response time: under 2 minutes'`)

		// Enter sends, with a client id.
		p.Do(chromedp.SendKeys(q("textarea"), "Where is my order?"), browsertest.Enter)
		f := s.waitFrames("message", 1)[0]
		cid, _ := f["client_id"].(string)
		if f["text"] != "Where is my order?" || len(cid) < 16 || f["attachments"] != nil {
			t.Fatalf("message frame: %v", f)
		}
		p.Wait("sending", root+`.querySelector('.msg.me').dataset.status === 'sending'`)
		s.push(map[string]any{"type": "message", "message": map[string]any{"id": "m1", "client_id": cid, "direction": "in", "text": "Where is my order?", "status": "received", "created_at": time.Now().UTC().Format(time.RFC3339Nano)}})
		// Stored is delivered (the server sends that receipt too).
		p.Wait("delivered", root+`.querySelector('.msg.me .meta').textContent.endsWith('Delivered')`)
		s.push(map[string]any{"type": "receipt", "message_id": "m1", "status": "delivered"})
		s.push(map[string]any{"type": "receipt", "message_id": "m1", "status": "read"})
		p.Wait("read", root+`.querySelector('.msg.me .meta').textContent.endsWith('Read')`)
		s.push(map[string]any{"type": "receipt", "message_id": "m1", "status": "delivered"})
		time.Sleep(100 * time.Millisecond)
		if got := text(p, ".msg.me .meta"); !strings.HasSuffix(got, "Read") {
			t.Fatalf("a late delivered receipt moved read back: %q", got)
		}

		// The agent types, then answers; the answer is text, never markup,
		// and, shown in an open panel, is reported read.
		s.push(map[string]any{"type": "typing", "agent": map[string]any{"name": "Sam"}})
		p.Wait("the typing indicator", root+`.querySelector('.typing').textContent === 'Sam is typing…'`)
		evil := `<img src=x onerror="document.title='owned'">It ships today`
		s.push(map[string]any{"type": "message", "message": map[string]any{"id": "m2", "direction": "out", "text": evil, "status": "sent", "created_at": time.Now().UTC().Format(time.RFC3339Nano),
			"attachments": []any{map[string]any{"id": "a9", "name": "label.pdf", "url": "/blobs/label.pdf"}, map[string]any{"id": "a10", "name": "bad", "url": "javascript:alert(1)"}}}})
		p.Wait("the answer", root+`.querySelectorAll('.msg').length === 2`)
		if got := text(p, ".msg:not(.me) .bubble"); !strings.HasPrefix(got, evil) {
			t.Fatalf("agent message shown as %q", got)
		}
		if n := eval[int](p, root+`.querySelectorAll('.msg img').length`); n != 0 || eval[string](p, `document.title`) != "Shop" {
			t.Fatal("the agent's text was parsed as HTML")
		}
		if href := eval[string](p, root+`.querySelector('.msg:not(.me) a').href`); href != s.chatURL()+"/blobs/label.pdf" {
			t.Fatalf("attachment link %q", href)
		}
		if n := eval[int](p, root+`.querySelectorAll('.msg:not(.me) a').length`); n != 1 {
			t.Fatalf("%d links: a javascript: URL became a link", n)
		}
		if got := text(p, ".typing"); got != "" {
			t.Fatalf("typing indicator still %q after the answer", got)
		}
		if r := s.waitFrames("read", 1); r[0]["message_id"] != "m2" {
			t.Fatalf("read frame %v", r[0])
		}

		// Typing is sent at most every 3 s.
		time.Sleep(3 * time.Second) // since the first message's typing
		typed := len(s.framesOf("typing"))
		p.Do(chromedp.SendKeys(q("textarea"), "a"))
		s.waitFrames("typing", typed+1)
		p.Do(chromedp.SendKeys(q("textarea"), "bcdef"))
		time.Sleep(500 * time.Millisecond)
		if n := len(s.framesOf("typing")) - typed; n != 1 {
			t.Fatalf("%d typing frames within half a second, want 1", n)
		}

		// Escape closes and gives the focus back to the launcher.
		p.Do(chromedp.KeyEvent("\x1b"))
		p.Wait("the panel to close", root+`.querySelector('.panel').hidden && `+root+`.activeElement === `+root+`.querySelector('.launcher')`)
		if got := eval[string](p, root+`.querySelector('.launcher').getAttribute('aria-expanded')`); got != "false" {
			t.Fatalf("aria-expanded %q", got)
		}
		// An answer while closed shows on the launcher, and is not read.
		s.push(map[string]any{"type": "message", "message": map[string]any{"id": "m3", "direction": "out", "text": "Anything else?", "status": "sent", "created_at": time.Now().UTC().Format(time.RFC3339Nano)}})
		p.Wait("the unread badge", root+`.querySelector('.badge').textContent === '1' && !`+root+`.querySelector('.badge').hidden`)
		if n := len(s.framesOf("read")); n != 1 {
			t.Fatalf("%d read frames with the panel closed", n)
		}
		p.Do(chromedp.KeyEvent("\r")) // the launcher has the focus
		s.waitFrames("read", 2)
		p.Wait("the badge to clear", root+`.querySelector('.badge').hidden`)
	})

	t.Run("reconnect", func(t *testing.T) {
		p := b.NewTab(t)
		open(p, s.site.URL+"/?site=reconnect")
		p.Do(chromedp.Click(q(startChat)))
		p.Wait("the composer", `!`+root+`.querySelector('.compose').hidden`)
		before := len(s.framesOf("message"))
		s.mu.Lock()
		s.dropNext = true
		sockets := s.sockets
		s.mu.Unlock()
		count := func() int { s.mu.Lock(); defer s.mu.Unlock(); return s.sockets }
		p.Do(chromedp.SendKeys(q("textarea"), "Hello?"), browsertest.Enter)
		fs := s.waitFrames("message", before+2) // sent, dropped, sent again
		first, again := fs[before], fs[before+1]
		if first["client_id"] != again["client_id"] || again["text"] != "Hello?" {
			t.Fatalf("resent %v after %v: want the same client id", again, first)
		}
		if n := count(); n != sockets+1 {
			t.Fatalf("%d sockets, want %d", n, sockets+1)
		}
		// The server stores it once and echoes it: still one message shown.
		s.push(map[string]any{"type": "message", "message": map[string]any{"id": "r1", "client_id": again["client_id"], "direction": "in", "text": "Hello?", "status": "received", "created_at": time.Now().UTC().Format(time.RFC3339Nano)}})
		p.Wait("sent", root+`.querySelector('.msg.me').dataset.status === 'received'`)
		// A replay of the history (after a reconnect) shows nothing twice.
		s.push(map[string]any{"type": "message", "message": map[string]any{"id": "r1", "direction": "in", "text": "Hello?", "status": "received", "created_at": time.Now().UTC().Format(time.RFC3339Nano)}})
		time.Sleep(100 * time.Millisecond)
		if n := eval[int](p, root+`.querySelectorAll('.msg').length`); n != 1 {
			t.Fatalf("%d messages shown, want 1", n)
		}
		if got := eval[string](p, `localStorage.getItem('switchboard.chat.reconnect')`); !strings.Contains(got, `"pending":[]`) {
			t.Fatalf("stored %s: the echoed message is still pending", got)
		}
	})

	t.Run("reload", func(t *testing.T) {
		p := b.NewTab(t)
		open(p, s.site.URL+"/?site=reload")
		p.Do(chromedp.Click(q(startChat)))
		p.Wait("the composer", `!`+root+`.querySelector('.compose').hidden`)
		n := len(s.sessionList())
		if ss := s.sessionList(); ss[n-1]["site"] != "reload" {
			t.Fatalf("session %v", ss[n-1])
		}
		// A message typed while the server is away survives a reload, and
		// goes with its client id once the socket is back.
		s.mu.Lock()
		s.conn.CloseNow()
		s.tokens["token-"+strconv.Itoa(n)] = false // refuse the socket for now
		s.mu.Unlock()
		before := len(s.framesOf("message"))
		p.Do(chromedp.SendKeys(q("textarea"), "Still there?"), browsertest.Enter)
		p.Wait("pending", root+`.querySelector('.msg.me').dataset.status === 'sending'`)
		p.Do(chromedp.Reload())
		p.Wait("the pending message after the reload", root+`.querySelector('.msg.me')?.dataset.status === 'sending'`)
		s.mu.Lock()
		s.tokens["token-"+strconv.Itoa(n)] = true
		s.mu.Unlock()
		fs := s.waitFrames("message", before+1)
		if fs[before]["text"] != "Still there?" {
			t.Fatalf("after the reload: %v", fs[before])
		}
		if ss := s.sessionList(); len(ss) != n {
			t.Fatalf("the reload made a new session: %v", ss[n:])
		}
		p.Do(chromedp.Click(q(".launcher")))
		if !eval[bool](p, root+`.querySelector('.form[aria-label="Start a chat"]').hidden`) {
			t.Fatal("the pre-chat form is back after the reload")
		}
	})

	t.Run("async", func(t *testing.T) {
		s.mu.Lock()
		s.status = map[string]any{"mode": "async", "typical_response_seconds": 4 * 3600, "agents_online": 0}
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			s.status = map[string]any{"mode": "live", "typical_response_seconds": 90, "agents_online": 2}
			s.mu.Unlock()
		}()
		p := b.NewTab(t)
		open(p, s.site.URL+"/?site=async")
		p.Do(chromedp.SendKeys(q("input[name=name]"), "Ann"), chromedp.Click(q(startChat)))
		p.Wait("the async promise", root+`.querySelector('#sb-status').textContent === 'We will respond by e-mail within 4 hours'`)
		p.Wait("the e-mail question", `!`+root+`.querySelector('form[aria-label="Your e-mail address"]').hidden`)
		n := len(s.sessionList())
		token := fmt.Sprintf("token-%d", n)
		p.Do(chromedp.SendKeys(q(`form[aria-label="Your e-mail address"] input`), "ann@example.com\r"))
		p.Wait("the e-mail form to go", root+`.querySelector('form[aria-label="Your e-mail address"]').hidden`)
		// The same visitor goes on, with the address.
		if ss := s.sessionList(); len(ss) != n+1 || ss[n]["email"] != "ann@example.com" || ss[n]["bearer"] != token {
			t.Fatalf("sessions: %v", ss)
		}
		if got := eval[string](p, `JSON.parse(localStorage.getItem('switchboard.chat.async')).token`); got != token {
			t.Fatalf("token %q after giving the address, want %q", got, token)
		}
		if !eval[bool](p, `!`+root+`.querySelector('.compose').hidden`) {
			t.Fatal("no composer after the address")
		}
	})

	t.Run("expired", func(t *testing.T) {
		// A token the server no longer knows (its sockets refused) is
		// checked, found bad and forgotten: the visitor can start again.
		p := b.NewTab(t)
		p.Do(chromedp.Navigate(s.site.URL + "/blank"))
		eval[chromedp.Void](p, `localStorage.setItem('switchboard.chat.expired', JSON.stringify({token: 'forged', uid: '', pending: []}))`)
		open(p, s.site.URL+"/?site=expired")
		p.Wait("the pre-chat form", `!`+root+`.querySelector('form[aria-label="Start a chat"]').hidden`)
		if got := eval[string](p, `localStorage.getItem('switchboard.chat.expired')`); strings.Contains(got, "forged") {
			t.Fatalf("still stored: %s", got)
		}
		ss := s.sessionList()
		last := ss[len(ss)-1]
		if last["bearer"] != "forged" {
			t.Fatalf("last session request %v, want the check of the forged token", last)
		}
	})

	t.Run("uploads", func(t *testing.T) {
		p := b.NewTab(t)
		open(p, s.site.URL+"/?site=uploads")
		p.Do(chromedp.Click(q(startChat)))
		p.Wait("the composer", `!`+root+`.querySelector('.compose').hidden`)
		dir := t.TempDir()
		write := func(name string, data []byte) string {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			return path
		}
		// Refused before upload: too large, a type the server refuses.
		big := filepath.Join(dir, "big.pdf")
		if f, err := os.Create(big); err != nil {
			t.Fatal(err)
		} else {
			f.Truncate(25<<20 + 1)
			f.Close()
		}
		p.Do(chromedp.SetUploadFiles(q("input[type=file]"), []string{big}))
		p.Wait("the size refusal", root+`.querySelector('[role=alert]').textContent === 'This file is too large: files are limited to 25 MB.'`)
		p.Do(chromedp.SetUploadFiles(q("input[type=file]"), []string{write("page.html", []byte("<!doctype html><script>alert(1)</script>"))}))
		p.Wait("the type refusal", root+`.querySelector('[role=alert]').textContent.startsWith('This type of file cannot be sent.')`)
		// Refused by the server (its sniffing has the last word).
		p.Do(chromedp.SetUploadFiles(q("input[type=file]"), []string{write("fake.png", []byte("GIF89a not a png at all"))}))
		p.Wait("the server's refusal", root+`.querySelector('[role=alert]').textContent === 'The file was refused: files of type image/gif cannot be attached.'`)
		s.mu.Lock()
		uploads := len(s.uploads)
		s.mu.Unlock()
		if uploads != 0 || eval[int](p, root+`.querySelectorAll('.chip').length`) != 0 {
			t.Fatalf("%d uploads", uploads)
		}
		// Accepted: sent with the next message.
		png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89")
		p.Do(chromedp.SetUploadFiles(q("input[type=file]"), []string{write("receipt.png", png)}))
		p.Wait("the chip", root+`.querySelector('.chip button[aria-label="Remove receipt.png"]')`)
		before := len(s.framesOf("message"))
		p.Do(chromedp.Click(q("button[aria-label=Send]")))
		f := s.waitFrames("message", before+1)[before]
		if atts, _ := f["attachments"].([]any); len(atts) != 1 || atts[0] != "att-1" || f["text"] != "" {
			t.Fatalf("message frame %v", f)
		}
		if eval[int](p, root+`.querySelectorAll('.chip').length`) != 0 {
			t.Fatal("the chip stayed after sending")
		}
	})

	t.Run("isolation", func(t *testing.T) {
		// The widget's styles stay in its shadow root: the page's own
		// elements with the widget's class names keep the browser's styles.
		p := b.NewTab(t)
		open(p, s.site.URL+"/?site=isolation")
		style := func(expr, prop string) string {
			return eval[string](p, `getComputedStyle(`+expr+`).getPropertyValue('`+prop+`')`)
		}
		for _, c := range []struct{ id, prop, want string }{
			{"p-panel", "position", "static"}, {"p-panel", "box-shadow", "none"}, {"p-panel", "box-sizing", "content-box"},
			{"p-launcher", "border-radius", "0px"}, {"p-label", "display", "inline"}, {"p-msg", "align-self", "auto"},
			{"p-bubble", "white-space", "normal"}, {"p-bubble", "background-color", "rgba(0, 0, 0, 0)"},
		} {
			if got := style(`document.getElementById('`+c.id+`')`, c.prop); got != c.want {
				t.Errorf("page's #%s %s: %q, want %q (the widget's CSS leaked)", c.id, c.prop, got, c.want)
			}
		}
		// And a page that restyles everything does not reach inside.
		open(p, s.site.URL+"/?site=isolation&css=hostile")
		host := `document.querySelector('switchboard-chat')`
		if got := style(`document.querySelector('h1')`, "color"); got != "rgb(255, 0, 0)" {
			t.Fatalf("the hostile style sheet did not load: h1 color %q", got)
		}
		for _, c := range []struct{ expr, prop, want string }{
			{host, "display", "block"}, {host, "opacity", "1"}, {host, "position", "fixed"},
			{root + `.querySelector('.launcher')`, "background-color", "rgb(36, 87, 214)"},
			{root + `.querySelector('.launcher')`, "width", "56px"},
			{root + `.querySelector('.panel')`, "display", "flex"},
			{root + `.querySelector('.panel')`, "width", "370px"},
			{root + `.querySelector('h2')`, "color", "rgb(255, 255, 255)"},
			{root + `.querySelector('h2')`, "font-size", "16px"},
			{root + `.querySelector('h2')`, "font-style", "normal"},
			{root + `.querySelector('h2')`, "letter-spacing", "normal"},
			{root + `.querySelector('label')`, "display", "flex"},
			{root + `.querySelector('label')`, "color", "rgb(55, 62, 76)"},
			{root + `.querySelector('input')`, "border-top-width", "1px"},
		} {
			if got := style(c.expr, c.prop); got != c.want {
				t.Errorf("under the page's hostile CSS, %s %s: %q, want %q", strings.TrimPrefix(c.expr, root), c.prop, got, c.want)
			}
		}
	})

	t.Run("narrow", func(t *testing.T) {
		p := b.NewTab(t)
		p.Do(chromedp.EmulateViewport(360, 640))
		open(p, s.site.URL+"/?site=narrow")
		box := eval[[]float64](p, `(r => [r.left, r.top, r.width, r.height])(`+root+`.querySelector('.panel').getBoundingClientRect())`)
		if box[0] != 0 || box[1] != 0 || box[2] != 360 || box[3] != 640 {
			t.Fatalf("panel at %v in a 360×640 window, want the whole window", box)
		}
		if !eval[bool](p, `getComputedStyle(`+root+`.querySelector('.launcher')).display === 'none'`) {
			t.Fatal("the launcher shows over the open panel")
		}
		p.Do(chromedp.Click(q(".x")))
		p.Wait("the launcher again", `getComputedStyle(`+root+`.querySelector('.launcher')).display !== 'none'`)
	})

	for _, line := range b.Console() {
		if strings.Contains(line, "exception") || strings.Contains(line, "Content Security Policy") || strings.Contains(line, "Refused") {
			t.Errorf("browser console: %s", line)
		}
	}
}
