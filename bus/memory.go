package bus

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	switchboard "github.com/switchboard-inbox/switchboard"
)

// Memory is the in-process bus for a single instance.
type Memory struct {
	buffer  int
	dropped atomic.Uint64

	// mu guards subs and closed. Publish sends under the read lock and
	// removal closes a channel under the write lock, so a send never meets a
	// closed channel.
	mu     sync.RWMutex
	subs   map[*memSub]struct{}
	closed bool
}

type memSub struct {
	ch   chan switchboard.BusEvent
	stop func() bool // unregisters the context.AfterFunc
}

var _ switchboard.Bus = (*Memory)(nil)

// NewMemory returns an in-process bus.
func NewMemory(opts ...Option) *Memory {
	o := buildOptions(opts)
	return &Memory{buffer: o.buffer, subs: make(map[*memSub]struct{})}
}

// Publish hands ev to every current subscriber without waiting for any of
// them: a subscriber whose buffer is full misses ev and Dropped grows.
func (m *Memory) Publish(ctx context.Context, ev switchboard.BusEvent) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bus: publish %s: %w", ev.Type, err)
	}
	// Subscribers share one event; copy Data so a publisher reusing its
	// buffer cannot change what they read.
	ev.Data = slices.Clone(ev.Data)

	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return fmt.Errorf("bus: publish %s: %w", ev.Type, ErrClosed)
	}
	for s := range m.subs {
		select {
		case s.ch <- ev:
		default:
			m.dropped.Add(1)
		}
	}
	return nil
}

// Subscribe returns a channel of every event published from now on until
// ctx ends or the bus is closed; the channel is then closed.
func (m *Memory) Subscribe(ctx context.Context) (<-chan switchboard.BusEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bus: subscribe: %w", err)
	}
	s := &memSub{ch: make(chan switchboard.BusEvent, m.buffer)}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("bus: subscribe: %w", ErrClosed)
	}
	m.subs[s] = struct{}{}
	// AfterFunc runs at once if ctx ended meanwhile; remove takes the lock
	// in its own goroutine, so holding it here cannot deadlock.
	s.stop = context.AfterFunc(ctx, func() { m.remove(s) })
	return s.ch, nil
}

func (m *Memory) remove(s *memSub) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.subs[s]; ok {
		delete(m.subs, s)
		close(s.ch)
	}
}

// Dropped is the number of events not delivered because a subscriber's
// buffer was full, over the bus's lifetime.
func (m *Memory) Dropped() uint64 { return m.dropped.Load() }

// Close closes every subscription; later Publish and Subscribe calls fail
// with ErrClosed. Close is idempotent.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for s := range m.subs {
		s.stop()
		delete(m.subs, s)
		close(s.ch)
	}
	return nil
}
