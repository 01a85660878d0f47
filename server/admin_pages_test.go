package server_test

// The administration pages (web/admin.go): an admin uses every page and
// form and the service sees the effect; agents and supervisors are
// refused by the service layer on every one; forms need the session's
// CSRF token; refused input is shown, with the service's message, and
// changes nothing.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Paris wherever the tests run

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/view"
)

const adminPassword = "a-long-password"

// adminBrowser signs an agent of e in through the form, with a password
// set for it.
func adminBrowser(t *testing.T, e *env, email string) *browser {
	t.Helper()
	agents, err := e.svc.Agents(context.Background(), switchboard.System)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(agents, func(a view.Agent) bool { return a.Email == email })
	if i < 0 {
		t.Fatalf("no agent %s", email)
	}
	if err := e.svc.SetPassword(context.Background(), switchboard.System, agents[i].ID, adminPassword); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, e)
	if resp := b.login(email, adminPassword); resp.StatusCode != http.StatusSeeOther || b.csrf == "" {
		t.Fatalf("sign in as %s: %d, csrf %q", email, resp.StatusCode, b.csrf)
	}
	return b
}

// get loads a page.
func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	return b.req("GET", path, "", "", nil)
}

// post sends a form with the session's CSRF token.
func (b *browser) post(path string, v url.Values) (*http.Response, string) {
	b.t.Helper()
	w := url.Values{"csrf": {b.csrf}}
	for k, x := range v {
		w[k] = x
	}
	return b.req("POST", path, "application/x-www-form-urlencoded", w.Encode(), nil)
}

// wantRedirect checks a Post/Redirect/Get answer and loads its target.
func (b *browser) wantRedirect(what string, resp *http.Response, body, prefix, notice string) {
	b.t.Helper()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, prefix) {
		b.t.Fatalf("%s: %d to %q, want 303 to %s…: %s", what, resp.StatusCode, loc, prefix, body)
	}
	resp, page := b.get(loc)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, notice) {
		b.t.Fatalf("%s: GET %s: %d, want the notice %q", what, loc, resp.StatusCode, notice)
	}
}

var (
	controlTag = regexp.MustCompile(`<(input|select|textarea)\b[^>]*>`)
	idAttr     = regexp.MustCompile(`\bid="([^"]+)"`)
)

// checkPage holds what every admin page keeps: a CSP with no inline
// script or style to allow, none in the page, and a label for every
// control.
func checkPage(t *testing.T, path string, resp *http.Response, page string) {
	t.Helper()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "style-src 'self'") {
		t.Errorf("%s: CSP %q", path, csp)
	}
	for _, bad := range []string{" style=", " onclick=", " onsubmit=", "<style", "<script>", "javascript:"} {
		if strings.Contains(page, bad) {
			t.Errorf("%s: the page has %q", path, bad)
		}
	}
	if !strings.Contains(page, `class="admin-nav"`) {
		t.Errorf("%s: no admin-nav", path)
	}
	for _, tag := range controlTag.FindAllString(page, -1) {
		if strings.Contains(tag, `type="hidden"`) {
			continue
		}
		m := idAttr.FindStringSubmatch(tag)
		if m == nil || !strings.Contains(page, `for="`+m[1]+`"`) {
			t.Errorf("%s: a control without a label: %s", path, tag)
		}
	}
}

