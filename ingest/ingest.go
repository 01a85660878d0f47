// Package ingest is the consumer side of the inbound queue: it takes
// batches of normalised messages, hands them to the inbox, which threads
// them into conversations (deduplicated, one transaction per batch) and
// announces them, and acknowledges them once they are stored.
package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/metrics"
)

// Inbox stores what the pipeline takes off the queue (package inbox).
type Inbox interface {
	// Ingest stores a batch, results in the order of items, and announces
	// what it stored.
	Ingest(ctx context.Context, items []switchboard.Inbound) ([]switchboard.IngestResult, error)
	// DeadLetter keeps an entry that can never be stored.
	DeadLetter(ctx context.Context, ch switchboard.Channel, payload []byte, cause string) error
}

// Pipeline consumes the inbound queue.
type Pipeline struct {
	Queue   switchboard.Queue
	Inbox   Inbox
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	Clock   switchboard.Clock

	// BatchSize is the most entries taken per transaction (default 256).
	BatchSize int
	// Workers is how many batches are processed at once (default 1; more
	// helps on PostgreSQL, where writers do not exclude each other).
	Workers int
	// OnStored, when set, is called after each batch is stored and
	// published, with the messages and what became of each; the benchmark
	// and tests use it.
	OnStored func([]switchboard.Inbound, []switchboard.IngestResult)
}

func (p *Pipeline) defaults() {
	if p.BatchSize <= 0 {
		p.BatchSize = 256
	}
	if p.Workers <= 0 {
		p.Workers = 1
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.Clock == nil {
		p.Clock = switchboard.SystemClock{}
	}
	if p.Metrics == nil {
		p.Metrics = metrics.New()
	}
}

// Run consumes until ctx ends. With several workers, one goroutine
// receives and hands each worker the entries of its share of customers
// (by a hash of the sender's first identity), so that this instance's
// workers never race each other to create or lock the same customer.
func (p *Pipeline) Run(ctx context.Context) error {
	p.defaults()
	if p.Workers == 1 {
		p.runOverlapped(ctx)
		return ctx.Err()
	}
	var wg sync.WaitGroup
	work := make([]chan []switchboard.Delivery, p.Workers)
	for i := range work {
		work[i] = make(chan []switchboard.Delivery, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ds := range work[i] {
				p.processRetrying(ctx, ds)
			}
		}()
	}
	for ctx.Err() == nil {
		parts := make([][]switchboard.Delivery, p.Workers)
		for _, d := range p.receive(ctx) {
			i := partition(d.Payload, p.Workers)
			parts[i] = append(parts[i], d)
		}
		for i, part := range parts {
			if len(part) == 0 {
				continue
			}
			select {
			case work[i] <- part:
			case <-ctx.Done():
			}
		}
	}
	for _, ch := range work {
		close(ch)
	}
	wg.Wait()
	return ctx.Err()
}

// partition picks a worker by the sender's first identity.
func partition(payload []byte, n int) int {
	var head struct {
		Identities []switchboard.IdentityRef `json:"identities"`
	}
	if json.Unmarshal(payload, &head) != nil || len(head.Identities) == 0 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(head.Identities[0].Kind))
	h.Write([]byte(head.Identities[0].Value))
	return int(h.Sum32() % uint32(n))
}

// receive returns the next batch, backing off while the queue fails.
func (p *Pipeline) receive(ctx context.Context) []switchboard.Delivery {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		ds, err := p.Queue.Receive(ctx, p.BatchSize)
		if err == nil {
			return ds
		}
		if ctx.Err() != nil {
			break
		}
		p.Logger.Error("ingest: receive", "err", err)
		sleep(ctx, backoff)
		backoff = min(backoff*2, 5*time.Second)
	}
	return nil
}

// batch is deliveries on their way through the pipeline.
type batch struct {
	ds      []switchboard.Delivery
	items   []switchboard.Inbound
	invalid []invalid // entries no retry can make valid
	results []switchboard.IngestResult
	start   time.Time
}

type invalid struct {
	d   switchboard.Delivery
	err error
}

// runOverlapped is the one-worker pipeline in three stages, each on its
// own goroutine and in order: receive and decode the next batch, store
// this one, acknowledge and report the one before. The store's commit is
// the bottleneck; the stages beside it overlap with it instead of
// waiting their turn (docs/benchmarks.md). A batch is acknowledged only
// after the commit that stored it, as before.
func (p *Pipeline) runOverlapped(ctx context.Context) {
	decoded := make(chan *batch, 1)
	stored := make(chan *batch, 1)
	go func() {
		defer close(decoded)
		for ctx.Err() == nil {
			ds := p.receive(ctx)
			if len(ds) == 0 {
				continue
			}
			select {
			case decoded <- p.decode(ds):
			case <-ctx.Done():
			}
		}
	}()
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for b := range stored {
			p.finishRetrying(ctx, b)
		}
	}()
	for b := range decoded {
		if !p.storeRetrying(ctx, b) {
			continue // stopping: the queue delivers it again
		}
		stored <- b
	}
	close(stored)
	<-finished
}

