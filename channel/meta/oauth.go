package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

// Where Meta serves Facebook Login and the Graph API. DefaultGraphAPIURL
// carries the Graph API version Switchboard is written against; the
// Login dialog uses the same version.
const (
	DefaultDialogURL   = "https://www.facebook.com"
	DefaultGraphAPIURL = "https://graph.facebook.com/v25.0"
)

// MessagingScopes are the permissions Switchboard asks for to answer a
// Page's Messenger conversations and its linked Instagram professional
// account's direct messages through the Messenger Platform:
//
//   - pages_show_list: list the Pages the person manages (GET /me/accounts);
//   - pages_messaging: send and receive Messenger messages as the Page;
//   - pages_manage_metadata: subscribe the app to the Page's webhooks
//     (POST /{page-id}/subscribed_apps);
//   - instagram_basic: read the linked Instagram account (its id and
//     username, instagram_business_account{id,username});
//   - instagram_manage_messages: send and receive Instagram messages;
//   - business_management: reach Pages and Instagram accounts that a
//     business portfolio owns, not the person directly.
var MessagingScopes = []string{
	"pages_show_list",
	"pages_messaging",
	"pages_manage_metadata",
	"instagram_basic",
	"instagram_manage_messages",
	"business_management",
}

// MessagingFields are the Page webhook fields Subscribe asks for by
// default: what channel/meta/webhook consumes. messages carries customer
// messages (Messenger and Instagram); messaging_postbacks button taps;
// message_deliveries and message_reads Messenger receipts. message_echoes
// is left out: the handler drops echoes of the Page's own sends.
// Instagram's read receipts (messaging_seen) are an app-level Instagram
// field, set in the App Dashboard, not per Page.
var MessagingFields = []string{
	"messages",
	"messaging_postbacks",
	"message_deliveries",
	"message_reads",
}

// maxPageRequests bounds how many paging.next links Pages follows.
const maxPageRequests = 50

// pageLimit is the page size Pages asks for.
const pageLimit = "100"

// OAuth is the Facebook Login (manually built flow) client that connects
// Messenger Pages and Instagram accounts: the Login dialog URL, the code
// and long-lived token exchanges, the Pages a person manages with their
// Page access tokens, the Page webhook subscription and token inspection.
// See https://developers.facebook.com/docs/facebook-login/guides/advanced/manual-flow.
//
// Secrets (the app secret, codes and tokens) never appear in returned
// errors: URLs are redacted and Graph error messages are scrubbed of them.
// Requests are not redirected, so a secret in a query cannot be carried
// to another host.
type OAuth struct {
	AppID       string
	AppSecret   string
	RedirectURL string // must equal one of the app's Valid OAuth Redirect URIs
	// DialogURL is where the Login dialog is served: DefaultDialogURL
	// when empty, or a stand-in's base URL. The dialog is at
	// {DialogURL}/{version}/dialog/oauth, version being the last path
	// segment of GraphURL (none when GraphURL has no version).
	DialogURL string
	GraphURL  string       // Graph API base, DefaultGraphAPIURL when empty
	HTTP      *http.Client // nil: http.DefaultClient; bound calls with ctx
	// Now is the clock token expiry is computed with (nil: time.Now).
	Now func() time.Time
}

// UserToken is a User access token.
type UserToken struct {
	AccessToken string
	ExpiresAt   time.Time // zero when Meta gives no expires_in
}

// Page is a Facebook Page the person manages, from GET /me/accounts.
type Page struct {
	ID          string
	Name        string
	AccessToken string   // the Page access token
	Tasks       []string // what the person may do: MANAGE, MESSAGING, MODERATE, …
	Instagram   *InstagramAccount
}

// InstagramAccount is the Instagram professional account linked to a
// Page (instagram_business_account).
type InstagramAccount struct {
	ID       string
	Username string
}

