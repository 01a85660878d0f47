// Package switchboard holds Switchboard's domain types and the interfaces
// its adapters implement. It imports nothing but the standard library; every
// other package depends inward on it.
package switchboard

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Channel names a way a customer reaches the business (docs/design.md §4.1).
type Channel string

const (
	ChannelEmail     Channel = "email"
	ChannelSMS       Channel = "sms"
	ChannelWhatsApp  Channel = "whatsapp"
	ChannelWebform   Channel = "webform"
	ChannelMessenger Channel = "messenger"
	ChannelInstagram Channel = "instagram"
	ChannelVoice     Channel = "voice"
	ChannelLivechat  Channel = "livechat"
)

// Channels lists every channel in a fixed order; queues use it to visit
// channel streams fairly.
var Channels = []Channel{
	ChannelEmail, ChannelSMS, ChannelWhatsApp, ChannelWebform,
	ChannelMessenger, ChannelInstagram, ChannelVoice, ChannelLivechat,
}

// Valid reports whether c is one of the known channels.
func (c Channel) Valid() bool {
	for _, k := range Channels {
		if c == k {
			return true
		}
	}
	return false
}

// ChannelClass groups channels by how agents work them: chat-like channels
// expect quick back-and-forth, email-like ones do not. Concurrency caps are
// per class.
type ChannelClass string

const (
	ClassChat  ChannelClass = "chat"
	ClassEmail ChannelClass = "email"
)

// ReplyChannel is the channel a reply to a message that came on c goes out
// on: a voicemail is answered by SMS to the same number; every other
// channel carries its own replies (a web form's by e-mail, to the address
// the form gave).
func (c Channel) ReplyChannel() Channel {
	if c == ChannelVoice {
		return ChannelSMS
	}
	return c
}

// Class returns the channel's class.
func (c Channel) Class() ChannelClass {
	switch c {
	case ChannelEmail, ChannelWebform, ChannelVoice:
		return ClassEmail
	default:
		return ClassChat
	}
}

// IdentityKind names how a customer is recognised (docs/design.md §3).
type IdentityKind string

const (
	IdentityEmail         IdentityKind = "email"          // lower-cased address
	IdentityPhone         IdentityKind = "phone"          // E.164; shared by SMS, WhatsApp and voice
	IdentityMessengerPSID IdentityKind = "messenger_psid" // page-scoped id
	IdentityInstagramID   IdentityKind = "instagram_id"   // Instagram-scoped id
	IdentityChatVisitor   IdentityKind = "chat_visitor"
	IdentityExternalID    IdentityKind = "external_id"    // the host app's verified user id
	IdentityWhatsAppBSUID IdentityKind = "whatsapp_bsuid" // business-scoped user id without a phone
)

// Verified reports whether a channel authenticates identities of this
// kind: a phone number or platform id the provider vouches for, a host
// app's user id signed with the site's secret. An e-mail address is taken
// on the sender's word (a forged From, a typed address), though replies
// to it reach only its owner.
func (k IdentityKind) Verified() bool { return k != IdentityEmail }

// IdentityRef is a normalised (kind, value) pair.
type IdentityRef struct {
	Kind  IdentityKind `json:"kind"`
	Value string       `json:"value"`
}

// Site is a website (or app) that embeds the live-chat widget
// (docs/design.md §6.2). Its key is public (the script tag names it); its
// secret signs the host app's user ids (user_hash) and is shown once.
type Site struct {
	Key     string
	Name    string
	Secret  string
	Origins []string // e.g. "https://shop.example": the pages the widget runs on
	// Team is the team whose agents and business hours make the widget's
	// status ("" is the default team).
	Team      string
	CreatedAt time.Time
}

// Visitor is one browser (or app install) chatting through a site's
// widget. ExternalID is the host app's user id, set only when the site's
// secret proved it; Email is what the visitor typed: a claim.
type Visitor struct {
	ID         string
	SiteKey    string
	Name       string
	Email      string
	ExternalID string
	LastSeenAt time.Time
	CreatedAt  time.Time
}

// Customer is one person, however many channels they use.
type Customer struct {
	ID         string
	Name       string
	CreatedAt  time.Time
	MergedInto string // set when this customer was merged into another
	// Identities are the ones a channel linked to this customer; they
	// pick the customer of every message that comes from them.
	Identities []IdentityRef
	// Claims are identities the customer typed (a form's phone number, a
	// chat visitor's e-mail) that no channel proved: shown to agents,
	// never used to thread (docs/design.md §3).
	Claims []Claim
}