func TestAdminPages(t *testing.T) {
	e := newEnv(t, "sqlite")
	ctx := context.Background()
	b := adminBrowser(t, e, "alex@team.example")

	pages := map[string][]string{
		"/admin":           {"Administration", "Agents: 2,", "8 of 8"},
		"/admin/agents":    {"sam@team.example", "Invite an agent", "Set password"},
		"/admin/routing":   {"Default team", "Topics by keyword", "Monday"},
		"/admin/sites":     {"Add a site"},
		"/admin/templates": {"Add or replace a template"},
		"/admin/canned":    {"Add or replace a canned response"},
		"/admin/channels":  {"Twilio: SMS and voicemail", "Auth token", "never shown again", "can be sent", "(by SMS)", "Health"},
		"/admin/audit":     {"Audit log"},
	}
	for path, want := range pages {
		resp, page := b.get(path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, page)
		}
		checkPage(t, path, resp, page)
		for _, w := range want {
			if !strings.Contains(page, w) {
				t.Errorf("GET %s: no %q", path, w)
			}
		}
	}

	t.Run("agents", func(t *testing.T) {
		// Invite: the link is shown once and works.
		resp, page := b.post("/admin/agents/invite", url.Values{"email": {"Nia@Team.example"}, "name": {"Nia"}, "role": {"supervisor"}})
		m := regexp.MustCompile(`value="(http://[^"]+/invite/([^"]+))"`).FindStringSubmatch(page)
		if resp.StatusCode != http.StatusOK || m == nil || !strings.HasPrefix(m[1], e.url+"/invite/") {
			t.Fatalf("invite: %d, link %v", resp.StatusCode, m)
		}
		checkPage(t, "invite answer", resp, page)
		resp, invite := newBrowser(t, e).get("/invite/" + m[2])
		if resp.StatusCode != http.StatusOK || !strings.Contains(invite, "nia@team.example") {
			t.Fatalf("GET the invitation link: %d %s", resp.StatusCode, invite)
		}
		if _, again := b.get("/admin/agents"); strings.Contains(again, m[2]) {
			t.Error("the invitation's token is shown again")
		}
		// An existing agent's address: refused, the input kept.
		resp, page = b.post("/admin/agents/invite", url.Values{"email": {"sam@team.example"}, "name": {"Sam again"}, "role": {"agent"}})
		if resp.StatusCode != http.StatusConflict || !strings.Contains(page, "exists") || !strings.Contains(page, `value="Sam again"`) {
			t.Errorf("invite an existing agent: %d %s", resp.StatusCode, page)
		}

		// Change an agent.
		resp, page = b.post("/admin/agents/"+e.agentID, url.Values{"role": {"supervisor"}, "skills": {"billing, refunds,"}, "teams": {"sales"}, "cap_chat": {"4"}, "cap_email": {""}})
		b.wantRedirect("update agent", resp, page, "/admin/agents?notice=", "The agent&#39;s changes are saved.")
		a, err := e.svc.Agent(ctx, switchboard.System, e.agentID)
		if err != nil || a.Role != switchboard.RoleSupervisor || !slices.Equal(a.Skills, []string{"billing", "refunds"}) ||
			!slices.Equal(a.Teams, []string{"sales"}) || a.Caps.Chat != 4 || a.Caps.Email != 0 {
			t.Fatalf("after the update: %+v %v", a, err)
		}
		// Refused: a cap that is no number, a role that is none; nothing changes.
		for _, bad := range []url.Values{
			{"role": {"agent"}, "skills": {"x"}, "teams": {""}, "cap_chat": {"many"}, "cap_email": {""}},
			{"role": {"boss"}, "skills": {"x"}, "teams": {""}, "cap_chat": {""}, "cap_email": {""}},
			{"role": {"agent"}, "skills": {"x"}, "teams": {""}, "cap_chat": {"5000"}, "cap_email": {""}},
		} {
			resp, page = b.post("/admin/agents/"+e.agentID, bad)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, `role="alert"`) || !strings.Contains(page, `value="x"`) {
				t.Errorf("update %v: %d %s", bad, resp.StatusCode, page)
			}
		}
		if again, _ := e.svc.Agent(ctx, switchboard.System, e.agentID); again.Role != a.Role || !slices.Equal(again.Skills, a.Skills) || again.Caps != a.Caps {
			t.Errorf("refused updates changed the agent: %+v", again)
		}

		// Another agent's password: they sign in with it.
		resp, page = b.post("/admin/agents/"+e.agentID+"/password", url.Values{"password": {"short"}})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "at least 10") {
			t.Errorf("short password: %d", resp.StatusCode)
		}
		resp, page = b.post("/admin/agents/"+e.agentID+"/password", url.Values{"password": {"another-long-password"}})
		b.wantRedirect("set password", resp, page, "/admin/agents?notice=", "The password is set")
		if resp := newBrowser(t, e).login("sam@team.example", "another-long-password"); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("sign in with the password set: %d", resp.StatusCode)
		}
		if resp, _ := b.post("/admin/agents/nosuchagent/password", url.Values{"password": {"another-long-password"}}); resp.StatusCode != http.StatusNotFound {
			t.Errorf("unknown agent: %d", resp.StatusCode)
		}
	})

	t.Run("routing", func(t *testing.T) {
		form := url.Values{
			"t0-name": {""}, "t0-rules": {"continuity, business_hours, availability, workload"}, "t0-tz": {"Europe/Paris"},
			"t0-day-mon": {"09:00-17:30, 18:00-20:00"}, "t0-day-sat": {"22:00-02:00"}, "t0-holidays": {"2026-12-25, 2027-01-01"},
			"t0-after_hours": {"team"}, "t0-after_hours_team": {"night"}, "t0-skill_fallback": {"wait"},
			"t0-ack-default": {"We are closed; we answer from 9:00."}, "t0-ack-sms": {"Closed, back at 9"}, "t0-weight-chat": {"1.5"},
			"t1-new": {"1"}, "t1-name": {"night"}, "t1-after_hours": {"queue"}, "t1-skill_fallback": {"any"},
			"k0-topic": {"billing"}, "k0-keywords": {"invoice, refund, charged twice"},
			"k1-topic": {""}, "k1-keywords": {""},
		}
		resp, page := b.post("/admin/routing", form)
		b.wantRedirect("save routing", resp, page, "/admin/routing?notice=", "The routing configuration is saved.")
		rc, err := e.svc.RoutingConfig(ctx, switchboard.System)
		if err != nil {
			t.Fatal(err)
		}
		def, night := rc.Teams[""], rc.Teams["night"]
		if _, ok := rc.Teams["night"]; !ok || !slices.Equal(def.Rules, []string{"continuity", "business_hours", "availability", "workload"}) ||
			def.Hours == nil || def.Hours.Location().String() != "Europe/Paris" || def.AfterHours != "team" || def.AfterHoursTeam != "night" ||
			def.SkillFallback != "wait" || def.Ack[""] != "We are closed; we answer from 9:00." || def.Ack["sms"] != "Closed, back at 9" ||
			def.Weights[switchboard.ClassChat] != 1.5 || night.Hours != nil || night.AfterHours != "queue" {
			b, _ := json.Marshal(rc)
			t.Fatalf("the configuration read back: %s", b)
		}
		paris, _ := time.LoadLocation("Europe/Paris")
		for at, open := range map[time.Time]bool{
			time.Date(2026, 6, 1, 10, 0, 0, 0, paris):  true, // a Monday
			time.Date(2026, 6, 1, 17, 45, 0, 0, paris): false,
			time.Date(2026, 6, 1, 19, 0, 0, 0, paris):  true,
			time.Date(2026, 6, 7, 1, 0, 0, 0, paris):   true, // Saturday night
			time.Date(2026, 6, 2, 10, 0, 0, 0, paris):  false,
		} {
			if def.Hours.Open(at) != open {
				t.Errorf("open at %v: %v, want %v", at, !open, open)
			}
		}
		if len(rc.Keywords) != 1 || rc.Keywords[0].Topic != "billing" || !slices.Equal(rc.Keywords[0].Keywords, []string{"invoice", "refund", "charged twice"}) {
			t.Errorf("keywords read back: %+v", rc.Keywords)
		}
		// The page shows it as saved.
		_, page = b.get("/admin/routing")
		for _, want := range []string{"Team night", `value="09:00-17:30, 18:00-20:00"`, `value="22:00-02:00"`, `value="2026-12-25, 2027-01-01"`, "Closed, back at 9", `value="invoice, refund, charged twice"`} {
			if !strings.Contains(page, want) {
				t.Errorf("the routing page after saving: no %s", want)
			}
		}

		// Refused input: the service's message, the admin's input, nothing changed.
		before, _ := json.Marshal(rc)
		bad := []struct {
			field, value, want string
		}{
			{"t0-rules", "continuity, luck", `unknown rule &#34;luck&#34;`},
			{"t0-rules", "skills, skills", `listed twice`},
			{"t0-day-mon", "9-5", `want HH:MM`},
			{"t0-day-tue", "09:00 until 17:00", `want HH:MM-HH:MM`},
			{"t0-tz", "Mars/Olympus", `unknown time zone`},
			{"t0-holidays", "Christmas", `want YYYY-MM-DD`},
			{"t0-after_hours", "voicemail", `after_hours &#34;voicemail&#34;`},
			{"t0-weight-chat", "-1", `weight of chat is -1`},
			{"t1-after_hours", "team", `after_hours_team is empty`},
			{"k1-topic", "shipping", `each keyword rule needs a topic and keywords`},
		}
		for _, c := range bad {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			f.Del("t1-new") // "night" exists now: edit it
			f.Set(c.field, c.value)
			resp, page := b.post("/admin/routing", f)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, c.want) || !strings.Contains(page, `role="alert"`) {
				t.Errorf("%s=%q: %d, want 400 with %q", c.field, c.value, resp.StatusCode, c.want)
			}
			// A select cannot show a value it has no option for.
			if !strings.HasSuffix(c.field, "after_hours") && !strings.Contains(page, `value="`+c.value+`"`) {
				t.Errorf("%s=%q: the input is not shown again", c.field, c.value)
			}
			after, _ := e.svc.RoutingConfig(ctx, switchboard.System)
			if got, _ := json.Marshal(after); string(got) != string(before) {
				t.Fatalf("%s=%q changed the configuration: %s", c.field, c.value, got)
			}
		}
		// A cycle of after-hours hand-offs, which only the service sees;
		// and a new team by the name of one that exists.
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		f.Del("t1-new")
		f.Set("t1-after_hours", "team")
		f.Set("t1-after_hours_team", "night")
		if resp, page := b.post("/admin/routing", f); resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "cycle") {
			t.Errorf("a hand-off cycle: %d", resp.StatusCode)
		}
		if resp, page := b.post("/admin/routing", form); resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "a team &#34;night&#34; exists") {
			t.Errorf("a new team named as one that exists: %d", resp.StatusCode)
		}
		if after, _ := e.svc.RoutingConfig(ctx, switchboard.System); func() string { b, _ := json.Marshal(after); return string(b) }() != string(before) {
			t.Fatal("refused input changed the configuration")
		}

		// Removing a team keeps the others.
		f = url.Values{"t0-name": {""}, "t0-after_hours": {"queue"}, "t0-skill_fallback": {"any"},
			"t1-name": {"night"}, "t1-remove": {"1"}, "k0-topic": {"billing"}, "k0-keywords": {"invoice"}}
		resp, page = b.post("/admin/routing", f)
		b.wantRedirect("remove a team", resp, page, "/admin/routing?notice=", "saved")
		rc, _ = e.svc.RoutingConfig(ctx, switchboard.System)
		if _, ok := rc.Teams["night"]; ok || rc.Teams[""].Hours != nil || len(rc.Keywords) != 1 {
			t.Errorf("after removing night: %+v", rc)
		}
	})

	t.Run("sites", func(t *testing.T) {
		resp, page := b.post("/admin/sites", url.Values{"name": {"Shop"}, "origins": {"https://shop.example\r\nhttps://www.shop.example"}, "team": {"sales"}})
		secret := regexp.MustCompile(`sk_[0-9a-f]+`).FindString(page)
		key := regexp.MustCompile(`site_[0-9a-f]+`).FindString(page)
		if resp.StatusCode != http.StatusOK || secret == "" || key == "" || !strings.Contains(page, "/widget.js") {
			t.Fatalf("add a site: %d %q %q", resp.StatusCode, secret, key)
		}
		checkPage(t, "site answer", resp, page)
		site, err := e.svc.ChatSite(ctx, key)
		if err != nil || site.Secret != secret || site.Team != "sales" || !slices.Equal(site.Origins, []string{"https://shop.example", "https://www.shop.example"}) {
			t.Fatalf("the site stored: %+v %v", site, err)
		}
		if _, page := b.get("/admin/sites"); strings.Contains(page, secret) || !strings.Contains(page, key) {
			t.Error("the sites page shows the secret again, or not the site")
		}
		resp, page = b.post("/admin/sites/"+key, url.Values{"name": {"Shop 2"}, "origins": {"https://shop2.example"}, "team": {""}})
		b.wantRedirect("edit a site", resp, page, "/admin/sites?notice=", "The site is saved.")
		site, _ = e.svc.ChatSite(ctx, key)
		if site.Name != "Shop 2" || site.Team != "" || !slices.Equal(site.Origins, []string{"https://shop2.example"}) || site.Secret != secret {
			t.Errorf("the site edited: %+v", site)
		}
		resp, page = b.post("/admin/sites/"+key, url.Values{"name": {"Shop 3"}, "origins": {"shop3.example/path"}, "team": {""}})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "origin") || !strings.Contains(page, "shop3.example/path") {
			t.Errorf("a bad origin: %d", resp.StatusCode)
		}
		resp, _ = b.post("/admin/sites", url.Values{"name": {"No origins"}, "origins": {""}})
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("a site without origins: %d", resp.StatusCode)
		}
		if sites, _ := e.svc.Sites(ctx, switchboard.System); len(sites) != 1 || sites[0].Name != "Shop 2" {
			t.Errorf("refused changes changed the sites: %+v", sites)
		}
	})

	t.Run("templates", func(t *testing.T) {
		tpl := url.Values{"name": {"order_update"}, "language": {"en_US"}, "category": {"UTILITY"}, "body": {"Your order {{1}} has shipped."}, "status": {"APPROVED"}}
		resp, page := b.post("/admin/templates", tpl)
		b.wantRedirect("add a template", resp, page, "/admin/templates?notice=", "The template is saved.")
		tpl.Set("status", "PAUSED")
		resp, page = b.post("/admin/templates", tpl)
		b.wantRedirect("replace a template", resp, page, "/admin/templates?notice=", "PAUSED")
		ts, err := e.svc.Templates(ctx, switchboard.System)
		if err != nil || len(ts) != 1 || ts[0].Status != "PAUSED" || ts[0].Body != "Your order {{1}} has shipped." {
			t.Fatalf("templates: %+v %v", ts, err)
		}
		if _, page := b.get("/admin/templates?name=order_update&language=en_US"); !strings.Contains(page, `<textarea id="template-body" name="body" rows="4" required aria-describedby="template-body-hint">Your order {{1}} has shipped.</textarea>`) {
			t.Error("Edit does not fill the form")
		}
		tpl.Del("status")
		if resp, page := b.post("/admin/templates", tpl); resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "required") {
			t.Errorf("a template without status: %d", resp.StatusCode)
		}
	})

	t.Run("canned", func(t *testing.T) {
		resp, page := b.post("/admin/canned", url.Values{"shortcut": {"/refund"}, "title": {"Refund"}, "body": {"We refunded you."}})
		b.wantRedirect("add a canned response", resp, page, "/admin/canned?notice=", "/refund")
		cs, err := e.svc.CannedResponses(ctx, switchboard.System)
		if err != nil || len(cs) != 1 || cs[0].Shortcut != "refund" || cs[0].Body != "We refunded you." {
			t.Fatalf("canned responses: %+v %v", cs, err)
		}
		resp, page = b.post("/admin/canned", url.Values{"shortcut": {"two words"}, "title": {""}, "body": {"Hi"}})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "one word") || !strings.Contains(page, `value="two words"`) {
			t.Errorf("a bad shortcut: %d", resp.StatusCode)
		}
		resp, page = b.post("/admin/canned/"+cs[0].ID+"/delete", nil)
		b.wantRedirect("delete a canned response", resp, page, "/admin/canned?notice=", "The canned response is deleted.")
		if cs, _ := e.svc.CannedResponses(ctx, switchboard.System); len(cs) != 0 {
			t.Errorf("after deleting: %+v", cs)
		}
		if resp, _ := b.post("/admin/canned/"+cs[0].ID+"/delete", nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("delete twice: %d", resp.StatusCode)
		}
	})

	t.Run("notice", func(t *testing.T) {
		// A link cannot put its own words on the page.
		if _, page := b.get("/admin?notice=Call+555-0100+now"); strings.Contains(page, "555-0100") {
			t.Error("the notice shows a link's text")
		}
	})
}

