// Package sendq holds the frames bound for one WebSocket, with a writer
// goroutine that runs only while frames wait. An idle socket then costs
// its reader and its buffers, not a parked writer's stack as well: with
// thousands of idle agents' and visitors' sockets per instance that is a
// third of their memory (docs/benchmarks.md).
package sendq

import "sync/atomic"

// Queue is one socket's outgoing frames.
type Queue[T any] struct {
	ch      chan T
	running atomic.Bool // a writer runs, or the queue is held
	deliver func(T) error
	failed  func(error)
}

// New returns a queue of size frames, held: frames pushed before Start
// wait, so that what must go first (a replay, a greeting) can be written
// by the caller. deliver writes one frame; when it fails the queue stops
// for good and failed is called once, from the writer.
func New[T any](size int, deliver func(T) error, failed func(error)) *Queue[T] {
	q := &Queue[T]{ch: make(chan T, size), deliver: deliver, failed: failed}
	q.running.Store(true)
	return q
}

// Start lets the writer run, once, after New.
func (q *Queue[T]) Start() { go q.drain() }

// Push queues v and starts a writer if none runs. It reports false, and
// drops v, when the queue is full: the socket is not being read fast
// enough, and the caller decides what that means.
func (q *Queue[T]) Push(v T) bool {
	select {
	case q.ch <- v:
	default:
		return false
	}
	if q.running.CompareAndSwap(false, true) {
		go q.drain()
	}
	return true
}

// Len is how many frames wait.
func (q *Queue[T]) Len() int { return len(q.ch) }

func (q *Queue[T]) drain() {
	for {
		select {
		case v := <-q.ch:
			if err := q.deliver(v); err != nil {
				// running stays set: no writer starts again.
				q.failed(err)
				return
			}
			continue
		default:
		}
		q.running.Store(false)
		// A frame pushed after the queue looked empty and before the
		// store saw a writer still running and started none: take it on
		// unless a new writer has.
		if len(q.ch) == 0 || !q.running.CompareAndSwap(false, true) {
			return
		}
	}
}
