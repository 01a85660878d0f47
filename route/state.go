package route

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

// This file holds the routing state the dispatcher reads and writes
// through the inbox service and the store keeps: the queue, agents' load,
// the decisions' records and the stored configuration.

// Who assigned a conversation.
const (
	AssignedManual = "manual" // a person: the router never undoes it
	AssignedRouter = "router"
)

// Where a conversation's topic came from; "" for topics stored before it
// was kept.
const (
	TopicByAgent      = "agent"
	TopicByKeyword    = "keyword"
	TopicByClassifier = "classifier"
)

// Errors an assignment returns when it does not assign; the dispatcher
// decides again (ErrAgentFull, ErrAgentUnavailable, ErrExcluded) or moves
// on (ErrNotWaiting).
var (
	ErrNotWaiting       = errors.New("route: conversation is no longer waiting (assigned, resolved, held or claimed by another worker)")
	ErrAgentFull        = errors.New("route: agent full")
	ErrAgentUnavailable = errors.New("route: agent is not online")
	ErrExcluded         = errors.New("route: agent is excluded from this conversation")
)

// AgentState is an agent as the router sees it: what it may take and what
// it has now.
type AgentState struct {
	ID, Name        string
	Status          switchboard.AgentStatus
	Skills, Teams   []string
	CapChat         int
	CapEmail        int
	Active          map[switchboard.ChannelClass]int // open conversations assigned now
	StatusChangedAt time.Time
	LastRoutedAt    time.Time // when the router last gave them a conversation
}

// Waiting is one conversation in the routing queue.
type Waiting struct {
	ID          string
	CustomerID  string
	Team        string // its own team's id ("" for the default team): a hand-off never changes it
	RoutedTeam  string // the after-hours team it was last handed to, "" when with its own team
	Status      switchboard.Status
	Topic       string
	Priority    int
	LastChannel switchboard.Channel
	CreatedAt   time.Time
	WaitReason  string // the waiting reason last written to its events

	// The after-hours acknowledgement: the closed period one was last sent
	// for, the newest inbound message it answered, and the newest inbound
	// message.
	AckedPeriod    string
	AckedInboundAt time.Time
	LastInboundAt  time.Time

	// Filled by the store's FillWaiting.
	Text            string   // the customer's inbound text, oldest first, capped
	Excluded        []string // agents it must not be routed to
	ContinuityAgent string   // assignee of the customer's most recent other conversation
}

// QueueCursor is where a walk of the queue stopped.
type QueueCursor struct {
	Priority  int
	CreatedAt time.Time
	ID        string
}

// Cursor returns the position just after w.
func (w Waiting) Cursor() *QueueCursor {
	return &QueueCursor{Priority: w.Priority, CreatedAt: w.CreatedAt, ID: w.ID}
}

// Assignment is the router's decision to give a conversation to an agent,
// with the explanation that goes into the event log.
type Assignment struct {
	ConversationID string
	AgentID        string
	Rule, Reason   string
	Trace          any    // the router's steps, stored as JSON
	Topic          string // saved on the conversation when it had none
	TopicSource    string
}

// WaitDecision is the router's decision to leave a conversation waiting.
type WaitDecision struct {
	ConversationID string
	Rule, Reason   string
	Trace          any
	AfterHours     bool
	Topic          string // saved on the conversation when it had none
	TopicSource    string
}

// WaitKey is what recording a wait compares to the last reason written.
func (d WaitDecision) WaitKey() string { return d.Rule + ": " + d.Reason }

// AckClaim is the right to send one after-hours acknowledgement.
type AckClaim struct {
	ConversationID string
	Period         string
	// Send is true when the acknowledgement must go out. False: nothing
	// to acknowledge, or the newest message came in a closed period
	// already acknowledged and is now counted as answered.
	Send bool

	// What the claim changed, for giving it back: acked_inbound_at after
	// and before, and the period acknowledged before.
	Inbound, PrevInbound int64
	PrevPeriod           string
}

// Returned is one conversation given back to the queue.
type Returned struct {
	ConversationID string
	AgentID        string
}

// StoredConfig is the routing configuration as stored: one JSON document
// (TeamConfig) per team id ("" is the default team) and the topic keyword
// rules (JSON []KeywordRule).
type StoredConfig struct {
	Teams    map[string]json.RawMessage
	Keywords json.RawMessage
}

// StoredModel is a stored topic classifier.
type StoredModel struct {
	ID        string
	Model     []byte
	Accuracy  float64
	N         int // training examples
	CreatedAt time.Time
}
