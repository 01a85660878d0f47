package switchboard

// IngestResult says what became of one inbound message.
type IngestResult struct {
	MessageID       string
	ConversationID  string
	CustomerID      string
	Duplicate       bool // the (channel, provider id) was already stored
	NewConversation bool
	Reopened        bool
	// SwitchedFrom is the conversation's channel before this message,
	// when the message came by another one.
	SwitchedFrom Channel
	// Message is the message as stored, when Stored: what reading it
	// back would return.
	Message *Message
	// Err is set when this message could not be stored; it was kept as a
	// dead letter and the rest of the batch went on.
	Err error
	// Rating is set (1-5) when the message answered a satisfaction
	// survey: it was recorded as the rating of ConversationID's cycle and
	// not stored as a message.
	Rating int
}

// Stored reports whether the message was stored by this ingestion.
func (r IngestResult) Stored() bool { return r.Err == nil && !r.Duplicate && r.MessageID != "" }

// ConversationFilter selects conversations for the agent's list.
type ConversationFilter struct {
	Status     Status
	AssigneeID string // an agent id, or "none" for unassigned
	Channel    Channel
	Topic      string
	Team       string // a team's name
	// Waiting keeps open conversations whose customer wrote last.
	Waiting bool
	Query   string // full text over message text
	Limit   int
	Cursor  string
}

// OutboxItem is a claimed outbox row with what its sender needs.
type OutboxItem struct {
	ID       string
	Attempts int
	Message  Outbound
}

// AgentUpdate holds the fields an admin may change; nil means unchanged.
type AgentUpdate struct {
	Role     *Role
	Skills   *[]string
	Teams    *[]string
	CapChat  *int
	CapEmail *int
}

// Reply is an outbound message or internal note about to be stored.
type Reply struct {
	ConversationID string
	Channel        Channel // "" means the default reply channel
	Text           string
	HTML           string
	Note           bool // an internal note: stored, never sent
	Template       *TemplateRef
	Attachments    []string // upload ids
	Cc, Bcc        []string // e-mail only
}
