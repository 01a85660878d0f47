package metatest

import (
	"crypto/hmac"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Facebook Login defaults of the stand-in (WithOAuth). DefaultUserID is
// the user id of Meta's debug_token documentation example.
const (
	DefaultUserID            = "10215241773831025"
	DefaultAppName           = "Switchboard"
	DefaultPageName          = "Switchboard Stand-in"
	DefaultInstagramUsername = "switchboard.standin"
)

// Lifetimes of what the stand-in issues, on the Server's clock (WithClock).
const (
	CodeLifetime            = 10 * time.Minute    // a code, and a consent page's links
	ShortLivedTokenLifetime = time.Hour           // a User token from a code
	LongLivedTokenLifetime  = 60 * 24 * time.Hour // a User token from fb_exchange_token
	DataAccessLifetime      = 90 * 24 * time.Hour // data_access_expires_at after consent
)

// StandInPage is a Facebook Page the stand-in's user manages, and the
// Instagram professional account linked to it, if any.
type StandInPage struct {
	ID, Name                       string
	InstagramID, InstagramUsername string
}

// pageTasks are the tasks of a Page admin, as /me/accounts lists them.
var pageTasks = []string{"ANALYZE", "ADVERTISE", "MESSAGING", "MODERATE", "CREATE_CONTENT", "MANAGE"}

// pageFields are the Page webhook fields subscribed_apps accepts: the
// Messenger Platform's and the common Page ones.
var pageFields = []string{
	"messages", "message_deliveries", "message_echoes", "message_edits", "message_reactions", "message_reads",
	"messaging_account_linking", "messaging_customer_information", "messaging_feedback", "messaging_game_plays",
	"messaging_handovers", "messaging_optins", "messaging_optouts", "messaging_policy_enforcement",
	"messaging_postbacks", "messaging_referrals", "response_feedback", "send_cart", "standby",
	"feed", "mention", "leadgen", "ratings", "name", "picture", "category", "description", "email", "website",
	"conversations", "inbox_labels", "calls", "videos", "live_videos",
}

const (
	tokenUser = "USER"
	tokenPage = "PAGE"
	tokenApp  = "APP"
)

type oauthState struct {
	appID        string
	pages        []StandInPage
	redirectURIs []string

	mu         sync.Mutex
	dialogs    map[string]*dialogRequest // consent pages shown, by request id
	codes      map[string]*authCode
	tokens     map[string]*issuedToken
	derived    map[[2]string]string // (user token, page id) → page token
	pageTokens map[string]string    // page id → the page token issued last
	subs       map[string][]string  // page id → subscribed fields
	scopes     []string             // asked for by the last dialog request
}

type dialogRequest struct {
	redirectURI string
	state       string
	hasState    bool
	scopes      []string
	shown       time.Time
}

type authCode struct {
	redirectURI string
	scopes      []string
	expires     time.Time
	used        bool
}

type issuedToken struct {
	kind       string // tokenUser or tokenPage
	pageID     string
	scopes     []string
	issued     time.Time
	expires    time.Time // zero: never
	dataAccess time.Time
	parent     string // the User token a Page token was got with
	revoked    bool
}

// WithOAuth makes the Server play Facebook Login for the app appID (its
// secret is the one New was given) and the Graph API endpoints that
// connect a Page, for one user who manages pages (default: one Page,
// the Server's page id and Instagram account id, named DefaultPageName
// and DefaultInstagramUsername). Sends to the Server's page id (WithPageID)
// and Instagram account id are accepted with that Page's access token as
// well as with the token New was given. An empty appID leaves OAuth off.
func WithOAuth(appID string, pages ...StandInPage) Option {
	return func(s *Server) {
		o := s.ensureOAuth()
		o.appID = appID
		o.pages = append(o.pages, pages...)
	}
}

// WithRedirectURIs sets the app's Valid OAuth Redirect URIs (strict mode:
// exact match). Without it, any absolute http(s) URL without a fragment
// is accepted.
func WithRedirectURIs(uris ...string) Option {
	return func(s *Server) {
		o := s.ensureOAuth()
		o.redirectURIs = append(o.redirectURIs, uris...)
	}
}

func (s *Server) ensureOAuth() *oauthState {
	if s.oauth == nil {
		s.oauth = &oauthState{
			dialogs: map[string]*dialogRequest{}, codes: map[string]*authCode{},
			tokens: map[string]*issuedToken{}, derived: map[[2]string]string{},
			pageTokens: map[string]string{}, subs: map[string][]string{},
		}
	}
	return s.oauth
}

// oauthDefaults completes the OAuth configuration once every option is
// applied (WithPageID may come after WithOAuth).
func (s *Server) oauthDefaults() {
	if s.oauth == nil {
		return
	}
	if s.oauth.appID == "" {
		s.oauth = nil
		return
	}
	if len(s.oauth.pages) == 0 {
		s.oauth.pages = []StandInPage{{ID: s.pageID, Name: DefaultPageName, InstagramID: s.igAccountID, InstagramUsername: DefaultInstagramUsername}}
	}
}

// IssuedPageToken returns the Page access token /me/accounts issued last
// for pageID, or "".
func (s *Server) IssuedPageToken(pageID string) string {
	if s.oauth == nil {
		return ""
	}
	s.oauth.mu.Lock()
	defer s.oauth.mu.Unlock()
	return s.oauth.pageTokens[pageID]
}

// Scopes returns the permissions the last Login dialog request asked for.
func (s *Server) Scopes() []string {
	if s.oauth == nil {
		return nil
	}
	s.oauth.mu.Lock()
	defer s.oauth.mu.Unlock()
	return slices.Clone(s.oauth.scopes)
}

// Subscriptions returns the webhook fields the app is subscribed to for
// pageID (POST /{page-id}/subscribed_apps), nil when it is not.
func (s *Server) Subscriptions(pageID string) []string {
	if s.oauth == nil {
		return nil
	}
	s.oauth.mu.Lock()
	defer s.oauth.mu.Unlock()
	return slices.Clone(s.oauth.subs[pageID])
}

// RevokeToken invalidates a token the stand-in issued, as a password
// change does (code 190, subcode 460); revoking a User token also
// revokes the Page tokens got with it. It reports whether the token was
// known.
func (s *Server) RevokeToken(token string) bool {
	if s.oauth == nil {
		return false
	}
	s.oauth.mu.Lock()
	defer s.oauth.mu.Unlock()
	t := s.oauth.tokens[token]
	if t == nil {
		return false
	}
	t.revoked = true
	return true
}

// ExpireTokens makes every token issued so far expire now (code 190,
// subcode 463), even those that never expire.
func (s *Server) ExpireTokens() {
	if s.oauth == nil {
		return
	}
	now := s.now()
	s.oauth.mu.Lock()
	defer s.oauth.mu.Unlock()
	for _, t := range s.oauth.tokens {
		t.expires = now
	}
}

func (o *oauthState) page(id string) *StandInPage {
	for i := range o.pages {
		if o.pages[i].ID == id {
			return &o.pages[i]
		}
	}
	return nil
}

// errInvalidToken is the answer to a token the stand-in does not know.
var errInvalidToken = graphErr{Message: "Invalid OAuth access token - Cannot parse access token", Type: "OAuthException", Code: 190}

// check returns the valid token tok, or why it is not. The caller holds
// o.mu.
func (o *oauthState) check(tok string, now time.Time) (*issuedToken, *graphErr) {
	t := o.tokens[tok]
	if t == nil {
		return nil, &errInvalidToken
	}
	if e := o.invalid(t, now); e != nil {
		return nil, e
	}
	return t, nil
}

// invalid says why a known token is no longer valid, or nil.
func (o *oauthState) invalid(t *issuedToken, now time.Time) *graphErr {
	revoked := t.revoked
	if p := o.tokens[t.parent]; p != nil && p.revoked {
		revoked = true
	}
	switch {
	case revoked:
		return &graphErr{
			Message: "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.",
			Type:    "OAuthException", Code: 190, Subcode: 460,
		}
	case !t.expires.IsZero() && !now.Before(t.expires):
		const layout = "Monday, 02-Jan-06 15:04:05 MST"
		return &graphErr{
			Message: "Error validating access token: Session has expired on " + t.expires.UTC().Format(layout) + ". The current time is " + now.UTC().Format(layout) + ".",
			Type:    "OAuthException", Code: 190, Subcode: 463,
		}
	}
	return nil
}

// issue records a new token. The caller holds o.mu.
func (o *oauthState) issue(t *issuedToken) string {
	for {
		tok := "EAA" + randomToken(48)
		if _, taken := o.tokens[tok]; !taken {
			o.tokens[tok] = t
			return tok
		}
	}
}

// requestToken returns the access token of r: the bearer token, or the
// access_token parameter of form (the query, or query and body once
// parsed). ok is false for a malformed Authorization header.
func requestToken(r *http.Request, form url.Values) (tok string, ok bool) {
	tok = form.Get("access_token")
	if h := r.Header.Get("Authorization"); h != "" {
		const p = "bearer "
		if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
			return "", false
		}
		tok = strings.TrimSpace(h[len(p):])
	}
	return tok, tok != ""
}

