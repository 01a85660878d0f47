package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/email/smtptest"
	"github.com/switchboard-inbox/switchboard/channel/livechat"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

const shopOrigin = "https://shop.example"

// chatEnv is a real Switchboard with a live-chat site and an agent.
type chatEnv struct {
	t          *testing.T
	m          *Main
	key        string // the site's key
	secret     string
	agent      switchboard.Agent
	agentToken string
}

func newChatEnv(t *testing.T, backend string, mod func(*Config)) *chatEnv {
	t.Helper()
	addr := freeAddr(t)
	c := Config{Addr: addr, PublicURL: "http://" + addr, DataDir: t.TempDir(), LogLevel: "warn", LogFormat: "text",
		IngestBatch: 64, OutboxMaxAttempts: 3, RoutingOff: true}
	if backend == "postgres" {
		c.DatabaseURL = storetest.URL(t, "postgres")
	}
	if mod != nil {
		mod(&c)
	}
	return startChatEnv(t, c)
}

func startChatEnv(t *testing.T, c Config) *chatEnv {
	t.Helper()
	m := &Main{Config: c}
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	e := &chatEnv{t: t, m: m}
	e.agent, e.agentToken = addAgent(t, m, switchboard.Agent{Name: "Sarah", Email: fmt.Sprintf("sarah%d@team.example", time.Now().UnixNano()), Role: switchboard.RoleAdmin})
	site, err := m.Inbox.AddSite(context.Background(), switchboard.System, switchboard.Site{Name: "Shop", Origins: []string{shopOrigin}})
	if err != nil {
		t.Fatal(err)
	}
	e.key, e.secret = site.Key, site.Secret
	e.setAgentStatus("online")
	return e
}

func (e *chatEnv) setAgentStatus(status string) {
	e.t.Helper()
	if code := e.api("POST", "/api/v1/agents/"+e.agent.ID+"/status", map[string]string{"status": status}, nil); code != 200 {
		e.t.Fatalf("agent status: %d", code)
	}
}

type sessionAnswer struct {
	VisitorToken   string  `json:"visitor_token"`
	ConversationID *string `json:"conversation_id"`
	Status         struct {
		Mode                   string `json:"mode"`
		TypicalResponseSeconds *int   `json:"typical_response_seconds"`
		AgentsOnline           *int   `json:"agents_online"`
	} `json:"status"`
	Error *struct{ Code, Message string } `json:"error"`
}

// session posts POST /chat/sessions from origin, with a bearer token when
// one is given.
func (e *chatEnv) session(origin, bearer string, body map[string]string) (int, sessionAnswer) {
	e.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", e.m.URL()+"/chat/sessions", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var a sessionAnswer
	json.NewDecoder(resp.Body).Decode(&a)
	if resp.StatusCode == 200 && resp.Header.Get("Access-Control-Allow-Origin") != origin {
		e.t.Fatalf("session answered without Access-Control-Allow-Origin %s", origin)
	}
	return resp.StatusCode, a
}

// visitor starts a session and returns its token.
func (e *chatEnv) visitor(body map[string]string) string {
	e.t.Helper()
	if body == nil {
		body = map[string]string{}
	}
	body["site"] = e.key
	code, a := e.session(shopOrigin, "", body)
	if code != 200 || a.VisitorToken == "" {
		e.t.Fatalf("session: %d %+v", code, a)
	}
	return a.VisitorToken
}

// api calls the agent API as the env's agent.
func (e *chatEnv) api(method, path string, body any, out any) int {
	e.t.Helper()
	return callAPI(e.t, e.m.URL(), e.agentToken, method, path, body, out)
}

// wsFrame is any frame either socket sends.
type wsFrame struct {
	ID             string          `json:"id"`
	Type           string          `json:"type"`
	ConversationID string          `json:"conversation_id"`
	Data           json.RawMessage `json:"data"`
	Message        *chatMessage    `json:"message"`
	MessageID      string          `json:"message_id"`
	Status         string          `json:"status"`
	Mode           string          `json:"mode"`
	AgentsOnline   *int            `json:"agents_online"`
	Agent          *struct{ Name string }
	Error          *struct{ Code, Message string } `json:"error"`
}

type chatMessage struct {
	ID, ConversationID, Direction, Text, Status, ClientID string
	Attachments                                           []struct{ ID, URL, Name, ContentType string }
	Agent                                                 *struct{ Name string }
}

