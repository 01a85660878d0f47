package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	switchboard "github.com/switchboard-inbox/switchboard"
)

// DefaultRedisChannel is the Pub/Sub channel used when NewRedis is given "".
const DefaultRedisChannel = "switchboard:bus"

// Redis is the bus for several instances: every instance publishes to and
// subscribes on one Redis Pub/Sub channel, so an event published on any
// instance reaches the subscribers of all of them.
//
// Pub/Sub is at most once: events published while a subscription's
// connection is being re-established are lost.
type Redis struct {
	client  *redis.Client
	channel string
	buffer  int
	dropped atomic.Uint64

	mu     sync.Mutex // guards closed and wg.Add against Close
	closed bool
	done   chan struct{}  // closed by Close; stops every forwarder
	wg     sync.WaitGroup // one per live subscription
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
	return &Redis{client: client, channel: channel, buffer: o.buffer, done: make(chan struct{})}
}

func (r *Redis) isClosed() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// Publish sends ev, JSON-encoded, to every instance's subscribers.
func (r *Redis) Publish(ctx context.Context, ev switchboard.BusEvent) error {
	if r.isClosed() {
		return fmt.Errorf("bus: publish %s: %w", ev.Type, ErrClosed)
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("bus: publish %s: encode: %w", ev.Type, err)
	}
	if err := r.client.Publish(ctx, r.channel, payload).Err(); err != nil {
		return fmt.Errorf("bus: publish %s to redis channel %q: %w", ev.Type, r.channel, err)
	}
	return nil
}

// PublishBatch sends events in one round trip (a pipeline), in order; the
// ingest pipeline announces a whole stored batch this way.
func (r *Redis) PublishBatch(ctx context.Context, evs []switchboard.BusEvent) error {
	if r.isClosed() {
		return fmt.Errorf("bus: publish batch: %w", ErrClosed)
	}
	pipe := r.client.Pipeline()
	for _, ev := range evs {
		payload, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("bus: publish %s: encode: %w", ev.Type, err)
		}
		pipe.Publish(ctx, r.channel, payload)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("bus: publish batch of %d to redis channel %q: %w", len(evs), r.channel, err)
	}
	return nil
}

// Subscribe opens a Pub/Sub connection of its own and returns once Redis
// has confirmed the subscription, so every event published after Subscribe
// returns is delivered. The channel closes when ctx ends or the bus closes.
func (r *Redis) Subscribe(ctx context.Context) (<-chan switchboard.BusEvent, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, fmt.Errorf("bus: subscribe: %w", ErrClosed)
	}
	r.wg.Add(1)
	r.mu.Unlock()

	ps := r.client.Subscribe(ctx, r.channel)
	confirm, err := ps.Receive(ctx)
	if err == nil {
		if _, ok := confirm.(*redis.Subscription); !ok {
			err = fmt.Errorf("unexpected reply %T", confirm)
		}
	}
	if err != nil {
		_ = ps.Close()
		r.wg.Done()
		return nil, fmt.Errorf("bus: subscribe to redis channel %q: %w", r.channel, err)
	}

	// go-redis's own channel pings the connection and resubscribes after a
	// reconnect; the forwarder keeps it drained so that only our bounded
	// buffer decides what is dropped.
	msgs := ps.Channel(redis.WithChannelSize(64))
	out := make(chan switchboard.BusEvent, r.buffer)
	go r.forward(ctx, ps, msgs, out)
	return out, nil
}

func (r *Redis) forward(ctx context.Context, ps *redis.PubSub, msgs <-chan *redis.Message, out chan<- switchboard.BusEvent) {
	defer r.wg.Done()
	defer close(out)
	defer func() {
		_ = ps.Close()
		// go-redis's reader may be mid-send; draining lets it see the
		// closed connection and exit now rather than after its send timeout.
		for range msgs {
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.done:
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			var ev switchboard.BusEvent
			if err := json.Unmarshal([]byte(m.Payload), &ev); err != nil {
				// Not ours (someone else publishing on the channel): nobody
				// can act on it, so it counts as undelivered.
				r.dropped.Add(1)
				continue
			}
			select {
			case out <- ev:
			default:
				r.dropped.Add(1)
			}
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