func unauthorized(w http.ResponseWriter, e graphErr) {
	w.Header().Set("WWW-Authenticate", `OAuth "Facebook Platform" "invalid_token" "`+e.Message+`"`)
	graphError(w, http.StatusUnauthorized, e)
}

// pageAuthorized reports whether r carries a valid Page access token the
// stand-in issued for the object segs[0] names: the Page, its Instagram
// account, or "me" for the Server's own page. When not, e is the answer.
func (s *Server) pageAuthorized(r *http.Request, segs []string) (e graphErr, ok bool) {
	o := s.oauth
	tok, _ := requestToken(r, r.URL.Query())
	if o == nil || len(segs) == 0 || tok == "" {
		return errInvalidToken, false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	t, why := o.check(tok, s.now())
	if t == nil {
		return *why, false
	}
	p := o.page(t.pageID)
	if t.kind != tokenPage || p == nil {
		return errInvalidToken, false
	}
	switch {
	case segs[0] == p.ID, p.InstagramID != "" && segs[0] == p.InstagramID, segs[0] == "me" && p.ID == s.pageID:
		return graphErr{}, true
	}
	return errInvalidToken, false
}

// serveOAuth answers the Facebook Login and Page connection routes and
// reports whether segs was one of them.
func (s *Server) serveOAuth(w http.ResponseWriter, r *http.Request, segs []string) bool {
	switch {
	case len(segs) == 2 && segs[0] == "dialog" && segs[1] == "oauth" && r.Method == http.MethodGet:
		s.serveDialog(w, r)
	case len(segs) == 3 && segs[0] == "dialog" && segs[1] == "oauth" && (segs[2] == "continue" || segs[2] == "cancel") && r.Method == http.MethodGet:
		s.serveConsent(w, r, segs[2] == "continue")
	case len(segs) == 2 && segs[0] == "oauth" && segs[1] == "access_token" && (r.Method == http.MethodGet || r.Method == http.MethodPost):
		s.serveAccessToken(w, r)
	case len(segs) == 1 && segs[0] == "debug_token" && r.Method == http.MethodGet:
		s.serveDebugToken(w, r)
	case len(segs) == 2 && segs[1] == "accounts" && (segs[0] == "me" || segs[0] == DefaultUserID) && r.Method == http.MethodGet:
		s.serveAccounts(w, r)
	case len(segs) == 2 && segs[1] == "subscribed_apps" && segs[0] != "":
		s.serveSubscribedApps(w, r, segs[0])
	default:
		return false
	}
	return true
}

var dialogPage = template.Must(template.New("dialog").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Log in With Facebook</title></head>
<body>
<h1>{{.App}} is requesting access</h1>
<p>Facebook Login stand-in for app {{.AppID}}.</p>
{{with .Scopes}}<p>Permissions:</p>
<ul>{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}
<p>Pages:</p>
<ul>{{range .Pages}}<li>{{.Name}} ({{.ID}}){{if .InstagramID}}, Instagram @{{.InstagramUsername}} ({{.InstagramID}}){{end}}</li>{{end}}</ul>
<p><a id="continue" href="{{.Continue}}">Continue</a> <a id="cancel" href="{{.Cancel}}">Cancel</a></p>
</body>
</html>
`))

var dialogErrorPage = template.Must(template.New("error").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Error</title></head>
<body>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
</body>
</html>
`))