// Claim is an identity a customer claimed. OwnerID names another customer
// whose proven identity it is: a merge an agent may want to make.
type Claim struct {
	IdentityRef
	OwnerID, OwnerName string
}

// Status is a conversation's status. Every status but resolved counts as
// open: a customer has at most one conversation that is not resolved.
type Status string

// Conversation statuses.
const (
	StatusOpen     Status = "open"
	StatusPending  Status = "pending"
	StatusSnoozed  Status = "snoozed"
	StatusResolved Status = "resolved"
)

// Valid reports whether s is a conversation status.
func (s Status) Valid() bool {
	switch s {
	case StatusOpen, StatusPending, StatusSnoozed, StatusResolved:
		return true
	}
	return false
}

// Conversation is the single thread an agent works for a customer.
type Conversation struct {
	ID              string
	CustomerID      string
	CustomerName    string
	Status          Status
	AssigneeID      string
	AssigneeName    string
	Team            string
	Topic           string
	Priority        int
	LastChannel     Channel
	Channels        []Channel
	LastMessageAt   time.Time
	LastInboundAt   time.Time
	FirstResponseAt time.Time
	ResolvedAt      time.Time
	CreatedAt       time.Time
}

// Direction says who wrote a message.
type Direction string

// Message directions.
const (
	DirectionIn   Direction = "in"
	DirectionOut  Direction = "out"
	DirectionNote Direction = "note"
)

// Content types of a message.
const (
	ContentText  = "text"
	ContentImage = "image"
	ContentAudio = "audio"
	ContentFile  = "file"
)

// DeliveryStatus is where a message stands on its way to the customer.
type DeliveryStatus string

// Delivery statuses of a message.
const (
	DeliveryReceived  DeliveryStatus = "received"
	DeliveryQueued    DeliveryStatus = "queued"
	DeliverySent      DeliveryStatus = "sent"
	DeliveryDelivered DeliveryStatus = "delivered"
	DeliveryRead      DeliveryStatus = "read"
	DeliveryFailed    DeliveryStatus = "failed"
)

// Message is one inbound, outbound or internal message in a conversation.
type Message struct {
	ID             string
	ConversationID string
	Direction      Direction
	Channel        Channel
	ProviderID     string
	Sender         string
	ContentType    string
	Text           string
	HTML           string
	Status         DeliveryStatus
	Error          string
	Metadata       json.RawMessage
	Attachments    []Attachment
	CreatedAt      time.Time
}

