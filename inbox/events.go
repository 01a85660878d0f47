package inbox

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/internal/bufpool"
	"github.com/switchboard-inbox/switchboard/view"
)

// Every real-time event is built here, from what the store holds after
// the commit that made the change, so that an event carries exactly what
// the API shows (docs/design.md §6.1): a message as GET /conversations/{id} has
// it, a conversation as the list has it.

func (s *Service) event(typ switchboard.BusEventType, conversationID, agentID string, data any) (switchboard.BusEvent, error) {
	// A pooled buffer: announce gives it back once the bus has copied it.
	b, err := bufpool.JSON(data)
	if err != nil {
		return switchboard.BusEvent{}, fmt.Errorf("inbox: encode %s event: %w", typ, err)
	}
	return switchboard.BusEvent{Type: typ, ConversationID: conversationID, AgentID: agentID, At: s.clock.Now(), Data: b.Bytes()}, nil
}

// conversationEvents returns a conversation.updated event for each of the
// conversations, read once the change is committed. The conversations
// and their presence are read at once: on PostgreSQL and Redis each is a
// round trip.
func (s *Service) conversationEvents(ctx context.Context, by string, ids ...string) ([]switchboard.BusEvent, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var convs []switchboard.Conversation
	var ps map[string]view.Presence
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { convs, err = s.store.ConversationsByID(gctx, ids); return err })
	g.Go(func() (err error) { ps, err = s.presenceOf(gctx, ids); return err })
	if err := g.Wait(); err != nil {
		return nil, err
	}
	evs := make([]switchboard.BusEvent, 0, len(convs))
	for _, c := range convs {
		v := view.NewConversation(c)
		v.Presence = ps[c.ID]
		ev, err := s.event(switchboard.BusConversationUpdated, v.ID, by, v)
		if err != nil {
			return nil, err
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// messageEvents returns a message event of type typ for each message.
func (s *Service) messageEvents(ctx context.Context, typ switchboard.BusEventType, by string, ids ...string) ([]switchboard.BusEvent, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	msgs, err := s.store.MessagesByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	return s.messageEventsOf(ctx, typ, by, msgs)
}

// messageEventsOf returns a message event of type typ for each of msgs.
func (s *Service) messageEventsOf(ctx context.Context, typ switchboard.BusEventType, by string, msgs []switchboard.Message) ([]switchboard.BusEvent, error) {
	evs := make([]switchboard.BusEvent, 0, len(msgs))
	for _, m := range msgs {
		v, err := view.NewMessage(ctx, m, s.sign)
		if err != nil {
			return nil, err
		}
		ev, err := s.event(typ, m.ConversationID, by, v)
		if err != nil {
			return nil, err
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// announce publishes events after the change they report was committed.
// The store is the truth: a lost real-time event only delays what agents
// see until their next fetch (and socket clients resynchronise), so a
// failure is logged, never the operation's error.
func (s *Service) announce(ctx context.Context, evs []switchboard.BusEvent, err error) {
	if err != nil {
		s.log.Warn("inbox: events not built", "err", err)
	}
	if s.bus == nil || len(evs) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	// The bus keeps copies: the events' JSON goes back to the pool.
	defer func() {
		for _, ev := range evs {
			bufpool.PutBytes(ev.Data)
		}
	}()
	if bp, ok := s.bus.(interface {
		PublishBatch(context.Context, []switchboard.BusEvent) error
	}); ok && len(evs) > 1 {
		if err := bp.PublishBatch(ctx, evs); err != nil {
			s.log.Warn("inbox: publish", "events", len(evs), "err", err)
		}
		return
	}
	for _, ev := range evs {
		if err := s.bus.Publish(ctx, ev); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("inbox: publish", "type", ev.Type, "conversation", ev.ConversationID, "err", err)
		}
	}
}

// announceConversations publishes conversation.updated for ids.
func (s *Service) announceConversations(ctx context.Context, by string, ids ...string) {
	evs, err := s.conversationEvents(ctx, by, ids...)
	s.announce(ctx, evs, err)
}

// announceMessages publishes message events of type typ for ids.
func (s *Service) announceMessages(ctx context.Context, typ switchboard.BusEventType, by string, ids ...string) {
	evs, err := s.messageEvents(ctx, typ, by, ids...)
	s.announce(ctx, evs, err)
}

// announceAgent publishes agent.status for a.
func (s *Service) announceAgent(ctx context.Context, a switchboard.Agent) {
	ev, err := s.event(switchboard.BusAgentStatus, "", a.ID, view.AgentStatus{Status: a.Status})
	s.announce(ctx, []switchboard.BusEvent{ev}, err)
}