func dialogError(w http.ResponseWriter, title, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	dialogErrorPage.Execute(w, struct{ Title, Message string }{title, msg})
}

// redirectAllowed reports whether the app may redirect to u.
func (o *oauthState) redirectAllowed(u string) bool {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.Fragment != "" || strings.Contains(u, "#") {
		return false
	}
	return len(o.redirectURIs) == 0 || slices.Contains(o.redirectURIs, u)
}

func splitScopes(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// serveDialog answers GET /dialog/oauth: the consent page, whose
// Continue and Cancel links lead, through the stand-in, back to
// redirect_uri.
func (s *Server) serveDialog(w http.ResponseWriter, r *http.Request) {
	o := s.oauth
	q := r.URL.Query()
	if q.Get("client_id") != o.appID {
		dialogError(w, "Invalid App ID", "The provided app ID does not look like a valid app ID.")
		return
	}
	redirect := q.Get("redirect_uri")
	if !o.redirectAllowed(redirect) {
		dialogError(w, "URL Blocked", "This redirect failed because the redirect URI is not whitelisted in the app's Client OAuth Settings. Make sure Client and Web OAuth Login are on and add all your app domains as Valid OAuth Redirect URIs.")
		return
	}
	if rt := q.Get("response_type"); rt != "" && rt != "code" {
		dialogError(w, "Unsupported response_type", "The stand-in answers response_type=code only, not "+strconv.Quote(rt)+".")
		return
	}
	d := &dialogRequest{redirectURI: redirect, state: q.Get("state"), hasState: q.Has("state"), scopes: splitScopes(q.Get("scope")), shown: s.now()}
	id := randomToken(24)
	o.mu.Lock()
	o.dialogs[id] = d
	o.scopes = slices.Clone(d.scopes)
	pages := slices.Clone(o.pages)
	o.mu.Unlock()
	// Relative to …/dialog/oauth, wherever the stand-in is mounted.
	link := func(action string) string { return "oauth/" + action + "?" + url.Values{"request": {id}}.Encode() }
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	dialogPage.Execute(w, struct {
		App, AppID       string
		Scopes           []string
		Pages            []StandInPage
		Continue, Cancel string
	}{DefaultAppName, o.appID, d.scopes, pages, link("continue"), link("cancel")})
}

// serveConsent answers the consent page's links: Continue redirects to
// redirect_uri with a code and the state, Cancel with the error Meta
// sends when the person declines. Either link works once, within
// CodeLifetime. Like Meta, the redirect ends in "#_=_".
func (s *Server) serveConsent(w http.ResponseWriter, r *http.Request, grant bool) {
	o := s.oauth
	now := s.now()
	id := r.URL.Query().Get("request")
	o.mu.Lock()
	d := o.dialogs[id]
	delete(o.dialogs, id)
	if d == nil || now.Sub(d.shown) > CodeLifetime {
		o.mu.Unlock()
		dialogError(w, "This page has expired", "Go back to the app and log in again.")
		return
	}
	v := url.Values{}
	if grant {
		code := "AQ" + randomToken(48)
		o.codes[code] = &authCode{redirectURI: d.redirectURI, scopes: d.scopes, expires: now.Add(CodeLifetime)}
		v.Set("code", code)
	} else {
		v.Set("error", "access_denied")
		v.Set("error_reason", "user_denied")
		v.Set("error_description", "Permissions error")
	}
	o.mu.Unlock()
	if d.hasState {
		v.Set("state", d.state)
	}
	loc := d.redirectURI
	if strings.Contains(loc, "?") {
		loc += "&"
	} else {
		loc += "?"
	}
	w.Header().Set("Location", loc+v.Encode()+"#_=_")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
}

func codeError(w http.ResponseWriter, msg string, subcode int) {
	w.Header().Set("WWW-Authenticate", `OAuth "Facebook Platform" "invalid_code" "`+msg+`"`)
	graphError(w, http.StatusBadRequest, graphErr{Message: msg, Type: "OAuthException", Code: 100, Subcode: subcode})
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// serveAccessToken answers /oauth/access_token: a code exchange
// (client_id, redirect_uri, client_secret, code) or a long-lived token
// exchange (grant_type=fb_exchange_token).
func (s *Server) serveAccessToken(w http.ResponseWriter, r *http.Request) {
	o := s.oauth
	if err := r.ParseForm(); err != nil {
		invalidParam(w, err.Error())
		return
	}
	f := r.Form
	if f.Get("client_id") != o.appID {
		graphError(w, http.StatusBadRequest, graphErr{Message: "Error validating application. Invalid application ID.", Type: "OAuthException", Code: 101})
		return
	}
	if s.appSecret == "" || !hmac.Equal([]byte(f.Get("client_secret")), []byte(s.appSecret)) {
		graphError(w, http.StatusBadRequest, graphErr{Message: "Error validating client secret.", Type: "OAuthException", Code: 1})
		return
	}
	now := s.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	switch f.Get("grant_type") {
	case "fb_exchange_token":
		t, why := o.check(f.Get("fb_exchange_token"), now)
		if t == nil {
			graphError(w, http.StatusBadRequest, *why)
			return
		}
		if t.kind != tokenUser {
			graphError(w, http.StatusBadRequest, errInvalidToken)
			return
		}
		tok := o.issue(&issuedToken{kind: tokenUser, scopes: t.scopes, issued: now, expires: now.Add(LongLivedTokenLifetime), dataAccess: t.dataAccess})
		writeJSON(w, http.StatusOK, tokenResponse{tok, "bearer", int64(LongLivedTokenLifetime / time.Second)})
	case "":
		c := o.codes[f.Get("code")]
		switch {
		case c == nil:
			codeError(w, "Invalid verification code format.", 0)
		case c.used:
			codeError(w, "This authorization code has been used.", 36009)
		case !now.Before(c.expires):
			codeError(w, "This authorization code has expired.", 36007)
		case f.Get("redirect_uri") != c.redirectURI:
			codeError(w, "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request", 36008)
		default:
			c.used = true
			tok := o.issue(&issuedToken{kind: tokenUser, scopes: c.scopes, issued: now, expires: now.Add(ShortLivedTokenLifetime), dataAccess: now.Add(DataAccessLifetime)})
			writeJSON(w, http.StatusOK, tokenResponse{tok, "bearer", int64(ShortLivedTokenLifetime / time.Second)})
		}
	default:
		graphError(w, http.StatusBadRequest, graphErr{Message: "Unsupported grant_type " + strconv.Quote(f.Get("grant_type")) + ".", Type: "OAuthException", Code: 100})
	}
}

// fieldSel is one item of a fields parameter: a name, with the subfields
// asked for in braces.
type fieldSel struct {
	name string
	sub  []string
}

// parseFields splits "id,name,instagram_business_account{id,username}".
func parseFields(s string) ([]fieldSel, bool) {
	var out []fieldSel
	for len(s) > 0 {
		end := strings.IndexAny(s, ",{")
		if end < 0 {
			end = len(s)
		}
		f := fieldSel{name: strings.TrimSpace(s[:end])}
		s = s[end:]
		if strings.HasPrefix(s, "{") {
			rb := strings.IndexByte(s, '}')
			if rb < 0 {
				return nil, false
			}
			for _, sub := range strings.Split(s[1:rb], ",") {
				if sub = strings.TrimSpace(sub); sub != "" {
					f.sub = append(f.sub, sub)
				}
			}
			s = s[rb+1:]
		}
		if f.name == "" {
			return nil, false
		}
		out = append(out, f)
		s = strings.TrimPrefix(strings.TrimSpace(s), ",")
	}
	return out, true
}

func nonexistingField(w http.ResponseWriter, field, node string) {
	graphError(w, http.StatusBadRequest, graphErr{
		Message: "(#100) Tried accessing nonexisting field (" + field + ") on node type (" + node + ")", Type: "OAuthException", Code: 100,
	})
}

func (s *Server) requestBase(r *http.Request) string {
	if base := s.BaseURL(); base != "" {
		return base
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func cursor(i int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("page:" + strconv.Itoa(i)))
}

func parseCursor(c string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(b), "page:") {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimPrefix(string(b), "page:"))
	return n, err == nil && n >= 0
}

// serveAccounts answers GET /me/accounts: the user's Pages, each with a
// Page access token, in pages of limit (default 25, at most 100) with
// paging.cursors and, while more follow, paging.next, which carries the
// access token as Meta's does.
func (s *Server) serveAccounts(w http.ResponseWriter, r *http.Request) {
	o := s.oauth
	q := r.URL.Query()
	tok, _ := requestToken(r, q)
	fieldsParam := q.Get("fields")
	fields := []fieldSel{{name: "access_token"}, {name: "category"}, {name: "name"}, {name: "id"}, {name: "tasks"}}
	if fieldsParam != "" {
		var ok bool
		if fields, ok = parseFields(fieldsParam); !ok {
			invalidParam(w, "fields: unbalanced braces")
			return
		}
	}
	for _, f := range fields {
		switch f.name {
		case "id", "name", "access_token", "category", "tasks":
		case "instagram_business_account":
			for _, sub := range f.sub {
				if sub != "id" && sub != "username" {
					nonexistingField(w, sub, "IGUser")
					return
				}
			}
		default:
			nonexistingField(w, f.name, "Page")
			return
		}
	}
	limit := 25
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			invalidParam(w, "limit must be a positive number")
			return
		}
		limit = min(n, 100)
	}
	start := 0
	if a := q.Get("after"); a != "" {
		n, ok := parseCursor(a)
		if !ok {
			invalidParam(w, "after is not a cursor")
			return
		}
		start = n + 1
	}
	now := s.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	t, why := o.check(tok, now)
	if t == nil {
		unauthorized(w, *why)
		return
	}
	if t.kind != tokenUser {
		nonexistingField(w, "accounts", "Page")
		return
	}
	start = min(start, len(o.pages))
	end := min(start+limit, len(o.pages))
	data := []map[string]any{}
	for _, p := range o.pages[start:end] {
		item := map[string]any{}
		for _, f := range fields {
			switch f.name {
			case "id":
				item["id"] = p.ID
			case "name":
				item["name"] = p.Name
			case "category":
				item["category"] = "Software"
			case "tasks":
				item["tasks"] = pageTasks
			case "access_token":
				item["access_token"] = o.pageToken(tok, t, p.ID, now)
			case "instagram_business_account":
				if p.InstagramID == "" {
					continue
				}
				ig := map[string]string{"id": p.InstagramID}
				if slices.Contains(f.sub, "username") {
					ig["username"] = p.InstagramUsername
				}
				item["instagram_business_account"] = ig
			}
		}
		data = append(data, item)
	}
	paging := map[string]any{}
	if end > start {
		paging["cursors"] = map[string]string{"before": cursor(start), "after": cursor(end - 1)}
	}
	if end < len(o.pages) {
		nq := url.Values{"access_token": {tok}, "limit": {strconv.Itoa(limit)}, "after": {cursor(end - 1)}}
		if fieldsParam != "" {
			nq.Set("fields", fieldsParam)
		}
		paging["next"] = s.requestBase(r) + r.URL.Path + "?" + nq.Encode()
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "paging": paging})
}