// Attachment is a file held in the object store and referenced by key.
type Attachment struct {
	ID          string `json:"id,omitempty"`
	Key         string `json:"key"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	Name        string `json:"name"`
	Transcript  string `json:"transcript,omitempty"`
	// ContentID names an inline e-mail part (without <>): the message's
	// HTML refers to it as cid:ContentID.
	ContentID string `json:"content_id,omitempty"`
}

// Role is what an agent may do (docs/design.md §4.1): agents work conversations,
// supervisors also move others' work and merge customers, admins also
// change agents and configuration.
type Role string

// Roles of an agent.
const (
	RoleAgent      Role = "agent"
	RoleSupervisor Role = "supervisor"
	RoleAdmin      Role = "admin"
	// RoleSystem is Switchboard itself acting (routing, acknowledgements,
	// automations): never an agent's role.
	RoleSystem Role = "system"
)

// Valid reports whether r is a role an agent may have.
func (r Role) Valid() bool { return r == RoleAgent || r == RoleSupervisor || r == RoleAdmin }

// rank orders roles by what they may do.
func (r Role) rank() int {
	switch r {
	case RoleAgent:
		return 1
	case RoleSupervisor:
		return 2
	case RoleAdmin:
		return 3
	case RoleSystem:
		return 4
	}
	return 0
}

// AtLeast reports whether r may do what min may.
func (r Role) AtLeast(min Role) bool { return r.rank() >= min.rank() && r.rank() > 0 }

// AgentStatus is an agent's availability.
type AgentStatus string

// Agent availability.
const (
	AgentOnline  AgentStatus = "online"
	AgentAway    AgentStatus = "away"
	AgentOffline AgentStatus = "offline"
)

// Valid reports whether s is an agent status.
func (s AgentStatus) Valid() bool { return s == AgentOnline || s == AgentAway || s == AgentOffline }

// Agent is a person who answers customers.
type Agent struct {
	ID        string
	Name      string
	Email     string
	Role      Role
	Status    AgentStatus
	Skills    []string
	Teams     []string
	CapChat   int
	CapEmail  int
	CreatedAt time.Time
}

// Actor returns the agent as the one performing an operation.
func (a Agent) Actor() Actor { return Actor{ID: a.ID, Name: a.Name, Role: a.Role} }

// Actor is who performs an operation: an agent, or Switchboard itself.
// Operations check the actor's role and record its id in the event log.
type Actor struct {
	ID   string // the agent's id; "" for Switchboard itself
	Name string
	Role Role
}

// System is Switchboard acting on its own (the router, acknowledgements,
// channel callbacks, administrative commands): it may do anything.
var System = Actor{Name: "Switchboard", Role: RoleSystem}

// IsSystem reports whether the actor is Switchboard itself.
func (a Actor) IsSystem() bool { return a.Role == RoleSystem }

// Team groups agents for routing and business hours.
type Team struct {
	ID   string
	Name string
}

// EventType names an entry of a conversation's append-only log.
type EventType string

// Event types written to a conversation's append-only log.
const (
	EventCreated       EventType = "created"
	EventMessage       EventType = "message"
	EventReopened      EventType = "reopened"
	EventAssigned      EventType = "assigned"
	EventUnassigned    EventType = "unassigned"
	EventStatus        EventType = "status"
	EventFirstResponse EventType = "first_response"
	EventChannelSwitch EventType = "channel_switch"
	EventMerged        EventType = "merged"
	EventUnmerged      EventType = "unmerged"
	EventPriority      EventType = "priority"
	// EventAutoReply notes mail a robot sent (an out-of-office, say): it
	// never becomes a customer message.
	EventAutoReply EventType = "auto_reply"
	// EventBounce notes a delivery status notification for our e-mail.
	EventBounce EventType = "bounce"
	// Routing's entries beside assigned and unassigned.
	EventWaiting    EventType = "waiting"    // the router found nobody; written when the reason changes
	EventAutoAck    EventType = "auto_ack"   // the after-hours acknowledgement was sent or skipped
	EventContinuity EventType = "continuity" // a message on a new channel stayed with the agent
	EventHandoff    EventType = "handoff"    // moved to another team (after hours)
	EventHeld       EventType = "held"       // taken out of, or put back into, automatic routing
)

// Event is one entry in a conversation's log.
type Event struct {
	ID             string
	ConversationID string
	Type           EventType
	AgentID        string
	Data           json.RawMessage
	CreatedAt      time.Time
}

// Inbound is a message as a channel adapter hands it to the inbound queue:
// verified, parsed and normalised, but not yet threaded. It is the queue's
// payload, so its JSON form is a stored format: add fields, never rename.
type Inbound struct {
	Channel    Channel `json:"channel"`
	ProviderID string  `json:"provider_id"`
	SenderName string  `json:"sender_name,omitempty"`
	// Identities are what the channel vouches for (an SMS's From, an
	// e-mail's sender, a web form's e-mail address): the first picks the
	// customer, creating them when unknown.
	Identities []IdentityRef `json:"identities"`
	// Claims are identities the sender merely typed (a web form's phone
	// number, a chat visitor's e-mail): kept on the customer for agents to
	// see, they never join anyone's thread by themselves.
	Claims      []IdentityRef   `json:"claims,omitempty"`
	ContentType string          `json:"content_type"`
	Subject     string          `json:"subject,omitempty"`
	Text        string          `json:"text"`
	HTML        string          `json:"html,omitempty"`
	Attachments []Attachment    `json:"attachments,omitempty"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
	// Original is the message exactly as the provider sent it (raw MIME,
	// the webhook's body), served back by /api/v1/messages/{id}/original.
	Original []byte `json:"original,omitempty"`
	// ConversationHint and InReplyTo thread a reply into the conversation
	// it answers, ahead of the sender's open conversation (e-mail): the
	// conversation a verified reply token names, and provider ids on the
	// same channel the message refers to, nearest first.
	ConversationHint string    `json:"conversation_hint,omitempty"`
	InReplyTo        []string  `json:"in_reply_to,omitempty"`
	ReceivedAt       time.Time `json:"received_at"`
	// AcceptedAt is when the webhook made the message durable; the ingest
	// pipeline measures accepted-to-published latency from it.
	AcceptedAt time.Time `json:"accepted_at"`
}

