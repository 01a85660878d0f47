package bus

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	switchboard "github.com/switchboard-inbox/switchboard"
)

// Memory is the in-process bus for a single instance.
type Memory struct {
	buffer   int
	dropped  atomic.Uint64
	logAge   time.Duration
	logMax   int
	logLimit int // bytes
	clock    func() time.Time
	// epoch starts every id of this process's log, so that an id from an
	// earlier run is known as not ours.
	epoch uint64

	// mu guards subs, the log and closed. Publish sends under it and
	// removal closes a channel under it, so a send never meets a closed
	// channel; holding it while assigning the id keeps the log in order.
	mu       sync.Mutex
	subs     map[*memSub]struct{}
	seq      uint64
	log      ring   // oldest first
	logBytes int    // the log's events' size, as entrySize counts
	evicted  uint64 // the sequence of the newest event dropped from the log
	closed   bool
}

type memEntry struct {
	seq uint64
	at  time.Time
	ev  switchboard.BusEvent
}

type memSub struct {
	ch   chan switchboard.BusEvent
	stop func() bool // unregisters the context.AfterFunc
}

var _ switchboard.Bus = (*Memory)(nil)

// NewMemory returns an in-process bus.
func NewMemory(opts ...Option) *Memory {
	o := buildOptions(opts)
	return &Memory{buffer: o.buffer, subs: make(map[*memSub]struct{}), logAge: o.logAge, logMax: o.logMax, logLimit: o.logBytes, clock: o.clock,
		epoch: uint64(time.Now().UnixMilli())}
}

// Publish gives ev its id, keeps it in the log and hands it to every
// current subscriber without waiting for any of them: a subscriber whose
// buffer is full misses ev and Dropped grows.
func (m *Memory) Publish(ctx context.Context, ev switchboard.BusEvent) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bus: publish %s: %w", ev.Type, err)
	}
	// Subscribers share one event; copy Data so a publisher reusing its
	// buffer cannot change what they read.
	ev.Data = slices.Clone(ev.Data)

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("bus: publish %s: %w", ev.Type, ErrClosed)
	}
	m.seq++
	ev.ID = strconv.FormatUint(m.epoch, 10) + "-" + strconv.FormatUint(m.seq, 10)
	now := m.clock()
	m.log.push(memEntry{m.seq, now, ev})
	m.logBytes += entrySize(&ev)
	m.trim(now)
	for s := range m.subs {
		select {
		case s.ch <- ev:
		default:
			m.dropped.Add(1)
		}
	}
	return nil
}

// entrySize is about what an event in the log holds in memory: its slot
// in the ring and what the slot points to.
func entrySize(ev *switchboard.BusEvent) int {
	n := int(unsafe.Sizeof(memEntry{})) + len(ev.ID) + len(ev.Type) + len(ev.ConversationID) + len(ev.AgentID) + len(ev.Data)
	for _, v := range ev.Visitors {
		n += int(unsafe.Sizeof(v)) + len(v)
	}
	return n
}

// trim drops from the log what is older than its age or beyond its size
// (in events or bytes).
func (m *Memory) trim(now time.Time) {
	for m.log.n > 0 {
		e := m.log.at(0)
		if m.log.n <= m.logMax && m.logBytes <= m.logLimit && now.Sub(e.at) <= m.logAge {
			break
		}
		m.logBytes -= entrySize(&e.ev)
		m.evicted = e.seq
		m.log.pop()
	}
}

// ring holds the log in a circular array that grows and shrinks by
// halves: publishing into a full log reuses the slot of the event it
// drops, instead of appending to a re-sliced array that is copied anew
// every time it fills (at full ingest speed that churn was 1.5 KB of
// garbage per message).
type ring struct {
	buf  []memEntry // len is a power of two
	head int        // index of the oldest entry
	n    int
}

func (r *ring) at(i int) *memEntry { return &r.buf[(r.head+i)&(len(r.buf)-1)] }

func (r *ring) push(e memEntry) {
	if r.n == len(r.buf) {
		r.resize(max(2*len(r.buf), 64))
	}
	*r.at(r.n) = e
	r.n++
}

func (r *ring) pop() {
	*r.at(0) = memEntry{} // let the collector have the event
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	// Shrink once mostly empty, so a burst does not pin its array.
	if len(r.buf) > 64 && r.n < len(r.buf)/4 {
		r.resize(len(r.buf) / 2)
	}
}

func (r *ring) resize(size int) {
	buf := make([]memEntry, size)
	for i := range r.n {
		buf[i] = *r.at(i)
	}
	r.buf, r.head = buf, 0
}

// Since returns the events after since, oldest first, at most max
// (<= 0: all); ErrResync when since is not this process's or has been
// dropped from the log.
func (m *Memory) Since(ctx context.Context, since string, max int) ([]switchboard.BusEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	epoch, seq, ok := splitID(since)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.trim(m.clock())
	if !ok || epoch != m.epoch || seq < m.evicted || seq > m.seq {
		return nil, switchboard.ErrResync
	}
	// Sequences in the log are consecutive: the one after since is at
	// since's distance from the oldest.
	i := m.log.n
	if m.log.n > 0 {
		i = int(seq + 1 - m.log.at(0).seq)
	}
	n := m.log.n - i
	if max > 0 {
		n = min(n, max)
	}
	out := make([]switchboard.BusEvent, n)
	for j := range out {
		out[j] = m.log.at(i + j).ev
	}
	return out, nil
}

func splitID(id string) (epoch, seq uint64, ok bool) {
	for i := 0; i < len(id); i++ {
		if id[i] == '-' {
			e, err1 := strconv.ParseUint(id[:i], 10, 64)
			s, err2 := strconv.ParseUint(id[i+1:], 10, 64)
			return e, s, err1 == nil && err2 == nil
		}
	}
	return 0, 0, false
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
