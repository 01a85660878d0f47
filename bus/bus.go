// Package bus carries real-time events (docs/design.md §6) between the ingest
// pipeline, the server and the realtime hub: in process for one machine,
// over Redis Pub/Sub when several instances share the load.
//
// Both implementations are fire-and-forget: an event reaches the
// subscribers that exist when it is published, and a subscriber that falls
// more than its buffer behind loses events (counted by Dropped) rather than
// slowing the publisher. Nothing here is durable; durable state lives in the
// store and agents' browsers resynchronise from it on reconnect.
package bus

import "errors"

// ErrClosed is returned by Publish and Subscribe once Close has been called.
var ErrClosed = errors.New("bus: closed")

// DefaultBuffer is how many events a subscriber may fall behind before
// events for it are dropped. It covers bursts (a bulk reassignment touches
// hundreds of conversations) without letting a stuck socket hold much memory.
const DefaultBuffer = 256

// Option configures a bus.
type Option func(*options)

type options struct {
	buffer int
}

// WithBuffer sets the per-subscriber buffer; n <= 0 means DefaultBuffer.
func WithBuffer(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.buffer = n
		}
	}
}

func buildOptions(opts []Option) options {
	o := options{buffer: DefaultBuffer}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}