// TokenInfo is what GET /debug_token tells about an access token.
type TokenInfo struct {
	Valid       bool
	AppID       string
	Application string // the app's name
	Type        string // USER, PAGE, APP
	UserID      string
	ProfileID   string // the Page, for a Page token
	Scopes      []string
	// ExpiresAt and DataAccessExpiresAt are zero when Meta answers 0
	// (never) or nothing.
	ExpiresAt           time.Time
	DataAccessExpiresAt time.Time
	IssuedAt            time.Time
	// Error is Meta's explanation for an invalid token, with its code and
	// subcode (190 / 463 expired, 460 session invalidated, 458 app
	// removed, …).
	Error        string
	ErrorCode    int
	ErrorSubcode int
}

var versionSegment = regexp.MustCompile(`^v[0-9]+\.[0-9]+$`)

// fieldName is what a webhook field or permission looks like; anything
// else could smuggle another list item in.
var fieldName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func (o *OAuth) graphURL() string {
	if o.GraphURL == "" {
		return DefaultGraphAPIURL
	}
	return o.GraphURL
}

func (o *OAuth) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// dialogEndpoint is {DialogURL}/{version}/dialog/oauth.
func (o *OAuth) dialogEndpoint() (string, error) {
	base := o.DialogURL
	if base == "" {
		base = DefaultDialogURL
	}
	segs := []string{"dialog", "oauth"}
	if u, err := url.Parse(o.graphURL()); err == nil {
		path := strings.Split(strings.Trim(u.Path, "/"), "/")
		if v := path[len(path)-1]; versionSegment.MatchString(v) {
			segs = append([]string{v}, segs...)
		}
	}
	return Endpoint(base, segs...)
}

// AuthCodeURL returns the Login dialog URL to send the person to:
// {DialogURL}/{version}/dialog/oauth?client_id=…&redirect_uri=…&state=…&scope=…&response_type=code.
// state is echoed back to RedirectURL with the code; bind it to the
// person's session and check it there. scopes nil means MessagingScopes.
// An unusable configuration gives "".
func (o *OAuth) AuthCodeURL(state string, scopes []string) string {
	endpoint, err := o.dialogEndpoint()
	if err != nil || o.AppID == "" || o.RedirectURL == "" {
		return ""
	}
	if scopes == nil {
		scopes = MessagingScopes
	}
	q := url.Values{
		"client_id":     {o.AppID},
		"redirect_uri":  {o.RedirectURL},
		"state":         {state},
		"response_type": {"code"},
	}
	if len(scopes) > 0 {
		q.Set("scope", strings.Join(scopes, ","))
	}
	return endpoint + "?" + q.Encode()
}

