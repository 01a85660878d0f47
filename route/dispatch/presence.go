package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/route"
)

// presence counts each agent's open sockets on this instance.
type presence struct {
	mu      sync.Mutex
	sockets map[string]int
	gone    map[string]time.Time // when the last socket closed
	away    map[string]bool      // made away by presence: back online on reconnect
	back    map[string]bool      // reconnected after being made away
}

// Connected records that one of the agent's sockets opened. An agent whom
// presence made away comes back online at the next pass.
func (d *Dispatcher) Connected(agentID string) {
	p := &d.presence
	p.mu.Lock()
	if p.sockets == nil {
		p.sockets, p.gone, p.away, p.back = map[string]int{}, map[string]time.Time{}, map[string]bool{}, map[string]bool{}
	}
	p.sockets[agentID]++
	delete(p.gone, agentID)
	if p.away[agentID] {
		p.back[agentID] = true
	}
	p.mu.Unlock()
	d.Wake()
}

// Disconnected records that one of the agent's sockets closed. When the
// last one stays closed for PresenceGrace, an online agent becomes away.
func (d *Dispatcher) Disconnected(agentID string) {
	p := &d.presence
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sockets[agentID] <= 0 {
		return
	}
	p.sockets[agentID]--
	if p.sockets[agentID] == 0 {
		delete(p.sockets, agentID)
		p.gone[agentID] = d.now()
	}
}

// applyPresence changes the statuses presence calls for.
func (d *Dispatcher) applyPresence(ctx context.Context) error {
	grace := d.PresenceGrace
	p := &d.presence
	now := d.now()
	var toAway, toOnline []string
	p.mu.Lock()
	for id, at := range p.gone {
		if grace > 0 && now.Sub(at) >= grace {
			toAway = append(toAway, id)
		}
	}
	for id := range p.back {
		toOnline = append(toOnline, id)
	}
	p.mu.Unlock()
	var errs []error
	for _, id := range toAway {
		a, err := d.Inbox.GetAgent(ctx, id)
		if err == nil && a.Status == switchboard.AgentOnline {
			_, err = d.Inbox.SetAgentStatus(ctx, switchboard.System, id, switchboard.AgentAway)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("dispatch: presence: %w", err))
			continue
		}
		p.mu.Lock()
		if _, still := p.gone[id]; still {
			delete(p.gone, id)
			p.away[id] = a.Status == switchboard.AgentOnline
		}
		p.mu.Unlock()
		d.logger().Info("dispatch: agent away: no connection", "agent", id, "grace", grace)
	}
	for _, id := range toOnline {
		a, err := d.Inbox.GetAgent(ctx, id)
		// Only undo what presence did: an agent who chose another status
		// since keeps it.
		if err == nil && a.Status == switchboard.AgentAway {
			_, err = d.Inbox.SetAgentStatus(ctx, switchboard.System, id, switchboard.AgentOnline)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("dispatch: presence: %w", err))
			continue
		}
		p.mu.Lock()
		delete(p.back, id)
		delete(p.away, id)
		p.mu.Unlock()
	}
	return errors.Join(errs...)
}

func jsonUnmarshal(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}

// configKey is a canonical form of the stored configuration, to tell
// whether it changed.
func configKey(c route.StoredConfig) []byte {
	b, _ := json.Marshal(struct {
		Teams    map[string]json.RawMessage `json:"teams"`
		Keywords json.RawMessage            `json:"keywords,omitempty"`
	}{c.Teams, c.Keywords})
	return b
}
