package livechat

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/enqueue"
	"github.com/switchboard-inbox/switchboard/channel/refusal"
	"github.com/switchboard-inbox/switchboard/internal/sendq"
	"github.com/switchboard-inbox/switchboard/view"
)

// socket is one visitor's connection. Its queue runs a writer only while
// frames wait; a visitor that falls Buffer frames behind is dropped.
type socket struct {
	h       *Handler
	conn    *websocket.Conn
	site    switchboard.Site
	visitor switchboard.Visitor
	q       *sendq.Queue[outFrame]
	ctx     context.Context // ends with the socket
	cancel  context.CancelFunc
	once    sync.Once

	mu           sync.Mutex
	conversation string // where the visitor's messages go now
}

// outFrame is one frame for a visitor; delivered, when set, is the id of
// an agent's reply the frame carries, marked delivered once written. A
// ping frame is the heartbeat.
type outFrame struct {
	data      []byte
	delivered string
	ping      bool
}

// drop closes the socket of a visitor too slow to keep up.
func (s *socket) drop() {
	s.once.Do(func() {
		go s.conn.Close(websocket.StatusPolicyViolation, "too slow: frames were not read; reconnect")
	})
}

// queue hands a frame to the writer, dropping the socket when it is full.
func (s *socket) queue(v any, delivered string) {
	b, err := json.Marshal(v)
	if err != nil {
		s.h.log.Warn("livechat: encode frame", "err", err)
		return
	}
	if !s.q.Push(outFrame{data: b, delivered: delivered}) {
		s.drop()
	}
}

func (s *socket) conversationID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conversation
}

func (s *socket) setConversation(id string) {
	if id == "" {
		return
	}
	s.mu.Lock()
	s.conversation = id
	s.mu.Unlock()
}

func errorFrame(code, message string) map[string]any {
	return map[string]any{"type": "error", "error": map[string]string{"code": code, "message": message}}
}

func messageFrame(m view.ChatMessage) map[string]any {
	return map[string]any{"type": "message", "message": m}
}

func receiptFrame(messageID string, status switchboard.DeliveryStatus) map[string]any {
	return map[string]any{"type": "receipt", "message_id": messageID, "status": status}
}

type statusFrame struct {
	Type string `json:"type"`
	view.ChatStatus
}

// serveSocket upgrades GET /chat/ws?token= for a visitor whose token and
// page origin are the site's, then sends the status and the conversation
// so far, and serves the visitor's frames.
func (h *Handler) serveSocket(w http.ResponseWriter, r *http.Request) {
	site, v, ok := h.visitorOf(w, r, r.URL.Query().Get("token"))
	if !ok {
		return
	}
	// The server's deadlines stay on a hijacked connection: a socket
	// lives for hours.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	// visitorOf checked Origin against the site's origins.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	conn.SetReadLimit(MaxFrame)
	// The socket outlives the request: its goroutine starts afresh and
	// this handler returns, so the HTTP server's goroutine and the
	// request are not kept by every idle visitor (as for agents' sockets).
	ctx, cancel := context.WithCancel(context.Background())
	s := &socket{h: h, conn: conn, site: site, visitor: v, ctx: ctx, cancel: cancel}
	s.q = sendq.New(h.cfg.Buffer, s.deliver, func(error) { cancel(); conn.CloseNow() })
	// Registered before the history is read, so nothing published
	// meanwhile is missed (the widget drops a message it has by id); the
	// queue holds what arrives until the greeting is queued.
	h.mu.Lock()
	if h.sockets[v.ID] == nil {
		h.sockets[v.ID] = map[*socket]struct{}{}
	}
	h.sockets[v.ID][s] = struct{}{}
	h.mu.Unlock()
	go s.run()
}

// run greets the visitor, then reads their frames until the socket
// closes.
func (s *socket) run() {
	h := s.h
	defer s.cancel()
	defer h.unregister(s)
	if err := h.cfg.Inbox.TouchVisitor(s.ctx, s.visitor.ID); err != nil {
		h.log.Warn("livechat: touch visitor", "err", err)
	}
	if err := s.greet(s.ctx); err != nil {
		h.log.Warn("livechat: greet visitor", "err", err)
		s.conn.Close(websocket.StatusInternalError, "try again")
		return
	}
	s.q.Start()
	s.read(s.ctx)
}

// greet queues the status and the conversation so far; replies kept for
// the visitor's next visit are delivered by it.
func (s *socket) greet(ctx context.Context) error {
	h := s.h
	st, err := h.cfg.Inbox.ChatStatus(ctx, s.site)
	if err != nil {
		return err
	}
	h.mu.Lock()
	if _, ok := h.statuses[s.site.Key]; !ok {
		h.statuses[s.site.Key] = st
	}
	h.mu.Unlock()
	s.queue(statusFrame{"status", st}, "")
	conv, msgs, err := h.cfg.Inbox.VisitorHistory(ctx, s.visitor, HistoryLength)
	if err != nil {
		return err
	}
	s.setConversation(conv)
	for _, m := range msgs {
		delivered := ""
		if m.Direction == switchboard.DirectionOut && m.Status == switchboard.DeliverySent {
			delivered = m.ID // kept for this visit
		}
		s.queue(messageFrame(m), delivered)
	}
	return nil
}

