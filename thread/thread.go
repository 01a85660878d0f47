// Package thread decides which conversation an inbound message belongs to.
// The decision is a pure function of the facts the store gathers, so the
// store's two ingest paths (the batch planner and the one-by-one path) and
// the e-mail rules share one rule instead of keeping copies in step.
package thread

import (
	"time"

	"github.com/switchboard-inbox/switchboard"
)

// Conversation is what the decision needs to know of a conversation.
type Conversation struct {
	ID          string
	CustomerID  string
	Status      switchboard.Status
	ResolvedAt  time.Time
	LastChannel switchboard.Channel
}

func (c *Conversation) open() bool { return c != nil && c.Status != switchboard.StatusResolved }

// Facts are what is known when a message arrives.
type Facts struct {
	// Customer is the customer the sender's identity picked, "" when the
	// sender is new.
	Customer string
	// Current is the customer's conversation that is not resolved, else
	// the one resolved most recently; nil when there is none.
	Current *Conversation
	// Named is the conversation the message itself names, nil when none:
	// an e-mail's verified reply token (NamedByToken) or the stored
	// message it answers (In-Reply-To, References).
	Named        *Conversation
	NamedByToken bool
	// NamedOwnerOpen is the conversation that is not resolved of Named's
	// customer, when that customer is not the sender; nil when there is
	// none. (For the sender's own, Current tells.)
	NamedOwnerOpen *Conversation
	Now            time.Time
	// ReopenWindow is how long after its resolution a conversation is
	// reopened by a new message rather than a new one started.
	ReopenWindow time.Duration
}

// Action is what happens to the conversation the message goes into.
type Action int

// Actions.
const (
	Create Action = iota // start a new conversation
	Join                 // add to an open conversation
	Wake                 // add to a pending or snoozed conversation, which opens again
	Reopen               // reopen a resolved conversation
)

func (a Action) String() string {
	switch a {
	case Join:
		return "join"
	case Wake:
		return "wake"
	case Reopen:
		return "reopen"
	}
	return "create"
}

// Decision is where the message goes.
type Decision struct {
	Action Action
	// Conversation is the one joined, woken or reopened; nil for Create.
	Conversation *Conversation
	// ByReply is true when the conversation was chosen because the
	// message names it.
	ByReply bool
}

// Decide threads one message. The rules, in order:
//
//  1. A message that names a conversation goes there when the name can be
//     trusted: a verified reply token may bring anyone in (a colleague in
//     Cc); a reference counts only for the sender's own conversations,
//     since Message-IDs travel with every copy and forward of a mail. If
//     the named conversation is resolved and its customer has another one
//     open by now, that one takes the message (one open conversation per
//     customer); otherwise the named one is reopened, however long ago it
//     was resolved: the customer answered it.
//  2. Otherwise the customer's open conversation takes it (a pending or
//     snoozed one wakes up).
//  3. Otherwise their last conversation is reopened if it was resolved
//     within the reopen window.
//  4. Otherwise a new conversation starts.
func Decide(f Facts) Decision {
	if n := f.Named; n != nil && (f.NamedByToken || (f.Customer != "" && n.CustomerID == f.Customer)) {
		if n.open() {
			return into(n, true)
		}
		owners := f.NamedOwnerOpen
		if n.CustomerID == f.Customer {
			owners = nil
			if f.Current.open() {
				owners = f.Current
			}
		}
		if owners.open() {
			return into(owners, true)
		}
		return Decision{Action: Reopen, Conversation: n, ByReply: true}
	}
	c := f.Current
	switch {
	case c.open():
		return into(c, false)
	case c != nil && c.ResolvedAt.After(f.Now.Add(-f.ReopenWindow)):
		return Decision{Action: Reopen, Conversation: c}
	}
	return Decision{Action: Create}
}

// into joins c, waking it when it waits.
func into(c *Conversation, byReply bool) Decision {
	if c.Status == switchboard.StatusOpen {
		return Decision{Action: Join, Conversation: c, ByReply: byReply}
	}
	return Decision{Action: Wake, Conversation: c, ByReply: byReply}
}