// Validate checks the fields every adapter must fill.
func (in *Inbound) Validate() error {
	switch {
	case !in.Channel.Valid():
		return Errorf(EINVALID, "unknown channel %q", in.Channel)
	case in.ProviderID == "":
		return Errorf(EINVALID, "provider id is required")
	case len(in.Identities) == 0:
		return Errorf(EINVALID, "at least one sender identity is required")
	}
	for _, id := range append(in.Identities[:len(in.Identities):len(in.Identities)], in.Claims...) {
		if id.Kind == "" || id.Value == "" {
			return Errorf(EINVALID, "identity kind and value are required")
		}
	}
	return nil
}

// Delivery is one queue entry handed to a consumer. ID is opaque to the
// consumer and is passed back to Ack.
type Delivery struct {
	ID      string
	Channel Channel
	Payload []byte
}

// Queue is the durable inbound queue between webhooks and the ingest
// pipeline. Delivery is at least once: a consumer acks what it has made
// durable, and entries held by a consumer that died are delivered again.
type Queue interface {
	// Enqueue returns once the payload is durable. It does not keep
	// payload after it returns, so the caller may reuse the buffer.
	Enqueue(ctx context.Context, ch Channel, payload []byte) error
	// Receive blocks until at least one entry is available (or ctx ends) and
	// returns at most max entries, taken fairly across channels.
	Receive(ctx context.Context, max int) ([]Delivery, error)
	// Ack removes delivered entries for good.
	Ack(ctx context.Context, ds []Delivery) error
	// Depth is the number of entries not yet acknowledged.
	Depth(ctx context.Context) (int64, error)
	Close() error
}

// Bus carries real-time events between instances and keeps the recent
// ones, so that a client that reconnects is given what it missed.
type Bus interface {
	// Publish gives ev its id (increasing: see CompareEventIDs), keeps it in
	// the log, and hands it to every subscriber of every instance. It keeps
	// no reference to ev.Data past its return: the caller may reuse it.
	Publish(ctx context.Context, ev BusEvent) error
	// Subscribe delivers events until ctx ends; the channel is then closed.
	Subscribe(ctx context.Context) (<-chan BusEvent, error)
	// Since returns, oldest first, at most max of the events published
	// after the one whose id is since; ErrResync when the log no longer
	// reaches back that far (or never held since).
	Since(ctx context.Context, since string, max int) ([]BusEvent, error)
	Close() error
}

// ErrResync says that the events a client missed are gone from the log:
// it must load its state again.
var ErrResync = errors.New("the event log no longer reaches back that far: resync")

// CompareEventIDs orders event ids, "<milliseconds>-<sequence>" as Redis
// streams write them: -1 when a is older than b, 0 when equal, 1 when
// newer. An id that does not parse is older than any that does.
func CompareEventIDs(a, b string) int {
	am, as, aok := parseEventID(a)
	bm, bs, bok := parseEventID(b)
	switch {
	case !aok || !bok:
		return cmpBool(aok, bok)
	case am != bm:
		return cmp.Compare(am, bm)
	}
	return cmp.Compare(as, bs)
}

func parseEventID(id string) (ms, seq uint64, ok bool) {
	a, b, found := strings.Cut(id, "-")
	if !found {
		return 0, 0, false
	}
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	return ms, seq, err1 == nil && err2 == nil
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case b:
		return -1
	}
	return 1
}

// BusEventType names a real-time event (docs/design.md §6.1).
type BusEventType string

// Real-time event types.
const (
	// BusMessageCreated and BusMessageUpdated carry the message as the
	// agent API shows it (docs/design.md §4.1).
	BusMessageCreated BusEventType = "message.created"
	BusMessageUpdated BusEventType = "message.updated"
	// BusConversationUpdated carries the conversation as the list shows it.
	BusConversationUpdated BusEventType = "conversation.updated"
	// BusPresence carries who views and who types in a conversation.
	BusPresence BusEventType = "presence"
	// BusAgentStatus carries an agent's new availability.
	BusAgentStatus BusEventType = "agent.status"
	// BusVisitorMessage carries an agent's reply to the live-chat visitors
	// named in BusEvent.Visitors (docs/design.md §6.2): every instance's
	// visitor sockets read it, agents' sockets never carry it.
	BusVisitorMessage BusEventType = "visitor.message"
)

