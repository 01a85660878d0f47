package inbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/identity"
	"github.com/switchboard-inbox/switchboard/route"
	"github.com/switchboard-inbox/switchboard/store"
	"github.com/switchboard-inbox/switchboard/view"
)

// Live chat (docs/design.md §6.2): the sites that embed the widget, their
// visitors, and what the visitor API and the live-chat channel record.
// The channel (channel/livechat) verifies and serves; what is stored is
// stored here.

// SiteUpdate is an admin's change to a site; nil fields stay.
type SiteUpdate struct {
	Name    *string   `json:"name"`
	Origins *[]string `json:"origins"`
	Team    *string   `json:"team"`
}

// NormalizeOrigin returns an origin as sites keep it and browsers send it:
// scheme://host[:port], lower case, no path; ok is false for anything
// else.
func NormalizeOrigin(o string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(o))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), true
}

func checkSite(name string, origins []string) ([]string, error) {
	if strings.TrimSpace(name) == "" || utf8.RuneCountInString(name) > 200 {
		return nil, switchboard.Errorf(switchboard.EINVALID, "a site needs a name of at most 200 characters")
	}
	if len(origins) == 0 || len(origins) > 50 {
		return nil, switchboard.Errorf(switchboard.EINVALID, "a site needs 1 to 50 origins (https://shop.example): the widget runs only on them")
	}
	out := make([]string, 0, len(origins))
	for _, o := range origins {
		n, ok := NormalizeOrigin(o)
		if !ok {
			return nil, switchboard.Errorf(switchboard.EINVALID, "origin %q: want scheme://host[:port], as https://shop.example", switchboard.CleanText(o))
		}
		out = append(out, n)
	}
	return out, nil
}

func randomText(prefix string, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// AddSite creates a site (admins, or Switchboard for the command line)
// with a new key and secret; the secret is in this answer only.
func (s *Service) AddSite(ctx context.Context, actor switchboard.Actor, site switchboard.Site) (view.Site, error) {
	if err := require(actor, switchboard.RoleAdmin, "add live-chat sites"); err != nil {
		return view.Site{}, err
	}
	origins, err := checkSite(site.Name, site.Origins)
	if err != nil {
		return view.Site{}, err
	}
	site.Name, site.Origins = strings.TrimSpace(site.Name), origins
	site.Key, site.Secret = randomText("site_", 12), randomText("sk_", 32)
	if site.Team != "" {
		if err := s.store.EnsureTeams(ctx, []string{site.Team}); err != nil {
			return view.Site{}, err
		}
	}
	created, err := s.store.CreateSite(ctx, site)
	if err != nil {
		return view.Site{}, err
	}
	v := view.NewSite(created)
	v.Secret = created.Secret
	return v, nil
}

// Sites lists the sites, without their secrets (admins).
func (s *Service) Sites(ctx context.Context, actor switchboard.Actor) ([]view.Site, error) {
	if err := require(actor, switchboard.RoleAdmin, "see live-chat sites"); err != nil {
		return nil, err
	}
	sites, err := s.store.ListSites(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]view.Site, 0, len(sites))
	for _, site := range sites {
		out = append(out, view.NewSite(site))
	}
	return out, nil
}

// UpdateSite changes a site's name, origins or team (admins); the key
// and the secret never change.
func (s *Service) UpdateSite(ctx context.Context, actor switchboard.Actor, key string, u SiteUpdate) (view.Site, error) {
	if err := require(actor, switchboard.RoleAdmin, "change live-chat sites"); err != nil {
		return view.Site{}, err
	}
	cur, err := s.store.GetSite(ctx, key)
	if err != nil {
		return view.Site{}, err
	}
	name, origins := cur.Name, cur.Origins
	if u.Name != nil {
		name = *u.Name
	}
	if u.Origins != nil {
		origins = *u.Origins
	}
	if origins, err = checkSite(name, origins); err != nil {
		return view.Site{}, err
	}
	name = strings.TrimSpace(name)
	if u.Team != nil && *u.Team != "" {
		if err := s.store.EnsureTeams(ctx, []string{*u.Team}); err != nil {
			return view.Site{}, err
		}
	}
	site, err := s.store.UpdateSite(ctx, key, store.SiteUpdate{Name: &name, Origins: &origins, Team: u.Team})
	if err != nil {
		return view.Site{}, err
	}
	return view.NewSite(site), nil
}