// pageToken returns the Page token for pageID got with the User token
// userTok (t), the same one each time. A Page token got with a
// long-lived User token does not expire; otherwise it expires with the
// User token. The caller holds o.mu.
func (o *oauthState) pageToken(userTok string, t *issuedToken, pageID string, now time.Time) string {
	key := [2]string{userTok, pageID}
	if tok, ok := o.derived[key]; ok {
		return tok
	}
	pt := &issuedToken{kind: tokenPage, pageID: pageID, scopes: t.scopes, issued: now, dataAccess: t.dataAccess, parent: userTok}
	if t.expires.Sub(t.issued) < LongLivedTokenLifetime {
		pt.expires = t.expires
	}
	tok := o.issue(pt)
	o.derived[key] = tok
	o.pageTokens[pageID] = tok
	return tok
}

// serveSubscribedApps answers GET, POST and DELETE
// /{page-id}/subscribed_apps with that Page's access token.
func (s *Server) serveSubscribedApps(w http.ResponseWriter, r *http.Request, pageID string) {
	o := s.oauth
	method := strings.ToLower(r.Method)
	if r.Method != http.MethodGet && r.Method != http.MethodPost && r.Method != http.MethodDelete {
		graphError(w, http.StatusBadRequest, graphErr{Message: "Unsupported " + method + " request.", Type: "GraphMethodException", Code: 100})
		return
	}
	if err := r.ParseForm(); err != nil {
		invalidParam(w, err.Error())
		return
	}
	tok, _ := requestToken(r, r.Form)
	now := s.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if t := o.tokens[tok]; pageID == "me" && t != nil && t.kind == tokenPage {
		pageID = t.pageID // /me is the Page of a Page token
	}
	if o.page(pageID) == nil {
		unknownObject(w, method, pageID)
		return
	}
	t, why := o.check(tok, now)
	if t == nil {
		unauthorized(w, *why)
		return
	}
	if t.kind != tokenPage || t.pageID != pageID {
		graphError(w, http.StatusBadRequest, graphErr{Message: "(#210) A page access token is required to request this resource.", Type: "OAuthException", Code: 210})
		return
	}
	switch r.Method {
	case http.MethodGet:
		data := []map[string]any{}
		if fields, ok := o.subs[pageID]; ok {
			data = append(data, map[string]any{"name": DefaultAppName, "id": o.appID, "subscribed_fields": fields})
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": data})
	case http.MethodPost:
		raw := r.Form.Get("subscribed_fields")
		if strings.TrimSpace(raw) == "" {
			graphError(w, http.StatusBadRequest, graphErr{Message: "(#100) The parameter subscribed_fields is required.", Type: "OAuthException", Code: 100})
			return
		}
		var fields []string
		for i, f := range strings.Split(raw, ",") {
			f = strings.TrimSpace(f)
			if !slices.Contains(pageFields, f) {
				graphError(w, http.StatusBadRequest, graphErr{
					Message: "(#100) Param subscribed_fields[" + strconv.Itoa(i) + "] must be one of {" + strings.Join(pageFields, ", ") + "} - got " + strconv.Quote(f) + ".",
					Type:    "OAuthException", Code: 100,
				})
				return
			}
			if !slices.Contains(fields, f) {
				fields = append(fields, f)
			}
		}
		o.subs[pageID] = fields
		writeJSON(w, http.StatusOK, map[string]bool{"success": true})
	case http.MethodDelete:
		delete(o.subs, pageID)
		writeJSON(w, http.StatusOK, map[string]bool{"success": true})
	}
}

type debugError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Subcode int    `json:"subcode,omitempty"`
}