// adminRequests is one request per admin route, filled with real ids and
// with input the service would take from an admin.
func adminRequests(t *testing.T, e *env, siteKey, cannedID string) map[string]url.Values {
	t.Helper()
	out := map[string]url.Values{}
	fill := strings.NewReplacer("{id}", e.agentID, "{key}", siteKey)
	for pattern := range e.srv.Pages.Routes() {
		method, path, _ := strings.Cut(pattern, " ")
		if !strings.HasPrefix(path, "/admin") {
			continue
		}
		if strings.HasPrefix(path, "/admin/canned/") {
			path = strings.Replace(path, "{id}", cannedID, 1)
		}
		out[method+" "+fill.Replace(path)] = url.Values{
			"email": {"eve@team.example"}, "name": {"Eve"}, "role": {"admin"}, "password": {"a-password-of-eve"},
			"skills": {"all"}, "teams": {"all"}, "cap_chat": {"1"}, "cap_email": {"1"},
			"t0-name": {""}, "t0-rules": {"workload"}, "t0-after_hours": {"queue"}, "t0-skill_fallback": {"any"},
			"origins": {"https://evil.example"}, "team": {""}, "language": {"en"}, "body": {"Hi"}, "status": {"APPROVED"},
			"shortcut": {"evil"}, "title": {"Evil"},
		}
	}
	if len(out) < 16 {
		t.Fatalf("only %d admin routes", len(out))
	}
	return out
}

