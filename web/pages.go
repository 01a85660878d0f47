package web

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/connect"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/view"
)

// The agent workspace (docs/design.md §6.3): server-rendered pages. Every
// action on them calls the JSON API (with the session's CSRF token) or a
// page handler here, and both call the inbox: no rule lives in this
// package. The agent socket keeps them live (static/app.js).

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Request is who a page is for: the signed-in agent and the CSRF token
// its forms and scripts send back.
type Request struct {
	Actor switchboard.Actor
	CSRF  string
	// Session is the browser's session cookie ("" for a bearer token):
	// a sign-in with a provider is bound to it.
	Session string
}

// Handler serves one page; its error becomes the error page.
type Handler func(w http.ResponseWriter, r *http.Request, req Request) error

// Pages renders the workspace.
type Pages struct {
	Inbox  *inbox.Service
	Logger *slog.Logger
	Clock  switchboard.Clock
	// PublicURL, when set, is the origin of the links pages give to send
	// (invitations, the widget's snippet).
	PublicURL string
	// Connect, when set, connects channels to their providers from the
	// channels page.
	Connect *connect.Service

	tmpl map[string]*template.Template
}

// NewPages parses the templates once.
func NewPages(in *inbox.Service, logger *slog.Logger, clock switchboard.Clock) (*Pages, error) {
	if clock == nil {
		clock = switchboard.SystemClock{}
	}
	p := &Pages{Inbox: in, Logger: logger, Clock: clock, tmpl: map[string]*template.Template{}}
	base, err := template.New("base").Funcs(p.funcs()).ParseFS(templateFS, "templates/layout.html", "templates/partials.html")
	if err != nil {
		return nil, fmt.Errorf("web: parse layout: %w", err)
	}
	pages, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, name := range pages {
		short := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		if short == "layout" || short == "partials" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, name)
		if err != nil {
			return nil, fmt.Errorf("web: parse %s: %w", name, err)
		}
		p.tmpl[short] = t
	}
	return p, nil
}

// Routes returns the pages by pattern; the server wraps each with the
// session check.
func (p *Pages) Routes() map[string]Handler {
	routes := map[string]Handler{
		"GET /{$}":                                   p.inboxPage,
		"GET /fragments/inbox":                       p.inboxFragment,
		"GET /fragments/counts":                      p.countsFragment,
		"GET /conversations/{id}":                    p.conversationPage,
		"GET /conversations/{id}/older":              p.olderFragment,
		"GET /conversations/{id}/header":             p.headerFragment,
		"GET /conversations/{id}/messages/{message}": p.messageFragment,
		"GET /account":                               p.accountPage,
		"GET /analytics":                             p.analyticsPage,
	}
	for pattern, h := range p.adminRoutes() {
		routes[pattern] = h
	}
	return routes
}

// Static serves the workspace's scripts, styles and vendored libraries.
func Static() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	files := http.FileServerFS(sub)
	return http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Names carry no version: a short cache, revalidated by date.
		w.Header().Set("Cache-Control", "public, max-age=300")
		files.ServeHTTP(w, r)
	}))
}