// BusEvent is one real-time event, in the form agents' sockets receive it
// (docs/design.md §6.1). It is published only after the change it reports is
// committed.
type BusEvent struct {
	// ID orders events; the event log that keeps them for replay sets it.
	ID             string          `json:"id,omitempty"`
	Type           BusEventType    `json:"type"`
	ConversationID string          `json:"conversation_id,omitempty"`
	AgentID        string          `json:"agent_id,omitempty"` // who caused it; "" for Switchboard itself
	At             time.Time       `json:"at"`
	Data           json.RawMessage `json:"data,omitempty"`
	// Visitors names the live-chat visitors a visitor-bound event is for
	// (BusVisitorMessage); agents never receive such events.
	Visitors []string `json:"visitors,omitempty"`
}

// BlobStore keeps files (inbound media, uploads) and hands out URLs to them.
type BlobStore interface {
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	Get(ctx context.Context, key string) (io.ReadCloser, BlobInfo, error)
	Delete(ctx context.Context, key string) error
	// URL returns a URL that serves the object until ttl has passed.
	URL(ctx context.Context, key string, ttl time.Duration) (string, error)
}

// BlobInfo describes a stored object.
type BlobInfo struct {
	Size        int64
	ContentType string
}

// Outbound is what the outbox hands a channel's sender.
type Outbound struct {
	MessageID      string
	ConversationID string
	Channel        Channel
	To             []IdentityRef // the customer's identities
	Text           string
	HTML           string
	Attachments    []Attachment
	Metadata       json.RawMessage
}

// Sender delivers an outbound message through one channel's provider.
// An error wrapped with Permanent is not retried.
type Sender interface {
	Send(ctx context.Context, m *Outbound) (providerID string, err error)
}

// Clock lets tests control time.
type Clock interface{ Now() time.Time }

// SystemClock is the wall clock in UTC.
type SystemClock struct{}

// Now returns the current time in UTC.
func (SystemClock) Now() time.Time { return time.Now().UTC() }

// DeliveryRank orders delivery statuses so that status reports, which
// providers send out of order, only ever move a message forward: a final
// state (delivered, failed) never regresses to sent, and read beats both.
func DeliveryRank(status DeliveryStatus) int {
	switch status {
	case DeliveryQueued:
		return 1
	case DeliverySent:
		return 2
	case DeliveryDelivered, DeliveryFailed:
		return 3
	case DeliveryRead:
		return 4
	}
	return 0
}

// Draft is what an agent is about to send, as a channel policy sees it.
type Draft struct {
	Channel     Channel
	Text        string
	Attachments []Attachment
	Template    *TemplateRef
}

// TemplateRef names an approved message template and its parameters.
type TemplateRef struct {
	Name     string   `json:"name"`
	Language string   `json:"language"`
	Params   []string `json:"params"`
}

// Recipient is what a channel policy knows about the customer.
type Recipient struct {
	Identities []IdentityRef
	// LastInbound is when the customer last wrote on each channel; the
	// messaging windows of WhatsApp and Messenger run from it.
	LastInbound map[Channel]time.Time
	// OptOuts holds, per channel, the keyword the customer opted out with.
	OptOuts map[Channel]string
	// Templates are the approved message templates the business may send
	// (WhatsApp outside its 24-hour window).
	Templates []MessageTemplate
}

// MessageTemplate is a pre-approved message (WhatsApp) with numbered
// placeholders, {{1}}, {{2}}, ...
type MessageTemplate struct {
	Name     string `json:"name"`
	Language string `json:"language"`
	Category string `json:"category"`
	Body     string `json:"body"`
	Status   string `json:"status"` // APPROVED, PENDING, REJECTED, ...
}

// Identity returns the recipient's first identity of kind, or "".
func (r Recipient) Identity(kind IdentityKind) string {
	for _, id := range r.Identities {
		if id.Kind == kind {
			return id.Value
		}
	}
	return ""
}

// Decision is a channel policy's answer: whether the draft may be sent
// now, why not, and what the composer should show.
type Decision struct {
	Channel      Channel        `json:"channel"`
	Allowed      bool           `json:"allowed"`
	Reason       string         `json:"reason,omitempty"`
	WindowEndsAt *time.Time     `json:"window_ends_at,omitempty"`
	Templates    []string       `json:"templates,omitempty"`
	Segments     int            `json:"segments,omitempty"`
	Encoding     string         `json:"encoding,omitempty"`
	Cost         float64        `json:"cost,omitempty"`
	Details      map[string]any `json:"details,omitempty"`
	// Text, when set, is what will actually be sent: a template rendered
	// with its parameters. The send path stores it as the reply's text.
	Text string `json:"text,omitempty"`
}

