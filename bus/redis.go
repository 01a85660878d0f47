package bus

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	switchboard "github.com/switchboard-inbox/switchboard"
)

// DefaultRedisChannel is the Pub/Sub channel used when NewRedis is given "".
const DefaultRedisChannel = "switchboard:bus"

// Redis is the bus for several instances: every instance publishes to and
// subscribes on one Redis Pub/Sub channel, so an event published on any
// instance reaches the subscribers of all of them. Each event is first
// added to a stream (channel + ":log"), whose id it takes and which keeps
// the last LogAge of events for Since; one script does both, so the order
// of ids is the order subscribers see.
//
// An instance's subscribers share one Pub/Sub connection: each event
// crosses from Redis and is decoded once per instance, whatever the number
// of subscribers (the agents' hub, the live-chat hub).
//
// Pub/Sub is at most once: events published while the connection is being
// re-established are lost to it, and stay in the log.
type Redis struct {
	client  *redis.Client
	channel string
	stream  string
	logAge  time.Duration
	buffer  int
	dropped atomic.Uint64

	subscribing sync.Mutex // one Subscribe at a time starts the shared subscription

	mu     sync.Mutex // guards closed, subs, live and wg.Add against Close
	closed bool
	live   bool                                   // the shared subscription runs
	subs   map[chan switchboard.BusEvent]struct{} // what the forwarder delivers to
	done   chan struct{}                          // closed by Close; stops the forwarder
	wg     sync.WaitGroup                         // the forwarder and each subscriber's watcher
}

var _ switchboard.Bus = (*Redis)(nil)

// NewRedis returns a bus on the given Pub/Sub channel (DefaultRedisChannel
// if empty). The client stays the caller's: Close does not close it.
func NewRedis(client *redis.Client, channel string, opts ...Option) *Redis {
	if client == nil {
		panic("bus: NewRedis with nil client")
	}
	if channel == "" {
		channel = DefaultRedisChannel
	}
	o := buildOptions(opts)
	return &Redis{client: client, channel: channel, stream: channel + ":log", logAge: o.logAge, buffer: o.buffer,
		subs: map[chan switchboard.BusEvent]struct{}{}, done: make(chan struct{})}
}

