package inbox

import (
	"context"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/route"
)

// What the router (package route/dispatch) reads and changes. An automatic
// assignment and a conversation returned to the queue are announced as
// any other change of a conversation.

// RoutingAgents returns every agent with their load, as the router sees them.
func (s *Service) RoutingAgents(ctx context.Context) ([]route.AgentState, error) {
	return s.store.RoutingAgents(ctx)
}

// WaitingConversations returns up to limit conversations of the waiting
// queue after the cursor (nil: from the start), in the order they are
// served.
func (s *Service) WaitingConversations(ctx context.Context, after *route.QueueCursor, limit int) ([]route.Waiting, error) {
	return s.store.WaitingConversations(ctx, after, limit)
}

// WaitingInClass returns a page of the queue's conversations of one
// channel class.
func (s *Service) WaitingInClass(ctx context.Context, c switchboard.ChannelClass, after *route.QueueCursor, limit int) ([]route.Waiting, error) {
	return s.store.WaitingInClass(ctx, c, after, limit)
}

// WaitingByIDs returns those of the conversations that wait for an agent,
// in queue order.
func (s *Service) WaitingByIDs(ctx context.Context, ids []string) ([]route.Waiting, error) {
	return s.store.WaitingByIDs(ctx, ids)
}

// FillWaiting completes waiting conversations with what deciding needs.
func (s *Service) FillWaiting(ctx context.Context, ws []route.Waiting, since time.Time) error {
	return s.store.FillWaiting(ctx, ws, since)
}

// WaitingCount is the number of conversations waiting for an agent.
func (s *Service) WaitingCount(ctx context.Context) (int, error) { return s.store.WaitingCount(ctx) }

// StoredRoutingConfig returns the routing configuration as stored.
func (s *Service) StoredRoutingConfig(ctx context.Context) (route.StoredConfig, error) {
	return s.store.GetRoutingConfig(ctx)
}

// LatestClassifierID returns the id of the newest topic classifier.
func (s *Service) LatestClassifierID(ctx context.Context) (string, error) {
	return s.store.LatestClassifierID(ctx)
}

// LoadClassifier returns the newest topic classifier, or ENOTFOUND.
func (s *Service) LoadClassifier(ctx context.Context) (route.StoredModel, error) {
	return s.store.LoadClassifier(ctx)
}

// ResolvedTopics returns labelled conversations to train the classifier on.
func (s *Service) ResolvedTopics(ctx context.Context, limit int) ([]route.Labeled, error) {
	return s.store.ResolvedTopics(ctx, limit)
}

// SaveClassifier stores a trained classifier; routers pick it up.
func (s *Service) SaveClassifier(ctx context.Context, model []byte, accuracy float64, n int) (string, error) {
	return s.store.SaveClassifier(ctx, model, accuracy, n)
}

// AssignRouted assigns a waiting conversation for the router, under the
// agent's cap, safely beside other routers; see store.AssignRouted for
// the errors that say why it did not.
func (s *Service) AssignRouted(ctx context.Context, a route.Assignment) error {
	if err := s.store.AssignRouted(ctx, a); err != nil {
		return err
	}
	s.announceConversations(ctx, "", a.ConversationID)
	return nil
}

// RecordWaiting notes why a conversation waits, when that changed.
func (s *Service) RecordWaiting(ctx context.Context, d route.WaitDecision) (bool, error) {
	return s.store.RecordWaiting(ctx, d)
}

// SetRoutedTeam records the team a waiting conversation is routed in (an
// after-hours hand-off, or back home).
func (s *Service) SetRoutedTeam(ctx context.Context, conversationID, routed string, path []string, rule, reason string) (bool, error) {
	return s.store.SetRoutedTeam(ctx, conversationID, routed, path, rule, reason)
}

// ClaimAck reserves a conversation's after-hours acknowledgement.
func (s *Service) ClaimAck(ctx context.Context, conversationID, period string) (route.AckClaim, error) {
	return s.store.ClaimAck(ctx, conversationID, period)
}

// RecordAck notes an acknowledgement sent, or skipped with the reason.
func (s *Service) RecordAck(ctx context.Context, c route.AckClaim, ch switchboard.Channel, text, skipped string) error {
	return s.store.RecordAck(ctx, c, ch, text, skipped)
}

// ReleaseAck gives back a claim whose acknowledgement could not be sent.
func (s *Service) ReleaseAck(ctx context.Context, c route.AckClaim) error {
	return s.store.ReleaseAck(ctx, c)
}

// ReturnAbsent puts back in the queue the router-assigned chat-like
// conversations of agents away or offline for at least grace.
func (s *Service) ReturnAbsent(ctx context.Context, grace time.Duration) ([]route.Returned, error) {
	out, err := s.store.ReturnAbsent(ctx, grace)
	if len(out) > 0 {
		ids := make([]string, len(out))
		for i, r := range out {
			ids[i] = r.ConversationID
		}
		s.announceConversations(ctx, "", ids...)
	}
	return out, err
}

// NoteContinuity records that a message on a new channel stayed with the
// conversation's agent.
func (s *Service) NoteContinuity(ctx context.Context, conversationID string, ch switchboard.Channel) (bool, string, error) {
	return s.store.NoteContinuity(ctx, conversationID, ch)
}

// GetAgent returns one agent.
func (s *Service) GetAgent(ctx context.Context, id string) (switchboard.Agent, error) {
	return s.store.GetAgent(ctx, id)
}
