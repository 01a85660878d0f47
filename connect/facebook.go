package connect

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/meta"
	"github.com/switchboard-inbox/switchboard/inbox"
)

// FacebookCallbackPath is where Facebook Login returns to; register
// PublicURL + this path as a Valid OAuth Redirect URI of the Meta app.
const FacebookCallbackPath = "/admin/channels/facebook/callback"

const providerFacebook = "facebook"

// oauth is the Facebook Login client for the settings in use. The Login
// dialog is on www.facebook.com, or on the Graph stand-in's host when
// the Graph API URL points at one.
func (s *Service) oauth(c Settings, redirect string) *meta.OAuth {
	o := &meta.OAuth{AppID: c.MetaAppID, AppSecret: c.MetaAppSecret, RedirectURL: redirect, GraphURL: c.GraphAPIURL, HTTP: s.HTTP, Now: s.now}
	if u, err := url.Parse(c.GraphAPIURL); err == nil && u.Host != "" && u.Host != "graph.facebook.com" {
		o.DialogURL = u.Scheme + "://" + u.Host
	}
	return o
}

// FacebookPage is a Page offered for connection (its token stays here).
type FacebookPage struct {
	ID, Name          string
	InstagramID       string
	InstagramUsername string
	CanMessage        bool
}

// StartFacebook begins Facebook Login for the admin's browser session and
// returns the dialog's address to send the browser to (admins).
func (s *Service) StartFacebook(ctx context.Context, actor switchboard.Actor, session string) (string, error) {
	c := s.Current()
	if c.MetaAppID == "" || c.MetaAppSecret == "" {
		return "", switchboard.Errorf(switchboard.EINVALID, "enter the Meta app ID and app secret first")
	}
	state, err := s.Inbox.BeginOAuth(ctx, actor, session, providerFacebook)
	if err != nil {
		return "", err
	}
	return s.oauth(c, s.PublicURL+FacebookCallbackPath).AuthCodeURL(state, meta.MessagingScopes), nil
}

// FinishFacebook takes Facebook's answer to the dialog: it checks state
// (bound to the session, used once), exchanges the code for a long-lived
// token, and keeps the Pages the admin manages until one is picked.
func (s *Service) FinishFacebook(ctx context.Context, actor switchboard.Actor, session string, q url.Values) error {
	state := q.Get("state")
	if err := s.Inbox.FinishOAuth(ctx, actor, session, providerFacebook, state); err != nil {
		return err
	}
	if e := q.Get("error"); e != "" {
		return switchboard.Errorf(switchboard.EINVALID, "Facebook Login was not completed: %s", firstNonEmpty(q.Get("error_description"), q.Get("error_reason"), e))
	}
	code := q.Get("code")
	if code == "" {
		return switchboard.Errorf(switchboard.EINVALID, "Facebook's answer carries no code")
	}
	o := s.oauth(s.Current(), s.PublicURL+FacebookCallbackPath)
	short, err := o.Exchange(ctx, code)
	if err != nil {
		return fmt.Errorf("connect: Facebook code exchange: %w", err)
	}
	long, err := o.LongLived(ctx, short.AccessToken)
	if err != nil {
		return fmt.Errorf("connect: Facebook long-lived token: %w", err)
	}
	pages, err := o.Pages(ctx, long.AccessToken)
	if err != nil {
		return fmt.Errorf("connect: list Facebook Pages: %w", err)
	}
	b, err := json.Marshal(pages)
	if err != nil {
		return fmt.Errorf("connect: keep Facebook Pages: %w", err)
	}
	return s.Inbox.KeepOAuthResult(ctx, actor, state, string(b))
}

func (s *Service) pendingPages(ctx context.Context, actor switchboard.Actor, session, state string) ([]meta.Page, func(context.Context) error, error) {
	raw, done, err := s.Inbox.OAuthResult(ctx, actor, session, state)
	if err != nil {
		return nil, nil, err
	}
	var pages []meta.Page
	if err := json.Unmarshal([]byte(raw), &pages); err != nil {
		return nil, nil, fmt.Errorf("connect: read kept Facebook Pages: %w", err)
	}
	return pages, done, nil
}

// FacebookPages lists the Pages the finished sign-in offers (admins).
func (s *Service) FacebookPages(ctx context.Context, actor switchboard.Actor, session, state string) ([]FacebookPage, error) {
	pages, _, err := s.pendingPages(ctx, actor, session, state)
	if err != nil {
		return nil, err
	}
	out := make([]FacebookPage, 0, len(pages))
	for _, p := range pages {
		fp := FacebookPage{ID: p.ID, Name: p.Name, CanMessage: canMessage(p.Tasks)}
		if p.Instagram != nil {
			fp.InstagramID, fp.InstagramUsername = p.Instagram.ID, p.Instagram.Username
		}
		out = append(out, fp)
	}
	return out, nil
}

// canMessage reports whether the tasks let the person answer messages
// (Meta leaves tasks out for some Pages: assume yes then).
func canMessage(tasks []string) bool {
	if len(tasks) == 0 {
		return true
	}
	for _, t := range tasks {
		if t == "MESSAGING" || t == "MANAGE" || t == "MODERATE" {
			return true
		}
	}
	return false
}

// ConnectFacebookPage connects the chosen Page: it subscribes the app to
// the Page's messaging webhooks, then stores the Page, its token (sealed)
// and its Instagram account as the channel settings (admins).
func (s *Service) ConnectFacebookPage(ctx context.Context, actor switchboard.Actor, session, state, pageID string) (FacebookPage, error) {
	pages, done, err := s.pendingPages(ctx, actor, session, state)
	if err != nil {
		return FacebookPage{}, err
	}
	var page *meta.Page
	for i := range pages {
		if pages[i].ID == pageID {
			page = &pages[i]
		}
	}
	if page == nil {
		return FacebookPage{}, switchboard.Errorf(switchboard.EINVALID, "Page %s was not offered by this sign-in", pageID)
	}
	if err := s.oauth(s.Current(), "").Subscribe(ctx, page.ID, page.AccessToken, meta.MessagingFields); err != nil {
		return FacebookPage{}, fmt.Errorf("connect: subscribe to the Page's webhooks: %w", err)
	}
	change := inbox.SettingsChange{Set: map[string]string{"MESSENGER_PAGE_ID": page.ID, "MESSENGER_PAGE_TOKEN": page.AccessToken}}
	fp := FacebookPage{ID: page.ID, Name: page.Name, CanMessage: canMessage(page.Tasks)}
	if page.Instagram != nil {
		change.Set["INSTAGRAM_ACCOUNT_ID"] = page.Instagram.ID
		fp.InstagramID, fp.InstagramUsername = page.Instagram.ID, page.Instagram.Username
	} else {
		change.Clear = []string{"INSTAGRAM_ACCOUNT_ID"}
	}
	if _, err := s.Inbox.PutSettings(ctx, actor, change); err != nil {
		return FacebookPage{}, err
	}
	if err := done(ctx); err != nil {
		s.logger().Warn("connect: forget Facebook sign-in", "err", err)
	}
	detail := fmt.Sprintf("Page %s (%s) connected; webhooks %s", page.Name, page.ID, strings.Join(meta.MessagingFields, ", "))
	if page.Instagram != nil {
		detail += fmt.Sprintf("; Instagram @%s (%s)", page.Instagram.Username, page.Instagram.ID)
	}
	s.audit(ctx, actor, "facebook.connect", page.ID, detail)
	s.tokens.mu.Lock()
	s.tokens.token = "" // check the new token at once
	s.tokens.mu.Unlock()
	return fp, nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
