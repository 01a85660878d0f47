package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

// twoInstances starts two Mains on one PostgreSQL schema, one Redis
// prefix and one shared object store, as two `switchboard serve`
// processes behind a load balancer would run.
func twoInstances(t *testing.T) (a, b *Main) {
	t.Helper()
	redisURL := testenv.URL(t, testenv.RedisURL, "Redis")
	dbURL := storetest.URL(t, "postgres")
	var r [6]byte
	rand.Read(r[:])
	prefix := "sbtest:" + hex.EncodeToString(r[:]) + ":"
	t.Cleanup(func() { cleanRedis(t, redisURL, prefix) })
	files := "file:" + filepath.Join(t.TempDir(), "files")
	key := hex.EncodeToString(r[:]) + strings.Repeat("k", 32)
	start := func() *Main {
		addr := freeAddr(t)
		m := &Main{Config: Config{
			Addr: addr, PublicURL: "http://" + addr, DataDir: t.TempDir(), LogLevel: "warn", LogFormat: "text", IngestBatch: 64, OutboxMaxAttempts: 3,
			DatabaseURL: dbURL, RedisURL: redisURL, RedisPrefix: prefix, EventLog: time.Hour, BlobURL: files, BlobKey: key,
			RoutingOff: true, FormRatePerMinute: 0,
			// The shared test Redis keeps nothing on disk (scripts/test.sh).
			RedisAllowVolatile: true,
		}}
		m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		if err := m.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	return start(), start()
}

// agentSocket is one agent's connection to /api/v1/realtime.
type agentSocket struct {
	t      *testing.T
	conn   *websocket.Conn
	frames chan rtFrame
	lastID string // of the last frame received; read after frames is closed
}

type rtFrame struct {
	ID             string          `json:"id"`
	Type           string          `json:"type"`
	ConversationID string          `json:"conversation_id"`
	AgentID        string          `json:"agent_id"`
	Data           json.RawMessage `json:"data"`
	got            time.Time
}

func connectAgent(t *testing.T, m *Main, token, since string) *agentSocket {
	t.Helper()
	u := "ws" + strings.TrimPrefix(m.URL(), "http") + "/api/v1/realtime"
	if since != "" {
		u += "?since=" + url.QueryEscape(since)
	}
	conn, _, err := websocket.Dial(context.Background(), u, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	conn.SetReadLimit(1 << 20)
	s := &agentSocket{t: t, conn: conn, frames: make(chan rtFrame, 1000)}
	t.Cleanup(func() { conn.CloseNow() })
	go func() {
		defer close(s.frames)
		for {
			_, b, err := conn.Read(context.Background())
			if err != nil {
				return
			}
			f := rtFrame{got: time.Now()}
			if json.Unmarshal(b, &f) == nil {
				if f.ID != "" {
					s.lastID = f.ID
				}
				s.frames <- f
			}
		}
	}()
	return s
}

// next returns the next frame of type typ (skipping others), or fails
// after wait.
func (s *agentSocket) next(typ string, wait time.Duration) rtFrame {
	s.t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				s.t.Fatalf("socket closed waiting for %s", typ)
			}
			if f.Type == typ {
				return f
			}
		case <-deadline:
			s.t.Fatalf("no %s frame within %v", typ, wait)
		}
	}
}

func (s *agentSocket) send(v any) {
	s.t.Helper()
	b, _ := json.Marshal(v)
	if err := s.conn.Write(context.Background(), websocket.MessageText, b); err != nil {
		s.t.Fatal(err)
	}
}

