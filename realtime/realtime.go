// Package realtime serves the agents' WebSocket, GET /api/v1/realtime
// (docs/design.md §6.1): every event of the bus to every agent as it is
// published, the events a client missed replayed from the bus's log when
// it reconnects with ?since=, and the agents' viewing and typing frames
// handed to the inbox, which announces presence. Nothing here blocks a
// reply: presence is a soft lock.
package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/internal/sendq"
)

// Inbox is what the agents' frames call (package inbox).
type Inbox interface {
	Authenticate(ctx context.Context, token string) (switchboard.Actor, error)
	SetViewing(ctx context.Context, actor switchboard.Actor, conversationID string, on bool) error
	Typing(ctx context.Context, actor switchboard.Actor, conversationID string) error
}

// MaxFrame is the largest frame an agent may send; a larger one closes
// the socket.
const MaxFrame = 64 << 10

// Hub serves agents' sockets on one instance. Set the fields, start Run,
// then serve ServeHTTP.
type Hub struct {
	Inbox  Inbox
	Bus    switchboard.Bus
	Logger *slog.Logger
	// Heartbeat is how often the socket is pinged and the agent's viewing
	// renewed (default 20 s: inside the inbox's ViewingTTL).
	Heartbeat time.Duration
	// Buffer is how many events a client may fall behind before it is
	// dropped rather than slowing the others (default 256).
	Buffer int
	// ReplayMax is the most events a reconnecting client is replayed;
	// more means resync (default 10,000).
	ReplayMax int
	// WriteTimeout bounds a write to one client (default 10 s).
	WriteTimeout time.Duration
	// Authenticate, when set, decides who a socket's request is (the
	// server's: a bearer token, or the session cookie from the
	// deployment's own pages); without it a bearer token is required.
	Authenticate func(*http.Request) (switchboard.Actor, error)
	// OnConnect and OnDisconnect, when set, learn of each agent's sockets
	// (the router's presence grace uses them).
	OnConnect, OnDisconnect func(agentID string)

	mu      sync.Mutex
	clients map[*client]struct{}
}

// frame is one encoded event, shared by every client's queue.
type frame struct {
	id   string
	data []byte
}

// ping is queued to every client at each heartbeat.
var ping = &frame{}

// client is one socket as the hub sees it. Its queue holds pointers (a
// slot costs 8 bytes on every idle socket) and runs a writer only while
// frames wait.
type client struct {
	s    *session
	q    *sendq.Queue[*frame]
	once sync.Once
}

// push queues f. A client whose queue is full is dropped, never waited
// for; a heartbeat is just skipped.
func (c *client) push(f *frame) {
	if !c.q.Push(f) && f != ping {
		c.drop()
	}
}

// drop closes the socket of a client too slow to keep up.
func (c *client) drop() {
	c.once.Do(func() {
		go func() {
			select {
			case <-c.s.accepted:
				c.s.conn.Close(websocket.StatusPolicyViolation, "too slow: events were not read; reconnect with since")
			case <-c.s.ctx.Done():
			}
		}()
	})
}

func (h *Hub) init() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.clients == nil {
		h.clients = map[*client]struct{}{}
	}
	if h.Logger == nil {
		h.Logger = slog.Default()
	}
	if h.Heartbeat <= 0 {
		h.Heartbeat = 20 * time.Second
	}
	if h.Buffer <= 0 {
		h.Buffer = 256
	}
	if h.ReplayMax <= 0 {
		h.ReplayMax = 10_000
	}
	if h.WriteTimeout <= 0 {
		h.WriteTimeout = 10 * time.Second
	}
}

// forAgents reports whether agents' sockets carry an event of this type.
func forAgents(t switchboard.BusEventType) bool {
	switch t {
	case switchboard.BusMessageCreated, switchboard.BusMessageUpdated, switchboard.BusConversationUpdated,
		switchboard.BusPresence, switchboard.BusAgentStatus:
		return true
	}
	return false
}

// Run subscribes to the bus and forwards its events until ctx ends.
func (h *Hub) Run(ctx context.Context) error {
	evs, err := h.Bus.Subscribe(ctx)
	if err != nil {
		return err
	}
	h.Forward(evs)
	return ctx.Err()
}

