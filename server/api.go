package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/email/parse"
	"github.com/switchboard-inbox/switchboard/identity"
	"github.com/switchboard-inbox/switchboard/store"
)

// maxAPIBody bounds JSON request bodies of the agent API.
const maxAPIBody = 1 << 20

func (s *Server) routeAPI(mux *http.ServeMux) {
	h := func(pattern string, fn func(http.ResponseWriter, *http.Request, switchboard.Agent) error) {
		mux.Handle(pattern, s.authed(fn))
	}
	h("GET /api/v1/conversations", s.listConversations)
	h("GET /api/v1/conversations/{id}", s.showConversation)
	h("POST /api/v1/conversations/{id}/messages", s.sendMessage)
	h("POST /api/v1/conversations/{id}/assign", s.assign)
	h("POST /api/v1/conversations/{id}/status", s.setStatus)
	h("GET /api/v1/messages/{id}/original", s.original)
	h("GET /api/v1/customers/{id}", s.showCustomer)
	h("POST /api/v1/customers/{id}/merge", s.mergeCustomer)
	h("GET /api/v1/agents", s.listAgents)
	h("POST /api/v1/agents/{id}/status", s.setAgentStatus)
	h("POST /api/v1/conversations/{id}/priority", s.setPriority)
	h("GET /api/v1/routing", s.getRouting)
	h("PUT /api/v1/routing", s.putRouting)
	h("PATCH /api/v1/agents/{id}", s.patchAgent)
	h("GET /api/v1/search", s.search)
	h("POST /api/v1/uploads", s.upload)
	h("GET /api/v1/conversations/{id}/compose", s.compose)
	h("GET /api/v1/templates", s.listTemplates)
	h("PUT /api/v1/templates", s.putTemplate)
}

// authed resolves the bearer token to an agent before calling fn, and
// turns fn's error into the JSON error answer.
func (s *Server) authed(fn func(http.ResponseWriter, *http.Request, switchboard.Agent) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || strings.TrimSpace(token) == "" {
			writeError(w, r, s.Logger, switchboard.Errorf(switchboard.EUNAUTHORIZED, "an Authorization: Bearer <token> header is required"))
			return
		}
		agent, err := s.Store.AgentByToken(r.Context(), strings.TrimSpace(token))
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), keyAgent, agent))
		if err := fn(w, r, agent); err != nil {
			writeError(w, r, s.Logger, err)
		}
	})
}

// decode reads a JSON body into v, refusing unknown fields, trailing data
// and oversized bodies with a clear message.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return switchboard.Errorf(switchboard.ETOOLARGE, "request body exceeds %d bytes", tooBig.Limit)
		case errors.Is(err, io.EOF):
			return switchboard.Errorf(switchboard.EINVALID, "request body is empty; JSON expected")
		}
		return switchboard.Errorf(switchboard.EINVALID, "malformed JSON: %v", err)
	}
	if dec.More() {
		return switchboard.Errorf(switchboard.EINVALID, "malformed JSON: unexpected data after the object")
	}
	return nil
}

func timeOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

type ref struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type conversationJSON struct {
	ID            string                `json:"id"`
	Customer      ref                   `json:"customer"`
	Status        string                `json:"status"`
	Assignee      *ref                  `json:"assignee"`
	Team          string                `json:"team"`
	Topic         string                `json:"topic"`
	Priority      int                   `json:"priority"`
	LastChannel   switchboard.Channel   `json:"last_channel"`
	Channels      []switchboard.Channel `json:"channels"`
	LastMessageAt any                   `json:"last_message_at"`
	LastInboundAt any                   `json:"last_inbound_at"`
	FirstResponse any                   `json:"first_response_at"`
	ResolvedAt    any                   `json:"resolved_at"`
	CreatedAt     any                   `json:"created_at"`
}

