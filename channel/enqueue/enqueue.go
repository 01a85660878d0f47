// Package enqueue hands a normalised inbound message to the durable queue,
// the last step of every channel's webhook before its 2xx.
package enqueue

import (
	"context"
	"fmt"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/internal/bufpool"
)

// Inbound enqueues in's JSON on channel ch. The JSON is written into a
// pooled buffer, which q does not keep past Enqueue.
func Inbound(ctx context.Context, q switchboard.Queue, ch switchboard.Channel, in *switchboard.Inbound) error {
	buf, err := bufpool.JSON(in)
	if err != nil {
		return fmt.Errorf("encode %s message: %w", ch, err)
	}
	defer bufpool.Put(buf)
	return q.Enqueue(ctx, ch, buf.Bytes())
}