// postForm sends a contact-form message to m and fails unless it is
// accepted.
func postForm(t *testing.T, m *Main, email, message string) {
	t.Helper()
	resp, err := http.PostForm(m.URL()+"/forms/contact", url.Values{"email": {email}, "name": {"Ada"}, "message": {message}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("form post: %d %s", resp.StatusCode, body)
	}
}

// TestTwoInstancesOneInbox is docs/design.md §5's scale-out promise for
// agents: two instances on one PostgreSQL and one Redis are one inbox. A
// message ingested through B reaches the socket of an agent connected to
// A; an agent typing on B shows on A (the latency is measured and its
// median held to 200 ms); an agent who drops from A and reconnects gets
// exactly what was published meanwhile through B, in order, once.
func TestTwoInstancesOneInbox(t *testing.T) {
	a, b := twoInstances(t)
	_, tokenX := addAgent(t, a, switchboard.Agent{Name: "Xavier", Email: "x@team.example"})
	var typists []string
	for i := range 5 {
		_, tok := addAgent(t, b, switchboard.Agent{Name: fmt.Sprintf("Typist %d", i), Email: fmt.Sprintf("typist%d@team.example", i)})
		typists = append(typists, tok)
	}
	onA := connectAgent(t, a, tokenX, "")

	// A message through B reaches A.
	postForm(t, b, "ada@example.com", "Where is my order?")
	created := onA.next("message.created", 10*time.Second)
	if created.ConversationID == "" || !strings.Contains(string(created.Data), "Where is my order?") {
		t.Fatalf("message.created on A: %+v", created)
	}
	conv := created.ConversationID

	// Typing on B shows on A. Each typist is new to the conversation, so
	// each frame is news and announced.
	var lat []time.Duration
	for i, tok := range typists {
		onB := connectAgent(t, b, tok, "")
		sent := time.Now()
		onB.send(map[string]string{"type": "typing", "conversation_id": conv})
		for {
			f := onA.next("presence", 5*time.Second)
			var p struct {
				Typing []struct{ Name string } `json:"typing"`
			}
			if err := json.Unmarshal(f.Data, &p); err != nil {
				t.Fatalf("presence data %s: %v", f.Data, err)
			}
			name := fmt.Sprintf("Typist %d", i)
			if f.ConversationID == conv && slices.ContainsFunc(p.Typing, func(e struct{ Name string }) bool { return e.Name == name }) {
				lat = append(lat, f.got.Sub(sent))
				break
			}
		}
	}
	slices.Sort(lat)
	t.Logf("typing on B seen on A after %v (sorted)", lat)
	if median := lat[len(lat)/2]; median > 200*time.Millisecond {
		t.Errorf("typing on B reached A in a median %v: want under 200ms", median)
	}

	// Replay across instances: X leaves A, three messages arrive through
	// B and are stored, X comes back to A with the last id it received.
	onA.conn.Close(websocket.StatusNormalClosure, "")
	for range onA.frames {
	}
	for _, s := range []string{"one", "two", "three"} {
		postForm(t, b, "ada@example.com", "replay "+s)
	}
	deadline := time.Now().Add(10 * time.Second)
	for countMessages(t, a, tokenX, conv) != 4 {
		if time.Now().After(deadline) {
			t.Fatalf("the three messages were not stored within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	back := connectAgent(t, a, tokenX, onA.lastID)
	// The pipeline may store the three in one batch or several, so the
	// events come in the log's order, which is not necessarily the order
	// of posting: check that they are the three, each once, ids rising.
	var got []string
	prev := onA.lastID
	for len(got) < 3 {
		f := back.next("message.created", 5*time.Second)
		if switchboard.CompareEventIDs(f.ID, prev) <= 0 {
			t.Fatalf("event %s after %s: replayed twice or out of order", f.ID, prev)
		}
		prev = f.ID
		var d struct {
			Text string `json:"text"`
		}
		json.Unmarshal(f.Data, &d)
		got = append(got, d.Text)
	}
	slices.Sort(got)
	if want := []string{"replay one", "replay three", "replay two"}; !slices.Equal(got, want) {
		t.Fatalf("replayed %q, want %q", got, want)
	}
	select {
	case f := <-back.frames:
		if f.Type == "message.created" {
			t.Fatalf("a fourth message.created after the replay: %+v", f)
		}
	case <-time.After(300 * time.Millisecond):
	}
}

// countMessages counts the conversation's messages through m's API.
func countMessages(t *testing.T, m *Main, token, conv string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", m.URL()+"/api/v1/conversations/"+conv+"/messages?limit=100", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Messages []json.RawMessage `json:"messages"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != 200 {
		t.Fatalf("messages: %d %v", resp.StatusCode, err)
	}
	return len(page.Messages)
}