func (h *Handler) unregister(s *socket) {
	h.mu.Lock()
	delete(h.sockets[s.visitor.ID], s)
	if len(h.sockets[s.visitor.ID]) == 0 {
		delete(h.sockets, s.visitor.ID)
		delete(h.limits, s.visitor.ID)
	}
	h.mu.Unlock()
	// The visitor was here until now: an e-mail fallback counts from here.
	if err := h.cfg.Inbox.TouchVisitor(context.Background(), s.visitor.ID); err != nil {
		h.log.Warn("livechat: touch visitor", "err", err)
	}
	s.conn.CloseNow()
}

// deliver writes one frame: a message, marked delivered once written, or
// the heartbeat, which pings and marks the visitor still connected.
func (s *socket) deliver(f outFrame) error {
	h := s.h
	ctx, cancel := context.WithTimeout(s.ctx, h.cfg.WriteTimeout)
	defer cancel()
	if f.ping {
		if err := s.conn.Ping(ctx); err != nil {
			return err
		}
		if err := h.cfg.Inbox.TouchVisitor(s.ctx, s.visitor.ID); err != nil {
			h.log.Warn("livechat: touch visitor", "err", err)
		}
		return nil
	}
	if err := s.conn.Write(ctx, websocket.MessageText, f.data); err != nil {
		return err
	}
	if f.delivered != "" {
		if err := h.cfg.Inbox.VisitorDelivered(s.ctx, f.delivered); err != nil {
			h.log.Warn("livechat: mark delivered", "message", f.delivered, "err", err)
		}
	}
	return nil
}

// read handles the visitor's frames until the socket closes. A bad frame
// gets an error frame and the socket stays open; one over MaxFrame
// closes it.
func (s *socket) read(ctx context.Context) {
	for {
		typ, data, err := s.conn.Read(ctx)
		if err != nil {
			return
		}
		if !s.h.allow(s.visitor.ID) {
			if s.h.cfg.OnRejected != nil {
				s.h.cfg.OnRejected(refusal.RateLimited)
			}
			s.queue(errorFrame(switchboard.ERATELIMIT, "too many frames: slow down (5 a second)"), "")
			continue
		}
		if typ != websocket.MessageText {
			s.queue(errorFrame(switchboard.EINVALID, "frames are JSON text"), "")
			continue
		}
		f, err := DecodeFrame(data)
		if err == nil {
			err = s.handle(ctx, f, data)
		}
		if err != nil {
			code := switchboard.ErrorCode(err)
			msg := switchboard.ErrorMessage(err)
			if code == switchboard.EINTERNAL {
				s.h.log.Warn("livechat: frame", "type", f.Type, "err", err)
				code, msg = "unavailable", "not stored: send it again shortly"
			}
			s.queue(errorFrame(code, msg), "")
		}
	}
}

func (s *socket) handle(ctx context.Context, f Frame, raw []byte) error {
	h := s.h
	switch f.Type {
	case "message":
		return h.enqueue(ctx, s, f, raw)
	case "typing":
		return h.cfg.Inbox.VisitorTyping(ctx, s.visitor, s.conversationID())
	case "read":
		return h.cfg.Inbox.VisitorRead(ctx, s.visitor, f.MessageID)
	}
	return switchboard.Errorf(switchboard.EINVALID, "unknown frame type %q", f.Type)
}

// enqueue puts a visitor's message on the durable inbound queue. Its
// provider id is the visitor's and the client's id, so a message sent
// again (a reconnect) is stored once.
func (h *Handler) enqueue(ctx context.Context, s *socket, f Frame, raw []byte) error {
	v := s.visitor
	atts, err := h.cfg.Inbox.VisitorUploads(ctx, v, f.Attachments)
	if err != nil {
		return err
	}
	ids := []switchboard.IdentityRef{{Kind: switchboard.IdentityChatVisitor, Value: v.ID}}
	if v.ExternalID != "" {
		// Proven by the site's secret: it picks the customer, so the
		// visitor joins the thread of the host app's user.
		ids = append([]switchboard.IdentityRef{{Kind: switchboard.IdentityExternalID, Value: v.ExternalID}}, ids...)
	}
	var claims []switchboard.IdentityRef
	if v.Email != "" {
		// Typed, never proven: shown with a merge suggestion, never
		// threaded on (docs/design.md §3).
		claims = append(claims, switchboard.IdentityRef{Kind: switchboard.IdentityEmail, Value: v.Email})
	}
	ct := switchboard.ContentText
	if strings.TrimSpace(f.Text) == "" && len(atts) > 0 {
		ct = contentType(atts[0].ContentType)
	}
	meta, _ := json.Marshal(map[string]string{"site": s.site.Key, "visitor": v.ID, "client_id": f.ClientID})
	now := h.cfg.Clock.Now()
	in := switchboard.Inbound{
		Channel: switchboard.ChannelLivechat, ProviderID: view.ChatProviderID(v.ID, f.ClientID), SenderName: v.Name,
		Identities: ids, Claims: claims, ContentType: ct, Text: f.Text, Attachments: atts, Metadata: meta, Original: raw,
		ReceivedAt: now, AcceptedAt: now,
	}
	in.Normalize()
	if err := in.Validate(); err != nil {
		return err
	}
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := enqueue.Inbound(qctx, h.cfg.Queue, switchboard.ChannelLivechat, &in); err != nil {
		return err
	}
	if h.cfg.OnAccepted != nil {
		h.cfg.OnAccepted()
	}
	return nil
}

func contentType(ct string) string {
	switch {
	case strings.HasPrefix(ct, "image/"):
		return switchboard.ContentImage
	case strings.HasPrefix(ct, "audio/"):
		return switchboard.ContentAudio
	}
	return switchboard.ContentFile
}
