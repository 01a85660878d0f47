// Package outbox sends agents' replies. A reply is stored with an outbox
// row in the same transaction; a Worker claims due rows, hands each to its
// channel's sender, and records the outcome, retrying with exponential
// backoff and failing the message for good after MaxAttempts.
package outbox

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/metrics"
)

// Inbox is where the worker claims replies and records how sending went
// (package inbox, which announces each outcome).
type Inbox interface {
	ClaimOutbox(ctx context.Context, n int, lease time.Duration) ([]switchboard.OutboxItem, error)
	CompleteOutbox(ctx context.Context, it switchboard.OutboxItem, providerID string) error
	FailOutbox(ctx context.Context, it switchboard.OutboxItem, cause string, retryAt time.Time) error
}

// Senders gives the sender of a channel, or nil when none is configured.
type Senders interface {
	Sender(switchboard.Channel) switchboard.Sender
}

// SenderMap is a fixed set of senders.
type SenderMap map[switchboard.Channel]switchboard.Sender

// Sender returns the sender of ch, or nil.
func (m SenderMap) Sender(ch switchboard.Channel) switchboard.Sender { return m[ch] }

// Worker sends outbox rows. Several workers, in one process or many, may
// run against one PostgreSQL database: rows are claimed with a lease and
// SKIP LOCKED, so each row is sent by one worker at a time.
type Worker struct {
	Inbox Inbox
	// Senders says what sends on each channel, at the time of each send:
	// an admin may change the channels' settings while the worker runs.
	Senders Senders
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	Clock   switchboard.Clock

	MaxAttempts int           // default 8
	BaseBackoff time.Duration // first retry delay, doubled each attempt (default 2s)
	MaxBackoff  time.Duration // default 15m
	// Lease is how long a claimed row is held before another worker may
	// take it; it must exceed the slowest send (default 2m).
	Lease     time.Duration
	Poll      time.Duration // how often to look for due rows (default 500ms)
	BatchSize int           // rows claimed at once (default 16)

	once sync.Once
	wake chan struct{}
}

func (w *Worker) init() {
	w.once.Do(func() {
		w.wake = make(chan struct{}, 1)
		if w.MaxAttempts <= 0 {
			w.MaxAttempts = 8
		}
		if w.BaseBackoff <= 0 {
			w.BaseBackoff = 2 * time.Second
		}
		if w.MaxBackoff <= 0 {
			w.MaxBackoff = 15 * time.Minute
		}
		if w.Lease <= 0 {
			w.Lease = 2 * time.Minute
		}
		if w.Poll <= 0 {
			w.Poll = 500 * time.Millisecond
		}
		if w.BatchSize <= 0 {
			w.BatchSize = 16
		}
		if w.Logger == nil {
			w.Logger = slog.Default()
		}
		if w.Clock == nil {
			w.Clock = switchboard.SystemClock{}
		}
		if w.Metrics == nil {
			w.Metrics = metrics.New()
		}
	})
}

// Notify tells the worker a new row is waiting, so it need not wait for
// its next poll.
func (w *Worker) Notify() {
	w.init()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run sends due rows until ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	w.init()
	t := time.NewTicker(w.Poll)
	defer t.Stop()
	for {
		for {
			n, err := w.RunOnce(ctx)
			if err != nil && ctx.Err() == nil {
				w.Logger.Error("outbox: run", "err", err)
			}
			if n < w.BatchSize || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-w.wake:
		}
	}
}

// RunOnce claims one batch of due rows and sends them, returning how many
// it claimed.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	w.init()
	items, err := w.Inbox.ClaimOutbox(ctx, w.BatchSize, w.Lease)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(items))
	for _, it := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.send(ctx, it); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return len(items), <-errs
}

func (w *Worker) send(ctx context.Context, it switchboard.OutboxItem) error {
	m := &it.Message
	var sender switchboard.Sender
	if w.Senders != nil {
		sender = w.Senders.Sender(m.Channel)
	}
	var providerID string
	var err error
	if sender == nil {
		err = switchboard.Permanent(fmt.Errorf("no sender is configured for channel %s", m.Channel))
	} else {
		// A send that has started finishes, and its outcome is recorded,
		// even when shutdown cancels ctx: abandoning it after the provider
		// accepted would send the reply again once the lease runs out.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.Lease/2)
		providerID, err = sender.Send(sctx, m)
		cancel()
	}
	ctx = context.WithoutCancel(ctx)
	if err == nil {
		if err := w.Inbox.CompleteOutbox(ctx, it, providerID); err != nil {
			return err
		}
		w.Metrics.Outbox.Add("sent", 1)
		return nil
	}
	if switchboard.IsPermanent(err) || it.Attempts >= w.MaxAttempts {
		w.Logger.Warn("outbox: send failed for good", "message", m.MessageID, "channel", m.Channel, "attempts", it.Attempts, "err", err)
		if err := w.Inbox.FailOutbox(ctx, it, err.Error(), time.Time{}); err != nil {
			return err
		}
		w.Metrics.Outbox.Add("failed", 1)
		return nil
	}
	retry := w.Clock.Now().Add(w.backoff(it.Attempts))
	w.Logger.Info("outbox: send failed, will retry", "message", m.MessageID, "channel", m.Channel, "attempt", it.Attempts, "retry_at", retry, "err", err)
	w.Metrics.Outbox.Add("retry", 1)
	return w.Inbox.FailOutbox(ctx, it, err.Error(), retry)
}

// backoff is the delay after the given attempt: doubling from BaseBackoff,
// capped, with up to 20% jitter so that retries of a provider outage do not
// arrive all at once.
func (w *Worker) backoff(attempt int) time.Duration {
	d := w.BaseBackoff << min(attempt-1, 30)
	if d <= 0 || d > w.MaxBackoff {
		d = w.MaxBackoff
	}
	return d + time.Duration(rand.Int64N(int64(d)/5+1))
}
