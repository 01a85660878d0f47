package realtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/bus"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/inbox/inboxtest"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
	"github.com/switchboard-inbox/switchboard/realtime"
)

// env is one instance: an inbox, a bus, presence and the hub over HTTP.
type env struct {
	t   *testing.T
	svc *inboxtest.DB
	hub *realtime.Hub
	url string
}

// newEnv starts an instance on the in-process bus ("memory") or on Redis
// ("redis"), where presence lives in Redis too.
func newEnv(t *testing.T, kind string, buffer int) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var b switchboard.Bus
	var p switchboard.Presence
	if kind == "memory" {
		b, p = bus.NewMemory(), bus.NewMemoryPresence(nil)
	} else {
		opt, err := redis.ParseURL(testenv.URL(t, testenv.RedisURL, "Redis"))
		if err != nil {
			t.Fatal(err)
		}
		c := redis.NewClient(opt)
		t.Cleanup(func() { c.Close() })
		prefix := fmt.Sprintf("realtime-test:%d:", time.Now().UnixNano())
		b, p = bus.NewRedis(c, prefix+"events"), bus.NewRedisPresence(c, prefix)
	}
	t.Cleanup(func() { b.Close() })
	svc := inboxtest.Open(t, "sqlite", inbox.Config{Bus: b, Presence: p})
	hub := &realtime.Hub{Inbox: svc, Bus: b, Buffer: buffer, Heartbeat: 200 * time.Millisecond}
	evs, err := b.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	go hub.Forward(evs)
	go svc.RunPresence(ctx, 100*time.Millisecond)
	ts := httptest.NewServer(hub)
	t.Cleanup(ts.Close)
	return &env{t: t, svc: svc, hub: hub, url: "ws" + strings.TrimPrefix(ts.URL, "http")}
}

func (e *env) agent(name string) (switchboard.Agent, string) {
	e.t.Helper()
	a, token, err := e.svc.AddAgent(context.Background(), switchboard.System, switchboard.Agent{Name: name, Email: strings.ToLower(name) + "@team.example"})
	if err != nil {
		e.t.Fatal(err)
	}
	return a, token
}

func (e *env) ingest(phone, providerID, text string) switchboard.IngestResult {
	e.t.Helper()
	res, err := e.svc.Ingest(context.Background(), []switchboard.Inbound{{Channel: switchboard.ChannelSMS, ProviderID: providerID,
		ContentType: switchboard.ContentText, Text: text, Identities: []switchboard.IdentityRef{{Kind: switchboard.IdentityPhone, Value: phone}}}})
	if err != nil || !res[0].Stored() {
		e.t.Fatalf("ingest: %v %+v", err, res)
	}
	return res[0]
}

// sock is an agent's connection. One goroutine reads it (a Read whose
// context ends closes the connection, so reads are never timed out).
type sock struct {
	t      *testing.T
	conn   *websocket.Conn
	frames chan []byte
	err    chan error
}

func dial(t *testing.T, url, token, since string) (*sock, *http.Response, error) {
	t.Helper()
	if since != "" {
		url += "?since=" + since
	}
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	conn, resp, err := websocket.Dial(context.Background(), url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, resp, err
	}
	conn.SetReadLimit(1 << 20)
	t.Cleanup(func() { conn.CloseNow() })
	s := &sock{t: t, conn: conn, frames: make(chan []byte, 100000), err: make(chan error, 1)}
	go func() {
		for {
			_, b, err := conn.Read(context.Background())
			if err != nil {
				s.err <- err
				return
			}
			s.frames <- b
		}
	}()
	return s, resp, nil
}

