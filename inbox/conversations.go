package inbox

import (
	"context"
	"fmt"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/route"
	"github.com/switchboard-inbox/switchboard/view"
)

// Conversations returns a page of the conversation list, newest activity
// first, and the cursor of the next page ("" on the last).
func (s *Service) Conversations(ctx context.Context, actor switchboard.Actor, f switchboard.ConversationFilter) ([]view.Conversation, string, error) {
	if f.Status != "" && !f.Status.Valid() {
		return nil, "", switchboard.Errorf(switchboard.EINVALID, "unknown status %q", f.Status)
	}
	if f.Channel != "" && !f.Channel.Valid() {
		return nil, "", switchboard.Errorf(switchboard.EINVALID, "unknown channel %q", f.Channel)
	}
	if f.Query != "" {
		q, err := searchQuery(f.Query)
		if err != nil {
			return nil, "", err
		}
		release, err := s.searchSlot(ctx)
		if err != nil {
			return nil, "", err
		}
		defer release()
		f.Query = q
	}
	convs, next, err := s.store.ListConversations(ctx, f)
	if err != nil {
		return nil, "", err
	}
	out, err := s.withPresence(ctx, convs)
	return out, next, err
}

// TimelinePage is how many messages a page of a timeline holds when the
// caller says nothing.
const TimelinePage = 50

// Conversation returns one conversation with the latest page of the
// customer's timeline (every conversation of theirs, oldest first, and
// the cursor of the page before it) and the conversation's log.
func (s *Service) Conversation(ctx context.Context, actor switchboard.Actor, id string) (view.ConversationDetail, error) {
	c, err := s.store.GetConversation(ctx, id)
	if err != nil {
		return view.ConversationDetail{}, err
	}
	msgs, next, err := s.store.Timeline(ctx, c.CustomerID, "", TimelinePage)
	if err != nil {
		return view.ConversationDetail{}, err
	}
	evs, err := s.store.Events(ctx, c.ID)
	if err != nil {
		return view.ConversationDetail{}, err
	}
	mv, err := view.NewMessages(ctx, msgs, s.sign)
	if err != nil {
		return view.ConversationDetail{}, err
	}
	cv, err := s.withPresence(ctx, []switchboard.Conversation{c})
	if err != nil {
		return view.ConversationDetail{}, err
	}
	out := view.ConversationDetail{Conversation: cv[0], Messages: mv, NextCursor: next, Events: view.NewEvents(evs)}
	if c.AssigneeID == "" && c.Status != switchboard.StatusResolved {
		n, err := s.store.QueuePosition(ctx, c.ID)
		if err != nil {
			return out, err
		}
		if n > 0 {
			out.QueuePosition = &n
		}
	}
	return out, nil
}

// Messages returns a page of a conversation's timeline (the customer's
// whole story): the newest limit messages before the cursor ("": the
// newest), oldest first, and the cursor of the page before them.
func (s *Service) Messages(ctx context.Context, actor switchboard.Actor, conversationID, before string, limit int) ([]view.Message, string, error) {
	if limit <= 0 {
		limit = TimelinePage
	}
	if limit > 200 {
		return nil, "", switchboard.Errorf(switchboard.EINVALID, "limit must be from 1 to 200")
	}
	c, err := s.store.GetConversation(ctx, conversationID)
	if err != nil {
		return nil, "", err
	}
	msgs, next, err := s.store.Timeline(ctx, c.CustomerID, before, limit)
	if err != nil {
		return nil, "", err
	}
	mv, err := view.NewMessages(ctx, msgs, s.sign)
	return mv, next, err
}

// conversation returns the view of one conversation as the list shows it.
func (s *Service) conversation(ctx context.Context, id string) (view.Conversation, error) {
	c, err := s.store.GetConversation(ctx, id)
	if err != nil {
		return view.Conversation{}, err
	}
	cv, err := s.withPresence(ctx, []switchboard.Conversation{c})
	if err != nil {
		return view.Conversation{}, err
	}
	return cv[0], nil
}

