// Package queue holds the durable inbound queue between the channel
// adapters' webhooks and the ingest pipeline (docs/design.md §1): a table in its own
// SQLite file for the embedded deployment, and Redis Streams with consumer
// groups for several instances. Both deliver at least once and take entries
// fairly across channels, so a flood on one channel cannot hold back another.
package queue

import (
	"errors"
	"fmt"

	switchboard "github.com/switchboard-inbox/switchboard"
)

// ErrClosed is returned by a queue's methods once Close has been called.
var ErrClosed = errors.New("queue: closed")

// validate rejects what neither implementation could deliver: a channel the
// consumers do not visit would hold its entries for ever.
func validate(ch switchboard.Channel) error {
	if !ch.Valid() {
		return fmt.Errorf("queue: enqueue: %w", switchboard.Errorf(switchboard.EINVALID, "unknown channel %q", ch))
	}
	return nil
}

func validateMax(max int) error {
	if max <= 0 {
		return fmt.Errorf("queue: receive: %w", switchboard.Errorf(switchboard.EINVALID, "max must be positive, got %d", max))
	}
	return nil
}

// fairShares splits max among channels that have avail[i] entries ready,
// one at a time in turn starting at start, so every channel with entries
// gets an equal share and a share a channel cannot use goes to the others.
func fairShares(avail []int, max, start int) []int {
	n := len(avail)
	out := make([]int, n)
	left := make([]int, n)
	copy(left, avail)
	for max > 0 {
		gave := false
		for k := 0; k < n && max > 0; k++ {
			i := (start + k) % n
			if left[i] > 0 {
				left[i]--
				out[i]++
				max--
				gave = true
			}
		}
		if !gave {
			break
		}
	}
	return out
}