func conversationOut(c switchboard.Conversation) conversationJSON {
	out := conversationJSON{
		ID: c.ID, Customer: ref{c.CustomerID, c.CustomerName}, Status: c.Status, Team: c.Team, Topic: c.Topic,
		Priority: c.Priority, LastChannel: c.LastChannel, Channels: c.Channels,
		LastMessageAt: timeOrNil(c.LastMessageAt), LastInboundAt: timeOrNil(c.LastInboundAt),
		FirstResponse: timeOrNil(c.FirstResponseAt), ResolvedAt: timeOrNil(c.ResolvedAt), CreatedAt: timeOrNil(c.CreatedAt),
	}
	if out.Channels == nil {
		out.Channels = []switchboard.Channel{}
	}
	if c.AssigneeID != "" {
		out.Assignee = &ref{c.AssigneeID, c.AssigneeName}
	}
	return out
}

type attachmentJSON struct {
	ID          string `json:"id"`
	URL         string `json:"url"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	Name        string `json:"name"`
	Transcript  string `json:"transcript"`
}

type messageJSON struct {
	ID             string              `json:"id"`
	ConversationID string              `json:"conversation_id"`
	Direction      string              `json:"direction"`
	Channel        switchboard.Channel `json:"channel"`
	Sender         string              `json:"sender"`
	ContentType    string              `json:"content_type"`
	Text           string              `json:"text"`
	HTML           string              `json:"html"`
	Status         string              `json:"status"`
	Error          string              `json:"error"`
	ProviderID     string              `json:"provider_id"`
	Attachments    []attachmentJSON    `json:"attachments"`
	CreatedAt      any                 `json:"created_at"`
}

func (s *Server) messageOut(ctx context.Context, m switchboard.Message) (messageJSON, error) {
	out := messageJSON{
		ID: m.ID, ConversationID: m.ConversationID, Direction: m.Direction, Channel: m.Channel, Sender: m.Sender,
		ContentType: m.ContentType, Text: m.Text, HTML: m.HTML, Status: m.Status, Error: m.Error, ProviderID: m.ProviderID,
		Attachments: []attachmentJSON{}, CreatedAt: timeOrNil(m.CreatedAt),
	}
	var inline map[string]string
	for _, a := range m.Attachments {
		var url string
		if s.Blobs != nil {
			u, err := s.Blobs.URL(ctx, a.Key, s.AttachmentURLTTL)
			if err != nil {
				return out, err
			}
			url = u
		}
		if a.ContentID != "" && url != "" {
			if inline == nil {
				inline = map[string]string{}
			}
			inline[a.ContentID] = url
		}
		out.Attachments = append(out.Attachments, attachmentJSON{a.ID, url, a.ContentType, a.Size, a.Name, a.Transcript})
	}
	if inline != nil && strings.Contains(out.HTML, "cid:") {
		// Inline images point at their stored parts; the URLs expire, so
		// they are written at display time, not stored.
		out.HTML = parse.RewriteCID(out.HTML, func(cid string) (string, bool) {
			u, ok := inline[cid]
			return u, ok
		})
	}
	return out, nil
}

func (s *Server) messagesOut(ctx context.Context, msgs []switchboard.Message) ([]messageJSON, error) {
	out := make([]messageJSON, 0, len(msgs))
	for _, m := range msgs {
		j, err := s.messageOut(ctx, m)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}

func (s *Server) listConversations(w http.ResponseWriter, r *http.Request, me switchboard.Agent) error {
	q := r.URL.Query()
	f := store.ConversationFilter{
		Status: q.Get("status"), AssigneeID: q.Get("assignee"), Channel: switchboard.Channel(q.Get("channel")),
		Topic: q.Get("topic"), Query: q.Get("q"), Cursor: q.Get("cursor"),
	}
	if f.Status != "" && !switchboard.ValidStatus(f.Status) {
		return switchboard.Errorf(switchboard.EINVALID, "unknown status %q", f.Status)
	}
	if f.Channel != "" && !f.Channel.Valid() {
		return switchboard.Errorf(switchboard.EINVALID, "unknown channel %q", f.Channel)
	}
	if f.AssigneeID == "me" {
		f.AssigneeID = me.ID
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			return switchboard.Errorf(switchboard.EINVALID, "limit must be an integer from 1 to 200")
		}
		f.Limit = n
	}
	convs, next, err := s.Store.ListConversations(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]conversationJSON, 0, len(convs))
	for _, c := range convs {
		out = append(out, conversationOut(c))
	}
	writeJSON(w, http.StatusOK, map[string]any{"conversations": out, "next_cursor": next})
	return nil
}

type eventJSON struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	AgentID   string          `json:"agent_id"`
	Data      json.RawMessage `json:"data"`
	CreatedAt any             `json:"created_at"`
}

func (s *Server) showConversation(w http.ResponseWriter, r *http.Request, _ switchboard.Agent) error {
	ctx := r.Context()
	c, err := s.Store.GetConversation(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	msgs, err := s.Store.Timeline(ctx, c.CustomerID)
	if err != nil {
		return err
	}
	evs, err := s.Store.Events(ctx, c.ID)
	if err != nil {
		return err
	}
	mout, err := s.messagesOut(ctx, msgs)
	if err != nil {
		return err
	}
	eout := make([]eventJSON, 0, len(evs))
	for _, e := range evs {
		eout = append(eout, eventJSON{e.ID, e.Type, e.AgentID, e.Data, timeOrNil(e.CreatedAt)})
	}
	// A conversation waiting for an agent says where it is in the queue
	// (live-chat customers can be told), 1 being next.
	var position *int
	if c.AssigneeID == "" && c.Status != switchboard.StatusResolved {
		n, err := s.Store.QueuePosition(ctx, c.ID)
		if err != nil {
			return err
		}
		if n > 0 {
			position = &n
		}
	}
	writeJSON(w, http.StatusOK, struct {
		conversationJSON
		QueuePosition *int          `json:"queue_position,omitempty"`
		Messages      []messageJSON `json:"messages"`
		Events        []eventJSON   `json:"events"`
	}{conversationOut(c), position, mout, eout})
	return nil
}

func (s *Server) sendMessage(w http.ResponseWriter, r *http.Request, me switchboard.Agent) error {
	var body struct {
		Text     string              `json:"text"`
		HTML     string              `json:"html"`
		Channel  switchboard.Channel `json:"channel"`
		Note     bool                `json:"note"`
		Template *struct {
			Name     string   `json:"name"`
			Language string   `json:"language"`
			Params   []string `json:"params"`
		} `json:"template"`
		Attachments []string `json:"attachments"`
		Cc          []string `json:"cc"`
		Bcc         []string `json:"bcc"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	if body.HTML != "" {
		body.HTML = parse.SanitizeHTML(body.HTML)
	}
	if body.Channel != "" && !body.Channel.Valid() {
		return switchboard.Errorf(switchboard.EINVALID, "unknown channel %q", body.Channel)
	}
	atts, err := s.Store.Uploads(r.Context(), body.Attachments)
	if err != nil {
		return err
	}
	var meta json.RawMessage
	if !body.Note {
		var tpl *switchboard.TemplateRef
		if body.Template != nil {
			tpl = &switchboard.TemplateRef{Name: body.Template.Name, Language: body.Template.Language, Params: body.Template.Params}
		}
		dec, err := s.decide(r.Context(), r.PathValue("id"), switchboard.Draft{Channel: body.Channel, Text: body.Text, Attachments: atts, Template: tpl})
		if err != nil {
			return err
		}
		if !dec.Allowed {
			return &switchboard.Error{Code: switchboard.EPOLICY, Message: dec.Reason, Details: dec}
		}
		body.Channel = dec.Channel
		if len(body.Cc)+len(body.Bcc) > 0 {
			if body.Channel != switchboard.ChannelEmail && body.Channel != switchboard.ChannelWebform {
				return switchboard.Errorf(switchboard.EINVALID, "cc and bcc are for e-mail replies")
			}
			for _, a := range append(slices.Clip(body.Cc), body.Bcc...) {
				if _, err := identity.Email(a); err != nil {
					return switchboard.Errorf(switchboard.EINVALID, "cc/bcc address %q: %v", a, err)
				}
			}
			meta, _ = json.Marshal(map[string]any{"cc": body.Cc, "bcc": body.Bcc})
		}
		if tpl != nil {
			// The reply shows what the customer receives; the sender
			// reads the template from the metadata.
			body.Text = dec.Text
			meta, _ = json.Marshal(map[string]any{"template": tpl})
		}
	}
	m, err := s.Store.CreateReply(r.Context(), store.Reply{
		ConversationID: r.PathValue("id"), AgentID: me.ID, Channel: body.Channel, Text: body.Text, HTML: body.HTML, Note: body.Note,
		Attachments: atts, Metadata: meta,
	})
	if err != nil {
		return err
	}
	if !body.Note && s.OutboxNotify != nil {
		s.OutboxNotify()
	}
	s.publish(r.Context(), switchboard.BusMessageCreated, m.ConversationID, me.ID, map[string]any{"message_id": m.ID, "direction": m.Direction})
	out, err := s.messageOut(r.Context(), m)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, out)
	return nil
}

func (s *Server) publish(ctx context.Context, typ, conversation, agent string, data any) {
	if s.Bus == nil {
		return
	}
	b, _ := json.Marshal(data)
	if err := s.Bus.Publish(ctx, switchboard.BusEvent{Type: typ, Conversation: conversation, Agent: agent, At: time.Now().UTC(), Data: b}); err != nil {
		s.Logger.Warn("publish", "type", typ, "err", err)
	}
}

func (s *Server) wakeRouter() {
	if s.RoutingWake != nil {
		s.RoutingWake()
	}
}

func isSupervisor(a switchboard.Agent) bool {
	return a.Role == switchboard.RoleSupervisor || a.Role == switchboard.RoleAdmin
}

func (s *Server) assign(w http.ResponseWriter, r *http.Request, me switchboard.Agent) error {
	var body struct {
		AgentID *string `json:"agent_id"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	target := ""
	if body.AgentID != nil {
		target = *body.AgentID
	}
	ctx := r.Context()
	c, err := s.Store.GetConversation(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	// Agents may take an unassigned conversation or hand back their own;
	// moving anyone else's work is for supervisors.
	takes := target == me.ID && (c.AssigneeID == "" || c.AssigneeID == me.ID)
	handsBack := target == "" && c.AssigneeID == me.ID
	if !isSupervisor(me) && !takes && !handsBack {
		return switchboard.Errorf(switchboard.EFORBIDDEN, "only supervisors move conversations between agents")
	}
	c, err = s.Store.Assign(ctx, c.ID, target, me.ID, "manual", "assigned by "+me.Name)
	if err != nil {
		return err
	}
	s.publish(ctx, switchboard.BusConversationUpdated, c.ID, me.ID, map[string]any{"assignee": target})
	s.wakeRouter()
	writeJSON(w, http.StatusOK, conversationOut(c))
	return nil
}

func (s *Server) setStatus(w http.ResponseWriter, r *http.Request, me switchboard.Agent) error {
	var body struct {
		Status string `json:"status"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	c, err := s.Store.SetStatus(r.Context(), r.PathValue("id"), body.Status, me.ID)
	if err != nil {
		return err
	}
	s.publish(r.Context(), switchboard.BusConversationUpdated, c.ID, me.ID, map[string]any{"status": c.Status})
	s.wakeRouter()
	writeJSON(w, http.StatusOK, conversationOut(c))
	return nil
}

func (s *Server) original(w http.ResponseWriter, r *http.Request, _ switchboard.Agent) error {
	ctx := r.Context()
	m, err := s.Store.GetMessage(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	body, err := s.Store.Original(ctx, m.ID)
	if switchboard.ErrorCode(err) == switchboard.ENOTFOUND && s.Blobs != nil {
		// Large originals live in the object store.
		var meta map[string]any
		json.Unmarshal(m.Metadata, &meta)
		if key, _ := meta[switchboard.MetaOriginalKey].(string); key != "" {
			return s.serveOriginalBlob(w, r, m, key)
		}
	}
	if err != nil {
		return err
	}
	ct := "application/octet-stream"
	switch {
	case m.Channel == switchboard.ChannelEmail:
		ct = "message/rfc822"
	case json.Valid(body):
		ct = "application/json"
	case m.Channel == switchboard.ChannelSMS || m.Channel == switchboard.ChannelVoice:
		ct = "application/x-www-form-urlencoded"
	}
	originalHeaders(w, ct)
	w.Write(body)
	return nil
}

func originalHeaders(w http.ResponseWriter, contentType string) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", "attachment")
	w.Header().Set("X-Content-Type-Options", "nosniff")
}

func (s *Server) serveOriginalBlob(w http.ResponseWriter, r *http.Request, m switchboard.Message, key string) error {
	rc, _, err := s.Blobs.Get(r.Context(), key)
	if err != nil {
		return fmt.Errorf("original of %s: %w", m.ID, err)
	}
	defer rc.Close()
	originalHeaders(w, "message/rfc822")
	_, err = io.Copy(w, rc)
	return err
}

func (s *Server) showCustomer(w http.ResponseWriter, r *http.Request, _ switchboard.Agent) error {
	ctx := r.Context()
	c, err := s.Store.GetCustomer(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	if c.MergedInto != "" {
		// The merged-away customer is a redirect to the one that survived.
		http.Redirect(w, r, "/api/v1/customers/"+c.MergedInto, http.StatusPermanentRedirect)
		return nil
	}
	convs, err := s.Store.CustomerConversations(ctx, c.ID)
	if err != nil {
		return err
	}
	out := make([]conversationJSON, 0, len(convs))
	for _, cv := range convs {
		out = append(out, conversationOut(cv))
	}
	ids := c.Identities
	if ids == nil {
		ids = []switchboard.IdentityRef{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": c.ID, "name": c.Name, "created_at": timeOrNil(c.CreatedAt), "identities": ids, "conversations": out})
	return nil
}

func (s *Server) mergeCustomer(w http.ResponseWriter, r *http.Request, me switchboard.Agent) error {
	var body struct {
		OtherID string `json:"other_id"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	if body.OtherID == "" {
		return switchboard.Errorf(switchboard.EINVALID, "other_id is required")
	}
	open, err := s.Store.MergeCustomers(r.Context(), r.PathValue("id"), body.OtherID, me.ID)
	if err != nil {
		return err
	}
	if open != "" {
		s.publish(r.Context(), switchboard.BusConversationUpdated, open, me.ID, map[string]any{"merged": body.OtherID})
	}
	return s.showCustomer(w, r, me)
}

func (s *Server) agentOut(a switchboard.Agent, active map[switchboard.ChannelClass]int) map[string]any {
	return map[string]any{
		"id": a.ID, "name": a.Name, "email": a.Email, "role": a.Role, "status": a.Status,
		"skills": nonNil(a.Skills), "teams": nonNil(a.Teams),
		"caps":   map[string]int{"chat": a.CapChat, "email": a.CapEmail},
		"active": map[string]int{"chat": active[switchboard.ClassChat], "email": active[switchboard.ClassEmail]},
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request, _ switchboard.Agent) error {
	agents, err := s.Store.ListAgents(r.Context())
	if err != nil {
		return err
	}
	counts, err := s.Store.ActiveCounts(r.Context())
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(agents))
	for _, a := range agents {
		out = append(out, s.agentOut(a, counts[a.ID]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"agents": out})
	return nil
}

func (s *Server) setAgentStatus(w http.ResponseWriter, r *http.Request, me switchboard.Agent) error {
	var body struct {
		Status string `json:"status"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	id := r.PathValue("id")
	if id != me.ID && !isSupervisor(me) {
		return switchboard.Errorf(switchboard.EFORBIDDEN, "only supervisors set other agents' status")
	}
	a, err := s.Store.SetAgentStatus(r.Context(), id, body.Status)
	if err != nil {
		return err
	}
	s.publish(r.Context(), "agent.status", "", a.ID, map[string]any{"status": a.Status})
	counts, err := s.Store.ActiveCounts(r.Context())
	if err != nil {
		return err
	}
	s.wakeRouter()
	writeJSON(w, http.StatusOK, s.agentOut(a, counts[a.ID]))
	return nil
}

func (s *Server) patchAgent(w http.ResponseWriter, r *http.Request, me switchboard.Agent) error {
	if me.Role != switchboard.RoleAdmin {
		return switchboard.Errorf(switchboard.EFORBIDDEN, "only admins change agents")
	}
	var body struct {
		Role   *string   `json:"role"`
		Skills *[]string `json:"skills"`
		Teams  *[]string `json:"teams"`
		Caps   *struct {
			Chat  *int `json:"chat"`
			Email *int `json:"email"`
		} `json:"caps"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	u := store.AgentUpdate{Role: body.Role, Skills: body.Skills, Teams: body.Teams}
	if body.Caps != nil {
		u.CapChat, u.CapEmail = body.Caps.Chat, body.Caps.Email
	}
	a, err := s.Store.UpdateAgent(r.Context(), r.PathValue("id"), u)
	if err != nil {
		return err
	}
	counts, err := s.Store.ActiveCounts(r.Context())
	if err != nil {
		return err
	}
	s.wakeRouter()
	writeJSON(w, http.StatusOK, s.agentOut(a, counts[a.ID]))
	return nil
}

func (s *Server) search(w http.ResponseWriter, r *http.Request, _ switchboard.Agent) error {
	msgs, err := s.Store.Search(r.Context(), r.URL.Query().Get("q"), 50)
	if err != nil {
		return err
	}
	out, err := s.messagesOut(r.Context(), msgs)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": out})
	return nil
}

// decide asks the channel's policy about a draft. The draft's channel
// defaults to the conversation's last channel.
func (s *Server) decide(ctx context.Context, conversationID string, d switchboard.Draft) (switchboard.Decision, error) {
	c, err := s.Store.GetConversation(ctx, conversationID)
	if err != nil {
		return switchboard.Decision{}, err
	}
	if d.Channel == "" {
		d.Channel = c.LastChannel
	}
	if s.Senders != nil && s.Senders[d.Channel] == nil {
		return switchboard.Decision{Channel: d.Channel, Reason: fmt.Sprintf("replies cannot be sent on %s: the channel is not configured for sending", d.Channel)}, nil
	}
	p, ok := s.Policies[d.Channel]
	if !ok {
		if d.Template != nil {
			return switchboard.Decision{Channel: d.Channel, Reason: "templates are only used on WhatsApp, which is not configured"}, nil
		}
		return switchboard.Decision{Channel: d.Channel, Allowed: true}, nil
	}
	rec, err := s.Store.Recipient(ctx, conversationID)
	if err != nil {
		return switchboard.Decision{}, err
	}
	dec := p.Check(rec, d, time.Now().UTC())
	dec.Channel = d.Channel
	return dec, nil
}

// compose answers what the channel allows now, for the composer: the
// same decision the send path will make.
func (s *Server) compose(w http.ResponseWriter, r *http.Request, _ switchboard.Agent) error {
	q := r.URL.Query()
	ch := switchboard.Channel(q.Get("channel"))
	if ch != "" && !ch.Valid() {
		return switchboard.Errorf(switchboard.EINVALID, "unknown channel %q", ch)
	}
	dec, err := s.decide(r.Context(), r.PathValue("id"), switchboard.Draft{Channel: ch, Text: q.Get("text")})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, dec)
	return nil
}

func (s *Server) listTemplates(w http.ResponseWriter, r *http.Request, _ switchboard.Agent) error {
	ts, err := s.Store.Templates(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"templates": ts})
	return nil
}

// putTemplate adds or replaces a WhatsApp message template (admins).
func (s *Server) putTemplate(w http.ResponseWriter, r *http.Request, me switchboard.Agent) error {
	if me.Role != switchboard.RoleAdmin {
		return switchboard.Errorf(switchboard.EFORBIDDEN, "only admins edit templates")
	}
	var t switchboard.MessageTemplate
	if err := decode(w, r, &t); err != nil {
		return err
	}
	if err := s.Store.PutTemplate(r.Context(), t); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}