// storeRetrying stores a batch, retrying here while the database fails
// rather than leaving it to the queue's redelivery, which would wait out a
// whole visibility timeout. It reports false when ctx ended first.
func (p *Pipeline) storeRetrying(ctx context.Context, b *batch) bool {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := p.store(ctx, b)
		if err == nil {
			return true
		}
		p.Logger.Error("ingest: store batch", "entries", len(b.ds), "err", err)
		sleep(ctx, backoff)
		backoff = min(backoff*2, 5*time.Second)
	}
	return false
}

// finishRetrying acknowledges a stored batch, retrying while the queue
// fails, then reports it.
func (p *Pipeline) finishRetrying(ctx context.Context, b *batch) {
	backoff := 50 * time.Millisecond
	for {
		err := p.Queue.Ack(ctx, b.ds)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return // stored: redelivery will find duplicates
		}
		p.Logger.Error("ingest: ack", "entries", len(b.ds), "err", err)
		sleep(ctx, backoff)
		backoff = min(backoff*2, 5*time.Second)
	}
	p.report(b)
}

// processRetrying runs Process until it succeeds or ctx ends (the
// workers of the multi-worker pipeline).
func (p *Pipeline) processRetrying(ctx context.Context, ds []switchboard.Delivery) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := p.Process(ctx, ds)
		if err == nil {
			return
		}
		p.Logger.Error("ingest: process batch", "entries", len(ds), "err", err)
		sleep(ctx, backoff)
		backoff = min(backoff*2, 5*time.Second)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Process stores one batch of deliveries, acknowledges them and publishes
// the results. It is safe to call again with deliveries already processed:
// they are recognised as duplicates.
func (p *Pipeline) Process(ctx context.Context, ds []switchboard.Delivery) error {
	p.defaults()
	b := p.decode(ds)
	if err := p.store(ctx, b); err != nil {
		return err
	}
	if err := p.Queue.Ack(ctx, ds); err != nil {
		// The batch is stored; redelivery will find duplicates.
		return fmt.Errorf("ingest: ack: %w", err)
	}
	p.report(b)
	return nil
}

// decode reads the deliveries' payloads, setting aside those that are not
// a valid message.
func (p *Pipeline) decode(ds []switchboard.Delivery) *batch {
	b := &batch{ds: ds, items: make([]switchboard.Inbound, 0, len(ds)), start: time.Now()}
	for _, d := range ds {
		var in switchboard.Inbound
		err := json.Unmarshal(d.Payload, &in)
		if err == nil {
			err = in.Validate()
		}
		if err != nil {
			b.invalid = append(b.invalid, invalid{d, err})
			continue
		}
		b.items = append(b.items, in)
	}
	return b
}

// store keeps what cannot be stored as dead letters, for an operator,
// and stores the rest in one transaction.
func (p *Pipeline) store(ctx context.Context, b *batch) error {
	for _, bad := range b.invalid {
		if err := p.Inbox.DeadLetter(ctx, bad.d.Channel, bad.d.Payload, "decode: "+bad.err.Error()); err != nil {
			return err
		}
	}
	for _, bad := range b.invalid {
		p.Metrics.DeadLetters.Add(string(bad.d.Channel), 1)
		p.Logger.Warn("ingest: undecodable entry dead-lettered", "channel", bad.d.Channel, "id", bad.d.ID, "err", bad.err)
	}
	b.invalid = nil // kept: a retry does not count them again
	results, err := p.Inbox.Ingest(ctx, b.items)
	if err != nil {
		return err
	}
	b.results = results
	return nil
}

// report counts a stored and acknowledged batch and calls OnStored.
func (p *Pipeline) report(b *batch) {
	p.Metrics.Batch.Observe(time.Since(b.start))
	done := p.Clock.Now()
	for i, r := range b.results {
		in := &b.items[i]
		switch {
		case r.Err != nil:
			p.Metrics.DeadLetters.Add(string(in.Channel), 1)
			p.Logger.Warn("ingest: message dead-lettered", "channel", in.Channel, "provider_id", in.ProviderID, "err", r.Err)
		case r.Duplicate:
			p.Metrics.Deduplicated.Add(string(in.Channel), 1)
		default:
			p.Metrics.Ingested.Add(string(in.Channel), 1)
			if !in.AcceptedAt.IsZero() {
				p.Metrics.Processing.Observe(done.Sub(in.AcceptedAt))
			}
		}
	}
	if p.OnStored != nil {
		p.OnStored(b.items, b.results)
	}
}