// Forward hands every event of a bus subscription to every connected
// client until the subscription closes, and sends the heartbeats. Each
// event is encoded once; a client whose queue is full is dropped, never
// waited for.
func (h *Hub) Forward(evs <-chan switchboard.BusEvent) {
	h.init()
	tick := time.NewTicker(h.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-evs:
			if !ok {
				return
			}
			if !forAgents(ev.Type) || h.Clients() == 0 {
				// Nobody to send it to: a socket that connects later
				// catches up from the bus's log, not from here.
				continue
			}
			data, err := json.Marshal(ev)
			if err != nil {
				h.Logger.Warn("realtime: encode event", "type", ev.Type, "err", err)
				continue
			}
			h.broadcast(&frame{ev.ID, data})
		case <-tick.C:
			h.broadcast(ping)
		}
	}
}

func (h *Hub) broadcast(f *frame) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		c.push(f)
	}
}

// Clients is the number of sockets connected now.
func (h *Hub) Clients() int {
	h.init()
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

func (h *Hub) authenticate(r *http.Request) (switchboard.Actor, error) {
	if h.Authenticate != nil {
		return h.Authenticate(r)
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return switchboard.Actor{}, switchboard.Errorf(switchboard.EUNAUTHORIZED, "an Authorization: Bearer <token> header is required")
	}
	actor, err := h.Inbox.Authenticate(r.Context(), token)
	if err != nil && switchboard.ErrorCode(err) != switchboard.EINTERNAL {
		return actor, switchboard.Errorf(switchboard.EUNAUTHORIZED, "%s", switchboard.ErrorMessage(err))
	}
	return actor, err
}

// ServeHTTP upgrades an authenticated request to the agent socket.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.init()
	actor, err := h.authenticate(r)
	if err != nil {
		status := http.StatusUnauthorized
		if switchboard.ErrorCode(err) == switchboard.EFORBIDDEN {
			status = http.StatusForbidden
		}
		writeError(w, status, switchboard.ErrorCode(err), switchboard.ErrorMessage(err))
		return
	}
	// The server's read and write deadlines stay on a hijacked
	// connection: a socket lives for hours.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	// The socket outlives the request: its goroutine starts afresh and
	// this handler returns, so that the HTTP server's goroutine, with its
	// deep stack, the request and the connection's first write buffer are
	// not kept for hours by every idle socket (docs/benchmarks.md).
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{hub: h, actor: actor, ctx: ctx, cancel: cancel, accepted: make(chan struct{})}
	// Overflow cancels the session, which ends a blocked write and the
	// read loop; run's close then closes the connection.
	s.client = &client{s: s, q: sendq.New(h.Buffer, s.deliver, func(error) { s.cancel() })}
	// Registered before the upgrade is answered, so that everything
	// published once the client holds its socket reaches it, and before
	// the replay is read, so nothing published meanwhile is missed; the
	// queue is held until the replay is written, and its writer skips
	// what the replay sent.
	h.mu.Lock()
	h.clients[s.client] = struct{}{}
	h.mu.Unlock()
	// A bearer token is no ambient credential a foreign page could ride
	// on, so any origin may use one; Authenticate checked a session
	// cookie's Origin.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		h.mu.Lock()
		delete(h.clients, s.client)
		h.mu.Unlock()
		cancel()
		return // Accept has answered
	}
	conn.SetReadLimit(MaxFrame)
	s.conn = conn // before run and the queue's writer start
	close(s.accepted)
	if h.OnConnect != nil {
		h.OnConnect(actor.ID)
	}
	go s.run(r.URL.Query().Get("since"))
}

// run replays what the client missed, then reads its frames until the
// socket closes.
func (s *session) run(since string) {
	defer s.cancel()
	defer s.close()
	after, err := s.replay(s.ctx, since)
	if err != nil {
		s.hub.Logger.Info("realtime: replay", "agent", s.actor.ID, "err", err)
		return
	}
	s.after = after
	s.client.q.Start()
	s.read(s.ctx)
}

// session is one agent's connected socket.
type session struct {
	hub      *Hub
	conn     *websocket.Conn
	accepted chan struct{} // closed once conn is set
	client   *client
	actor    switchboard.Actor
	ctx      context.Context // ends with the socket
	cancel   context.CancelFunc
	after    string // the replay's last id; only the queue's writer reads it

	mu      sync.Mutex // guards viewing
	viewing string     // the conversation this socket views
}