// tokenReply is the body of GET /oauth/access_token.
type tokenReply struct {
	AccessToken string          `json:"access_token"`
	TokenType   string          `json:"token_type"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
}

// Exchange trades the code the dialog sent to RedirectURL for a User
// access token (usually short-lived): GET {GraphURL}/oauth/access_token
// with client_id, redirect_uri, client_secret and code.
func (o *OAuth) Exchange(ctx context.Context, code string) (UserToken, error) {
	if strings.TrimSpace(code) == "" {
		return UserToken{}, switchboard.Permanent(switchboard.Errorf(switchboard.EINVALID, "meta oauth: the authorization code is empty"))
	}
	if err := o.checkApp(true); err != nil {
		return UserToken{}, err
	}
	return o.token(ctx, "code exchange", url.Values{
		"client_id":     {o.AppID},
		"redirect_uri":  {o.RedirectURL},
		"client_secret": {o.AppSecret},
		"code":          {code},
	})
}

// LongLived trades a short-lived User access token for a long-lived one
// (about 60 days): GET {GraphURL}/oauth/access_token with
// grant_type=fb_exchange_token, client_id, client_secret and
// fb_exchange_token. Page tokens got with a long-lived User token do not
// expire.
func (o *OAuth) LongLived(ctx context.Context, shortToken string) (UserToken, error) {
	if strings.TrimSpace(shortToken) == "" {
		return UserToken{}, switchboard.Permanent(switchboard.Errorf(switchboard.EINVALID, "meta oauth: the user access token is empty"))
	}
	if err := o.checkApp(false); err != nil {
		return UserToken{}, err
	}
	return o.token(ctx, "long-lived token exchange", url.Values{
		"grant_type":        {"fb_exchange_token"},
		"client_id":         {o.AppID},
		"client_secret":     {o.AppSecret},
		"fb_exchange_token": {shortToken},
	})
}

func (o *OAuth) token(ctx context.Context, what string, q url.Values) (UserToken, error) {
	endpoint, err := Endpoint(o.graphURL(), "oauth", "access_token")
	if err != nil {
		return UserToken{}, switchboard.Permanent(err)
	}
	var reply tokenReply
	if err := o.call(ctx, what, http.MethodGet, endpoint, q, "", &reply); err != nil {
		return UserToken{}, err
	}
	if reply.AccessToken == "" {
		return UserToken{}, switchboard.Permanent(fmt.Errorf("meta oauth: %s: the reply has no access_token", what))
	}
	t := UserToken{AccessToken: reply.AccessToken}
	if s, ok := NumberText(reply.ExpiresIn); ok {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return UserToken{}, switchboard.Permanent(fmt.Errorf("meta oauth: %s: expires_in %q is not a number of seconds", what, s))
		}
		if n > 0 {
			t.ExpiresAt = o.now().Add(time.Duration(n) * time.Second)
		}
	}
	return t, nil
}

func (o *OAuth) checkApp(redirect bool) error {
	switch {
	case o.AppID == "":
		return switchboard.Permanent(switchboard.Errorf(switchboard.EINVALID, "meta oauth: the app id is not configured"))
	case o.AppSecret == "":
		return switchboard.Permanent(switchboard.Errorf(switchboard.EINVALID, "meta oauth: the app secret is not configured"))
	case redirect && o.RedirectURL == "":
		return switchboard.Permanent(switchboard.Errorf(switchboard.EINVALID, "meta oauth: the redirect URL is not configured"))
	}
	return nil
}

type wireAccount struct {
	ID          json.RawMessage `json:"id"`
	Name        string          `json:"name"`
	AccessToken string          `json:"access_token"`
	Tasks       []string        `json:"tasks"`
	Instagram   *struct {
		ID       json.RawMessage `json:"id"`
		Username string          `json:"username"`
	} `json:"instagram_business_account"`
}

type accountsReply struct {
	Data   []wireAccount `json:"data"`
	Paging struct {
		Next string `json:"next"`
	} `json:"paging"`
}

// Pages lists the Pages the person behind userToken manages, with their
// Page access tokens and linked Instagram professional accounts:
// GET {GraphURL}/me/accounts?fields=id,name,access_token,tasks,instagram_business_account{id,username},
// following paging.next while it stays on the Graph API's origin (at
// most 50 requests).
func (o *OAuth) Pages(ctx context.Context, userToken string) ([]Page, error) {
	if strings.TrimSpace(userToken) == "" {
		return nil, switchboard.Permanent(switchboard.Errorf(switchboard.EINVALID, "meta oauth: the user access token is empty"))
	}
	base, err := url.Parse(o.graphURL())
	if err != nil {
		return nil, switchboard.Permanent(switchboard.Errorf(switchboard.EINVALID, "graph api base URL is not a URL: %v", err))
	}
	endpoint, err := Endpoint(o.graphURL(), "me", "accounts")
	if err != nil {
		return nil, switchboard.Permanent(err)
	}
	q := url.Values{
		"fields": {"id,name,access_token,tasks,instagram_business_account{id,username}"},
		"limit":  {pageLimit},
	}
	var pages []Page
	seen := map[string]bool{}
	for i := 0; ; i++ {
		if i == maxPageRequests {
			return nil, switchboard.Permanent(fmt.Errorf("meta oauth: pages: more than %d pages of results", maxPageRequests))
		}
		var reply accountsReply
		if err := o.call(ctx, "pages", http.MethodGet, endpoint, q, userToken, &reply); err != nil {
			return nil, err
		}
		for _, a := range reply.Data {
			id, ok := NumberText(a.ID)
			if !ok {
				continue
			}
			p := Page{ID: id, Name: a.Name, AccessToken: a.AccessToken, Tasks: a.Tasks}
			if a.Instagram != nil {
				if igID, ok := NumberText(a.Instagram.ID); ok {
					p.Instagram = &InstagramAccount{ID: igID, Username: a.Instagram.Username}
				}
			}
			pages = append(pages, p)
		}
		next := reply.Paging.Next
		if next == "" || len(reply.Data) == 0 {
			return pages, nil
		}
		u, err := url.Parse(next)
		if err != nil || u.Scheme != base.Scheme || u.Host != base.Host || u.User != nil {
			host := ""
			if u != nil {
				host = u.Host
			}
			return nil, switchboard.Permanent(fmt.Errorf("meta oauth: pages: paging.next points outside the Graph API (host %q)", host))
		}
		key := u.Path + "?" + u.RawQuery
		if seen[key] {
			return nil, switchboard.Permanent(errors.New("meta oauth: pages: paging.next repeats a page"))
		}
		seen[key] = true
		u.Fragment, u.RawFragment = "", ""
		nq := u.Query()
		nq.Del("access_token") // sent as the bearer token instead
		u.RawQuery = ""
		endpoint, q = u.String(), nq
	}
}

// Subscribe subscribes the app to the Page's webhook fields:
// POST {GraphURL}/{page-id}/subscribed_apps?subscribed_fields=… with the
// Page access token, answered {"success":true}. fields nil means
// MessagingFields. The app must subscribe to the same fields at the app
// level (App Dashboard) for webhooks to arrive.
func (o *OAuth) Subscribe(ctx context.Context, pageID, pageToken string, fields []string) error {
	if fields == nil {
		fields = MessagingFields
	}
	if err := checkFields(fields); err != nil {
		return err
	}
	endpoint, err := o.pageEndpoint(pageID, pageToken)
	if err != nil {
		return err
	}
	var reply struct {
		Success bool `json:"success"`
	}
	q := url.Values{"subscribed_fields": {strings.Join(fields, ",")}}
	if err := o.call(ctx, "subscribe", http.MethodPost, endpoint, q, pageToken, &reply); err != nil {
		return err
	}
	if !reply.Success {
		return switchboard.Permanent(fmt.Errorf("meta oauth: subscribe: Page %s did not answer success", pageID))
	}
	return nil
}

// SubscribedFields returns the Page webhook fields this app is subscribed
// to for the Page (GET {GraphURL}/{page-id}/subscribed_apps with the Page
// access token); nil when the app is not subscribed.
func (o *OAuth) SubscribedFields(ctx context.Context, pageID, pageToken string) ([]string, error) {
	endpoint, err := o.pageEndpoint(pageID, pageToken)
	if err != nil {
		return nil, err
	}
	var reply struct {
		Data []struct {
			ID               json.RawMessage `json:"id"`
			SubscribedFields []string        `json:"subscribed_fields"`
		} `json:"data"`
	}
	if err := o.call(ctx, "subscribed apps", http.MethodGet, endpoint, nil, pageToken, &reply); err != nil {
		return nil, err
	}
	for _, a := range reply.Data {
		if id, ok := NumberText(a.ID); ok && id == o.AppID {
			return a.SubscribedFields, nil
		}
	}
	return nil, nil
}

func (o *OAuth) pageEndpoint(pageID, pageToken string) (string, error) {
	switch {
	case strings.TrimSpace(pageID) == "":
		return "", switchboard.Permanent(switchboard.Errorf(switchboard.EINVALID, "meta oauth: the Page id is empty"))
	case strings.TrimSpace(pageToken) == "":
		return "", switchboard.Permanent(switchboard.Errorf(switchboard.EINVALID, "meta oauth: the Page access token is empty"))
	}
	endpoint, err := Endpoint(o.graphURL(), pageID, "subscribed_apps")
	if err != nil {
		return "", switchboard.Permanent(err)
	}
	return endpoint, nil
}

func checkFields(fields []string) error {
	if len(fields) == 0 {
		return switchboard.Permanent(switchboard.Errorf(switchboard.EINVALID, "meta oauth: no webhook fields to subscribe to"))
	}
	for _, f := range fields {
		if !fieldName.MatchString(f) {
			return switchboard.Permanent(switchboard.Errorf(switchboard.EINVALID, "meta oauth: %q is not a webhook field name", f))
		}
	}
	return nil
}

type debugReply struct {
	Data struct {
		AppID               json.RawMessage `json:"app_id"`
		Type                string          `json:"type"`
		Application         string          `json:"application"`
		DataAccessExpiresAt json.RawMessage `json:"data_access_expires_at"`
		ExpiresAt           json.RawMessage `json:"expires_at"`
		IssuedAt            json.RawMessage `json:"issued_at"`
		IsValid             bool            `json:"is_valid"`
		Scopes              []string        `json:"scopes"`
		UserID              json.RawMessage `json:"user_id"`
		ProfileID           json.RawMessage `json:"profile_id"`
		Error               *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Subcode int    `json:"subcode"`
		} `json:"error"`
	} `json:"data"`
}

// DebugToken inspects token with the app access token ({app-id}|{app-secret}):
// GET {GraphURL}/debug_token?input_token=…. An invalid token is not an
// error: TokenInfo.Valid is false and TokenInfo.Error says why.
func (o *OAuth) DebugToken(ctx context.Context, token string) (TokenInfo, error) {
	if strings.TrimSpace(token) == "" {
		return TokenInfo{}, switchboard.Permanent(switchboard.Errorf(switchboard.EINVALID, "meta oauth: the token to inspect is empty"))
	}
	if err := o.checkApp(false); err != nil {
		return TokenInfo{}, err
	}
	endpoint, err := Endpoint(o.graphURL(), "debug_token")
	if err != nil {
		return TokenInfo{}, switchboard.Permanent(err)
	}
	var reply debugReply
	if err := o.call(ctx, "debug token", http.MethodGet, endpoint, url.Values{"input_token": {token}}, o.AppID+"|"+o.AppSecret, &reply); err != nil {
		return TokenInfo{}, err
	}
	d := reply.Data
	info := TokenInfo{Valid: d.IsValid, Type: d.Type, Application: d.Application, Scopes: d.Scopes}
	info.AppID, _ = NumberText(d.AppID)
	info.UserID, _ = NumberText(d.UserID)
	info.ProfileID, _ = NumberText(d.ProfileID)
	for _, ts := range []struct {
		name string
		raw  json.RawMessage
		dst  *time.Time
	}{
		{"expires_at", d.ExpiresAt, &info.ExpiresAt},
		{"data_access_expires_at", d.DataAccessExpiresAt, &info.DataAccessExpiresAt},
		{"issued_at", d.IssuedAt, &info.IssuedAt},
	} {
		s, ok := NumberText(ts.raw)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return TokenInfo{}, switchboard.Permanent(fmt.Errorf("meta oauth: debug token: %s %q is not a Unix time", ts.name, s))
		}
		if n > 0 {
			*ts.dst = time.Unix(n, 0).UTC()
		}
	}
	if d.Error != nil {
		info.Error = newScrubber(token, o.AppSecret).scrub(d.Error.Message)
		info.ErrorCode, info.ErrorSubcode = d.Error.Code, d.Error.Subcode
	}
	if info.Valid && info.AppID != "" && info.AppID != o.AppID {
		// A token of another app is of no use to this one.
		info.Valid = false
		if info.Error == "" {
			info.Error = "the token belongs to app " + info.AppID + ", not " + o.AppID
		}
	}
	return info, nil
}

// sensitiveParams are the query parameters whose values are secrets.
var sensitiveParams = []string{"access_token", "client_secret", "code", "fb_exchange_token", "input_token"}

// call makes one Graph API request with q as the query (the Graph API
// takes parameters there for GET and POST alike) and bearer, when set, as
// the Authorization header, and handles the reply as Call does. Every
// secret involved is kept out of the error it returns.
func (o *OAuth) call(ctx context.Context, what, method, endpoint string, q url.Values, bearer string, out any) error {
	sc := newScrubber(bearer, o.AppSecret)
	for _, k := range sensitiveParams {
		sc.add(q[k]...)
	}
	full := endpoint
	if len(q) > 0 {
		full += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, full, nil)
	if err != nil {
		return switchboard.Permanent(sc.wrap(fmt.Errorf("meta oauth: %s: %w", what, err)))
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := o.client().Do(req)
	if err != nil {
		return sc.wrap(fmt.Errorf("meta oauth: %s: %w", what, err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxReplyBytes+1))
	if err != nil {
		return sc.wrap(fmt.Errorf("meta oauth: %s: reading reply: %w", what, err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		apiErr := DecodeAPIError(resp.StatusCode, data)
		for _, f := range []*string{&apiErr.Message, &apiErr.Details, &apiErr.UserTitle, &apiErr.UserMessage, &apiErr.Type, &apiErr.FBTraceID} {
			*f = sc.scrub(*f)
		}
		err := fmt.Errorf("meta oauth: %s: %w", what, apiErr)
		if apiErr.Permanent() {
			return switchboard.Permanent(err)
		}
		return err
	}
	if len(data) > MaxReplyBytes {
		return fmt.Errorf("meta oauth: %s: reply is larger than %d bytes", what, MaxReplyBytes)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return switchboard.Permanent(sc.wrap(fmt.Errorf("meta oauth: %s: decoding reply: %w", what, err)))
	}
	return nil
}

// client is o.HTTP without redirects: a secret in a query must not
// follow one to another host. A 3xx comes back as an error reply.
func (o *OAuth) client() *http.Client {
	c := http.Client{}
	if o.HTTP != nil {
		c = *o.HTTP
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// minSecretLen is the shortest value scrubbed from text: replacing a
// one- or two-character "secret" would garble the message and hide
// nothing.
const minSecretLen = 6

// redacted replaces secrets in errors.
const redacted = "[REDACTED]"

// scrubber removes known secret values, and the values of the sensitive
// query parameters of any URL, from text.
type scrubber struct{ secrets []string }

func newScrubber(secrets ...string) *scrubber {
	s := &scrubber{}
	s.add(secrets...)
	return s
}

func (s *scrubber) add(secrets ...string) {
	for _, v := range secrets {
		if len(v) >= minSecretLen {
			s.secrets = append(s.secrets, v)
			// A secret also travels query-escaped.
			if e := url.QueryEscape(v); e != v {
				s.secrets = append(s.secrets, e)
			}
		}
	}
}

var sensitiveQuery = regexp.MustCompile(`(?i)\b(access_token|client_secret|code|fb_exchange_token|input_token)=[^&\s"'#]*`)

func (s *scrubber) scrub(text string) string {
	text = sensitiveQuery.ReplaceAllString(text, "$1="+redacted)
	for _, v := range s.secrets {
		text = strings.ReplaceAll(text, v, redacted)
	}
	return text
}

// wrap returns err with its message scrubbed. It unwraps to what err
// wrapped below any *url.Error, whose URL holds the secrets, so that
// errors.Is still finds context.Canceled and the like.
func (s *scrubber) wrap(err error) error {
	inner := errors.Unwrap(err)
	var ue *url.Error
	if errors.As(err, &ue) {
		inner = ue.Err
	}
	return &scrubbedError{msg: s.scrub(err.Error()), err: inner}
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }
