package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/inbox"
)

// The agent API (docs/design.md §4.1). Each handler decodes its input, calls the
// inbox, which checks permissions and channel rules, and encodes the
// answer: no rule lives here.

// maxAPIBody bounds JSON request bodies of the agent API.
const maxAPIBody = 1 << 20

func (s *Server) routeAPI(mux *http.ServeMux) {
	h := func(pattern string, fn func(http.ResponseWriter, *http.Request, switchboard.Actor) error) {
		mux.Handle(pattern, s.authed(fn))
	}
	h("GET /api/v1/conversations", s.listConversations)
	h("GET /api/v1/conversations/{id}", s.showConversation)
	h("GET /api/v1/conversations/{id}/messages", s.listMessages)
	h("POST /api/v1/conversations/{id}/messages", s.sendMessage)
	h("POST /api/v1/conversations/{id}/assign", s.assign)
	h("POST /api/v1/conversations/{id}/status", s.setStatus)
	h("POST /api/v1/conversations/{id}/priority", s.setPriority)
	h("GET /api/v1/conversations/{id}/compose", s.compose)
	h("GET /api/v1/messages/{id}/original", s.original)
	h("GET /api/v1/customers/{id}", s.showCustomer)
	h("POST /api/v1/customers/{id}/merge", s.mergeCustomer)
	h("POST /api/v1/customers/{id}/unmerge", s.unmergeCustomer)
	h("GET /api/v1/agents", s.listAgents)
	h("POST /api/v1/agents/{id}/status", s.setAgentStatus)
	h("PATCH /api/v1/agents/{id}", s.patchAgent)
	h("GET /api/v1/routing", s.getRouting)
	h("PUT /api/v1/routing", s.putRouting)
	h("GET /api/v1/search", s.search)
	h("POST /api/v1/uploads", s.upload)
	h("GET /api/v1/templates", s.listTemplates)
	h("PUT /api/v1/templates", s.putTemplate)
	h("GET /api/v1/sites", s.listSites)
	h("POST /api/v1/sites", s.addSite)
	h("PATCH /api/v1/sites/{key}", s.patchSite)
	h("GET /api/v1/analytics/{measure}", s.analytics)
	h("GET /api/v1/openapi.json", s.openAPI)
}

// authed resolves the bearer token or the browser session to an actor
// before calling fn, refuses a session's state change without its CSRF
// token, and turns fn's error into the JSON error answer.
func (s *Server) authed(fn func(http.ResponseWriter, *http.Request, switchboard.Actor) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The request's context ends when its client goes away; the
		// deadline ends reads no client would wait for.
		ctx, cancel := context.WithTimeout(r.Context(), s.APITimeout)
		defer cancel()
		id, err := s.identify(ctx, r)
		if err == nil {
			err = s.checkCSRF(r, id)
		}
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		r = r.WithContext(context.WithValue(ctx, keyAgent, id.actor))
		if err := fn(w, r, id.actor); err != nil {
			writeError(w, r, s.Logger, err)
		}
	})
}

// decode reads a JSON body into v, refusing unknown fields, trailing data
// and oversized bodies with a clear message.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		// A form or text/plain post is what a cross-site page can send
		// without asking: only JSON is read.
		return switchboard.Errorf(switchboard.EMEDIATYPE, "the body must be JSON (Content-Type: application/json), not %q", mt)
	}
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

func (s *Server) listConversations(w http.ResponseWriter, r *http.Request, me switchboard.Actor) error {
	q := r.URL.Query()
	f := switchboard.ConversationFilter{
		Status: switchboard.Status(q.Get("status")), AssigneeID: q.Get("assignee"), Channel: switchboard.Channel(q.Get("channel")),
		Topic: q.Get("topic"), Query: q.Get("q"), Cursor: q.Get("cursor"),
	}
	if v := q.Get("limit"); v != "" {
		n, err := parseLimit(v)
		if err != nil {
			return err
		}
		f.Limit = n
	}
	convs, next, err := s.Inbox.Conversations(r.Context(), me, f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"conversations": convs, "next_cursor": next})
	return nil
}