func TestAdminPagesRefuseAgentsAndSupervisors(t *testing.T) {
	e := newEnv(t, "sqlite")
	ctx := context.Background()
	if _, _, err := e.svc.AddAgent(ctx, switchboard.System, switchboard.Agent{Name: "Sue", Email: "sue@team.example", Role: switchboard.RoleSupervisor}); err != nil {
		t.Fatal(err)
	}
	site, err := e.svc.AddSite(ctx, switchboard.System, switchboard.Site{Name: "Shop", Origins: []string{"https://shop.example"}})
	if err != nil {
		t.Fatal(err)
	}
	canned, err := e.svc.PutCannedResponse(ctx, switchboard.System, inbox.CannedResponse{Shortcut: "hi", Body: "Hello"})
	if err != nil {
		t.Fatal(err)
	}
	state := func() string {
		var all []any
		agents, _ := e.svc.Agents(ctx, switchboard.System)
		rc, _ := e.svc.RoutingConfig(ctx, switchboard.System)
		sites, _ := e.svc.Sites(ctx, switchboard.System)
		ts, _ := e.svc.Templates(ctx, switchboard.System)
		cs, _ := e.svc.CannedResponses(ctx, switchboard.System)
		all = append(all, agents, rc, sites, ts, cs)
		b, _ := json.Marshal(all)
		return string(b)
	}
	before := state()
	for _, email := range []string{"sam@team.example", "sue@team.example"} {
		b := adminBrowser(t, e, email)
		for req, form := range adminRequests(t, e, site.Key, canned.ID) {
			method, path, _ := strings.Cut(req, " ")
			var resp *http.Response
			var page string
			if method == "GET" {
				resp, page = b.get(path)
			} else {
				resp, page = b.post(path, form)
			}
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "only admins") {
				t.Errorf("%s: %s: %d, want 403: %.300s", email, req, resp.StatusCode, page)
			}
			if strings.Contains(page, site.Key) || strings.Contains(page, "Hello") {
				t.Errorf("%s: %s shows admin data", email, req)
			}
		}
		// No link to the administration either.
		if _, page := b.get("/"); strings.Contains(page, `href="/admin"`) {
			t.Errorf("%s sees the Admin link", email)
		}
	}
	if after := state(); after != before {
		t.Errorf("refused requests changed something:\nbefore %s\nafter  %s", before, after)
	}
}

