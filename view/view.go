// Package view holds the agent API's representations of the domain types
// (docs/design.md §4.1): what the JSON API answers, what real-time events carry
// and what pages render, built in one place so that they cannot disagree.
package view

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/email/parse"
)

// Time is a time as the API writes it: RFC 3339 in UTC, null when zero.
type Time struct{ time.Time }

// MarshalJSON writes the time, or null.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.UTC().Format(time.RFC3339Nano))
}

// UnmarshalJSON reads what MarshalJSON writes.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	return json.Unmarshal(b, &t.Time)
}

// Ref names an agent or a customer.
type Ref struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Presence is who is viewing and who is typing in a conversation: the
// soft locks agents' screens warn about (docs/design.md §6.1).
type Presence struct {
	Viewing []Ref `json:"viewing"`
	Typing  []Ref `json:"typing"`
	// CustomerTyping says that the live-chat visitor is typing (an
	// addition to §6.1's presence data; absent when false).
	CustomerTyping bool `json:"customer_typing,omitempty"`
}

// NoPresence is the presence of a conversation nobody has open.
func NoPresence() Presence { return Presence{Viewing: []Ref{}, Typing: []Ref{}} }

// Conversation is a conversation as the list shows it.
type Conversation struct {
	ID            string                `json:"id"`
	Customer      Ref                   `json:"customer"`
	Status        switchboard.Status    `json:"status"`
	Assignee      *Ref                  `json:"assignee"`
	Team          string                `json:"team"`
	Topic         string                `json:"topic"`
	Priority      int                   `json:"priority"`
	LastChannel   switchboard.Channel   `json:"last_channel"`
	Channels      []switchboard.Channel `json:"channels"`
	LastMessageAt Time                  `json:"last_message_at"`
	LastInboundAt Time                  `json:"last_inbound_at"`
	FirstResponse Time                  `json:"first_response_at"`
	ResolvedAt    Time                  `json:"resolved_at"`
	CreatedAt     Time                  `json:"created_at"`
	Presence
}

// NewConversation returns the view of c, with nobody present.
func NewConversation(c switchboard.Conversation) Conversation {
	out := Conversation{
		ID: c.ID, Customer: Ref{c.CustomerID, c.CustomerName}, Status: c.Status, Team: c.Team, Topic: c.Topic,
		Priority: c.Priority, LastChannel: c.LastChannel, Channels: c.Channels,
		LastMessageAt: Time{c.LastMessageAt}, LastInboundAt: Time{c.LastInboundAt},
		FirstResponse: Time{c.FirstResponseAt}, ResolvedAt: Time{c.ResolvedAt}, CreatedAt: Time{c.CreatedAt},
		Presence: NoPresence(),
	}
	if out.Channels == nil {
		out.Channels = []switchboard.Channel{}
	}
	if c.AssigneeID != "" {
		out.Assignee = &Ref{c.AssigneeID, c.AssigneeName}
	}
	return out
}

// Attachment is a stored file of a message, with a URL that expires.
type Attachment struct {
	ID          string `json:"id"`
	URL         string `json:"url"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	Name        string `json:"name"`
	Transcript  string `json:"transcript"`
}

// Message is one message of a timeline.
type Message struct {
	ID             string                     `json:"id"`
	ConversationID string                     `json:"conversation_id"`
	Direction      switchboard.Direction      `json:"direction"`
	Channel        switchboard.Channel        `json:"channel"`
	Sender         string                     `json:"sender"`
	ContentType    string                     `json:"content_type"`
	Text           string                     `json:"text"`
	HTML           string                     `json:"html"`
	Status         switchboard.DeliveryStatus `json:"status"`
	Error          string                     `json:"error"`
	ProviderID     string                     `json:"provider_id"`
	Attachments    []Attachment               `json:"attachments"`
	CreatedAt      Time                       `json:"created_at"`
	// Survey marks a satisfaction survey Switchboard sent.
	Survey bool `json:"survey,omitempty"`
}

// Signer turns an object key into a URL that serves it for a while.
type Signer func(ctx context.Context, key string) (string, error)

// NewMessage returns the view of m, signing its attachments' URLs. Inline
// e-mail images (cid:) point at their stored parts; the URLs expire, so
// they are written here, at display time, never stored.
func NewMessage(ctx context.Context, m switchboard.Message, sign Signer) (Message, error) {
	out := Message{
		ID: m.ID, ConversationID: m.ConversationID, Direction: m.Direction, Channel: m.Channel, Sender: m.Sender,
		ContentType: m.ContentType, Text: m.Text, HTML: m.HTML, Status: m.Status, Error: m.Error, ProviderID: m.ProviderID,
		Attachments: []Attachment{}, CreatedAt: Time{m.CreatedAt}, Survey: isSurvey(m.Metadata),
	}
	var inline map[string]string
	for _, a := range m.Attachments {
		var url string
		if sign != nil {
			u, err := sign(ctx, a.Key)
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
		out.Attachments = append(out.Attachments, Attachment{a.ID, url, a.ContentType, a.Size, a.Name, a.Transcript})
	}
	if inline != nil && strings.Contains(out.HTML, "cid:") {
		out.HTML = parse.RewriteCID(out.HTML, func(cid string) (string, bool) {
			u, ok := inline[cid]
			return u, ok
		})
	}
	return out, nil
}

// NewMessages returns the views of msgs, in order.
func NewMessages(ctx context.Context, msgs []switchboard.Message, sign Signer) ([]Message, error) {
	out := make([]Message, 0, len(msgs))
	for _, m := range msgs {
		v, err := NewMessage(ctx, m, sign)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Event is one entry of a conversation's log.
type Event struct {
	ID        string                `json:"id"`
	Type      switchboard.EventType `json:"type"`
	AgentID   string                `json:"agent_id"`
	Data      json.RawMessage       `json:"data"`
	CreatedAt Time                  `json:"created_at"`
}

// NewEvents returns the views of a conversation's log entries.
func NewEvents(evs []switchboard.Event) []Event {
	out := make([]Event, 0, len(evs))
	for _, e := range evs {
		out = append(out, Event{e.ID, e.Type, e.AgentID, e.Data, Time{e.CreatedAt}})
	}
	return out
}

// ConversationDetail is one conversation with the customer's timeline
// (every conversation of theirs, oldest first, paged) and its log.
type ConversationDetail struct {
	Conversation
	// QueuePosition is where a conversation waiting for an agent stands
	// (1 is next), up to 100; further back it is left out, as for a
	// conversation that does not wait.
	QueuePosition *int `json:"queue_position,omitempty"`
	// Messages is the latest page of the timeline; NextCursor, when not
	// "", fetches the page before it (GET .../messages?before=).
	Messages   []Message `json:"messages"`
	NextCursor string    `json:"next_cursor"`
	Events     []Event   `json:"events"`
}

// Classes is a count per channel class.
type Classes struct {
	Chat  int `json:"chat"`
	Email int `json:"email"`
}

// Agent is an agent as the API shows it.
type Agent struct {
	ID     string                  `json:"id"`
	Name   string                  `json:"name"`
	Email  string                  `json:"email"`
	Role   switchboard.Role        `json:"role"`
	Status switchboard.AgentStatus `json:"status"`
	Skills []string                `json:"skills"`
	Teams  []string                `json:"teams"`
	Caps   Classes                 `json:"caps"`
	Active Classes                 `json:"active"`
}

// NewAgent returns the view of a with its active conversations per class.
func NewAgent(a switchboard.Agent, active map[switchboard.ChannelClass]int) Agent {
	return Agent{
		ID: a.ID, Name: a.Name, Email: a.Email, Role: a.Role, Status: a.Status,
		Skills: nonNil(a.Skills), Teams: nonNil(a.Teams),
		Caps:   Classes{Chat: a.CapChat, Email: a.CapEmail},
		Active: Classes{Chat: active[switchboard.ClassChat], Email: active[switchboard.ClassEmail]},
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Customer is a customer with identities and conversations.
type Customer struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	CreatedAt  Time       `json:"created_at"`
	Identities []Identity `json:"identities"`
	// Claims are identities the customer typed that no channel proved.
	Claims        []Claim        `json:"claims"`
	Conversations []Conversation `json:"conversations"`
}

// Identity is one of a customer's identities; verified when a channel
// authenticated it (switchboard.IdentityKind.Verified).
type Identity struct {
	Kind     switchboard.IdentityKind `json:"kind"`
	Value    string                   `json:"value"`
	Verified bool                     `json:"verified"`
}

// Claim is an identity a customer claimed; Customer, when set, is the
// other customer whose proven identity it is: a suggested merge.
type Claim struct {
	Kind     switchboard.IdentityKind `json:"kind"`
	Value    string                   `json:"value"`
	Customer *Ref                     `json:"customer,omitempty"`
}

// NewCustomer returns the view of c with its conversations.
func NewCustomer(c switchboard.Customer, convs []Conversation) Customer {
	out := Customer{ID: c.ID, Name: c.Name, CreatedAt: Time{c.CreatedAt}, Identities: []Identity{}, Claims: []Claim{}, Conversations: convs}
	for _, id := range c.Identities {
		out.Identities = append(out.Identities, Identity{Kind: id.Kind, Value: id.Value, Verified: id.Kind.Verified()})
	}
	for _, cl := range c.Claims {
		v := Claim{Kind: cl.Kind, Value: cl.Value}
		if cl.OwnerID != "" {
			v.Customer = &Ref{cl.OwnerID, cl.OwnerName}
		}
		out.Claims = append(out.Claims, v)
	}
	return out
}

// AgentStatus is the data of an agent.status event.
type AgentStatus struct {
	Status switchboard.AgentStatus `json:"status"`
}

// Site is a live-chat site as admins see it; Secret is shown only in the
// answer that created it.
type Site struct {
	Key       string   `json:"key"`
	Name      string   `json:"name"`
	Origins   []string `json:"origins"`
	Team      string   `json:"team"`
	Secret    string   `json:"secret,omitempty"`
	CreatedAt Time     `json:"created_at"`
}

// NewSite returns the view of s without its secret.
func NewSite(s switchboard.Site) Site {
	return Site{Key: s.Key, Name: s.Name, Origins: nonNil(s.Origins), Team: s.Team, CreatedAt: Time{s.CreatedAt}}
}

// ChatStatus is what the widget shows about the team (docs/design.md
// §6.2): "live" when an agent of the site's team is online inside its
// business hours, else "async"; the median first response of live chats
// over the last 7 days (0 without data); the agents online.
type ChatStatus struct {
	Mode                   string `json:"mode"`
	TypicalResponseSeconds int    `json:"typical_response_seconds"`
	AgentsOnline           int    `json:"agents_online"`
}

// ChatMessage is a message as a live-chat visitor sees it (docs/design.md
// §6.2): no notes, no provider ids, no agents' addresses.
type ChatMessage struct {
	ID             string                     `json:"id"`
	ConversationID string                     `json:"conversation_id"`
	Direction      switchboard.Direction      `json:"direction"` // in: the visitor's; out: an agent's
	ContentType    string                     `json:"content_type"`
	Text           string                     `json:"text"`
	Attachments    []Attachment               `json:"attachments"`
	Status         switchboard.DeliveryStatus `json:"status"`
	// ClientID is the visitor's own id for a message they sent.
	ClientID string `json:"client_id,omitempty"`
	// Agent names who wrote an agent's message.
	Agent     *ChatAgent `json:"agent,omitempty"`
	CreatedAt Time       `json:"created_at"`
	// Survey marks a satisfaction survey: the widget offers its rating.
	Survey bool `json:"survey,omitempty"`
}

// ChatAgent names an agent to a visitor.
type ChatAgent struct {
	Name string `json:"name"`
}

// ChatProviderID is the provider id of a visitor's message: the same
// client id from the same visitor is stored once.
func ChatProviderID(visitorID, clientID string) string {
	return "livechat:" + visitorID + ":" + clientID
}

// ChatClientID returns the client id of a visitor's message, when
// providerID is one of visitorID's.
func ChatClientID(providerID, visitorID string) (string, bool) {
	return strings.CutPrefix(providerID, "livechat:"+visitorID+":")
}

// ChatVisitorOf returns the visitor a live-chat provider id names.
func ChatVisitorOf(providerID string) (string, bool) {
	rest, ok := strings.CutPrefix(providerID, "livechat:")
	if !ok {
		return "", false
	}
	v, _, ok := strings.Cut(rest, ":")
	return v, ok && v != ""
}

// NewChatMessage returns what a visitor sees of m; agentName names the
// author of an agent's message. ok is false for what visitors never see
// (notes, other channels' messages).
func NewChatMessage(m Message, agentName string) (ChatMessage, bool) {
	if m.Channel != switchboard.ChannelLivechat || (m.Direction != switchboard.DirectionIn && m.Direction != switchboard.DirectionOut) {
		return ChatMessage{}, false
	}
	out := ChatMessage{ID: m.ID, ConversationID: m.ConversationID, Direction: m.Direction, ContentType: m.ContentType, Text: m.Text,
		Attachments: m.Attachments, Status: m.Status, CreatedAt: m.CreatedAt, Survey: m.Survey}
	if out.Attachments == nil {
		out.Attachments = []Attachment{}
	}
	if m.Direction == switchboard.DirectionIn {
		if v, ok := ChatVisitorOf(m.ProviderID); ok {
			out.ClientID, _ = ChatClientID(m.ProviderID, v)
		}
	} else {
		out.Agent = &ChatAgent{Name: agentName}
	}
	return out, true
}

// isSurvey reports whether a message's metadata marks a satisfaction
// survey.
func isSurvey(meta json.RawMessage) bool {
	if len(meta) == 0 || !bytes.Contains(meta, []byte(`"survey"`)) {
		return false
	}
	var m struct {
		Survey string `json:"survey"`
	}
	return json.Unmarshal(meta, &m) == nil && m.Survey != ""
}
