package bus

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

// MemoryPresence keeps presence in this process: for one instance.
// Entries expire on their own; reads skip expired ones.
type MemoryPresence struct {
	clock switchboard.Clock

	mu      sync.Mutex
	entries map[presenceKey]presenceValue
}

type presenceKey struct {
	conversation, agent string
	kind                switchboard.PresenceKind
}

type presenceValue struct {
	name  string
	until time.Time
}

var _ switchboard.Presence = (*MemoryPresence)(nil)

// NewMemoryPresence returns an empty presence reading time from clock
// (nil: the system clock).
func NewMemoryPresence(clock switchboard.Clock) *MemoryPresence {
	if clock == nil {
		clock = switchboard.SystemClock{}
	}
	return &MemoryPresence{clock: clock, entries: map[presenceKey]presenceValue{}}
}

// Put records e until ttl has passed.
func (p *MemoryPresence) Put(_ context.Context, e switchboard.PresenceEntry, ttl time.Duration) (bool, error) {
	now := p.clock.Now()
	k := presenceKey{e.ConversationID, e.AgentID, e.Kind}
	p.mu.Lock()
	defer p.mu.Unlock()
	old, ok := p.entries[k]
	p.entries[k] = presenceValue{name: e.Name, until: now.Add(ttl)}
	return !ok || !old.until.After(now), nil
}

// Remove deletes e and reports whether it was live.
func (p *MemoryPresence) Remove(_ context.Context, e switchboard.PresenceEntry) (bool, error) {
	k := presenceKey{e.ConversationID, e.AgentID, e.Kind}
	p.mu.Lock()
	defer p.mu.Unlock()
	old, ok := p.entries[k]
	delete(p.entries, k)
	return ok && old.until.After(p.clock.Now()), nil
}

// Of returns the live entries of the conversations, by agent name then id;
// expired entries found on the way are dropped.
func (p *MemoryPresence) Of(_ context.Context, ids []string) ([]switchboard.PresenceEntry, error) {
	now := p.clock.Now()
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	var out []switchboard.PresenceEntry
	p.mu.Lock()
	for k, v := range p.entries {
		if !v.until.After(now) {
			delete(p.entries, k)
			continue
		}
		if want[k.conversation] {
			out = append(out, switchboard.PresenceEntry{ConversationID: k.conversation, AgentID: k.agent, Name: v.name, Kind: k.kind})
		}
	}
	p.mu.Unlock()
	sortPresence(out)
	return out, nil
}

// sortPresence orders entries by conversation, agent name and id, the
// order agents' screens list them in.
func sortPresence(es []switchboard.PresenceEntry) {
	slices.SortFunc(es, func(a, b switchboard.PresenceEntry) int {
		return cmp.Or(cmp.Compare(a.ConversationID, b.ConversationID), cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.AgentID, b.AgentID), cmp.Compare(a.Kind, b.Kind))
	})
}