func TestAdminFormsNeedCSRF(t *testing.T) {
	e := newEnv(t, "sqlite")
	ctx := context.Background()
	b := adminBrowser(t, e, "alex@team.example")
	form := url.Values{"shortcut": {"refund"}, "body": {"We refunded you."}}
	for name, token := range map[string]string{"no token": "", "a wrong token": strings.Repeat("0", len(b.csrf))} {
		body := form.Encode()
		if token != "" {
			body += "&csrf=" + token
		}
		resp, page := b.req("POST", "/admin/canned", "application/x-www-form-urlencoded", body, nil)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "CSRF") {
			t.Errorf("%s: %d %s", name, resp.StatusCode, page)
		}
	}
	// A page of another site, with the right token, is refused too.
	resp, _ := b.req("POST", "/admin/agents/"+e.agentID, "application/x-www-form-urlencoded",
		url.Values{"csrf": {b.csrf}, "role": {"admin"}}.Encode(), map[string]string{"Origin": "https://evil.example"})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("another origin: %d", resp.StatusCode)
	}
	if cs, _ := e.svc.CannedResponses(ctx, switchboard.System); len(cs) != 0 {
		t.Errorf("stored without the token: %+v", cs)
	}
	if a, _ := e.svc.Agent(ctx, switchboard.System, e.agentID); a.Role != switchboard.RoleAgent {
		t.Errorf("changed from another origin: %v", a.Role)
	}
}