func (e *env) dial(token, since string) *sock {
	e.t.Helper()
	s, _, err := dial(e.t, e.url, token, since)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

type frameIn struct {
	ID             string          `json:"id"`
	Type           string          `json:"type"`
	ConversationID string          `json:"conversation_id"`
	AgentID        string          `json:"agent_id"`
	At             string          `json:"at"`
	Data           json.RawMessage `json:"data"`
	Error          *struct {
		Code, Message string
	} `json:"error"`
}

// read returns the next frame, or fails after 5 s.
func (s *sock) read() frameIn {
	s.t.Helper()
	f, err := s.tryRead(5 * time.Second)
	if err != nil {
		s.t.Fatalf("read: %v", err)
	}
	return f
}

func (s *sock) tryRead(wait time.Duration) (frameIn, error) {
	var b []byte
	select {
	case b = <-s.frames:
	case err := <-s.err:
		s.err <- err // every later read sees it too
		return frameIn{}, err
	case <-time.After(wait):
		return frameIn{}, context.DeadlineExceeded
	}
	var f frameIn
	if err := json.Unmarshal(b, &f); err != nil {
		s.t.Fatalf("frame %s: %v", b, err)
	}
	return f, nil
}

// next returns the next frame of type typ, skipping others.
func (s *sock) next(typ string) frameIn {
	s.t.Helper()
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		f, err := s.tryRead(time.Until(deadline))
		if err != nil {
			break
		}
		if f.Type == typ {
			return f
		}
	}
	s.t.Fatalf("no %s frame within 8s", typ)
	return frameIn{}
}

func (s *sock) send(v any) {
	s.t.Helper()
	b, _ := json.Marshal(v)
	if err := s.conn.Write(context.Background(), websocket.MessageText, b); err != nil {
		s.t.Fatal(err)
	}
}

func each(t *testing.T, fn func(t *testing.T, kind string)) {
	for _, kind := range []string{"memory", "redis"} {
		t.Run(kind, func(t *testing.T) { fn(t, kind) })
	}
}

// TestEventsAndReplay: an agent's socket receives events as they happen,
// in the frame of docs/design.md §6.1; closed, it misses three messages,
// and reconnecting with since gets exactly those, in order, none twice;
// a since the log no longer reaches gives resync.
func TestEventsAndReplay(t *testing.T) {
	each(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, 0)
		_, token := e.agent("Ann")
		s := e.dial(token, "")
		r := e.ingest("+14155550100", "SM0", "hello")
		f := s.next("message.created")
		var m struct{ ID, Text, Direction string }
		json.Unmarshal(f.Data, &m)
		if f.ID == "" || f.ConversationID != r.ConversationID || f.At == "" || m.ID != r.MessageID || m.Text != "hello" || m.Direction != "in" {
			t.Fatalf("message.created frame: %+v %s", f, f.Data)
		}
		last := s.next("conversation.updated").ID
		s.conn.Close(websocket.StatusNormalClosure, "")

		var want []string
		for i := 1; i <= 3; i++ {
			want = append(want, e.ingest("+14155550100", fmt.Sprint("SM", i), fmt.Sprint("missed ", i)).MessageID)
		}
		s = e.dial(token, last)
		seen := map[string]bool{}
		var got []string
		for {
			f, err := s.tryRead(time.Second)
			if err != nil {
				break
			}
			if seen[f.ID] {
				t.Fatalf("event %s arrived twice", f.ID)
			}
			seen[f.ID] = true
			if f.Type == "message.created" {
				var m struct{ ID string }
				json.Unmarshal(f.Data, &m)
				got = append(got, m.ID)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("replayed messages %v, want %v", got, want)
		}
		// Live events go on after the replay.
		e.ingest("+14155550100", "SM4", "live again")
		if f := s.next("message.created"); f.ID == "" {
			t.Fatal("no live event after the replay")
		}

		old := e.dial(token, "1-1")
		if f := old.read(); f.Type != "resync" {
			t.Fatalf("since older than the log: %+v, want resync", f)
		}
	})
}