func (m *chatMessage) UnmarshalJSON(b []byte) error {
	var raw struct {
		ID             string `json:"id"`
		ConversationID string `json:"conversation_id"`
		Direction      string `json:"direction"`
		Text           string `json:"text"`
		Status         string `json:"status"`
		ClientID       string `json:"client_id"`
		Attachments    []struct {
			ID          string `json:"id"`
			URL         string `json:"url"`
			Name        string `json:"name"`
			ContentType string `json:"content_type"`
		} `json:"attachments"`
		Agent *struct {
			Name string `json:"name"`
		} `json:"agent"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*m = chatMessage{ID: raw.ID, ConversationID: raw.ConversationID, Direction: raw.Direction, Text: raw.Text, Status: raw.Status, ClientID: raw.ClientID}
	for _, a := range raw.Attachments {
		m.Attachments = append(m.Attachments, struct{ ID, URL, Name, ContentType string }{a.ID, a.URL, a.Name, a.ContentType})
	}
	if raw.Agent != nil {
		m.Agent = &struct{ Name string }{raw.Agent.Name}
	}
	return nil
}

// ws is a socket with one reading goroutine (a Read whose context ends
// closes the connection, so reads are never timed out).
type ws struct {
	t      *testing.T
	conn   *websocket.Conn
	frames chan wsFrame
	err    chan error
}

func dialWS(t *testing.T, url string, h http.Header) (*ws, *http.Response, error) {
	t.Helper()
	conn, resp, err := websocket.Dial(context.Background(), url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, resp, err
	}
	conn.SetReadLimit(1 << 20)
	t.Cleanup(func() { conn.CloseNow() })
	s := &ws{t: t, conn: conn, frames: make(chan wsFrame, 10000), err: make(chan error, 1)}
	go func() {
		for {
			_, b, err := conn.Read(context.Background())
			if err != nil {
				s.err <- err
				return
			}
			var f wsFrame
			if err := json.Unmarshal(b, &f); err != nil {
				s.err <- fmt.Errorf("frame %s: %w", b, err)
				return
			}
			s.frames <- f
		}
	}()
	return s, resp, nil
}

func (e *chatEnv) wsURL() string { return "ws" + strings.TrimPrefix(e.m.URL(), "http") }

// dialVisitor opens a visitor's socket from the shop's page.
func (e *chatEnv) dialVisitor(token string) *ws {
	e.t.Helper()
	s, resp, err := dialWS(e.t, e.wsURL()+"/chat/ws?token="+token, http.Header{"Origin": {shopOrigin}})
	if err != nil {
		e.t.Fatalf("visitor socket: %v %v", resp, err)
	}
	return s
}

// dialAgent opens the agent's socket.
func (e *chatEnv) dialAgent() *ws {
	e.t.Helper()
	s, _, err := dialWS(e.t, e.wsURL()+"/api/v1/realtime", http.Header{"Authorization": {"Bearer " + e.agentToken}})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (s *ws) send(v any) {
	s.t.Helper()
	b, _ := json.Marshal(v)
	if err := s.conn.Write(context.Background(), websocket.MessageText, b); err != nil {
		s.t.Fatal(err)
	}
}

func (s *ws) tryNext(wait time.Duration, match func(wsFrame) bool) (wsFrame, error) {
	deadline := time.After(wait)
	for {
		select {
		case f := <-s.frames:
			if match(f) {
				return f, nil
			}
		case err := <-s.err:
			s.err <- err
			return wsFrame{}, err
		case <-deadline:
			return wsFrame{}, context.DeadlineExceeded
		}
	}
}

// next returns the next frame match accepts, skipping others, or fails
// after 10 s.
func (s *ws) next(what string, match func(wsFrame) bool) wsFrame {
	s.t.Helper()
	f, err := s.tryNext(10*time.Second, match)
	if err != nil {
		s.t.Fatalf("waiting for %s: %v", what, err)
	}
	return f
}

func ofType(typ string) func(wsFrame) bool { return func(f wsFrame) bool { return f.Type == typ } }

// agentMessage decodes an agent frame's message.
func agentMessage(f wsFrame) (m struct {
	ID, ConversationID, Direction, Channel, Text, Status, ProviderID string
	Attachments                                                      []struct{ Name string }
}) {
	var raw struct {
		ID             string `json:"id"`
		ConversationID string `json:"conversation_id"`
		Direction      string `json:"direction"`
		Channel        string `json:"channel"`
		Text           string `json:"text"`
		Status         string `json:"status"`
		ProviderID     string `json:"provider_id"`
		Attachments    []struct {
			Name string `json:"name"`
		} `json:"attachments"`
	}
	json.Unmarshal(f.Data, &raw)
	m.ID, m.ConversationID, m.Direction, m.Channel, m.Text, m.Status, m.ProviderID = raw.ID, raw.ConversationID, raw.Direction, raw.Channel, raw.Text, raw.Status, raw.ProviderID
	for _, a := range raw.Attachments {
		m.Attachments = append(m.Attachments, struct{ Name string }{a.Name})
	}
	return m
}

// say sends a visitor's message and waits for its echo.
func (s *ws) say(clientID, text string, attachments ...string) chatMessage {
	s.t.Helper()
	f := map[string]any{"type": "message", "client_id": clientID, "text": text}
	if len(attachments) > 0 {
		f["attachments"] = attachments
	}
	s.send(f)
	echo := s.next("the echo of "+clientID, func(f wsFrame) bool {
		return f.Type == "message" && f.Message != nil && f.Message.ClientID == clientID
	})
	return *echo.Message
}

func eachBackend(t *testing.T, fn func(t *testing.T, backend string)) {
	for _, b := range []string{"sqlite", "postgres"} {
		t.Run(b, func(t *testing.T) { fn(t, b) })
	}
}

// TestChatSession: POST /chat/sessions refuses a wrong user_hash (403), a
// page of another origin, an unknown site and another site's token; a
// right user_hash joins the customer with that external_id; a typed
// e-mail of an existing customer is a claim suggesting them, never their
// thread; a token used again finds the visitor's conversation.
func TestChatSession(t *testing.T) {
	eachBackend(t, func(t *testing.T, backend string) {
		e := newChatEnv(t, backend, nil)
		ctx := context.Background()
		if code, a := e.session(shopOrigin, "", map[string]string{"site": e.key, "user_id": "u-42", "user_hash": livechat.UserHash("wrong", "u-42")}); code != 403 || a.Error == nil {
			t.Fatalf("wrong user_hash: %d %+v, want 403", code, a)
		}
		if code, _ := e.session(shopOrigin, "", map[string]string{"site": e.key, "user_hash": "ab"}); code != 400 {
			t.Fatalf("user_hash without user_id: %d, want 400", code)
		}
		if code, _ := e.session("https://evil.example", "", map[string]string{"site": e.key}); code != 403 {
			t.Fatalf("forged origin: %d, want 403", code)
		}
		// An app or a server sends no Origin: no page is involved.
		if code, a := e.session("", "", map[string]string{"site": e.key}); code != 200 || a.VisitorToken == "" {
			t.Fatalf("no origin (not a browser): %d %+v, want a session", code, a)
		}
		if code, _ := e.session(shopOrigin, "", map[string]string{"site": "site_nope"}); code != 404 {
			t.Fatalf("unknown site: %d, want 404", code)
		}

		// The host app's user u-42 already wrote (on their phone, say):
		// a customer with that external_id.
		res, err := e.m.Inbox.Ingest(ctx, []switchboard.Inbound{{Channel: switchboard.ChannelLivechat, ProviderID: "seed-1", ContentType: "text", Text: "from the app",
			Identities: []switchboard.IdentityRef{{Kind: switchboard.IdentityExternalID, Value: "u-42"}}}})
		if err != nil || !res[0].Stored() {
			t.Fatal(err, res)
		}
		code, a := e.session(shopOrigin, "", map[string]string{"site": e.key, "name": "Uma", "user_id": "u-42", "user_hash": livechat.UserHash(e.secret, "u-42")})
		if code != 200 || a.ConversationID == nil || *a.ConversationID != res[0].ConversationID {
			t.Fatalf("right user_hash: %d %+v, want conversation %s", code, a, res[0].ConversationID)
		}
		if a.Status.Mode != "live" || a.Status.AgentsOnline == nil || a.Status.TypicalResponseSeconds == nil {
			t.Fatalf("status: %+v, want live with Sarah online", a.Status)
		}
		v := e.dialVisitor(a.VisitorToken)
		if echo := v.say("c1", "it's me on the web"); echo.ConversationID != res[0].ConversationID {
			t.Fatalf("a verified visitor's message went to %s, want the customer's %s", echo.ConversationID, res[0].ConversationID)
		}

		// Ana wrote by e-mail; a visitor types her address.
		ana, err := e.m.Inbox.Ingest(ctx, []switchboard.Inbound{{Channel: switchboard.ChannelEmail, ProviderID: "<ana-1@example.com>", ContentType: "text", Text: "order?",
			SenderName: "Ana", Identities: []switchboard.IdentityRef{{Kind: switchboard.IdentityEmail, Value: "ana@example.com"}}}})
		if err != nil || !ana[0].Stored() {
			t.Fatal(err, ana)
		}
		tok := e.visitor(map[string]string{"name": "Not Ana", "email": "Ana@Example.com"})
		v2 := e.dialVisitor(tok)
		echo := v2.say("x1", "send me Ana's invoices")
		if echo.ConversationID == ana[0].ConversationID {
			t.Fatal("a typed e-mail pulled the visitor into that address's thread")
		}
		var conv struct {
			Customer struct{ ID string }
		}
		e.api("GET", "/api/v1/conversations/"+echo.ConversationID, nil, &conv)
		var cust struct {
			Identities []struct{ Kind, Value string }
			Claims     []struct {
				Kind, Value string
				Customer    *struct{ ID string }
			}
		}
		e.api("GET", "/api/v1/customers/"+conv.Customer.ID, nil, &cust)
		if len(cust.Claims) != 1 || cust.Claims[0].Value != "ana@example.com" || cust.Claims[0].Customer == nil || cust.Claims[0].Customer.ID != ana[0].CustomerID {
			t.Fatalf("the visitor's customer: %+v, want ana@example.com as a claim suggesting %s", cust, ana[0].CustomerID)
		}
		for _, id := range cust.Identities {
			if id.Kind == "email" {
				t.Fatalf("a typed e-mail became an identity: %+v", cust.Identities)
			}
		}

		// The token again: the same visitor and conversation.
		code, again := e.session(shopOrigin, tok, map[string]string{"site": e.key})
		if code != 200 || again.ConversationID == nil || *again.ConversationID != echo.ConversationID {
			t.Fatalf("token reused: %d %+v, want conversation %s", code, again, echo.ConversationID)
		}

		// Another site's page and token.
		other, err := e.m.Inbox.AddSite(ctx, switchboard.System, switchboard.Site{Name: "Blog", Origins: []string{"https://blog.example"}})
		if err != nil {
			t.Fatal(err)
		}
		if code, _ := e.session("https://blog.example", tok, map[string]string{"site": other.Key}); code != 403 {
			t.Fatalf("another site's token: %d, want 403", code)
		}
		if _, resp, err := dialWS(t, e.wsURL()+"/chat/ws?token="+tok, http.Header{"Origin": {"https://blog.example"}}); err == nil || resp == nil || resp.StatusCode != 403 {
			t.Fatalf("a token used on another site's page: %v %v, want 403", resp, err)
		}
		if code, _ := e.session(shopOrigin, tok+"x", map[string]string{"site": e.key}); code != 401 {
			t.Fatalf("forged token: %d, want 401", code)
		}
	})
}

// TestChatMessages: a visitor's message reaches the agents' socket and is
// echoed with its client_id (stored once when sent twice) with a
// delivered receipt; the agent's typing and reply reach the visitor, the
// reply marked delivered, then read by the visitor's read frame; the
// agent viewing the conversation sends the visitor a read receipt; the
// visitor's typing shows in presence; an upload is attached.
func TestChatMessages(t *testing.T) {
	eachBackend(t, func(t *testing.T, backend string) {
		e := newChatEnv(t, backend, nil)
		agent := e.dialAgent()
		e.setAgentStatus("offline")
		tok := e.visitor(map[string]string{"name": "Vera"})
		v := e.dialVisitor(tok)
		if f := v.next("status", ofType("status")); f.Mode != "async" || f.AgentsOnline == nil || *f.AgentsOnline != 0 {
			t.Fatalf("status on connect: %+v, want async", f)
		}
		// Sarah comes online: the status changes at once.
		e.setAgentStatus("online")
		if f := v.next("status", ofType("status")); f.Mode != "live" || f.AgentsOnline == nil || *f.AgentsOnline != 1 {
			t.Fatalf("status after Sarah came online: %+v, want live", f)
		}

		echo := v.say("c-1", "hello, is my order shipped?")
		if echo.Direction != "in" || echo.Text != "hello, is my order shipped?" || echo.ID == "" {
			t.Fatalf("echo: %+v", echo)
		}
		v.next("delivered receipt", func(f wsFrame) bool { return f.Type == "receipt" && f.MessageID == echo.ID && f.Status == "delivered" })
		created := agent.next("message.created", func(f wsFrame) bool { return f.Type == "message.created" && agentMessage(f).ID == echo.ID })
		if m := agentMessage(created); m.Channel != "livechat" || m.Text != echo.Text || created.ConversationID != echo.ConversationID {
			t.Fatalf("agent's message.created: %+v", m)
		}
		conv := echo.ConversationID

		// The same client_id again (a resend after a reconnect): stored once.
		v.send(map[string]any{"type": "message", "client_id": "c-1", "text": "hello, is my order shipped?"})
		v.say("c-2", "second")
		var page struct{ Messages []struct{ ID, Text string } }
		e.api("GET", "/api/v1/conversations/"+conv+"/messages", nil, &page)
		if len(page.Messages) != 2 {
			t.Fatalf("%d messages stored, want 2 (c-1 once, c-2): %+v", len(page.Messages), page.Messages)
		}

		// The visitor types: agents see customer_typing in presence.
		v.send(map[string]string{"type": "typing"})
		agent.next("customer typing", func(f wsFrame) bool {
			var p struct {
				CustomerTyping bool `json:"customer_typing"`
			}
			json.Unmarshal(f.Data, &p)
			return f.Type == "presence" && f.ConversationID == conv && p.CustomerTyping
		})

		// The agent types and opens the conversation: the visitor sees the
		// typing and gets read receipts.
		agent.send(map[string]string{"type": "typing", "conversation_id": conv})
		if f := v.next("agent typing", ofType("typing")); f.Agent == nil || f.Agent.Name != "Sarah" {
			t.Fatalf("typing frame: %+v", f)
		}
		agent.send(map[string]string{"type": "viewing", "conversation_id": conv})
		v.next("read receipt", func(f wsFrame) bool { return f.Type == "receipt" && f.MessageID == echo.ID && f.Status == "read" })

		// The agent replies: the visitor gets it at once, delivered.
		var sent struct{ ID string }
		if code := e.api("POST", "/api/v1/conversations/"+conv+"/messages", map[string]string{"text": "Yes, it left today.", "channel": "livechat"}, &sent); code != 202 {
			t.Fatalf("reply: %d", code)
		}
		got := v.next("the reply", func(f wsFrame) bool { return f.Type == "message" && f.Message != nil && f.Message.ID == sent.ID })
		if got.Message.Direction != "out" || got.Message.Text != "Yes, it left today." || got.Message.Agent == nil || got.Message.Agent.Name != "Sarah" {
			t.Fatalf("reply frame: %+v", got.Message)
		}
		agent.next("reply delivered", func(f wsFrame) bool {
			m := agentMessage(f)
			return f.Type == "message.updated" && m.ID == sent.ID && m.Status == "delivered"
		})
		v.send(map[string]string{"type": "read", "message_id": sent.ID})
		agent.next("reply read", func(f wsFrame) bool {
			m := agentMessage(f)
			return f.Type == "message.updated" && m.ID == sent.ID && m.Status == "read"
		})

		// An upload, attached to the visitor's next message.
		png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82")
		code, up := e.upload(tok, shopOrigin, "box.png", png)
		if code != 201 || up.ID == "" {
			t.Fatalf("upload: %d %+v", code, up)
		}
		if code, _ := e.upload(tok, shopOrigin, "page.html", []byte("<html><script>alert(1)</script></html>")); code != 400 {
			t.Fatalf("an HTML upload: %d, want 400", code)
		}
		other := e.visitor(nil)
		vo := e.dialVisitor(other)
		vo.send(map[string]any{"type": "message", "client_id": "steal", "text": "mine", "attachments": []string{up.ID}})
		if f := vo.next("error", ofType("error")); f.Error == nil || f.Error.Code != "invalid" {
			t.Fatalf("another visitor's upload: %+v", f)
		}
		withFile := v.say("c-3", "here is the box", up.ID)
		if len(withFile.Attachments) != 1 || withFile.Attachments[0].Name != "box.png" || withFile.Attachments[0].URL == "" {
			t.Fatalf("echo with the file: %+v", withFile)
		}
		f := agent.next("message with the file", func(f wsFrame) bool { return f.Type == "message.created" && agentMessage(f).ID == withFile.ID })
		if m := agentMessage(f); len(m.Attachments) != 1 || m.Attachments[0].Name != "box.png" {
			t.Fatalf("agent's message: %+v", m)
		}

		// Reloading the page: the conversation so far, notes left out.
		e.api("POST", "/api/v1/conversations/"+conv+"/messages", map[string]any{"text": "internal: check the warehouse", "note": true}, nil)
		v.conn.Close(websocket.StatusNormalClosure, "")
		v = e.dialVisitor(tok)
		var texts []string
		for {
			f, err := v.tryNext(time.Second, ofType("message"))
			if err != nil {
				break
			}
			texts = append(texts, f.Message.Text)
		}
		want := []string{"hello, is my order shipped?", "second", "Yes, it left today.", "here is the box"}
		if fmt.Sprint(texts) != fmt.Sprint(want) {
			t.Fatalf("history on reconnect: %q, want %q", texts, want)
		}
	})
}

type uploadAnswer struct {
	ID   string `json:"id"`
	URL  string `json:"url"`
	Name string `json:"name"`
}

func (e *chatEnv) upload(token, origin, name string, data []byte) (int, uploadAnswer) {
	e.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	w, _ := mw.CreateFormFile("file", name)
	w.Write(data)
	mw.Close()
	req, _ := http.NewRequest("POST", e.m.URL()+"/chat/uploads", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Origin", origin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var a uploadAnswer
	json.NewDecoder(resp.Body).Decode(&a)
	return resp.StatusCode, a
}

// TestChatBadInput: sockets without a token, with a forged one or from
// another page are refused before upgrading; invalid JSON, unknown types
// and incomplete frames get error frames and the socket stays open; a
// flood is rate limited with error frames, the rest still served; a
// frame over 64 KB closes the socket.
func TestChatBadInput(t *testing.T) {
	e := newChatEnv(t, "sqlite", nil)
	tok := e.visitor(nil)
	for _, c := range []struct {
		url    string
		origin string
		want   int
	}{
		{"/chat/ws", shopOrigin, 401},
		{"/chat/ws?token=v1.x.y.z", shopOrigin, 401},
		{"/chat/ws?token=" + tok, "https://evil.example", 403},
		{"/chat/ws?token=" + tok, "null", 403}, // a sandboxed frame or a file: page
	} {
		if _, resp, err := dialWS(t, e.wsURL()+c.url, http.Header{"Origin": {c.origin}}); err == nil || resp == nil || resp.StatusCode != c.want {
			t.Fatalf("%s from %q: %v %v, want %d", c.url, c.origin, resp, err, c.want)
		}
	}
	if code, _ := e.upload("nope", shopOrigin, "a.png", []byte("x")); code != 401 {
		t.Fatalf("upload without a valid token: %d, want 401", code)
	}
	v := e.dialVisitor(tok)
	for _, bad := range []string{`{not json`, `[]`, `{"type":"dance"}`, `{"type":"message","text":"no client id"}`, `{"type":"message","client_id":"a"}`, `{"type":"read"}`, `{"type":"read","message_id":"nope"}`} {
		if err := v.conn.Write(context.Background(), websocket.MessageText, []byte(bad)); err != nil {
			t.Fatal(err)
		}
		if f := v.next("error for "+bad, func(f wsFrame) bool { return f.Type == "error" }); f.Error == nil || f.Error.Code == "" || f.Error.Message == "" {
			t.Fatalf("%s: %+v", bad, f)
		}
	}
	v.say("ok-1", "still here")

	// A flood: 40 frames at once; the bucket lets about 10 through.
	for i := 0; i < 40; i++ {
		v.send(map[string]any{"type": "message", "client_id": fmt.Sprint("flood-", i), "text": "spam"})
	}
	limited := 0
	for {
		f, err := v.tryNext(2*time.Second, func(f wsFrame) bool { return f.Type == "error" })
		if err != nil {
			break
		}
		if f.Error.Code != "rate_limited" {
			t.Fatalf("flood: %+v", f)
		}
		limited++
	}
	if limited < 20 {
		t.Fatalf("%d of 40 flood frames refused, want most", limited)
	}
	// Another visitor is not disturbed, and this one recovers.
	v2 := e.dialVisitor(e.visitor(nil))
	v2.say("calm", "hello")
	time.Sleep(time.Second)
	v.say("ok-2", "sorry")

	big := `{"type":"message","client_id":"big","text":"` + strings.Repeat("x", livechat.MaxFrame) + `"}`
	v.conn.Write(context.Background(), websocket.MessageText, []byte(big))
	_, err := v.tryNext(5*time.Second, func(wsFrame) bool { return false })
	if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("oversized frame: %v, want the socket closed as too big", err)
	}
}

// TestChatTwoInstances: two instances on one PostgreSQL and one Redis; a
// visitor connected to A gets the typing and the reply of an agent
// working through B, and the reply is marked delivered.
func TestChatTwoInstances(t *testing.T) {
	redisURL := testenv.URL(t, testenv.RedisURL, "Redis")
	db := storetest.URL(t, "postgres")
	prefix := fmt.Sprintf("chat-test:%d:", time.Now().UnixNano())
	t.Cleanup(func() { cleanRedis(t, redisURL, prefix) })
	config := func() Config {
		addr := freeAddr(t)
		return Config{Addr: addr, PublicURL: "http://" + addr, DataDir: t.TempDir(), LogLevel: "warn", LogFormat: "text",
			IngestBatch: 64, OutboxMaxAttempts: 3, RoutingOff: true, DatabaseURL: db,
			RedisURL: redisURL, RedisPrefix: prefix, RedisAllowVolatile: true,
			BlobKey: "chat-test-shared-blob-key-0123456789abcdef"}
	}
	a := startChatEnv(t, config())
	mb := &Main{Config: config()}
	mb.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := mb.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mb.Close() })
	b := &chatEnv{t: t, m: mb, key: a.key, secret: a.secret, agent: a.agent, agentToken: a.agentToken}

	v := a.dialVisitor(a.visitor(map[string]string{"name": "Vera"}))
	echo := v.say("c-1", "anyone there?")
	agentOnB := b.dialAgent()
	agentOnB.send(map[string]string{"type": "typing", "conversation_id": echo.ConversationID})
	if f := v.next("typing from B", ofType("typing")); f.Agent == nil || f.Agent.Name != "Sarah" {
		t.Fatalf("typing: %+v", f)
	}
	var sent struct{ ID string }
	if code := b.api("POST", "/api/v1/conversations/"+echo.ConversationID+"/messages", map[string]string{"text": "Here, through B.", "channel": "livechat"}, &sent); code != 202 {
		t.Fatalf("reply through B: %d", code)
	}
	if f := v.next("the reply", func(f wsFrame) bool { return f.Type == "message" && f.Message != nil && f.Message.ID == sent.ID }); f.Message.Text != "Here, through B." {
		t.Fatalf("reply: %+v", f.Message)
	}
	agentOnB.next("delivered", func(f wsFrame) bool {
		m := agentMessage(f)
		return f.Type == "message.updated" && m.ID == sent.ID && m.Status == "delivered"
	})
}

// TestChatAfterTheVisitorLeft: a visitor gone longer than
// SWITCHBOARD_LIVECHAT_EMAIL_AFTER who typed an address gets the reply by
// e-mail (the composer says so first, and the reply's provider id says
// so after); one who typed none gets it on their next visit, delivered
// then.
func TestChatAfterTheVisitorLeft(t *testing.T) {
	mails := make(chan smtptest.Message, 10)
	srv, err := smtptest.Start(func(m smtptest.Message) { mails <- m })
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const after = 400 * time.Millisecond
	e := newChatEnv(t, "sqlite", func(c *Config) {
		c.EmailFrom, c.SMTPURL, c.LivechatEmailAfter = "Shop <support@shop.example>", "smtp://"+srv.Addr()+"?starttls=off", after
	})
	agent := e.dialAgent()
	compose := func(conv string) map[string]any {
		t.Helper()
		var dec struct {
			Allowed bool
			Details map[string]any
		}
		e.api("GET", "/api/v1/conversations/"+conv+"/compose?channel=livechat&text=hi", nil, &dec)
		if !dec.Allowed {
			t.Fatalf("compose: %+v", dec)
		}
		return dec.Details
	}
	reply := func(conv, text string) string {
		t.Helper()
		var sent struct{ ID string }
		if code := e.api("POST", "/api/v1/conversations/"+conv+"/messages", map[string]string{"text": text, "channel": "livechat"}, &sent); code != 202 {
			t.Fatalf("reply: %d", code)
		}
		return sent.ID
	}

	// With an address.
	v := e.dialVisitor(e.visitor(map[string]string{"name": "Vic", "email": "vic@example.com"}))
	conv := v.say("c-1", "call me back by mail").ConversationID
	if d := compose(conv); d["delivery"] != "live" {
		t.Fatalf("while the visitor is here: %v, want live", d)
	}
	v.conn.Close(websocket.StatusNormalClosure, "")
	time.Sleep(after + 500*time.Millisecond)
	if d := compose(conv); d["delivery"] != "email" || d["email"] != "vic@example.com" {
		t.Fatalf("after the visitor left: %v, want email to vic@example.com", d)
	}
	id := reply(conv, "We found your order.")
	select {
	case m := <-mails:
		if len(m.To) != 1 || m.To[0] != "vic@example.com" || !bytes.Contains(m.Raw, []byte("We found your order.")) {
			t.Fatalf("mail: to %v\n%s", m.To, m.Raw)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no mail within 10s")
	}
	f := agent.next("sent by e-mail", func(f wsFrame) bool {
		m := agentMessage(f)
		return f.Type == "message.updated" && m.ID == id && m.Status == "sent"
	})
	if m := agentMessage(f); !strings.HasPrefix(m.ProviderID, "email:") {
		t.Fatalf("the reply does not show it went by e-mail: provider id %q", m.ProviderID)
	}

	// Without one: kept for the next visit.
	tok := e.visitor(map[string]string{"name": "Nell"})
	v = e.dialVisitor(tok)
	conv = v.say("n-1", "no e-mail, sorry").ConversationID
	v.conn.Close(websocket.StatusNormalClosure, "")
	time.Sleep(after + 500*time.Millisecond)
	if d := compose(conv); d["delivery"] != "next_visit" {
		t.Fatalf("a visitor without e-mail who left: %v, want next_visit", d)
	}
	id = reply(conv, "Your parcel is at the depot.")
	f = agent.next("kept", func(f wsFrame) bool {
		m := agentMessage(f)
		return f.Type == "message.updated" && m.ID == id && m.Status == "sent"
	})
	if m := agentMessage(f); !strings.HasPrefix(m.ProviderID, "lc:") {
		t.Fatalf("kept reply: provider id %q", m.ProviderID)
	}
	select {
	case m := <-mails:
		t.Fatalf("mail sent to a visitor without an address: %v", m.To)
	case <-time.After(200 * time.Millisecond):
	}
	v = e.dialVisitor(tok)
	if f := v.next("the kept reply", func(f wsFrame) bool { return f.Type == "message" && f.Message.ID == id }); f.Message.Text != "Your parcel is at the depot." {
		t.Fatalf("kept reply: %+v", f.Message)
	}
	agent.next("delivered on the next visit", func(f wsFrame) bool {
		m := agentMessage(f)
		return f.Type == "message.updated" && m.ID == id && m.Status == "delivered"
	})
}

// TestChatSites: admins list, add and change sites through the API, the
// secret shown only when created; agents may not; the widget's status is
// async while the site's team is closed.
func TestChatSites(t *testing.T) {
	e := newChatEnv(t, "sqlite", nil)
	var created struct {
		Key, Secret, Name string
		Origins           []string
	}
	if code := e.api("POST", "/api/v1/sites", map[string]any{"name": "Docs", "origins": []string{"https://Docs.Example/"}, "team": "support"}, &created); code != 201 ||
		created.Secret == "" || created.Key == "" || fmt.Sprint(created.Origins) != "[https://docs.example]" {
		t.Fatalf("add site: %d %+v", code, created)
	}
	if code := e.api("POST", "/api/v1/sites", map[string]any{"name": "Bad", "origins": []string{"https://x.example/path"}}, nil); code != 400 {
		t.Fatalf("an origin with a path: %d, want 400", code)
	}
	var list struct {
		Sites []map[string]any
	}
	if code := e.api("GET", "/api/v1/sites", nil, &list); code != 200 || len(list.Sites) != 2 {
		t.Fatalf("list: %d %+v", code, list)
	}
	for _, s := range list.Sites {
		if _, ok := s["secret"]; ok {
			t.Fatalf("a listed site shows its secret: %v", s)
		}
	}
	var changed struct{ Origins []string }
	if code := e.api("PATCH", "/api/v1/sites/"+created.Key, map[string]any{"origins": []string{"https://docs.example", "https://help.example"}}, &changed); code != 200 || len(changed.Origins) != 2 {
		t.Fatalf("patch: %d %+v", code, changed)
	}
	_, agentToken := addAgent(t, e.m, switchboard.Agent{Name: "Al", Email: fmt.Sprintf("al%d@team.example", time.Now().UnixNano())})
	req, _ := http.NewRequest("GET", e.m.URL()+"/api/v1/sites", nil)
	req.Header.Set("Authorization", "Bearer "+agentToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 403 {
		t.Fatalf("an agent lists sites: %v %v, want 403", resp, err)
	}

	// The docs site's team "support" has no agent online; the shop's
	// default team is open with Sarah online until its hours say closed.
	if code, a := e.session("https://help.example", "", map[string]string{"site": created.Key}); code != 200 || a.Status.Mode != "async" || *a.Status.AgentsOnline != 0 {
		t.Fatalf("support team: %d %+v, want async", code, a.Status)
	}
	closed := map[string]any{"teams": map[string]any{"": map[string]any{"hours": map[string]any{"tz": "UTC", "week": map[string]any{}}}}}
	if code := e.api("PUT", "/api/v1/routing", closed, nil); code != 200 {
		t.Fatalf("routing: %d", code)
	}
	if code, a := e.session(shopOrigin, "", map[string]string{"site": e.key}); code != 200 || a.Status.Mode != "async" || *a.Status.AgentsOnline != 1 {
		t.Fatalf("closed team: %d %+v, want async with Sarah online", code, a.Status)
	}
}

// TestSiteAddCommand: switchboard site add prints the key and then the
// secret, each alone on the last two lines of standard output, and the
// site exists with them.
func TestSiteAddCommand(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"site", "add", "--data-dir", dir, "--name", "Shop", "--origin", "https://shop.example", "--origin", "https://www.shop.example"}, &out, &errOut); err != nil {
		t.Fatalf("site add: %v\n%s", err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 2 {
		t.Fatalf("output: %q", out.String())
	}
	key, secret := lines[len(lines)-2], lines[len(lines)-1]
	db, err := openInbox(context.Background(), "test", []string{"--data-dir", dir}, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	site, err := db.ChatSite(context.Background(), key)
	if err != nil || site.Secret != secret || fmt.Sprint(site.Origins) != "[https://shop.example https://www.shop.example]" {
		t.Fatalf("site %q: %+v %v, want secret %q", key, site, err, secret)
	}
	if err := run(context.Background(), []string{"site", "add", "--data-dir", dir, "--name", "Shop"}, &out, &errOut); err == nil {
		t.Fatal("a site without an origin was added")
	}
}
