package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/connect"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/route"
	"github.com/switchboard-inbox/switchboard/view"
)

// The administration pages (admins): agents, routing, live-chat sites,
// WhatsApp templates, canned responses and the channels' status. Every
// handler's first call is an inbox method that requires an admin, so the
// service layer refuses everyone else (403, the error page) before the
// handler reads a form. Forms post back here: on success the page redirects with a
// notice (Post/Redirect/Get); a refusal re-renders the page with the
// service's message and the admin's input. Secrets shown once (an
// invitation link, a site's secret) are rendered in the POST's answer,
// never put in a redirect's URL, where history and logs would keep them.

// adminRoutes are the administration pages (admins only).
func (p *Pages) adminRoutes() map[string]Handler {
	return map[string]Handler{
		"GET /admin":                              p.adminOverview,
		"GET /admin/agents":                       p.adminAgents,
		"POST /admin/agents/invite":               p.adminInvite,
		"POST /admin/agents/{id}":                 p.adminUpdateAgent,
		"POST /admin/agents/{id}/password":        p.adminSetPassword,
		"GET /admin/routing":                      p.adminRouting,
		"POST /admin/routing":                     p.adminSaveRouting,
		"GET /admin/sites":                        p.adminSites,
		"POST /admin/sites":                       p.adminAddSite,
		"POST /admin/sites/{key}":                 p.adminUpdateSite,
		"GET /admin/templates":                    p.adminTemplates,
		"POST /admin/templates":                   p.adminPutTemplate,
		"GET /admin/canned":                       p.adminCanned,
		"POST /admin/canned":                      p.adminPutCanned,
		"POST /admin/canned/{id}/delete":          p.adminDeleteCanned,
		"GET /admin/channels":                     p.adminChannels,
		"POST /admin/channels/settings":           p.adminSaveChannelSettings,
		"POST /admin/channels/email/test":         p.adminTestEmail,
		"POST /admin/channels/dkim":               p.adminGenerateDKIM,
		"GET /admin/channels/twilio":              p.adminTwilio,
		"POST /admin/channels/twilio/{sid}/point": p.adminPointTwilio,
		"GET /admin/channels/facebook/start":      p.adminStartFacebook,
		"GET " + connect.FacebookCallbackPath:     p.adminFacebookCallback,
		"GET /admin/channels/facebook/pages":      p.adminFacebookPages,
		"POST /admin/channels/facebook/connect":   p.adminConnectFacebook,
		"GET /admin/audit":                        p.adminAudit,
	}
}

// adminSection is one page of the administration's sub-navigation.
type adminSection struct{ Key, Label, Path string }

var adminSections = []adminSection{
	{"", "Overview", "/admin"},
	{"agents", "Agents", "/admin/agents"},
	{"routing", "Routing", "/admin/routing"},
	{"sites", "Live-chat sites", "/admin/sites"},
	{"templates", "WhatsApp templates", "/admin/templates"},
	{"canned", "Canned responses", "/admin/canned"},
	{"channels", "Channels", "/admin/channels"},
	{"audit", "Audit log", "/admin/audit"},
}

// adminNotices are what a page says after a form succeeded. The redirect
// names one by key, so that a link cannot put words of its own on an
// admin's page.
var adminNotices = map[string]string{
	"agent-saved":    "The agent's changes are saved.",
	"password-set":   "The password is set; the agent's sessions are signed out.",
	"routing-saved":  "The routing configuration is saved.",
	"site-saved":     "The site is saved.",
	"template-saved": "The template is saved.",
	"canned-saved":   "The canned response is saved.",
	"canned-deleted": "The canned response is deleted.",
	"settings-saved": "The channel settings are saved and in use.",
	"settings-same":  "Nothing changed.",
	"number-pointed": "The number's webhooks now point at this deployment.",
	"page-connected": "The Page is connected: its messages arrive here and replies go out with its token.",
}

// adminData is what every administration page's Data holds; Body is the
// section's own.
type adminData struct {
	Section       string
	Sections      []adminSection
	Notice, Error string
	Body          any
}

func (p *Pages) adminRender(w http.ResponseWriter, r *http.Request, req Request, status int, section string, body any, notice, errText string) error {
	title := "Administration"
	for _, s := range adminSections {
		if s.Key == section && section != "" {
			title = s.Label + " · Administration"
		}
	}
	if notice == "" && r.Method == http.MethodGet {
		notice = adminNotices[r.URL.Query().Get("notice")]
	}
	d := adminData{Section: section, Sections: adminSections, Notice: notice, Error: errText, Body: body}
	pg, err := p.page(r.Context(), req, title, "admin", d)
	if err != nil {
		return err
	}
	return p.render(w, status, "admin", pg)
}

// refused re-renders a page whose form the service refused: its message,
// with the status the API would answer. Errors no form can fix
// (forbidden, internal) go to the error page.
func (p *Pages) refused(w http.ResponseWriter, r *http.Request, req Request, section string, body any, err error) error {
	status := 0
	switch switchboard.ErrorCode(err) {
	case switchboard.EINVALID:
		status = http.StatusBadRequest
	case switchboard.ECONFLICT:
		status = http.StatusConflict
	case switchboard.ENOTFOUND:
		status = http.StatusNotFound
	case switchboard.ETOOLARGE:
		status = http.StatusRequestEntityTooLarge
	default:
		return err
	}
	return p.adminRender(w, r, req, status, section, body, "", switchboard.ErrorMessage(err))
}