// publishScript adds an event to the log, trimming what is older than the
// log's age by Redis's own clock, and publishes it with its id in front.
var publishScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = redis.call('XADD', KEYS[1], 'MINID', '=', tostring(now - tonumber(ARGV[1])), '*', 'e', ARGV[2])
redis.call('PUBLISH', KEYS[2], id .. ' ' .. ARGV[2])
return id
`)

func (r *Redis) encode(ev switchboard.BusEvent) (string, error) {
	ev.ID = "" // the stream gives it
	b, err := json.Marshal(ev)
	if err != nil {
		return "", fmt.Errorf("bus: publish %s: encode: %w", ev.Type, err)
	}
	return string(b), nil
}

func (r *Redis) publishArgs(payload string) ([]string, []any) {
	return []string{r.stream, r.channel}, []any{r.logAge.Milliseconds(), payload}
}

// decode reads "<id> <json>" as the script publishes it.
func decode(msg string) (switchboard.BusEvent, bool) {
	id, payload, ok := strings.Cut(msg, " ")
	var ev switchboard.BusEvent
	if !ok || json.Unmarshal([]byte(payload), &ev) != nil {
		return ev, false
	}
	ev.ID = id
	return ev, true
}

// Since returns the events after since from the log, oldest first, at
// most max (<= 0: all); ErrResync when the log lost events after since
// (trimmed, or Redis restarted) or never held it.
func (r *Redis) Since(ctx context.Context, since string, max int) ([]switchboard.BusEvent, error) {
	if switchboard.CompareEventIDs(since, "0-0") <= 0 {
		return nil, switchboard.ErrResync
	}
	info, err := r.client.XInfoStream(ctx, r.stream).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			return nil, switchboard.ErrResync
		}
		return nil, fmt.Errorf("bus: event log: %w", err)
	}
	// Trimming leaves no mark, so an id older than the oldest kept may
	// have had successors trimmed: resync (at worst needlessly, when its
	// successor is the oldest kept). Newer than the last one: not ours.
	last := switchboard.CompareEventIDs(since, info.LastGeneratedID)
	switch {
	case last > 0:
		return nil, switchboard.ErrResync
	case last == 0:
		return nil, nil
	case info.Length == 0, switchboard.CompareEventIDs(since, info.FirstEntry.ID) < 0, switchboard.CompareEventIDs(since, info.MaxDeletedEntryID) < 0:
		return nil, switchboard.ErrResync
	}
	var msgs []redis.XMessage
	if max > 0 {
		msgs, err = r.client.XRangeN(ctx, r.stream, "("+since, "+", int64(max)).Result()
	} else {
		msgs, err = r.client.XRange(ctx, r.stream, "("+since, "+").Result()
	}
	if err != nil {
		return nil, fmt.Errorf("bus: event log: %w", err)
	}
	out := make([]switchboard.BusEvent, 0, len(msgs))
	for _, m := range msgs {
		payload, _ := m.Values["e"].(string)
		ev, ok := decode(m.ID + " " + payload)
		if !ok {
			continue
		}
		out = append(out, ev)
	}
	return out, nil
}

func (r *Redis) isClosed() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// Publish adds ev to the log, which gives it its id, and sends it to every
// instance's subscribers.
func (r *Redis) Publish(ctx context.Context, ev switchboard.BusEvent) error {
	if r.isClosed() {
		return fmt.Errorf("bus: publish %s: %w", ev.Type, ErrClosed)
	}
	payload, err := r.encode(ev)
	if err != nil {
		return err
	}
	keys, args := r.publishArgs(payload)
	if err := publishScript.Run(ctx, r.client, keys, args...).Err(); err != nil {
		return fmt.Errorf("bus: publish %s to redis channel %q: %w", ev.Type, r.channel, err)
	}
	return nil
}

// PublishBatch publishes events in one round trip (a pipeline), in order;
// the ingest path announces a whole stored batch this way.
func (r *Redis) PublishBatch(ctx context.Context, evs []switchboard.BusEvent) error {
	if r.isClosed() {
		return fmt.Errorf("bus: publish batch: %w", ErrClosed)
	}
	// Load the script once so that the pipeline can run it by its hash.
	if err := publishScript.Load(ctx, r.client).Err(); err != nil {
		return fmt.Errorf("bus: publish batch: %w", err)
	}
	pipe := r.client.Pipeline()
	for _, ev := range evs {
		payload, err := r.encode(ev)
		if err != nil {
			return err
		}
		keys, args := r.publishArgs(payload)
		publishScript.EvalSha(ctx, pipe, keys, args...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("bus: publish batch of %d to redis channel %q: %w", len(evs), r.channel, err)
	}
	return nil
}

// Subscribe returns once Redis has confirmed the instance's subscription
// (the first Subscribe opens it), so every event published after
// Subscribe returns is delivered. The channel closes when ctx ends or the
// bus closes.
func (r *Redis) Subscribe(ctx context.Context) (<-chan switchboard.BusEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bus: subscribe: %w", err)
	}
	r.subscribing.Lock()
	defer r.subscribing.Unlock()
	r.mu.Lock()
	closed, live := r.closed, r.live
	r.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("bus: subscribe: %w", ErrClosed)
	}
	if !live {
		if err := r.open(ctx); err != nil {
			return nil, err
		}
	}

	out := make(chan switchboard.BusEvent, r.buffer)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, fmt.Errorf("bus: subscribe: %w", ErrClosed)
	}
	r.subs[out] = struct{}{}
	r.wg.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		select {
		case <-ctx.Done():
			r.mu.Lock()
			if _, ok := r.subs[out]; ok {
				delete(r.subs, out)
				close(out)
			}
			r.mu.Unlock()
		case <-r.done: // the forwarder closes every channel
		}
	}()
	return out, nil
}

// open starts the instance's subscription and its forwarder.
func (r *Redis) open(ctx context.Context) error {
	ps := r.client.Subscribe(ctx, r.channel)
	confirm, err := ps.Receive(ctx)
	if err == nil {
		if _, ok := confirm.(*redis.Subscription); !ok {
			err = fmt.Errorf("unexpected reply %T", confirm)
		}
	}
	if err != nil {
		_ = ps.Close()
		return fmt.Errorf("bus: subscribe to redis channel %q: %w", r.channel, err)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		_ = ps.Close()
		return fmt.Errorf("bus: subscribe: %w", ErrClosed)
	}
	r.live = true
	r.wg.Add(1)
	r.mu.Unlock()
	// go-redis's own channel pings the connection and resubscribes after a
	// reconnect; the forwarder keeps it drained so that only the
	// subscribers' bounded buffers decide what is dropped.
	go r.forward(ps, ps.Channel(redis.WithChannelSize(64)))
	return nil
}

// forward decodes each event once and hands every subscriber its own copy,
// never waiting for one: a subscriber whose buffer is full loses it,
// counted.
func (r *Redis) forward(ps *redis.PubSub, msgs <-chan *redis.Message) {
	defer r.wg.Done()
	defer func() {
		r.mu.Lock()
		for out := range r.subs {
			close(out)
		}
		clear(r.subs)
		r.live = false
		r.mu.Unlock()
	}()
	defer func() {
		_ = ps.Close()
		// go-redis's reader may be mid-send; draining lets it see the
		// closed connection and exit now rather than after its send timeout.
		for range msgs {
		}
	}()
	for {
		select {
		case <-r.done:
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			ev, ok := decode(m.Payload)
			r.mu.Lock()
			for out := range r.subs {
				if !ok {
					// Not ours (someone else publishing on the channel):
					// nobody can act on it, so it counts as undelivered.
					r.dropped.Add(1)
					continue
				}
				cp := ev
				cp.Data = bytes.Clone(ev.Data)
				cp.Visitors = slices.Clone(ev.Visitors)
				select {
				case out <- cp:
				default:
					r.dropped.Add(1)
				}
			}
			r.mu.Unlock()
		}
	}
}

// Dropped is the number of events this instance did not deliver to one of
// its subscribers because that subscriber's buffer was full (or the payload
// was not a BusEvent), over the bus's lifetime.
func (r *Redis) Dropped() uint64 { return r.dropped.Load() }

// Close ends every subscription, waits for their channels to close, and
// makes later Publish and Subscribe calls fail with ErrClosed. It does not
// close the Redis client. Close is idempotent.
func (r *Redis) Close() error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.done)
	}
	r.mu.Unlock()
	r.wg.Wait()
	return nil
}