// TestPresenceFrames: one agent's typing and viewing reach another's
// socket as presence; typing stops being reported within 6 s of the last
// typing frame; viewing clears when the socket closes.
func TestPresenceFrames(t *testing.T) {
	each(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, 0)
		_, annToken := e.agent("Ann")
		bob, bobToken := e.agent("Bob")
		conv := e.ingest("+14155550100", "SM0", "hello").ConversationID
		ann := e.dial(annToken, "")
		b := e.dial(bobToken, "")
		type presence struct{ Viewing, Typing []struct{ ID, Name string } }
		read := func(s *sock) presence {
			t.Helper()
			f := s.next("presence")
			var p presence
			json.Unmarshal(f.Data, &p)
			if f.ConversationID != conv {
				t.Fatalf("presence for %s, want %s", f.ConversationID, conv)
			}
			return p
		}

		b.send(map[string]string{"type": "typing", "conversation_id": conv})
		start := time.Now()
		if p := read(ann); len(p.Typing) != 1 || p.Typing[0].ID != bob.ID || p.Typing[0].Name != "Bob" {
			t.Fatalf("typing: %+v", p)
		}
		if p := read(ann); len(p.Typing) != 0 {
			t.Fatalf("after typing stopped: %+v", p)
		}
		if d := time.Since(start); d > 6*time.Second {
			t.Fatalf("typing reported for %v after the last frame, want at most 6s", d)
		}

		b.send(map[string]string{"type": "viewing", "conversation_id": conv})
		if p := read(ann); len(p.Viewing) != 1 || p.Viewing[0].ID != bob.ID {
			t.Fatalf("viewing: %+v", p)
		}
		detail, _ := e.svc.Conversation(context.Background(), switchboard.System, conv)
		if len(detail.Viewing) != 1 || detail.Viewing[0].Name != "Bob" {
			t.Fatalf("the REST answer's viewing: %+v", detail.Presence)
		}
		b.conn.Close(websocket.StatusNormalClosure, "")
		if p := read(ann); len(p.Viewing) != 0 {
			t.Fatalf("after Bob's socket closed: %+v", p)
		}
	})
}

// TestBadInput: no token, a bad token, invalid JSON, an unknown type, a
// frame without its conversation and an unknown conversation are refused
// cleanly and the socket stays open; a frame over 64 KB closes it.
func TestBadInput(t *testing.T) {
	e := newEnv(t, "memory", 0)
	_, token := e.agent("Ann")
	for _, tok := range []string{"", "sb_nope"} {
		if _, resp, err := dial(t, e.url, tok, ""); err == nil || resp == nil || resp.StatusCode != 401 {
			t.Fatalf("token %q: %v %v, want 401", tok, resp, err)
		}
	}
	s := e.dial(token, "")
	for _, bad := range []string{`{not json`, `{"type":"dance"}`, `{"type":"typing"}`, `{"type":"typing","conversation_id":"nope"}`, `{"type":"viewing"}`} {
		if err := s.conn.Write(context.Background(), websocket.MessageText, []byte(bad)); err != nil {
			t.Fatal(err)
		}
		if f := s.read(); f.Type != "error" || f.Error == nil || f.Error.Code == "" || f.Error.Message == "" {
			t.Fatalf("%s: %+v, want an error frame", bad, f)
		}
	}
	conv := e.ingest("+14155550100", "SM0", "hello").ConversationID
	s.send(map[string]string{"type": "typing", "conversation_id": conv})
	if f := s.next("presence"); f.ConversationID != conv {
		t.Fatalf("after errors the socket still works: %+v", f)
	}
	big := `{"type":"typing","conversation_id":"` + strings.Repeat("x", realtime.MaxFrame) + `"}`
	s.conn.Write(context.Background(), websocket.MessageText, []byte(big))
	_, err := s.tryRead(5 * time.Second)
	if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("oversized frame: %v, want the socket closed as too big", err)
	}
}