// ChatSite returns a site with its secret, for the live-chat channel that
// checks origins and user_hash.
func (s *Service) ChatSite(ctx context.Context, key string) (switchboard.Site, error) {
	return s.store.GetSite(ctx, key)
}

// ChatOriginKnown reports whether origin is one of any site's, for the
// CORS preflight, which names no site.
func (s *Service) ChatOriginKnown(ctx context.Context, origin string) (bool, error) {
	sites, err := s.store.ListSites(ctx)
	if err != nil {
		return false, err
	}
	origin = strings.ToLower(origin)
	for _, site := range sites {
		for _, o := range site.Origins {
			if o == origin {
				return true, nil
			}
		}
	}
	return false, nil
}

// StartChat returns the visitor a chat session is for: prev (the visitor
// the session's token named, when it is of this site) when the same user
// id is proven, or none for both, else a new visitor. externalID must
// already be proven by the site's secret (the channel checks user_hash);
// email is only a claim. A name or e-mail given again replaces the old.
func (s *Service) StartChat(ctx context.Context, site switchboard.Site, prev *switchboard.Visitor, name, email, externalID string) (switchboard.Visitor, error) {
	name = strings.TrimSpace(switchboard.CleanText(name))
	if utf8.RuneCountInString(name) > 200 {
		return switchboard.Visitor{}, switchboard.Errorf(switchboard.EINVALID, "name: at most 200 characters")
	}
	if email != "" {
		e, err := identity.Email(email)
		if err != nil {
			return switchboard.Visitor{}, switchboard.Errorf(switchboard.EINVALID, "email: %v", err)
		}
		email = e
	}
	if len(externalID) > 256 {
		return switchboard.Visitor{}, switchboard.Errorf(switchboard.EINVALID, "user_id: at most 256 bytes")
	}
	if prev != nil && prev.SiteKey == site.Key && prev.ExternalID == externalID {
		if (name != "" && name != prev.Name) || (email != "" && email != prev.Email) {
			if err := s.store.UpdateVisitor(ctx, prev.ID, name, email); err != nil {
				return switchboard.Visitor{}, err
			}
			return s.store.GetVisitor(ctx, prev.ID)
		}
		return *prev, nil
	}
	return s.store.CreateVisitor(ctx, switchboard.Visitor{SiteKey: site.Key, Name: name, Email: email, ExternalID: externalID})
}

// ChatVisitor returns one visitor.
func (s *Service) ChatVisitor(ctx context.Context, id string) (switchboard.Visitor, error) {
	return s.store.GetVisitor(ctx, id)
}

// TouchVisitor records that the visitor is connected now: the live-chat
// policy e-mails replies only to visitors gone long enough.
func (s *Service) TouchVisitor(ctx context.Context, id string) error {
	return s.store.TouchVisitor(ctx, id, s.clock.Now())
}

// VisitorConversation returns the conversation a visitor's messages go
// to now (open, else the latest), "" before their first message.
func (s *Service) VisitorConversation(ctx context.Context, v switchboard.Visitor) (string, error) {
	cust, err := s.store.VisitorCustomer(ctx, v.ID, v.ExternalID)
	if err != nil || cust == "" {
		return "", err
	}
	return s.store.LatestConversation(ctx, cust)
}

// VisitorHistory returns the visitor's conversation and the latest
// messages of their live chats, oldest first, as the visitor sees them
// (no notes, no other channels).
func (s *Service) VisitorHistory(ctx context.Context, v switchboard.Visitor, limit int) (string, []view.ChatMessage, error) {
	cust, err := s.store.VisitorCustomer(ctx, v.ID, v.ExternalID)
	if err != nil || cust == "" {
		return "", []view.ChatMessage{}, err
	}
	conv, err := s.store.LatestConversation(ctx, cust)
	if err != nil {
		return "", nil, err
	}
	msgs, _, err := s.store.Timeline(ctx, cust, "", limit)
	if err != nil {
		return "", nil, err
	}
	out, err := s.chatMessages(ctx, msgs)
	return conv, out, err
}