// replay sends the events after since (nothing when since is ""), or one
// resync frame, and returns the id the live stream continues after.
func (s *session) replay(ctx context.Context, since string) (string, error) {
	if since == "" {
		return "", nil
	}
	evs, err := s.hub.Bus.Since(ctx, since, s.hub.ReplayMax+1)
	if errors.Is(err, switchboard.ErrResync) || len(evs) > s.hub.ReplayMax {
		return "", s.writeJSON(ctx, map[string]string{"type": "resync"})
	}
	if err != nil {
		return "", err
	}
	after := since
	for _, ev := range evs {
		if !forAgents(ev.Type) {
			continue
		}
		if err := s.writeJSON(ctx, ev); err != nil {
			return "", err
		}
		after = ev.ID
	}
	return after, nil
}

// deliver writes one frame; a heartbeat pings the client and renews what
// the socket views.
func (s *session) deliver(f *frame) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.hub.WriteTimeout)
	defer cancel()
	if f != ping {
		if s.after != "" && switchboard.CompareEventIDs(f.id, s.after) <= 0 {
			return nil
		}
		return s.conn.Write(ctx, websocket.MessageText, f.data)
	}
	if err := s.conn.Ping(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	viewing := s.viewing
	s.mu.Unlock()
	if viewing != "" {
		s.hub.Inbox.SetViewing(s.ctx, s.actor, viewing, true)
	}
	return nil
}

// inFrame is what an agent sends.
type inFrame struct {
	Type           string  `json:"type"`
	ConversationID *string `json:"conversation_id"`
}

// read handles the agent's frames until the socket closes: viewing and
// typing go to the inbox; anything else gets an error frame and the
// socket stays open. A frame over MaxFrame closes it.
func (s *session) read(ctx context.Context) {
	for {
		typ, data, err := s.conn.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			s.writeError(ctx, switchboard.EINVALID, "frames are JSON text")
			continue
		}
		var f inFrame
		if err := json.Unmarshal(data, &f); err != nil {
			s.writeError(ctx, switchboard.EINVALID, "malformed JSON: "+err.Error())
			continue
		}
		if err := s.handle(ctx, f); err != nil {
			s.writeError(ctx, switchboard.ErrorCode(err), switchboard.ErrorMessage(err))
		}
	}
}

func (s *session) handle(ctx context.Context, f inFrame) error {
	actor := s.actor
	switch f.Type {
	case "viewing":
		if f.ConversationID == nil {
			return switchboard.Errorf(switchboard.EINVALID, `a viewing frame needs "conversation_id" ("" stops viewing)`)
		}
		s.mu.Lock()
		old := s.viewing
		s.mu.Unlock()
		if old == *f.ConversationID {
			return nil
		}
		if *f.ConversationID != "" {
			if err := s.hub.Inbox.SetViewing(ctx, actor, *f.ConversationID, true); err != nil {
				return err
			}
		}
		s.mu.Lock()
		s.viewing = *f.ConversationID
		s.mu.Unlock()
		if old != "" {
			return s.hub.Inbox.SetViewing(ctx, actor, old, false)
		}
		return nil
	case "typing":
		if f.ConversationID == nil || *f.ConversationID == "" {
			return switchboard.Errorf(switchboard.EINVALID, `a typing frame needs "conversation_id"`)
		}
		return s.hub.Inbox.Typing(ctx, actor, *f.ConversationID)
	}
	return switchboard.Errorf(switchboard.EINVALID, "unknown frame type %q: viewing or typing", f.Type)
}

// close unregisters the client and ends what it was viewing.
func (s *session) close() {
	ctx := s.ctx
	h := s.hub
	h.mu.Lock()
	delete(h.clients, s.client)
	h.mu.Unlock()
	s.mu.Lock()
	viewing := s.viewing
	s.mu.Unlock()
	if viewing != "" {
		if err := h.Inbox.SetViewing(context.WithoutCancel(ctx), s.actor, viewing, false); err != nil {
			h.Logger.Warn("realtime: stop viewing", "agent", s.actor.ID, "err", err)
		}
	}
	if h.OnDisconnect != nil {
		h.OnDisconnect(s.actor.ID)
	}
	s.conn.CloseNow()
}

func (s *session) writeJSON(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, s.hub.WriteTimeout)
	defer cancel()
	return s.conn.Write(wctx, websocket.MessageText, b)
}

func (s *session) writeError(ctx context.Context, code, message string) {
	s.writeJSON(ctx, map[string]any{"type": "error", "error": map[string]string{"code": code, "message": message}})
}

// writeError answers a request that was not upgraded, in the API's shape.
func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard"`)
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": message}})
}