// TestSlowClientDropped: a socket that stops reading is dropped once it is
// Buffer events behind, and the others get every event meanwhile.
func TestSlowClientDropped(t *testing.T) {
	e := newEnv(t, "memory", 256)
	_, token := e.agent("Ann")
	// The slow client never reads: its TCP buffers fill, its writer
	// blocks and its queue overflows.
	h := http.Header{"Authorization": {"Bearer " + token}}
	slowConn, _, err := websocket.Dial(context.Background(), e.url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	defer slowConn.CloseNow()
	fast := e.dial(token, "")
	done := make(chan int)
	go func() {
		n := 0
		for {
			f, err := fast.tryRead(5 * time.Second)
			if err != nil {
				done <- n
				return
			}
			if f.Type == "agent.status" {
				if n++; n == 2000 {
					done <- n
					return
				}
			}
		}
	}()
	b := e.hub.Bus
	payload := json.RawMessage(`{"status":"` + strings.Repeat("x", 16000) + `"}`)
	const n = 2000
	for i := 0; i < n; i++ {
		b.Publish(context.Background(), switchboard.BusEvent{Type: switchboard.BusAgentStatus, AgentID: "x", At: time.Now(), Data: payload})
		time.Sleep(2 * time.Millisecond) // the reading client keeps up
	}
	if got := <-done; got != n {
		t.Fatalf("the reading client got %d of %d events", got, n)
	}
	// The stalled client is dropped once its queue is full: keep events
	// coming until it is.
	for deadline := time.Now().Add(10 * time.Second); e.hub.Clients() != 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d clients connected, want only the one that reads", e.hub.Clients())
		}
		b.Publish(context.Background(), switchboard.BusEvent{Type: switchboard.BusAgentStatus, AgentID: "x", At: time.Now(), Data: payload})
	}
}

// renewals counts the viewing renewals a real inbox receives.
type renewals struct {
	*inboxtest.DB
	n atomic.Int64
}

func (r *renewals) SetViewing(ctx context.Context, a switchboard.Actor, conv string, on bool) error {
	if on {
		r.n.Add(1)
	}
	return r.DB.SetViewing(ctx, a, conv, on)
}

// TestHeartbeat: every heartbeat pings each idle socket (an agent whose
// connection died is noticed) and renews what it views, so an agent who
// keeps a conversation open for longer than the viewing expiry is still
// shown; a closed socket renews nothing.
func TestHeartbeat(t *testing.T) {
	e := newEnv(t, "memory", 0)
	spy := &renewals{DB: e.svc}
	hub := &realtime.Hub{Inbox: spy, Bus: e.hub.Bus, Heartbeat: 50 * time.Millisecond}
	evs, err := e.hub.Bus.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	go hub.Forward(evs)
	ts := httptest.NewServer(hub)
	t.Cleanup(ts.Close)
	_, token := e.agent("Ann")
	conv := e.ingest("+14155550100", "SM0", "hello").ConversationID

	var pings atomic.Int64
	conn, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(ts.URL, "http"), &websocket.DialOptions{
		HTTPHeader:     http.Header{"Authorization": {"Bearer " + token}},
		OnPingReceived: func(context.Context, []byte) bool { pings.Add(1); return true },
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() { // reading answers pings
		for {
			if _, _, err := conn.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	conn.Write(t.Context(), websocket.MessageText, []byte(`{"type":"viewing","conversation_id":"`+conv+`"}`))
	time.Sleep(600 * time.Millisecond)
	if p, r := pings.Load(), spy.n.Load(); p < 3 || r < 4 {
		t.Fatalf("in 600 ms of 50 ms heartbeats: %d pings and %d viewing calls (the first is the frame's), want several of each", p, r)
	}
	conn.Close(websocket.StatusNormalClosure, "")
	for deadline := time.Now().Add(5 * time.Second); hub.Clients() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the closed socket is still registered")
		}
	}
	after := spy.n.Load()
	time.Sleep(300 * time.Millisecond)
	if got := spy.n.Load(); got != after {
		t.Fatalf("%d viewing renewals after the socket closed", got-after)
	}
}