func (s *Server) showConversation(w http.ResponseWriter, r *http.Request, me switchboard.Actor) error {
	c, err := s.Inbox.Conversation(r.Context(), me, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// listMessages pages a conversation's timeline backwards.
func (s *Server) listMessages(w http.ResponseWriter, r *http.Request, me switchboard.Actor) error {
	q := r.URL.Query()
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := parseLimit(v)
		if err != nil {
			return err
		}
		limit = n
	}
	msgs, next, err := s.Inbox.Messages(r.Context(), me, r.PathValue("id"), q.Get("before"), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": msgs, "next_cursor": next})
	return nil
}

func (s *Server) sendMessage(w http.ResponseWriter, r *http.Request, me switchboard.Actor) error {
	var body struct {
		Text        string                   `json:"text"`
		HTML        string                   `json:"html"`
		Channel     switchboard.Channel      `json:"channel"`
		Note        bool                     `json:"note"`
		Template    *switchboard.TemplateRef `json:"template"`
		Attachments []string                 `json:"attachments"`
		Cc          []string                 `json:"cc"`
		Bcc         []string                 `json:"bcc"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	m, err := s.Inbox.Reply(r.Context(), me, switchboard.Reply{
		ConversationID: r.PathValue("id"), Channel: body.Channel, Text: body.Text, HTML: body.HTML, Note: body.Note,
		Template: body.Template, Attachments: body.Attachments, Cc: body.Cc, Bcc: body.Bcc,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, m)
	return nil
}

func (s *Server) assign(w http.ResponseWriter, r *http.Request, me switchboard.Actor) error {
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
	c, err := s.Inbox.Assign(r.Context(), me, r.PathValue("id"), target)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) setStatus(w http.ResponseWriter, r *http.Request, me switchboard.Actor) error {
	var body struct {
		Status switchboard.Status `json:"status"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	c, err := s.Inbox.SetStatus(r.Context(), me, r.PathValue("id"), body.Status)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) setPriority(w http.ResponseWriter, r *http.Request, me switchboard.Actor) error {
	var body struct {
		Priority *int `json:"priority"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	if body.Priority == nil {
		return switchboard.Errorf(switchboard.EINVALID, "priority must be a number from -100 to 100")
	}
	c, err := s.Inbox.SetPriority(r.Context(), me, r.PathValue("id"), *body.Priority)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// compose answers what the channel allows now, for the composer: the
// same decision the send path will make. attachments names uploads, by
// id, repeated or comma-separated.
func (s *Server) compose(w http.ResponseWriter, r *http.Request, me switchboard.Actor) error {
	q := r.URL.Query()
	var atts []string
	for _, v := range q["attachments"] {
		for _, id := range strings.Split(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				atts = append(atts, id)
			}
		}
	}
	dec, err := s.Inbox.Compose(r.Context(), me, r.PathValue("id"), switchboard.Channel(q.Get("channel")), q.Get("text"), atts...)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, dec)
	return nil
}

func (s *Server) original(w http.ResponseWriter, r *http.Request, me switchboard.Actor) error {
	ct, body, err := s.Inbox.Original(r.Context(), me, r.PathValue("id"))
	if err != nil {
		return err
	}
	defer body.Close()
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", "attachment")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, err = io.Copy(w, body)
	return err
}

func (s *Server) showCustomer(w http.ResponseWriter, r *http.Request, me switchboard.Actor) error {
	c, mergedInto, err := s.Inbox.Customer(r.Context(), me, r.PathValue("id"))
	if err != nil {
		return err
	}
	if mergedInto != "" {
		// The merged-away customer is a redirect to the one that survived,
		// answered in JSON like everything else here.
		w.Header().Set("Location", "/api/v1/customers/"+mergedInto)
		writeJSON(w, http.StatusPermanentRedirect, map[string]string{"id": r.PathValue("id"), "merged_into": mergedInto})
		return nil
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) mergeCustomer(w http.ResponseWriter, r *http.Request, me switchboard.Actor) error {
	var body struct {
		OtherID string `json:"other_id"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	c, err := s.Inbox.Merge(r.Context(), me, r.PathValue("id"), body.OtherID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// unmergeCustomer undoes the merge of other_id into this customer.
func (s *Server) unmergeCustomer(w http.ResponseWriter, r *http.Request, me switchboard.Actor) error {
	var body struct {
		OtherID string `json:"other_id"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	c, err := s.Inbox.Unmerge(r.Context(), me, r.PathValue("id"), body.OtherID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request, me switchboard.Actor) error {
	agents, err := s.Inbox.Agents(r.Context(), me)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"agents": agents})
	return nil
}

func (s *Server) setAgentStatus(w http.ResponseWriter, r *http.Request, me switchboard.Actor) error {
	var body struct {
		Status switchboard.AgentStatus `json:"status"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	a, err := s.Inbox.SetAgentStatus(r.Context(), me, r.PathValue("id"), body.Status)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

func (s *Server) patchAgent(w http.ResponseWriter, r *http.Request, me switchboard.Actor) error {
	var body struct {
		Role   *switchboard.Role `json:"role"`
		Skills *[]string         `json:"skills"`
		Teams  *[]string         `json:"teams"`
		Caps   *struct {
			Chat  *int `json:"chat"`
			Email *int `json:"email"`
		} `json:"caps"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	u := switchboard.AgentUpdate{Role: body.Role, Skills: body.Skills, Teams: body.Teams}
	if body.Caps != nil {
		u.CapChat, u.CapEmail = body.Caps.Chat, body.Caps.Email
	}
	a, err := s.Inbox.UpdateAgent(r.Context(), me, r.PathValue("id"), u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

func (s *Server) getRouting(w http.ResponseWriter, r *http.Request, me switchboard.Actor) error {
	c, err := s.Inbox.RoutingConfig(r.Context(), me)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) putRouting(w http.ResponseWriter, r *http.Request, me switchboard.Actor) error {
	var body inbox.RoutingConfig
	if err := decode(w, r, &body); err != nil {
		return err
	}
	c, err := s.Inbox.PutRoutingConfig(r.Context(), me, body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) search(w http.ResponseWriter, r *http.Request, me switchboard.Actor) error {
	msgs, err := s.Inbox.Search(r.Context(), me, r.URL.Query().Get("q"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": msgs})
	return nil
}

func (s *Server) listTemplates(w http.ResponseWriter, r *http.Request, me switchboard.Actor) error {
	ts, err := s.Inbox.Templates(r.Context(), me)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"templates": ts})
	return nil
}

// putTemplate adds or replaces a WhatsApp message template.
func (s *Server) putTemplate(w http.ResponseWriter, r *http.Request, me switchboard.Actor) error {
	var t switchboard.MessageTemplate
	if err := decode(w, r, &t); err != nil {
		return err
	}
	if err := s.Inbox.PutTemplate(r.Context(), me, t); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

// upload stores one file from a multipart form field "file", answering its
// id for a later reply to attach.
func (s *Server) upload(w http.ResponseWriter, r *http.Request, me switchboard.Actor) error {
	r.Body = http.MaxBytesReader(w, r.Body, inbox.MaxUploadBytes+1<<20) // room for the multipart framing
	mr, err := r.MultipartReader()
	if err != nil {
		return switchboard.Errorf(switchboard.EINVALID, "a multipart/form-data body with a \"file\" field is expected")
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return switchboard.Errorf(switchboard.EINVALID, "no \"file\" field in the form")
		}
		if err != nil {
			return inbox.UploadReadError(err)
		}
		if part.FormName() != "file" || part.FileName() == "" {
			part.Close()
			continue
		}
		defer part.Close()
		a, err := s.Inbox.Upload(r.Context(), me, part.FileName(), part)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, a)
		return nil
	}
}

// listSites lists the live-chat sites, secrets left out (admins).
func (s *Server) listSites(w http.ResponseWriter, r *http.Request, me switchboard.Actor) error {
	sites, err := s.Inbox.Sites(r.Context(), me)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"sites": sites})
	return nil
}

// addSite creates a live-chat site; its secret is in this answer only.
func (s *Server) addSite(w http.ResponseWriter, r *http.Request, me switchboard.Actor) error {
	var body struct {
		Name    string   `json:"name"`
		Origins []string `json:"origins"`
		Team    string   `json:"team"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	site, err := s.Inbox.AddSite(r.Context(), me, switchboard.Site{Name: body.Name, Origins: body.Origins, Team: body.Team})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, site)
	return nil
}

// patchSite changes a site's name, origins or team (admins).
func (s *Server) patchSite(w http.ResponseWriter, r *http.Request, me switchboard.Actor) error {
	var body inbox.SiteUpdate
	if err := decode(w, r, &body); err != nil {
		return err
	}
	site, err := s.Inbox.UpdateSite(r.Context(), me, r.PathValue("key"), body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, site)
	return nil
}