// chatMessages returns what a visitor sees of msgs.
func (s *Service) chatMessages(ctx context.Context, msgs []switchboard.Message) ([]view.ChatMessage, error) {
	names, err := s.agentNames(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]view.ChatMessage, 0, len(msgs))
	for _, m := range msgs {
		v, err := view.NewMessage(ctx, m, s.sign)
		if err != nil {
			return nil, err
		}
		if cm, ok := view.NewChatMessage(v, names[m.Sender]); ok {
			out = append(out, cm)
		}
	}
	return out, nil
}

// agentNames maps agents' addresses (an agent's reply's sender) to names.
func (s *Service) agentNames(ctx context.Context) (map[string]string, error) {
	agents, err := s.store.ListAgents(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(agents))
	for _, a := range agents {
		out[a.Email] = a.Name
	}
	return out, nil
}

// VisitorUpload stores a file a visitor will attach to their next
// message, under the agents' upload rules; only that visitor may attach
// it.
func (s *Service) VisitorUpload(ctx context.Context, v switchboard.Visitor, filename string, body io.Reader) (view.Attachment, error) {
	return s.upload(ctx, filename, body, func(a switchboard.Attachment) (switchboard.Attachment, error) {
		return s.store.CreateVisitorUpload(ctx, v.ID, a)
	})
}

// VisitorUploads returns the visitor's own uploads named by ids.
func (s *Service) VisitorUploads(ctx context.Context, v switchboard.Visitor, ids []string) ([]switchboard.Attachment, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	return s.store.VisitorUploads(ctx, v.ID, ids)
}

// VisitorTyping tells the agents that the visitor is typing in their
// conversation, for TypingTTL: presence data carries
// "customer_typing": true.
func (s *Service) VisitorTyping(ctx context.Context, v switchboard.Visitor, conversationID string) error {
	if conversationID == "" {
		return nil // nothing to type into yet: agents see the first message
	}
	e := switchboard.PresenceEntry{ConversationID: conversationID, AgentID: "visitor:" + v.ID, Name: v.Name, Kind: switchboard.PresenceCustomerTyping}
	changed, err := s.presence.Put(ctx, e, TypingTTL)
	if err != nil {
		return fmt.Errorf("inbox: presence: %w", err)
	}
	if changed {
		s.announcePresence(ctx, "", conversationID)
	}
	return nil
}

// VisitorRead marks an agent's message read by the visitor, who must be
// the customer it was written to; agents get message.updated.
func (s *Service) VisitorRead(ctx context.Context, v switchboard.Visitor, messageID string) error {
	m, err := s.store.GetMessage(ctx, messageID)
	if err != nil {
		return err
	}
	c, err := s.store.GetConversation(ctx, m.ConversationID)
	if err != nil {
		return err
	}
	cust, err := s.store.VisitorCustomer(ctx, v.ID, v.ExternalID)
	if err != nil {
		return err
	}
	if cust == "" || c.CustomerID != cust || m.Channel != switchboard.ChannelLivechat || m.Direction != switchboard.DirectionOut {
		return switchboard.Errorf(switchboard.ENOTFOUND, "message %s not found", messageID)
	}
	pid := m.ProviderID
	if pid == "" {
		pid = ChatProviderID(m.ID) // read before the send was recorded: kept pending
	}
	_, _, err = s.ApplyDeliveryStatus(ctx, switchboard.ChannelLivechat, pid, switchboard.DeliveryRead, "")
	return err
}

// VisitorDelivered marks an agent's live-chat reply delivered: a
// visitor's socket received it.
func (s *Service) VisitorDelivered(ctx context.Context, messageID string) error {
	m, err := s.store.GetMessage(ctx, messageID)
	if err != nil {
		return err
	}
	if m.Channel != switchboard.ChannelLivechat || m.Direction != switchboard.DirectionOut {
		return nil
	}
	pid := m.ProviderID
	if pid == "" {
		pid = ChatProviderID(m.ID) // delivered before the send was recorded: kept pending
	}
	_, _, err = s.ApplyDeliveryStatus(ctx, switchboard.ChannelLivechat, pid, switchboard.DeliveryDelivered, "")
	return err
}

// ChatProviderID is the provider id the live-chat channel gives an
// agent's reply it delivered to the visitor's sockets.
func ChatProviderID(messageID string) string { return "lc:" + messageID }

// DeliverToVisitors publishes an agent's reply to the visitors' sockets,
// on every instance (visitor.message).
func (s *Service) DeliverToVisitors(ctx context.Context, messageID string, visitors []string) error {
	m, err := s.store.GetMessage(ctx, messageID)
	if err != nil {
		return err
	}
	cms, err := s.chatMessages(ctx, []switchboard.Message{m})
	if err != nil {
		return err
	}
	if len(cms) == 0 {
		return switchboard.Errorf(switchboard.EINVALID, "message %s is not a live-chat reply", messageID)
	}
	ev, err := s.event(switchboard.BusVisitorMessage, m.ConversationID, "", cms[0])
	if err != nil {
		return err
	}
	ev.Visitors = visitors
	if s.bus == nil {
		return nil
	}
	return s.bus.Publish(context.WithoutCancel(ctx), ev)
}

// ChatRecipient returns, of the visitors named (a customer's), when one
// was last connected and the e-mail address one typed, for the live-chat
// policy.
func (s *Service) ChatRecipient(ctx context.Context, visitors []string) (lastSeen time.Time, email string, err error) {
	return s.store.VisitorsContact(ctx, visitors)
}

// chatStats caches the typical response time: it reads a week of
// conversations and changes slowly.
type chatStats struct {
	mu  sync.Mutex
	at  time.Time
	p50 time.Duration
}

// ChatStatusWindow is how far back the typical response time looks.
const ChatStatusWindow = 7 * 24 * time.Hour

// ChatStatus says what the widget of site shows: live when an agent of
// the site's team is online and the team is inside its business hours,
// else async; the median first response time of live chats over the last
// 7 days, exact, 0 with no data; and the team's agents online.
func (s *Service) ChatStatus(ctx context.Context, site switchboard.Site) (view.ChatStatus, error) {
	now := s.clock.Now()
	agents, err := s.store.ListAgents(ctx)
	if err != nil {
		return view.ChatStatus{}, err
	}
	online := 0
	for _, a := range agents {
		if a.Status == switchboard.AgentOnline && route.ServesTeam(a.Teams, site.Team) {
			online++
		}
	}
	open := true
	cfg, err := s.store.GetRoutingConfig(ctx)
	if err != nil {
		return view.ChatStatus{}, err
	}
	if raw, ok := cfg.Teams[site.Team]; ok {
		var tc route.TeamConfig
		if err := json.Unmarshal(raw, &tc); err != nil {
			return view.ChatStatus{}, fmt.Errorf("inbox: routing configuration of team %q: %w", site.Team, err)
		}
		open = tc.Hours == nil || tc.Hours.Open(now)
	}
	st := view.ChatStatus{Mode: "async", AgentsOnline: online}
	if online > 0 && open {
		st.Mode = "live"
	}
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	if s.stats.at.IsZero() || now.Sub(s.stats.at) > time.Minute || now.Before(s.stats.at) {
		p50, _, err := s.store.FirstResponseP50(ctx, switchboard.ChannelLivechat, now.Add(-ChatStatusWindow))
		if err != nil {
			return view.ChatStatus{}, err
		}
		s.stats.at, s.stats.p50 = now, p50
	}
	st.TypicalResponseSeconds = int((s.stats.p50 + time.Second/2) / time.Second)
	return st, nil
}