func seeOther(w http.ResponseWriter, r *http.Request, path, notice, fragment string) error {
	target := path + "?notice=" + url.QueryEscape(notice)
	if fragment != "" {
		target += "#" + fragment
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil
}

// origin is this deployment's origin for links to send: the public URL
// when configured, else the form's Origin header (the server's CSRF check
// held it to this deployment), else the host the request was sent to.
func (p *Pages) origin(r *http.Request) string {
	if p.PublicURL != "" {
		return strings.TrimSuffix(p.PublicURL, "/")
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		return strings.TrimSuffix(o, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// splitList reads a list typed comma- or line-separated, without blanks.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(c rune) bool { return c == ',' || c == '\n' || c == '\r' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// teamNames are the teams the routing configuration and the agents name,
// sorted, for the pages' suggestions.
func (p *Pages) teamNames(ctx context.Context, actor switchboard.Actor, more ...string) ([]string, error) {
	rc, err := p.Inbox.RoutingConfig(ctx, actor)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for t := range rc.Teams {
		set[t] = true
	}
	for _, t := range more {
		set[t] = true
	}
	delete(set, "")
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	return out, nil
}

// ---- overview ---------------------------------------------------------

func (p *Pages) adminOverview(w http.ResponseWriter, r *http.Request, req Request) error {
	sum, err := p.Inbox.AdminOverview(r.Context(), req.Actor)
	if err != nil {
		return err
	}
	return p.adminRender(w, r, req, http.StatusOK, "", sum, "", "")
}

// ---- agents -----------------------------------------------------------

// agentRow is an agent and its edit form's values: the agent's own, or
// what the admin sent when the service refused it.
type agentRow struct {
	view.Agent
	Self                                                       bool
	FormRole, FormSkills, FormTeams, FormCapChat, FormCapEmail string
	Error                                                      string
}

type inviteForm struct{ Email, Name, Role string }

type agentsData struct {
	Rows   []agentRow
	Roles  []switchboard.Role
	Teams  []string
	Invite inviteForm
	// InviteLink is the invitation just created, shown this once.
	InviteLink, InviteEmail string
	DefaultChatCap          int
	DefaultEmailCap         int
}

var agentRoles = []switchboard.Role{switchboard.RoleAgent, switchboard.RoleSupervisor, switchboard.RoleAdmin}

func capText(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func (p *Pages) loadAgents(ctx context.Context, req Request) (*agentsData, error) {
	agents, err := p.Inbox.AdminAgents(ctx, req.Actor)
	if err != nil {
		return nil, err
	}
	d := &agentsData{Roles: agentRoles, Invite: inviteForm{Role: string(switchboard.RoleAgent)},
		DefaultChatCap: route.DefaultChatCap, DefaultEmailCap: route.DefaultEmailCap}
	var teams []string
	for _, a := range agents {
		d.Rows = append(d.Rows, agentRow{
			Agent: a, Self: a.ID == req.Actor.ID,
			FormRole: string(a.Role), FormSkills: strings.Join(a.Skills, ", "), FormTeams: strings.Join(a.Teams, ", "),
			FormCapChat: capText(a.Caps.Chat), FormCapEmail: capText(a.Caps.Email),
		})
		teams = append(teams, a.Teams...)
	}
	if d.Teams, err = p.teamNames(ctx, req.Actor, teams...); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *agentsData) row(id string) *agentRow {
	for i := range d.Rows {
		if d.Rows[i].ID == id {
			return &d.Rows[i]
		}
	}
	return nil
}

func (p *Pages) adminAgents(w http.ResponseWriter, r *http.Request, req Request) error {
	d, err := p.loadAgents(r.Context(), req)
	if err != nil {
		return err
	}
	return p.adminRender(w, r, req, http.StatusOK, "agents", d, "", "")
}

func (p *Pages) adminInvite(w http.ResponseWriter, r *http.Request, req Request) error {
	d, err := p.loadAgents(r.Context(), req)
	if err != nil {
		return err
	}
	in := inviteForm{Email: r.PostFormValue("email"), Name: r.PostFormValue("name"), Role: r.PostFormValue("role")}
	token, err := p.Inbox.Invite(r.Context(), req.Actor, in.Email, in.Name, switchboard.Role(in.Role))
	if err != nil {
		d.Invite = in
		return p.refused(w, r, req, "agents", d, err)
	}
	d.InviteLink = p.origin(r) + "/invite/" + url.PathEscape(token)
	d.InviteEmail = strings.ToLower(strings.TrimSpace(in.Email))
	return p.adminRender(w, r, req, http.StatusOK, "agents", d,
		"The invitation is created. Send this link to "+d.InviteEmail+": it is shown only now and works once, for 7 days.", "")
}

// parseCap reads a cap field: blank is 0, the default.
func parseCap(v, what string) (*int, error) {
	v = strings.TrimSpace(v)
	n := 0
	if v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			return nil, switchboard.Errorf(switchboard.EINVALID, "%s cap %q: want a whole number (blank for the default)", what, v)
		}
	}
	return &n, nil
}

func (p *Pages) adminUpdateAgent(w http.ResponseWriter, r *http.Request, req Request) error {
	d, err := p.loadAgents(r.Context(), req)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	row := d.row(id)
	if row == nil {
		return switchboard.Errorf(switchboard.ENOTFOUND, "agent %s not found", id)
	}
	row.FormRole, row.FormSkills, row.FormTeams = r.PostFormValue("role"), r.PostFormValue("skills"), r.PostFormValue("teams")
	row.FormCapChat, row.FormCapEmail = r.PostFormValue("cap_chat"), r.PostFormValue("cap_email")
	role := switchboard.Role(row.FormRole)
	skills, teams := splitList(row.FormSkills), splitList(row.FormTeams)
	u := switchboard.AgentUpdate{Role: &role, Skills: &skills, Teams: &teams}
	if u.CapChat, err = parseCap(row.FormCapChat, "chat"); err == nil {
		u.CapEmail, err = parseCap(row.FormCapEmail, "e-mail")
	}
	if err == nil {
		_, err = p.Inbox.UpdateAgent(r.Context(), req.Actor, id, u)
	}
	if err != nil {
		row.Error = switchboard.ErrorMessage(err)
		return p.refused(w, r, req, "agents", d, err)
	}
	return seeOther(w, r, "/admin/agents", "agent-saved", "agent-"+id)
}

func (p *Pages) adminSetPassword(w http.ResponseWriter, r *http.Request, req Request) error {
	d, err := p.loadAgents(r.Context(), req)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	row := d.row(id)
	if row == nil {
		return switchboard.Errorf(switchboard.ENOTFOUND, "agent %s not found", id)
	}
	if err := p.Inbox.SetPassword(r.Context(), req.Actor, id, r.PostFormValue("password")); err != nil {
		row.Error = switchboard.ErrorMessage(err)
		return p.refused(w, r, req, "agents", d, err)
	}
	return seeOther(w, r, "/admin/agents", "password-set", "agent-"+id)
}

// ---- routing ----------------------------------------------------------

// The routing form shows the configuration as text fields and reads it
// back; the route package and the inbox validate what it builds.

var weekDays = []struct{ Key, Label string }{
	{"mon", "Monday"}, {"tue", "Tuesday"}, {"wed", "Wednesday"}, {"thu", "Thursday"},
	{"fri", "Friday"}, {"sat", "Saturday"}, {"sun", "Sunday"},
}

// field is one named text field of a team's form.
type field struct{ Key, Label, Value string }

type teamForm struct {
	Index                                     int
	Name                                      string
	New, Remove                               bool
	Rules, TZ, Holidays                       string
	Week                                      []field
	AfterHours, AfterHoursTeam, SkillFallback string
	Ack                                       []field // "default" is the "" key
	WeightChat, WeightEmail                   string
}

type keywordForm struct {
	Index, Number   int // Number counts from 1, for the labels
	Topic, Keywords string
}

type routingForm struct {
	Teams        []teamForm
	Keywords     []keywordForm
	TeamNames    []string
	DefaultRules string
}

// blankKeywordRows are the empty rows offered for new keyword rules.
const blankKeywordRows = 3

// maxFormRows bounds how many teams and keyword rules a post is read for.
const maxFormRows = 500

// scheduleFields is the stored form of route.Schedule (see
// route.ParseSchedule): the only way to read one back.
type scheduleFields struct {
	TZ       string                 `json:"tz"`
	Week     map[string][][2]string `json:"week"`
	Holidays []string               `json:"holidays,omitempty"`
}

func ackKeys() []field {
	out := []field{{Key: "default", Label: "Any channel without its own text"}}
	for _, ch := range switchboard.Channels {
		out = append(out, field{Key: string(ch), Label: channelNames[ch]})
	}
	return out
}

func weightText(w map[switchboard.ChannelClass]float64, c switchboard.ChannelClass) string {
	v, ok := w[c]
	if !ok {
		return ""
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func newTeamForm(i int) teamForm {
	t := teamForm{Index: i, New: true, Ack: ackKeys()}
	for _, d := range weekDays {
		t.Week = append(t.Week, field{Key: d.Key, Label: d.Label})
	}
	return t
}

// routingFormOf shows a configuration: the default team first, then the
// others by name, and an empty team to add.
func routingFormOf(rc inbox.RoutingConfig) (routingForm, error) {
	names := []string{""}
	for t := range rc.Teams {
		if t != "" {
			names = append(names, t)
		}
	}
	sort.Strings(names[1:])
	f := routingForm{TeamNames: names[1:], DefaultRules: strings.Join(route.DefaultRules, ", ")}
	for i, name := range names {
		tc := rc.Teams[name]
		t := newTeamForm(i)
		t.New, t.Name = false, name
		t.Rules = strings.Join(tc.Rules, ", ")
		var sched scheduleFields
		if tc.Hours != nil {
			b, err := json.Marshal(tc.Hours)
			if err == nil {
				err = json.Unmarshal(b, &sched)
			}
			if err != nil {
				return f, fmt.Errorf("web: business hours of team %q: %w", name, err)
			}
			t.TZ, t.Holidays = sched.TZ, strings.Join(sched.Holidays, ", ")
		}
		for j := range t.Week {
			var spans []string
			for _, iv := range sched.Week[t.Week[j].Key] {
				spans = append(spans, iv[0]+"-"+iv[1])
			}
			t.Week[j].Value = strings.Join(spans, ", ")
		}
		t.AfterHours, t.AfterHoursTeam, t.SkillFallback = tc.AfterHours, tc.AfterHoursTeam, tc.SkillFallback
		for j := range t.Ack {
			key := t.Ack[j].Key
			if key == "default" {
				key = ""
			}
			t.Ack[j].Value = tc.Ack[key]
		}
		t.WeightChat, t.WeightEmail = weightText(tc.Weights, switchboard.ClassChat), weightText(tc.Weights, switchboard.ClassEmail)
		f.Teams = append(f.Teams, t)
	}
	f.Teams = append(f.Teams, newTeamForm(len(names)))
	for i, k := range rc.Keywords {
		f.Keywords = append(f.Keywords, keywordForm{Index: i, Number: i + 1, Topic: k.Topic, Keywords: strings.Join(k.Keywords, ", ")})
	}
	for i := len(rc.Keywords); i < len(rc.Keywords)+blankKeywordRows; i++ {
		f.Keywords = append(f.Keywords, keywordForm{Index: i, Number: i + 1})
	}
	return f, nil
}

// routingFormFrom reads the form as posted, to build the configuration
// from and to show again when it is refused.
func routingFormFrom(v url.Values, teamNames []string) routingForm {
	f := routingForm{TeamNames: teamNames, DefaultRules: strings.Join(route.DefaultRules, ", ")}
	for i := 0; i < maxFormRows; i++ {
		pre := fmt.Sprintf("t%d-", i)
		if _, ok := v[pre+"name"]; !ok {
			break
		}
		t := newTeamForm(i)
		t.Name, t.New, t.Remove = v.Get(pre+"name"), v.Get(pre+"new") != "", v.Get(pre+"remove") != ""
		if t.New {
			t.Name = strings.TrimSpace(t.Name) // typed; an existing team's comes back as stored
		}
		t.Rules, t.TZ, t.Holidays = v.Get(pre+"rules"), strings.TrimSpace(v.Get(pre+"tz")), v.Get(pre+"holidays")
		for j := range t.Week {
			t.Week[j].Value = v.Get(pre + "day-" + t.Week[j].Key)
		}
		t.AfterHours, t.AfterHoursTeam, t.SkillFallback = v.Get(pre+"after_hours"), strings.TrimSpace(v.Get(pre+"after_hours_team")), v.Get(pre+"skill_fallback")
		for j := range t.Ack {
			t.Ack[j].Value = v.Get(pre + "ack-" + t.Ack[j].Key)
		}
		t.WeightChat, t.WeightEmail = v.Get(pre+"weight-chat"), v.Get(pre+"weight-email")
		f.Teams = append(f.Teams, t)
	}
	for i := 0; i < maxFormRows; i++ {
		pre := fmt.Sprintf("k%d-", i)
		if _, ok := v[pre+"topic"]; !ok {
			break
		}
		f.Keywords = append(f.Keywords, keywordForm{Index: i, Number: i + 1, Topic: v.Get(pre + "topic"), Keywords: v.Get(pre + "keywords")})
	}
	return f
}

// HasAck reports whether any acknowledgement text is set, to show them open.
func (t teamForm) HasAck() bool {
	for _, a := range t.Ack {
		if strings.TrimSpace(a.Value) != "" {
			return true
		}
	}
	return false
}

// HasWeights reports whether a weight is set, to show them open.
func (t teamForm) HasWeights() bool { return strings.TrimSpace(t.WeightChat+t.WeightEmail) != "" }

// touched reports whether anything of a new team's form was filled in.
func (t teamForm) touched() bool {
	if strings.TrimSpace(t.Rules+t.TZ+t.Holidays+t.AfterHoursTeam+t.WeightChat+t.WeightEmail) != "" {
		return true
	}
	for _, fs := range [][]field{t.Week, t.Ack} {
		for _, x := range fs {
			if strings.TrimSpace(x.Value) != "" {
				return true
			}
		}
	}
	return false
}

// schedule builds a team's business hours: nil (always open) when time
// zone, hours and holidays are all blank.
func (t teamForm) schedule() (*route.Schedule, error) {
	sf := scheduleFields{TZ: t.TZ, Week: map[string][][2]string{}, Holidays: splitList(t.Holidays)}
	for _, d := range t.Week {
		for _, span := range splitList(d.Value) {
			from, to, ok := strings.Cut(span, "-")
			if !ok {
				return nil, switchboard.Errorf(switchboard.EINVALID, "%s: %q: want HH:MM-HH:MM, as 09:00-17:30", d.Label, span)
			}
			sf.Week[d.Key] = append(sf.Week[d.Key], [2]string{strings.TrimSpace(from), strings.TrimSpace(to)})
		}
	}
	if sf.TZ == "" && len(sf.Week) == 0 && len(sf.Holidays) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(sf)
	if err != nil {
		return nil, err
	}
	return route.ParseSchedule(b)
}

func parseWeight(v string, w map[switchboard.ChannelClass]float64, c switchboard.ChannelClass) error {
	v = strings.TrimSpace(v)
	if v == "" {
		delete(w, c)
		return nil
	}
	x, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return switchboard.Errorf(switchboard.EINVALID, "%s weight %q: want a number (blank for the default)", c, v)
	}
	w[c] = x // the route package refuses a negative one
	return nil
}

// config builds the configuration the form describes over base, the one
// stored: what the form does not show (a team added meanwhile, a weight
// or an acknowledgement of a class or channel it has no field for) stays.
// A team is dropped only when its "remove" box is ticked.
func (f routingForm) config(base inbox.RoutingConfig) (inbox.RoutingConfig, error) {
	out := inbox.RoutingConfig{Teams: map[string]route.TeamConfig{}, Keywords: []route.KeywordRule{}}
	for name, tc := range base.Teams {
		out.Teams[name] = tc
	}
	for _, t := range f.Teams {
		if t.New {
			if t.Name == "" {
				if t.touched() {
					return out, switchboard.Errorf(switchboard.EINVALID, "the new team needs a name (or clear its fields)")
				}
				continue
			}
			if _, exists := base.Teams[t.Name]; exists {
				return out, switchboard.Errorf(switchboard.EINVALID, "a team %q exists: edit it above", t.Name)
			}
		}
		if t.Remove {
			delete(out.Teams, t.Name)
			continue
		}
		tc := out.Teams[t.Name]
		tc.Rules = splitList(t.Rules)
		hours, err := t.schedule()
		if err != nil {
			return out, switchboard.Errorf(switchboard.EINVALID, "team %q: business hours: %s", t.Name, switchboard.ErrorMessage(err))
		}
		tc.Hours = hours
		tc.AfterHours, tc.AfterHoursTeam, tc.SkillFallback = t.AfterHours, t.AfterHoursTeam, t.SkillFallback
		ack := map[string]string{}
		for k, v := range tc.Ack {
			ack[k] = v
		}
		for _, a := range t.Ack {
			key := a.Key
			if key == "default" {
				key = ""
			}
			if text := strings.TrimSpace(a.Value); text != "" {
				ack[key] = text
			} else {
				delete(ack, key)
			}
		}
		tc.Ack = ack
		weights := map[switchboard.ChannelClass]float64{}
		for k, v := range tc.Weights {
			weights[k] = v
		}
		if err := parseWeight(t.WeightChat, weights, switchboard.ClassChat); err != nil {
			return out, switchboard.Errorf(switchboard.EINVALID, "team %q: %s", t.Name, switchboard.ErrorMessage(err))
		}
		if err := parseWeight(t.WeightEmail, weights, switchboard.ClassEmail); err != nil {
			return out, switchboard.Errorf(switchboard.EINVALID, "team %q: %s", t.Name, switchboard.ErrorMessage(err))
		}
		tc.Weights = weights
		out.Teams[t.Name] = tc
	}
	for _, k := range f.Keywords {
		topic, words := strings.TrimSpace(k.Topic), splitList(k.Keywords)
		if topic == "" && len(words) == 0 {
			continue
		}
		// Half a rule goes to the service, which says what is missing.
		out.Keywords = append(out.Keywords, route.KeywordRule{Topic: topic, Keywords: words})
	}
	return out, nil
}

func (p *Pages) adminRouting(w http.ResponseWriter, r *http.Request, req Request) error {
	rc, err := p.Inbox.AdminRoutingConfig(r.Context(), req.Actor)
	if err != nil {
		return err
	}
	f, err := routingFormOf(rc)
	if err != nil {
		return err
	}
	return p.adminRender(w, r, req, http.StatusOK, "routing", f, "", "")
}

func (p *Pages) adminSaveRouting(w http.ResponseWriter, r *http.Request, req Request) error {
	// The configuration stored is the base the form is applied to.
	rc, err := p.Inbox.AdminRoutingConfig(r.Context(), req.Actor)
	if err != nil {
		return err
	}
	if err := r.ParseForm(); err != nil {
		return switchboard.Errorf(switchboard.EINVALID, "the form could not be read: %v", err)
	}
	shown, err := routingFormOf(rc)
	if err != nil {
		return err
	}
	f := routingFormFrom(r.PostForm, shown.TeamNames)
	cfg, err := f.config(rc)
	if err == nil {
		_, err = p.Inbox.PutRoutingConfig(r.Context(), req.Actor, cfg)
	}
	if err != nil {
		return p.refused(w, r, req, "routing", f, err)
	}
	return seeOther(w, r, "/admin/routing", "routing-saved", "")
}

// ---- live-chat sites --------------------------------------------------

type siteRow struct {
	view.Site
	FormName, FormOrigins, FormTeam string
	Error                           string
}

type siteForm struct{ Name, Origins, Team string }

type sitesData struct {
	Rows  []siteRow
	Add   siteForm
	Teams []string
	// Created is the site just added, with its secret, shown this once;
	// Origin is where the widget's script is served from.
	Created *view.Site
	Origin  string
}

func (p *Pages) loadSites(ctx context.Context, req Request) (*sitesData, error) {
	sites, err := p.Inbox.Sites(ctx, req.Actor)
	if err != nil {
		return nil, err
	}
	d := &sitesData{}
	var teams []string
	for _, s := range sites {
		d.Rows = append(d.Rows, siteRow{Site: s, FormName: s.Name, FormOrigins: strings.Join(s.Origins, "\n"), FormTeam: s.Team})
		teams = append(teams, s.Team)
	}
	if d.Teams, err = p.teamNames(ctx, req.Actor, teams...); err != nil {
		return nil, err
	}
	return d, nil
}

func (p *Pages) adminSites(w http.ResponseWriter, r *http.Request, req Request) error {
	d, err := p.loadSites(r.Context(), req)
	if err != nil {
		return err
	}
	return p.adminRender(w, r, req, http.StatusOK, "sites", d, "", "")
}

func (p *Pages) adminAddSite(w http.ResponseWriter, r *http.Request, req Request) error {
	d, err := p.loadSites(r.Context(), req)
	if err != nil {
		return err
	}
	in := siteForm{Name: r.PostFormValue("name"), Origins: r.PostFormValue("origins"), Team: strings.TrimSpace(r.PostFormValue("team"))}
	site, err := p.Inbox.AddSite(r.Context(), req.Actor, switchboard.Site{Name: in.Name, Origins: strings.Fields(strings.ReplaceAll(in.Origins, ",", " ")), Team: in.Team})
	if err != nil {
		d.Add = in
		return p.refused(w, r, req, "sites", d, err)
	}
	// The list again, with the new site in it.
	if d, err = p.loadSites(r.Context(), req); err != nil {
		return err
	}
	d.Created, d.Origin = &site, p.origin(r)
	return p.adminRender(w, r, req, http.StatusOK, "sites", d,
		"The site "+site.Name+" is created. Copy its secret now: it is not shown again.", "")
}

func (p *Pages) adminUpdateSite(w http.ResponseWriter, r *http.Request, req Request) error {
	d, err := p.loadSites(r.Context(), req)
	if err != nil {
		return err
	}
	key := r.PathValue("key")
	var row *siteRow
	for i := range d.Rows {
		if d.Rows[i].Key == key {
			row = &d.Rows[i]
		}
	}
	if row == nil {
		return switchboard.Errorf(switchboard.ENOTFOUND, "site %s not found", key)
	}
	row.FormName, row.FormOrigins, row.FormTeam = r.PostFormValue("name"), r.PostFormValue("origins"), strings.TrimSpace(r.PostFormValue("team"))
	origins := strings.Fields(strings.ReplaceAll(row.FormOrigins, ",", " "))
	u := inbox.SiteUpdate{Name: &row.FormName, Origins: &origins, Team: &row.FormTeam}
	if _, err := p.Inbox.UpdateSite(r.Context(), req.Actor, key, u); err != nil {
		row.Error = switchboard.ErrorMessage(err)
		return p.refused(w, r, req, "sites", d, err)
	}
	return seeOther(w, r, "/admin/sites", "site-saved", "site-"+key)
}

// ---- WhatsApp templates -----------------------------------------------

type templatesData struct {
	Templates            []switchboard.MessageTemplate
	Form                 switchboard.MessageTemplate
	Categories, Statuses []string
}

// Meta's template categories and review states, as suggestions: the
// template sync stores whatever Meta says.
var (
	templateCategories = []string{"UTILITY", "MARKETING", "AUTHENTICATION"}
	templateStatuses   = []string{"APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED"}
)

func (p *Pages) loadTemplates(ctx context.Context, req Request) (*templatesData, error) {
	ts, err := p.Inbox.AdminTemplates(ctx, req.Actor)
	if err != nil {
		return nil, err
	}
	return &templatesData{Templates: ts, Categories: templateCategories, Statuses: templateStatuses,
		Form: switchboard.MessageTemplate{Category: "UTILITY", Status: "APPROVED"}}, nil
}

func (p *Pages) adminTemplates(w http.ResponseWriter, r *http.Request, req Request) error {
	d, err := p.loadTemplates(r.Context(), req)
	if err != nil {
		return err
	}
	// "Edit" links fill the form with the template named.
	q := r.URL.Query()
	if i := slices.IndexFunc(d.Templates, func(t switchboard.MessageTemplate) bool {
		return t.Name == q.Get("name") && t.Language == q.Get("language")
	}); i >= 0 {
		d.Form = d.Templates[i]
	}
	return p.adminRender(w, r, req, http.StatusOK, "templates", d, "", "")
}

func (p *Pages) adminPutTemplate(w http.ResponseWriter, r *http.Request, req Request) error {
	d, err := p.loadTemplates(r.Context(), req)
	if err != nil {
		return err
	}
	t := switchboard.MessageTemplate{
		Name: strings.TrimSpace(r.PostFormValue("name")), Language: strings.TrimSpace(r.PostFormValue("language")),
		Category: strings.TrimSpace(r.PostFormValue("category")), Body: strings.TrimSpace(r.PostFormValue("body")),
		Status: strings.TrimSpace(r.PostFormValue("status")),
	}
	if err := p.Inbox.PutTemplate(r.Context(), req.Actor, t); err != nil {
		d.Form = t
		return p.refused(w, r, req, "templates", d, err)
	}
	return seeOther(w, r, "/admin/templates", "template-saved", "")
}

// ---- canned responses -------------------------------------------------

type cannedData struct {
	Canned []inbox.CannedResponse
	Form   inbox.CannedResponse
}

func (p *Pages) loadCanned(ctx context.Context, req Request) (*cannedData, error) {
	cs, err := p.Inbox.AdminCannedResponses(ctx, req.Actor)
	if err != nil {
		return nil, err
	}
	return &cannedData{Canned: cs}, nil
}

func (p *Pages) adminCanned(w http.ResponseWriter, r *http.Request, req Request) error {
	d, err := p.loadCanned(r.Context(), req)
	if err != nil {
		return err
	}
	if i := slices.IndexFunc(d.Canned, func(c inbox.CannedResponse) bool { return c.ID == r.URL.Query().Get("edit") }); i >= 0 {
		d.Form = d.Canned[i]
	}
	return p.adminRender(w, r, req, http.StatusOK, "canned", d, "", "")
}

func (p *Pages) adminPutCanned(w http.ResponseWriter, r *http.Request, req Request) error {
	d, err := p.loadCanned(r.Context(), req)
	if err != nil {
		return err
	}
	c := inbox.CannedResponse{Shortcut: r.PostFormValue("shortcut"), Title: r.PostFormValue("title"), Body: r.PostFormValue("body")}
	if _, err := p.Inbox.PutCannedResponse(r.Context(), req.Actor, c); err != nil {
		d.Form = c
		return p.refused(w, r, req, "canned", d, err)
	}
	return seeOther(w, r, "/admin/canned", "canned-saved", "")
}

func (p *Pages) adminDeleteCanned(w http.ResponseWriter, r *http.Request, req Request) error {
	d, err := p.loadCanned(r.Context(), req)
	if err != nil {
		return err
	}
	if err := p.Inbox.DeleteCannedResponse(r.Context(), req.Actor, r.PathValue("id")); err != nil {
		return p.refused(w, r, req, "canned", d, err)
	}
	return seeOther(w, r, "/admin/canned", "canned-deleted", "")
}

// ---- channels ---------------------------------------------------------

// channelRow is a channel's status and where its settings come from.
type channelRow struct {
	inbox.ChannelStatus
	Name, RepliesOnName string
	Settings            []string
	Note                string
}

// channelsPage is the channels page: health, what can reply, each
// provider's settings, and what the last action found.
type channelsPage struct {
	Health  []connect.Health
	Replies []channelRow
	Groups  []settingsGroup
	// Webhooks are the URLs providers should call.
	Webhooks    []string
	FacebookURI string // the redirect URI to register with the Meta app
	Twilio      *connect.TwilioAccount
	EmailTest   *connect.EmailTest
	DKIM        *connect.DKIMRecord
	Published   bool // DKIM is the record of the key in use
	DNS         []connect.DNSCheck
}

// settingsGroup is one provider's settings form.
type settingsGroup struct {
	Key, Name string
	Settings  []inbox.SettingView
}

var groupNames = []struct{ key, name string }{
	{inbox.GroupTwilio, "Twilio: SMS and voicemail"},
	{inbox.GroupMeta, "Meta: WhatsApp, Messenger and Instagram"},
	{inbox.GroupEmail, "E-mail"},
}

func (p *Pages) channelsData(ctx context.Context, req Request) (*channelsPage, error) {
	sts, err := p.Inbox.ChannelStatuses(ctx, req.Actor)
	if err != nil {
		return nil, err
	}
	d := &channelsPage{}
	for _, st := range sts {
		d.Replies = append(d.Replies, channelRow{ChannelStatus: st, Name: channelNames[st.Channel], RepliesOnName: channelNames[st.RepliesOn]})
	}
	views, err := p.Inbox.SettingsViews(ctx, req.Actor)
	if err != nil {
		return nil, err
	}
	for _, g := range groupNames {
		sg := settingsGroup{Key: g.key, Name: g.name}
		for _, v := range views {
			if v.Group == g.key {
				sg.Settings = append(sg.Settings, v)
			}
		}
		d.Groups = append(d.Groups, sg)
	}
	if p.Connect != nil {
		if d.Health, err = p.Connect.Health(ctx, req.Actor); err != nil {
			return nil, err
		}
		w := p.Connect.TwilioWebhooks()
		d.Webhooks = []string{w.SmsURL, w.StatusCallback, w.VoiceURL, p.Connect.PublicURL + "/webhooks/meta", p.Connect.PublicURL + "/webhooks/email"}
		d.FacebookURI = p.Connect.PublicURL + connect.FacebookCallbackPath
		if rec, ok := p.Connect.DKIMPublished(); ok {
			d.DKIM, d.Published = &rec, true
		}
	}
	return d, nil
}

func (p *Pages) adminChannels(w http.ResponseWriter, r *http.Request, req Request) error {
	d, err := p.channelsData(r.Context(), req)
	if err != nil {
		return err
	}
	return p.adminRender(w, r, req, http.StatusOK, "channels", d, "", "")
}

// channelsRefused shows the channels page again with err, or returns err
// when it is not the admin's to fix.
func (p *Pages) channelsRefused(w http.ResponseWriter, r *http.Request, req Request, d *channelsPage, err error) error {
	if d == nil {
		var derr error
		if d, derr = p.channelsData(r.Context(), req); derr != nil {
			return derr
		}
	}
	switch switchboard.ErrorCode(err) {
	case switchboard.EINVALID, switchboard.ECONFLICT, switchboard.ENOTFOUND, switchboard.EFORBIDDEN:
		if !req.Actor.Role.AtLeast(switchboard.RoleAdmin) {
			return err
		}
		status := http.StatusBadRequest
		if switchboard.ErrorCode(err) == switchboard.EFORBIDDEN {
			status = http.StatusForbidden
		}
		return p.adminRender(w, r, req, status, "channels", d, "", switchboard.ErrorMessage(err))
	case switchboard.EINTERNAL:
		return err
	}
	// A provider's refusal (a wrong token, an unknown number) is the
	// admin's to fix: say it.
	p.Logger.Warn("admin: provider call failed", "path", r.URL.Path, "err", err)
	return p.adminRender(w, r, req, http.StatusBadGateway, "channels", d, "", err.Error())
}

func (p *Pages) adminSaveChannelSettings(w http.ResponseWriter, r *http.Request, req Request) error {
	if _, err := p.Inbox.SettingsViews(r.Context(), req.Actor); err != nil {
		return err
	}
	if err := r.ParseForm(); err != nil {
		return switchboard.Errorf(switchboard.EINVALID, "read the form: %v", err)
	}
	change := inbox.SettingsChange{Set: map[string]string{}, Clear: r.PostForm["clear"]}
	group := r.PostFormValue("group")
	for _, s := range inbox.ChannelSettings {
		if vs, ok := r.PostForm[s.Name]; ok && s.Group == group {
			change.Set[s.Name] = vs[0]
		}
	}
	changed, err := p.Inbox.PutSettings(r.Context(), req.Actor, change)
	if err != nil {
		return p.channelsRefused(w, r, req, nil, err)
	}
	if len(changed) == 0 {
		return seeOther(w, r, "/admin/channels", "settings-same", "settings-"+group)
	}
	return seeOther(w, r, "/admin/channels", "settings-saved", "settings-"+group)
}

// needConnect refuses all but admins (as the connections themselves
// do), then says whether connections are wired here at all.
func (p *Pages) needConnect(req Request) error {
	if !req.Actor.Role.AtLeast(switchboard.RoleAdmin) {
		return switchboard.Errorf(switchboard.EFORBIDDEN, "only admins connect channels")
	}
	if p.Connect == nil {
		return switchboard.Errorf(switchboard.ENOTFOUND, "channel connections are not available here")
	}
	return nil
}

// channelsResult shows the channels page with what fill adds to it (a
// test's results, the Twilio account); a refusal shows the page with the
// reason.
func (p *Pages) channelsResult(w http.ResponseWriter, r *http.Request, req Request, fill func(ctx context.Context, d *channelsPage) error) error {
	if err := p.needConnect(req); err != nil {
		return err
	}
	d, err := p.channelsData(r.Context(), req)
	if err != nil {
		return err
	}
	if err := fill(r.Context(), d); err != nil {
		return p.channelsRefused(w, r, req, d, err)
	}
	return p.adminRender(w, r, req, http.StatusOK, "channels", d, "", "")
}

func (p *Pages) adminTestEmail(w http.ResponseWriter, r *http.Request, req Request) error {
	return p.channelsResult(w, r, req, func(ctx context.Context, d *channelsPage) error {
		res, err := p.Connect.TestEmail(ctx, req.Actor, r.PostFormValue("IMAP_URLS"), r.PostFormValue("SMTP_URL"), r.PostFormValue("EMAIL_FROM"))
		if err == nil {
			d.EmailTest = &res
		}
		return err
	})
}

func (p *Pages) adminCheckDNS(w http.ResponseWriter, r *http.Request, req Request) error {
	return p.channelsResult(w, r, req, func(ctx context.Context, d *channelsPage) error {
		var err error
		d.DNS, err = p.Connect.CheckEmailDomain(ctx, req.Actor)
		return err
	})
}

func (p *Pages) adminTwilio(w http.ResponseWriter, r *http.Request, req Request) error {
	return p.channelsResult(w, r, req, func(ctx context.Context, d *channelsPage) error {
		acct, err := p.Connect.TwilioAccount(ctx, req.Actor)
		if err == nil {
			d.Twilio = &acct
		}
		return err
	})
}

func (p *Pages) adminGenerateDKIM(w http.ResponseWriter, r *http.Request, req Request) error {
	if err := p.needConnect(req); err != nil {
		return err
	}
	rec, err := p.Connect.GenerateDKIM(r.Context(), req.Actor, r.PostFormValue("selector"))
	if err != nil {
		return p.channelsRefused(w, r, req, nil, err)
	}
	d, err := p.channelsData(r.Context(), req)
	if err != nil {
		return err
	}
	d.DKIM, d.Published = &rec, true
	return p.adminRender(w, r, req, http.StatusOK, "channels", d, "A DKIM key is generated and signs outbound mail from now on. Publish its record below.", "")
}

func (p *Pages) adminPointTwilio(w http.ResponseWriter, r *http.Request, req Request) error {
	if err := p.needConnect(req); err != nil {
		return err
	}
	if _, err := p.Connect.PointTwilioNumber(r.Context(), req.Actor, r.PathValue("sid")); err != nil {
		return p.channelsRefused(w, r, req, nil, err)
	}
	http.Redirect(w, r, "/admin/channels/twilio?notice=number-pointed#twilio-numbers", http.StatusSeeOther)
	return nil
}

// adminStartFacebook is a link, not a form: the strict CSP's form-action
// 'self' would stop a form's redirect to Facebook. Starting a sign-in
// changes nothing an attacker could use: its state is bound to this
// session and only finishing it connects anything.
func (p *Pages) adminStartFacebook(w http.ResponseWriter, r *http.Request, req Request) error {
	if err := p.needConnect(req); err != nil {
		return err
	}
	to, err := p.Connect.StartFacebook(r.Context(), req.Actor, req.Session)
	if err != nil {
		return p.channelsRefused(w, r, req, nil, err)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

func (p *Pages) adminFacebookCallback(w http.ResponseWriter, r *http.Request, req Request) error {
	if err := p.needConnect(req); err != nil {
		return err
	}
	q := r.URL.Query()
	if err := p.Connect.FinishFacebook(r.Context(), req.Actor, req.Session, q); err != nil {
		return p.channelsRefused(w, r, req, nil, err)
	}
	http.Redirect(w, r, "/admin/channels/facebook/pages?state="+url.QueryEscape(q.Get("state")), http.StatusSeeOther)
	return nil
}

// facebookPagesData is the page that picks the Page to connect.
type facebookPagesData struct {
	State string
	Pages []connect.FacebookPage
}

func (p *Pages) adminFacebookPages(w http.ResponseWriter, r *http.Request, req Request) error {
	if err := p.needConnect(req); err != nil {
		return err
	}
	state := r.URL.Query().Get("state")
	pages, err := p.Connect.FacebookPages(r.Context(), req.Actor, req.Session, state)
	if err != nil {
		return p.channelsRefused(w, r, req, nil, err)
	}
	return p.adminRender(w, r, req, http.StatusOK, "facebook-pages", facebookPagesData{State: state, Pages: pages}, "", "")
}

func (p *Pages) adminConnectFacebook(w http.ResponseWriter, r *http.Request, req Request) error {
	if err := p.needConnect(req); err != nil {
		return err
	}
	if _, err := p.Connect.ConnectFacebookPage(r.Context(), req.Actor, req.Session, r.PostFormValue("state"), r.PostFormValue("page")); err != nil {
		return p.channelsRefused(w, r, req, nil, err)
	}
	return seeOther(w, r, "/admin/channels", "page-connected", "health")
}

// auditPage is a page of the audit log.
type auditPage struct {
	Entries []inbox.AuditEntry
	Next    string // the before= of the next page; "" at the end
}

func (p *Pages) adminAudit(w http.ResponseWriter, r *http.Request, req Request) error {
	const pageSize = 100
	entries, err := p.Inbox.AuditLog(r.Context(), req.Actor, r.URL.Query().Get("before"), pageSize)
	if err != nil {
		return err
	}
	d := auditPage{Entries: entries}
	if len(entries) == pageSize {
		d.Next = entries[len(entries)-1].ID
	}
	return p.adminRender(w, r, req, http.StatusOK, "audit", d, "", "")
}