// Policy enforces one channel's rules. The composer and the send path ask
// the same policy, so an agent learns of a refusal while composing, not
// after a failed send.
type Policy interface {
	Check(r Recipient, d Draft, now time.Time) Decision
}

// MetaOriginalKey is the message metadata key naming the object that holds
// a message's original when it was too large to keep in the database.
const MetaOriginalKey = "original_key"

// EmailThread is what an outbound e-mail needs to continue a conversation's
// thread in the customer's mail client.
type EmailThread struct {
	Subject    string   // of the customer's latest e-mail or web form
	InReplyTo  string   // the Message-ID of the customer's latest e-mail
	References []string // that message's References, then its Message-ID
}

// AutoReply is mail a robot sent us (an out-of-office, a list's notice):
// it is noted on the conversation it answers and never becomes a
// customer message, reopens anything or triggers an acknowledgement.
type AutoReply struct {
	MessageID        string // its Message-ID (or a digest of the raw mail)
	ConversationHint string
	InReplyTo        []string
	From             IdentityRef
	Subject          string
	Reason           string
}

// Bounce is a delivery status notification for one of our e-mails.
type Bounce struct {
	MessageID  string // the report's own Message-ID (or a digest)
	Original   string // the Message-ID of our message it reports on
	Permanent  bool
	Diagnostic string // e.g. "5.1.1 user unknown"
	// Recipients are the addresses that failed for good (lower-cased); a
	// bounce for a Cc alone does not fail the message to the customer.
	Recipients []string
}

// PresenceKind is what an agent is doing in a conversation.
type PresenceKind string

// Presence kinds: soft locks that warn, never block (docs/design.md §6).
const (
	PresenceViewing PresenceKind = "viewing"
	PresenceTyping  PresenceKind = "typing"
	// PresenceCustomerTyping is a live-chat visitor typing; AgentID then
	// names the visitor ("visitor:" and its id). Agents see it as
	// "customer_typing": true in presence data.
	PresenceCustomerTyping PresenceKind = "customer_typing"
)

// PresenceEntry says that an agent is viewing, or typing in, a
// conversation.
type PresenceEntry struct {
	ConversationID string
	AgentID        string
	Name           string
	Kind           PresenceKind
}

// Presence keeps who is viewing and typing where, each entry for a while:
// in memory on one instance, in Redis keys with expiry across several.
type Presence interface {
	// Put records e until ttl has passed, replacing the same agent's
	// entry of the same kind in that conversation. It reports whether the
	// conversation's presence changed (a new entry, not a renewal).
	Put(ctx context.Context, e PresenceEntry, ttl time.Duration) (changed bool, err error)
	// Remove deletes e and reports whether it was there.
	Remove(ctx context.Context, e PresenceEntry) (bool, error)
	// Of returns the live entries of the conversations named.
	Of(ctx context.Context, conversationIDs []string) ([]PresenceEntry, error)
}

// Normalize makes a message's text storable by every store: invalid UTF-8
// is replaced, and NUL and the other C0 control characters but tab and
// newline (which PostgreSQL refuses, or no screen shows) are removed. The
// inbound path every channel shares calls it once, so no parser has to.
func (in *Inbound) Normalize() {
	for _, s := range []*string{&in.ProviderID, &in.SenderName, &in.Subject, &in.Text, &in.HTML, &in.ConversationHint} {
		*s = CleanText(*s)
	}
	for i := range in.Identities {
		in.Identities[i].Value = CleanText(in.Identities[i].Value)
	}
	for i := range in.Claims {
		in.Claims[i].Value = CleanText(in.Claims[i].Value)
	}
	for i := range in.InReplyTo {
		in.InReplyTo[i] = CleanText(in.InReplyTo[i])
	}
	for i := range in.Attachments {
		a := &in.Attachments[i]
		a.Name, a.Transcript, a.ContentType = CleanText(a.Name), CleanText(a.Transcript), CleanText(a.ContentType)
	}
}

// CleanText returns s as valid UTF-8 without C0 control characters other
// than tab and newline.
func CleanText(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, dropped) < 0 {
		return s // the common case: no allocation
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if !dropped(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func dropped(r rune) bool { return r < 0x20 && r != '\t' && r != '\n' }
