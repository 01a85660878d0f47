package inbox

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/view"
)

// How long presence lasts without renewal (docs/design.md §6.1): typing ends 5 s
// after the last typing frame (clients repeat it every 3 s); viewing is
// renewed by the agent's connection and ends when it closes.
const (
	TypingTTL  = 5 * time.Second
	ViewingTTL = 60 * time.Second
)

// SetViewing records that the actor is viewing the conversation (on) or
// no longer is, and tells every agent when that changed who is there. It
// never blocks anything: viewing is a soft lock.
func (s *Service) SetViewing(ctx context.Context, actor switchboard.Actor, conversationID string, on bool) error {
	if err := s.setPresence(ctx, actor, conversationID, switchboard.PresenceViewing, on, ViewingTTL); err != nil || !on {
		return err
	}
	// An agent with the conversation open has read what the live-chat
	// visitor wrote: the visitor gets read receipts (docs/design.md §6.2).
	// The viewing socket renews this every heartbeat, which catches what
	// arrived meanwhile.
	ids, err := s.store.MarkInboundRead(ctx, conversationID, switchboard.ChannelLivechat)
	if err != nil {
		s.log.Warn("inbox: mark live chat read", "conversation", conversationID, "err", err)
		return nil
	}
	s.announceMessages(ctx, switchboard.BusMessageUpdated, actor.ID, ids...)
	return nil
}

// Typing records that the actor is typing a reply in the conversation, for
// TypingTTL, and tells every agent when that is news.
func (s *Service) Typing(ctx context.Context, actor switchboard.Actor, conversationID string) error {
	return s.setPresence(ctx, actor, conversationID, switchboard.PresenceTyping, true, TypingTTL)
}

func (s *Service) setPresence(ctx context.Context, actor switchboard.Actor, conversationID string, kind switchboard.PresenceKind, on bool, ttl time.Duration) error {
	if actor.IsSystem() {
		return switchboard.Errorf(switchboard.EINVALID, "presence is an agent's")
	}
	if _, err := s.store.GetConversation(ctx, conversationID); err != nil {
		return err
	}
	e := switchboard.PresenceEntry{ConversationID: conversationID, AgentID: actor.ID, Name: actor.Name, Kind: kind}
	var changed bool
	var err error
	if on {
		changed, err = s.presence.Put(ctx, e, ttl)
	} else {
		changed, err = s.presence.Remove(ctx, e)
	}
	if err != nil {
		return fmt.Errorf("inbox: presence: %w", err)
	}
	if changed {
		s.announcePresence(ctx, actor.ID, conversationID)
	}
	return nil
}

// announcePresence publishes who is now viewing and typing in a
// conversation, and watches it so that an entry expiring is announced too.
func (s *Service) announcePresence(ctx context.Context, by, conversationID string) {
	ps, err := s.presenceOf(ctx, []string{conversationID})
	if err != nil {
		s.announce(ctx, nil, err)
		return
	}
	p := ps[conversationID]
	s.watchMu.Lock()
	if len(p.Viewing)+len(p.Typing) > 0 {
		s.watched[conversationID] = presenceKey(p)
	} else {
		delete(s.watched, conversationID)
	}
	s.watchMu.Unlock()
	ev, err := s.event(switchboard.BusPresence, conversationID, by, p)
	s.announce(ctx, []switchboard.BusEvent{ev}, err)
}

func presenceKey(p view.Presence) string {
	b, _ := json.Marshal(p)
	return string(b)
}

// SweepPresence announces the conversations whose presence changed with
// nobody saying so: an agent stopped typing (typing ends TypingTTL after
// the last frame) or a viewer's entry ran out. Each instance watches the
// conversations its own agents' frames touched; RunPresence calls it.
func (s *Service) SweepPresence(ctx context.Context) error {
	s.watchMu.Lock()
	ids := make([]string, 0, len(s.watched))
	for id := range s.watched {
		ids = append(ids, id)
	}
	s.watchMu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	ps, err := s.presenceOf(ctx, ids)
	if err != nil {
		return err
	}
	for _, id := range ids {
		p := ps[id]
		s.watchMu.Lock()
		last, ok := s.watched[id]
		changed := ok && last != presenceKey(p)
		if len(p.Viewing)+len(p.Typing) == 0 {
			delete(s.watched, id)
		} else if changed {
			s.watched[id] = presenceKey(p)
		}
		s.watchMu.Unlock()
		if changed {
			ev, err := s.event(switchboard.BusPresence, id, "", p)
			s.announce(ctx, []switchboard.BusEvent{ev}, err)
		}
	}
	return nil
}

// RunPresence sweeps presence every interval until ctx ends.
func (s *Service) RunPresence(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.SweepPresence(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("inbox: presence sweep", "err", err)
			}
		}
	}
}

// presenceOf returns the presence of each conversation named (nobody,
// for one nobody is in).
func (s *Service) presenceOf(ctx context.Context, ids []string) (map[string]view.Presence, error) {
	out := make(map[string]view.Presence, len(ids))
	for _, id := range ids {
		out[id] = view.NoPresence()
	}
	es, err := s.presence.Of(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("inbox: presence: %w", err)
	}
	for _, e := range es {
		p := out[e.ConversationID]
		ref := view.Ref{ID: e.AgentID, Name: e.Name}
		switch e.Kind {
		case switchboard.PresenceTyping:
			p.Typing = append(p.Typing, ref)
		case switchboard.PresenceCustomerTyping:
			p.CustomerTyping = true
		default:
			p.Viewing = append(p.Viewing, ref)
		}
		out[e.ConversationID] = p
	}
	return out, nil
}

// withPresence returns the views of convs with who is in each.
func (s *Service) withPresence(ctx context.Context, convs []switchboard.Conversation) ([]view.Conversation, error) {
	ids := make([]string, len(convs))
	for i, c := range convs {
		ids[i] = c.ID
	}
	ps, err := s.presenceOf(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]view.Conversation, len(convs))
	for i, c := range convs {
		out[i] = view.NewConversation(c)
		out[i].Presence = ps[c.ID]
	}
	return out, nil
}