// Assign gives a conversation to an agent, or unassigns it when agentID
// is "". Agents may take an unassigned conversation or hand back their
// own; moving anyone else's work is for supervisors. A manual assignment
// is never undone by the router; an agent who hands one back is not given
// it again by the router until it is resolved.
func (s *Service) Assign(ctx context.Context, actor switchboard.Actor, id, agentID string) (view.Conversation, error) {
	c, err := s.store.GetConversation(ctx, id)
	if err != nil {
		return view.Conversation{}, err
	}
	takes := agentID == actor.ID && (c.AssigneeID == "" || c.AssigneeID == actor.ID)
	handsBack := agentID == "" && c.AssigneeID == actor.ID
	if !takes && !handsBack {
		if err := require(actor, switchboard.RoleSupervisor, "move conversations between agents"); err != nil {
			return view.Conversation{}, err
		}
	}
	target := ""
	if agentID != "" {
		a, err := s.store.GetAgent(ctx, agentID)
		if err != nil {
			return view.Conversation{}, err
		}
		target = a.Name
	}
	reason := assignReason(actor, c.AssigneeName, target)
	if _, err := s.store.Assign(ctx, id, agentID, actor.ID, route.AssignedManual, reason); err != nil {
		return view.Conversation{}, err
	}
	s.announceConversations(ctx, actor.ID, id)
	s.wakeRouter(id)
	return s.conversation(ctx, id)
}

// assignReason says in words what a manual assignment did.
func assignReason(actor switchboard.Actor, from, to string) string {
	by := actor.Name
	switch {
	case to == "" && from == actor.Name:
		return "handed back by " + by
	case to == "":
		return fmt.Sprintf("unassigned from %s by %s", from, by)
	case to == actor.Name && from == "":
		return "taken by " + by
	case from == "":
		return fmt.Sprintf("assigned to %s by %s", to, by)
	case from == to:
		return fmt.Sprintf("kept with %s by %s", to, by)
	}
	return fmt.Sprintf("transferred from %s to %s by %s", from, to, by)
}

// SetStatus changes a conversation's status. Reopening a resolved one is
// refused while the customer has another conversation open.
func (s *Service) SetStatus(ctx context.Context, actor switchboard.Actor, id string, status switchboard.Status) (view.Conversation, error) {
	if _, err := s.store.SetStatus(ctx, id, status, actor.ID); err != nil {
		return view.Conversation{}, err
	}
	s.announceConversations(ctx, actor.ID, id)
	s.wakeRouter(id)
	return s.conversation(ctx, id)
}

// SetPriority moves a conversation up (or down) the waiting queue: higher
// is assigned first, then the oldest. Supervisors only.
func (s *Service) SetPriority(ctx context.Context, actor switchboard.Actor, id string, priority int) (view.Conversation, error) {
	if err := require(actor, switchboard.RoleSupervisor, "change priorities"); err != nil {
		return view.Conversation{}, err
	}
	if priority < -100 || priority > 100 {
		return view.Conversation{}, switchboard.Errorf(switchboard.EINVALID, "priority must be a number from -100 to 100")
	}
	if err := s.store.SetPriority(ctx, id, priority, actor.ID); err != nil {
		return view.Conversation{}, err
	}
	s.announceConversations(ctx, actor.ID, id)
	s.wakeRouter(id)
	return s.conversation(ctx, id)
}

// SetTeam moves a conversation to another team for good ("" is the
// default team). Supervisors only.
func (s *Service) SetTeam(ctx context.Context, actor switchboard.Actor, id, team string) (view.Conversation, error) {
	if err := require(actor, switchboard.RoleSupervisor, "move conversations between teams"); err != nil {
		return view.Conversation{}, err
	}
	if err := s.store.EnsureTeams(ctx, []string{team}); err != nil {
		return view.Conversation{}, err
	}
	if err := s.store.SetTeam(ctx, id, team, actor.ID, "manual", "moved to team "+route.HandoffPath([]string{team})+" by "+actor.Name); err != nil {
		return view.Conversation{}, err
	}
	s.announceConversations(ctx, actor.ID, id)
	s.wakeRouter(id)
	return s.conversation(ctx, id)
}

// SetHeld takes a conversation out of automatic routing (held: assigned
// by hand only) or puts it back. Supervisors only.
func (s *Service) SetHeld(ctx context.Context, actor switchboard.Actor, id string, held bool) error {
	if err := require(actor, switchboard.RoleSupervisor, "take conversations out of routing"); err != nil {
		return err
	}
	if err := s.store.SetHeld(ctx, id, held, actor.ID); err != nil {
		return err
	}
	s.wakeRouter(id)
	return nil
}

// Search returns messages whose text matches q, newest first.
func (s *Service) Search(ctx context.Context, actor switchboard.Actor, q string) ([]view.Message, error) {
	q, err := searchQuery(q)
	if err != nil {
		return nil, err
	}
	release, err := s.searchSlot(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	msgs, err := s.store.Search(ctx, q, 50)
	if err != nil {
		return nil, err
	}
	return view.NewMessages(ctx, msgs, s.sign)
}

// Message returns one message.
func (s *Service) Message(ctx context.Context, actor switchboard.Actor, id string) (view.Message, error) {
	m, err := s.store.GetMessage(ctx, id)
	if err != nil {
		return view.Message{}, err
	}
	return view.NewMessage(ctx, m, s.sign)
}