// CSP is the workspace's Content-Security-Policy: its own scripts and
// styles only (nothing inline, no eval), images from itself and signed
// blob URLs, the socket to itself, and no framing.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: https:; media-src 'self' blob: https:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func (p *Pages) render(w http.ResponseWriter, status int, name string, data any) error {
	t, ok := p.tmpl[name]
	if !ok {
		return fmt.Errorf("web: no template %q", name)
	}
	var b bytes.Buffer
	entry := "layout"
	if t.Lookup(name) != nil && strings.HasPrefix(name, "fragment") {
		entry = name
	}
	if err := t.ExecuteTemplate(&b, entry, data); err != nil {
		return fmt.Errorf("web: render %s: %w", name, err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err := w.Write(b.Bytes())
	return err
}

// renderFragment writes one named template of a page's set, no layout.
func (p *Pages) renderFragment(w http.ResponseWriter, page, name string, data any) error {
	t, ok := p.tmpl[page]
	if !ok {
		return fmt.Errorf("web: no template %q", page)
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, name, data); err != nil {
		return fmt.Errorf("web: render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, err := w.Write(b.Bytes())
	return err
}

// Page is what every page's layout reads.
type Page struct {
	Title string
	Req   Request
	Me    view.Agent
	Nav   string
	Data  any
}

func (p *Pages) page(ctx context.Context, req Request, title, nav string, data any) (Page, error) {
	me, err := p.Inbox.Agent(ctx, req.Actor, req.Actor.ID)
	if err != nil {
		return Page{}, err
	}
	return Page{Title: title, Req: req, Me: me, Nav: nav, Data: data}, nil
}

// ErrorPage renders an error for a browser.
func (p *Pages) ErrorPage(w http.ResponseWriter, status int, message string) {
	if err := p.render(w, status, "error", Page{Title: http.StatusText(status), Data: message}); err != nil {
		http.Error(w, message, status)
	}
}

// LoginData is what the sign-in page shows.
type LoginData struct {
	Error, Email, Next, CSRF string
	Notice                   string
}

// Login renders the sign-in form.
func (p *Pages) Login(w http.ResponseWriter, status int, d LoginData) error {
	return p.render(w, status, "login", Page{Title: "Sign in", Data: d})
}

// InviteData is what the invitation page shows.
type InviteData struct {
	Error, Email, Name, CSRF, Token string
}

// Invite renders the page where an invited agent picks a password.
func (p *Pages) Invite(w http.ResponseWriter, status int, d InviteData) error {
	return p.render(w, status, "invite", Page{Title: "Join Switchboard", Data: d})
}

// views are the inbox's saved filters.
var views = []struct{ Key, Label string }{
	{"mine", "Mine"}, {"unassigned", "Unassigned"}, {"waiting", "Waiting"}, {"all", "All"},
}

// inboxQuery reads the inbox's filters from a URL's query.
type inboxQuery struct {
	View, Channel, Status, Topic, Team, Q, Cursor string
}

func readInboxQuery(q url.Values) inboxQuery {
	iq := inboxQuery{View: q.Get("view"), Channel: q.Get("channel"), Status: q.Get("status"), Topic: q.Get("topic"), Team: q.Get("team"), Q: q.Get("q"), Cursor: q.Get("cursor")}
	if iq.View == "" {
		iq.View = "mine"
	}
	return iq
}

// Encode writes the filters back as a query, without the cursor.
func (iq inboxQuery) Encode() string {
	v := url.Values{}
	for k, x := range map[string]string{"view": iq.View, "channel": iq.Channel, "status": iq.Status, "topic": iq.Topic, "team": iq.Team, "q": iq.Q} {
		if x != "" {
			v.Set(k, x)
		}
	}
	return v.Encode()
}

func (iq inboxQuery) filter(me switchboard.Actor) switchboard.ConversationFilter {
	f := switchboard.ConversationFilter{
		Status: switchboard.Status(iq.Status), Channel: switchboard.Channel(iq.Channel), Topic: iq.Topic, Team: iq.Team,
		Query: iq.Q, Cursor: iq.Cursor, Limit: 50,
	}
	switch iq.View {
	case "mine":
		f.AssigneeID = me.ID
	case "unassigned":
		f.AssigneeID = "none"
	case "waiting":
		f.Waiting = true
	}
	return f
}

type inboxData struct {
	Query    inboxQuery
	Views    []struct{ Key, Label string }
	Channels []switchboard.Channel
	Statuses []switchboard.Status
	Teams    []string
	Rows     []inbox.Row
	Next     string
	Now      time.Time
	Counts   inbox.Counts
}

var allChannels = []switchboard.Channel{
	switchboard.ChannelEmail, switchboard.ChannelSMS, switchboard.ChannelWhatsApp, switchboard.ChannelWebform,
	switchboard.ChannelMessenger, switchboard.ChannelInstagram, switchboard.ChannelVoice, switchboard.ChannelLivechat,
}

var allStatuses = []switchboard.Status{switchboard.StatusOpen, switchboard.StatusPending, switchboard.StatusSnoozed, switchboard.StatusResolved}

func (p *Pages) inboxData(ctx context.Context, req Request, q url.Values) (inboxData, error) {
	iq := readInboxQuery(q)
	rows, next, err := p.Inbox.InboxRows(ctx, req.Actor, iq.filter(req.Actor))
	if err != nil {
		return inboxData{}, err
	}
	counts, err := p.Inbox.Counts(ctx, req.Actor)
	if err != nil {
		return inboxData{}, err
	}
	return inboxData{Query: iq, Views: views, Channels: allChannels, Statuses: allStatuses, Rows: rows, Next: next, Now: p.Clock.Now(), Counts: counts}, nil
}

func (p *Pages) inboxPage(w http.ResponseWriter, r *http.Request, req Request) error {
	d, err := p.inboxData(r.Context(), req, r.URL.Query())
	if err != nil {
		return err
	}
	if d.Teams, err = p.Inbox.TeamNames(r.Context(), req.Actor); err != nil {
		return err
	}
	pg, err := p.page(r.Context(), req, "Inbox", "inbox", d)
	if err != nil {
		return err
	}
	return p.render(w, http.StatusOK, "inbox", pg)
}

// inboxFragment is the list alone, for live refreshes and "Older".
func (p *Pages) inboxFragment(w http.ResponseWriter, r *http.Request, req Request) error {
	d, err := p.inboxData(r.Context(), req, r.URL.Query())
	if err != nil {
		return err
	}
	name := "inbox-list"
	if r.URL.Query().Get("cursor") != "" {
		name = "inbox-rows"
	}
	return p.renderFragment(w, "inbox", name, Page{Req: req, Data: d})
}

func (p *Pages) countsFragment(w http.ResponseWriter, r *http.Request, req Request) error {
	c, err := p.Inbox.Counts(r.Context(), req.Actor)
	if err != nil {
		return err
	}
	return p.renderFragment(w, "inbox", "counts", c)
}

// conversationData is what the conversation page shows.
type conversationData struct {
	Conv     view.ConversationDetail
	Customer view.Customer
	Display  string
	Timeline []timelineItem
	Default  switchboard.Channel
	Options  []inbox.ReplyOption
	Agents   []view.Agent
	Canned   []inbox.CannedResponse
	Statuses []switchboard.Status
	Others   []view.Conversation
}

// timelineItem is a message or, for this conversation, a logged event.
type timelineItem struct {
	At      time.Time
	Message *view.Message
	Event   string
	Why     string // the router's reason, shown on demand
}

func (p *Pages) conversationData(ctx context.Context, req Request, id string) (conversationData, error) {
	c, err := p.Inbox.Conversation(ctx, req.Actor, id)
	if err != nil {
		return conversationData{}, err
	}
	cu, _, err := p.Inbox.Customer(ctx, req.Actor, c.Customer.ID)
	if err != nil {
		return conversationData{}, err
	}
	def, opts, err := p.Inbox.ReplyOptions(ctx, req.Actor, id)
	if err != nil {
		return conversationData{}, err
	}
	agents, err := p.Inbox.Agents(ctx, req.Actor)
	if err != nil {
		return conversationData{}, err
	}
	canned, err := p.Inbox.CannedResponses(ctx, req.Actor)
	if err != nil {
		return conversationData{}, err
	}
	d := conversationData{Conv: c, Customer: cu, Default: def, Options: opts, Agents: agents, Canned: canned, Statuses: allStatuses}
	d.Display = customerDisplay(cu)
	for _, o := range cu.Conversations {
		if o.ID != c.ID {
			d.Others = append(d.Others, o)
		}
	}
	d.Timeline = timeline(c.Messages, c.Events, agents)
	return d, nil
}

// customerDisplay names a customer as the inbox rows do.
func customerDisplay(cu view.Customer) string {
	kind, value := switchboard.IdentityKind(""), ""
	for _, k := range []switchboard.IdentityKind{switchboard.IdentityPhone, switchboard.IdentityEmail} {
		for _, id := range cu.Identities {
			if id.Kind == k && value == "" {
				kind, value = id.Kind, id.Value
			}
		}
	}
	if value == "" && len(cu.Identities) > 0 {
		kind, value = cu.Identities[0].Kind, cu.Identities[0].Value
	}
	return inbox.DisplayName(cu.Name, kind, value)
}

// timeline interleaves messages with the events worth a line, by time.
// Events older than the page's first message belong to older pages.
func timeline(msgs []view.Message, evs []view.Event, agents []view.Agent) []timelineItem {
	names := map[string]string{}
	for _, a := range agents {
		names[a.ID] = a.Name
	}
	var out []timelineItem
	for i := range msgs {
		out = append(out, timelineItem{At: msgs[i].CreatedAt.Time, Message: &msgs[i]})
	}
	var from time.Time
	if len(msgs) > 0 {
		from = msgs[0].CreatedAt.Time
	}
	for _, e := range evs {
		if e.CreatedAt.Before(from) {
			continue
		}
		if text, why := eventText(e, names); text != "" {
			out = append(out, timelineItem{At: e.CreatedAt.Time, Event: text, Why: why})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// eventText says what a logged event means, and the router's reason,
// or "" for those the timeline leaves out (a message's own entry).
func eventText(e view.Event, names map[string]string) (text, why string) {
	var d struct {
		AgentID string `json:"agent_id"`
		Rule    string `json:"rule"`
		Reason  string `json:"reason"`
		To      string `json:"to"`
	}
	json.Unmarshal(e.Data, &d)
	who := func(id string) string {
		if n := names[id]; n != "" {
			return n
		}
		if id == "" {
			return "Switchboard"
		}
		return "an agent"
	}
	rule := ""
	if d.Rule != "" {
		rule = ": " + d.Rule
	}
	switch e.Type {
	case switchboard.EventAssigned:
		if e.AgentID != "" && e.AgentID != d.AgentID {
			return "Assigned to " + who(d.AgentID) + " by " + who(e.AgentID), d.Reason
		}
		return "Assigned to " + who(d.AgentID) + rule, d.Reason
	case switchboard.EventUnassigned:
		return "Returned to the queue" + rule, d.Reason
	case switchboard.EventStatus:
		return "Status changed to " + d.To + " by " + who(e.AgentID), ""
	case switchboard.EventReopened:
		return "Reopened by the customer", ""
	case switchboard.EventMerged:
		return "Customers merged by " + who(e.AgentID), ""
	case switchboard.EventUnmerged:
		return "Merge undone by " + who(e.AgentID), ""
	case switchboard.EventWaiting:
		return "Waiting for an agent" + rule, d.Reason
	case switchboard.EventAutoAck:
		return "Automatic acknowledgement" + rule, d.Reason
	case switchboard.EventContinuity:
		return "Kept with " + who(d.AgentID) + ": continuity", d.Reason
	case switchboard.EventHandoff:
		return "Handed to the after-hours team" + rule, d.Reason
	case switchboard.EventPriority:
		return "Priority changed by " + who(e.AgentID), ""
	case switchboard.EventChannelSwitch:
		return "The customer switched channel", ""
	case switchboard.EventBounce:
		return "A reply bounced", d.Reason
	}
	return "", ""
}

func (p *Pages) conversationPage(w http.ResponseWriter, r *http.Request, req Request) error {
	d, err := p.conversationData(r.Context(), req, r.PathValue("id"))
	if err != nil {
		return err
	}
	pg, err := p.page(r.Context(), req, d.Display, "conversation", d)
	if err != nil {
		return err
	}
	return p.render(w, http.StatusOK, "conversation", pg)
}

// olderFragment is the timeline page before a cursor.
func (p *Pages) olderFragment(w http.ResponseWriter, r *http.Request, req Request) error {
	id := r.PathValue("id")
	msgs, next, err := p.Inbox.Messages(r.Context(), req.Actor, id, r.URL.Query().Get("before"), 0)
	if err != nil {
		return err
	}
	items := timeline(msgs, nil, nil)
	return p.renderFragment(w, "conversation", "older", map[string]any{"ID": id, "Items": items, "Next": next})
}

func (p *Pages) headerFragment(w http.ResponseWriter, r *http.Request, req Request) error {
	d, err := p.conversationData(r.Context(), req, r.PathValue("id"))
	if err != nil {
		return err
	}
	return p.renderFragment(w, "conversation", "conv-header", Page{Req: req, Data: d})
}

// messageFragment renders one message of the customer's timeline, for the
// socket's message.created and message.updated.
func (p *Pages) messageFragment(w http.ResponseWriter, r *http.Request, req Request) error {
	m, err := p.Inbox.Message(r.Context(), req.Actor, r.PathValue("message"))
	if err != nil {
		return err
	}
	return p.renderFragment(w, "conversation", "message", &m)
}

func (p *Pages) accountPage(w http.ResponseWriter, r *http.Request, req Request) error {
	pg, err := p.page(r.Context(), req, "Account", "account", map[string]string{"Notice": r.URL.Query().Get("notice"), "Error": r.URL.Query().Get("error")})
	if err != nil {
		return err
	}
	return p.render(w, http.StatusOK, "account", pg)
}

// publicData is a page for customers (a survey's answer, an
// unsubscription): a message and, for an unsubscription not yet made, its
// button.
type publicData struct {
	Message     string
	Unsubscribe string // the form's action
}

// PublicPage tells a customer something.
func (p *Pages) PublicPage(w http.ResponseWriter, status int, title, message, unsubscribe string) error {
	return p.render(w, status, "public", Page{Title: title, Data: publicData{Message: message, Unsubscribe: unsubscribe}})
}