type granularScope struct {
	Scope     string   `json:"scope"`
	TargetIDs []string `json:"target_ids,omitempty"`
}

type debugData struct {
	AppID               string          `json:"app_id,omitempty"`
	Type                string          `json:"type,omitempty"`
	Application         string          `json:"application,omitempty"`
	DataAccessExpiresAt *int64          `json:"data_access_expires_at,omitempty"`
	Error               *debugError     `json:"error,omitempty"`
	ExpiresAt           *int64          `json:"expires_at,omitempty"`
	IsValid             bool            `json:"is_valid"`
	IssuedAt            *int64          `json:"issued_at,omitempty"`
	ProfileID           string          `json:"profile_id,omitempty"`
	Scopes              []string        `json:"scopes"`
	GranularScopes      []granularScope `json:"granular_scopes,omitempty"`
	UserID              string          `json:"user_id,omitempty"`
}

func unix(t time.Time) *int64 {
	n := int64(0)
	if !t.IsZero() {
		n = t.Unix()
	}
	return &n
}

// serveDebugToken answers GET /debug_token?input_token=… for the app
// access token ({app-id}|{app-secret}).
func (s *Server) serveDebugToken(w http.ResponseWriter, r *http.Request) {
	o := s.oauth
	q := r.URL.Query()
	appToken := o.appID + "|" + s.appSecret
	tok, _ := requestToken(r, q)
	switch {
	case s.appSecret != "" && hmac.Equal([]byte(tok), []byte(appToken)):
	case strings.HasPrefix(tok, o.appID+"|"):
		graphError(w, http.StatusBadRequest, graphErr{Message: "Invalid OAuth access token signature.", Type: "OAuthException", Code: 190})
		return
	default:
		graphError(w, http.StatusBadRequest, graphErr{Message: "(#100) You must provide an app access token, or a user access token that is an owner or developer of the app", Type: "OAuthException", Code: 100})
		return
	}
	input := q.Get("input_token")
	if input == "" {
		graphError(w, http.StatusBadRequest, graphErr{Message: "(#100) The parameter input_token is required", Type: "OAuthException", Code: 100})
		return
	}
	if input == appToken {
		writeJSON(w, http.StatusOK, map[string]debugData{"data": {AppID: o.appID, Type: tokenApp, Application: DefaultAppName, IsValid: true, Scopes: []string{}}})
		return
	}
	now := s.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	t := o.tokens[input]
	if t == nil {
		writeJSON(w, http.StatusOK, map[string]debugData{"data": {
			Error: &debugError{Code: 190, Message: "Invalid OAuth access token - Cannot parse access token"}, Scopes: []string{},
		}})
		return
	}
	d := debugData{
		AppID: o.appID, Type: t.kind, Application: DefaultAppName,
		DataAccessExpiresAt: unix(t.dataAccess), ExpiresAt: unix(t.expires), IssuedAt: unix(t.issued),
		IsValid: true, Scopes: slices.Clone(t.scopes), UserID: DefaultUserID,
	}
	if d.Scopes == nil {
		d.Scopes = []string{}
	}
	if t.kind == tokenPage {
		d.ProfileID = t.pageID
	}
	for _, sc := range t.scopes {
		g := granularScope{Scope: sc}
		for _, p := range o.pages {
			switch {
			case strings.HasPrefix(sc, "pages_"):
				g.TargetIDs = append(g.TargetIDs, p.ID)
			case strings.HasPrefix(sc, "instagram_") && p.InstagramID != "":
				g.TargetIDs = append(g.TargetIDs, p.InstagramID)
			}
		}
		d.GranularScopes = append(d.GranularScopes, g)
	}
	if e := o.invalid(t, now); e != nil {
		d.IsValid = false
		d.Error = &debugError{Code: e.Code, Message: e.Message, Subcode: e.Subcode}
	}
	writeJSON(w, http.StatusOK, map[string]debugData{"data": d})
}
