// Package bus carries real-time events (docs/design.md §6) between the ingest
// pipeline, the server and the realtime hub: in process for one machine,
// over Redis Pub/Sub when several instances share the load.
//
// Delivery to subscribers is fire-and-forget: an event reaches the
// subscribers that exist when it is published, and a subscriber that falls
// more than its buffer behind loses events (counted by Dropped) rather than
// slowing the publisher. Every event also gets an increasing id and is kept
// in a bounded log (for LogAge, at least), from which Since replays what a
// reconnecting client missed: in memory on one instance (a restart begins a
// new log, and clients resynchronise), in a Redis stream across instances.
// The store is the truth; the log only spares clients a reload.
package bus

import (
	"errors"
	"time"
)

// ErrClosed is returned by Publish and Subscribe once Close has been called.
var ErrClosed = errors.New("bus: closed")

// DefaultBuffer is how many events a subscriber may fall behind before
// events for it are dropped. It covers the largest burst Switchboard
// publishes at once (an announced ingest: up to 512 messages and as many
// conversations) with room to spare; subscribers are few (one per hub on
// each instance, not one per socket), so the memory is small.
const DefaultBuffer = 4096

// Option configures a bus.
type Option func(*options)

type options struct {
	buffer   int
	logAge   time.Duration
	logMax   int
	logBytes int
	clock    func() time.Time
}

// DefaultLogAge is how long events stay in the log by default.
const DefaultLogAge = time.Hour

// WithLog keeps events in the log for age (<= 0: DefaultLogAge) and, in
// memory, at most max of them (<= 0: 100,000).
func WithLog(age time.Duration, max int) Option {
	return func(o *options) {
		if age > 0 {
			o.logAge = age
		}
		if max > 0 {
			o.logMax = max
		}
	}
}

// DefaultLogBytes bounds the in-memory log's size: at full ingest speed
// an hour, or even 100,000 events, of messages as the API shows them is
// hundreds of megabytes, which a socket reconnecting after a second's gap
// does not need (one further back resynchronises). At a helpdesk's usual
// pace 8 MB is many minutes of events; the collector's headroom doubles
// whatever the log holds.
const DefaultLogBytes = 8 << 20

// WithLogBytes bounds the in-memory log to about n bytes of events (<= 0:
// DefaultLogBytes).
func WithLogBytes(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.logBytes = n
		}
	}
}

// WithClock sets the time the log ages by (tests move it).
func WithClock(now func() time.Time) Option { return func(o *options) { o.clock = now } }

// WithBuffer sets the per-subscriber buffer; n <= 0 means DefaultBuffer.
func WithBuffer(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.buffer = n
		}
	}
}

func buildOptions(opts []Option) options {
	o := options{buffer: DefaultBuffer, logAge: DefaultLogAge, logMax: 100_000, logBytes: DefaultLogBytes, clock: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}
