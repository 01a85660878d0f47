// Package queuetest is the behaviour every switchboard.Queue must show,
// written once and run against each implementation.
package queuetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	switchboard "github.com/switchboard-inbox/switchboard"
)

// Harness describes the implementation under test.
type Harness struct {
	// Open returns a new, empty queue, isolated from every other queue Open
	// returns, that delivers an entry again once it has been held unacked
	// for redeliver. Run closes the queue; Open registers the cleanup of
	// anything else it made (files, keys).
	Open func(t *testing.T, redeliver time.Duration) switchboard.Queue
	// Flood is how many entries the fairness test puts on one channel.
	// Default 20000.
	Flood int
	// Reopen, when set, opens q's storage again as the same consumer
	// started anew after a crash (same file; same consumer name), with the
	// given redelivery time. The restart test skips without it.
	Reopen func(t *testing.T, q switchboard.Queue, redeliver time.Duration) switchboard.Queue
}

// long is a redelivery time no test waits for.
const long = 10 * time.Minute

// Run runs the suite as subtests of t.
func Run(t *testing.T, h Harness) {
	if h.Flood <= 0 {
		h.Flood = 50000
	}
	open := func(t *testing.T, redeliver time.Duration) switchboard.Queue {
		t.Helper()
		q := h.Open(t, redeliver)
		t.Cleanup(func() { _ = q.Close() })
		return q
	}
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, open(t, long)) })
	t.Run("PayloadBytes", func(t *testing.T) { testPayloadBytes(t, open(t, long)) })
	t.Run("FIFOWithinChannel", func(t *testing.T) { testFIFO(t, open(t, long)) })
	t.Run("Redelivery", func(t *testing.T) { testRedelivery(t, open(t, 500*time.Millisecond), 500*time.Millisecond) })
	t.Run("ConcurrentEnqueue", func(t *testing.T) { testConcurrent(t, open(t, long)) })
	t.Run("Fairness", func(t *testing.T) { testFairness(t, open(t, long), h.Flood) })
	t.Run("ReceiveCancel", func(t *testing.T) { testCancel(t, open(t, long)) })
	t.Run("SmallMaxTakesTurns", func(t *testing.T) { testSmallMax(t, open(t, long)) })
	t.Run("Depth", func(t *testing.T) { testDepth(t, open(t, long)) })
	t.Run("InvalidInput", func(t *testing.T) { testInvalid(t, open(t, long)) })
	t.Run("Close", func(t *testing.T) { testClose(t, open(t, long)) })
	t.Run("RestartTakesBackHeld", func(t *testing.T) {
		if h.Reopen == nil {
			t.Skip("Harness.Reopen is not set")
		}
		reopen := func(q switchboard.Queue) switchboard.Queue {
			q2 := h.Reopen(t, q, long)
			t.Cleanup(func() { _ = q2.Close() })
			return q2
		}
		testRestart(t, open(t, long), reopen)
	})
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func enqueue(t *testing.T, q switchboard.Queue, ch switchboard.Channel, payload string) {
	t.Helper()
	if err := q.Enqueue(ctxFor(t, 10*time.Second), ch, []byte(payload)); err != nil {
		t.Fatalf("Enqueue(%s, %q): %v", ch, payload, err)
	}
}

func receive(t *testing.T, q switchboard.Queue, max int, wait time.Duration) []switchboard.Delivery {
	t.Helper()
	ds, err := q.Receive(ctxFor(t, wait), max)
	if err != nil {
		t.Fatalf("Receive(max=%d): %v", max, err)
	}
	if len(ds) == 0 || len(ds) > max {
		t.Fatalf("Receive(max=%d) returned %d entries", max, len(ds))
	}
	return ds
}

// expectNothing asserts that no entry becomes available within wait.
func expectNothing(t *testing.T, q switchboard.Queue, wait time.Duration) {
	t.Helper()
	ds, err := q.Receive(ctxFor(t, wait), 100)
	if len(ds) > 0 {
		t.Fatalf("Receive returned %d entries, want none: %s", len(ds), payloads(ds))
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive on an empty queue: err = %v, want context.DeadlineExceeded", err)
	}
}

func ack(t *testing.T, q switchboard.Queue, ds ...switchboard.Delivery) {
	t.Helper()
	if err := q.Ack(ctxFor(t, 10*time.Second), ds); err != nil {
		t.Fatalf("Ack: %v", err)
	}
}

func depth(t *testing.T, q switchboard.Queue, want int64) {
	t.Helper()
	n, err := q.Depth(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatalf("Depth: %v", err)
	}
	if n != want {
		t.Fatalf("Depth = %d, want %d", n, want)
	}
}

func payloads(ds []switchboard.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d.Payload)
	}
	sort.Strings(out)
	return out
}

func testRoundTrip(t *testing.T, q switchboard.Queue) {
	depth(t, q, 0)
	enqueue(t, q, switchboard.ChannelSMS, `{"text":"hello"}`)
	depth(t, q, 1)
	ds := receive(t, q, 10, 5*time.Second)
	if len(ds) != 1 {
		t.Fatalf("got %d deliveries, want 1", len(ds))
	}
	d := ds[0]
	if d.Channel != switchboard.ChannelSMS || string(d.Payload) != `{"text":"hello"}` || d.ID == "" {
		t.Fatalf("delivery = %+v (payload %q)", d, d.Payload)
	}
	// Held, not yet acked: still counted, but not handed out again.
	depth(t, q, 1)
	expectNothing(t, q, 300*time.Millisecond)
	ack(t, q, d)
	depth(t, q, 0)
	expectNothing(t, q, 300*time.Millisecond)
}

func testPayloadBytes(t *testing.T, q switchboard.Queue) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	big := make([]byte, 1<<20)
	_, _ = rand.Read(big)
	cases := [][]byte{
		{},
		all,
		big,
		[]byte("\x00\x00nul\x00"),
		[]byte("héllo, 世界 \r\n\t \xff\xfe"),
		[]byte(`{"channel":"email","text":"a\u0000b"}`),
	}
	for i, p := range cases {
		ch := switchboard.Channels[i%len(switchboard.Channels)]
		// The caller may reuse its buffer once Enqueue returns.
		buf := append([]byte(nil), p...)
		if err := q.Enqueue(ctxFor(t, 10*time.Second), ch, buf); err != nil {
			t.Fatalf("Enqueue case %d: %v", i, err)
		}
		for j := range buf {
			buf[j] = 'x'
		}
	}
	var got []switchboard.Delivery
	for len(got) < len(cases) {
		got = append(got, receive(t, q, 100, 5*time.Second)...)
	}
	if len(got) != len(cases) {
		t.Fatalf("got %d deliveries, want %d", len(got), len(cases))
	}
	for i, p := range cases {
		ch := switchboard.Channels[i%len(switchboard.Channels)]
		found := false
		for _, d := range got {
			if d.Channel == ch && bytes.Equal(d.Payload, p) {
				found = true
			}
		}
		if !found {
			t.Errorf("case %d (%d bytes on %s) not delivered byte for byte", i, len(p), ch)
		}
	}
	ack(t, q, got...)
	depth(t, q, 0)
}

func testFIFO(t *testing.T, q switchboard.Queue) {
	const n = 100
	for i := 0; i < n; i++ {
		enqueue(t, q, switchboard.ChannelEmail, fmt.Sprintf("%03d", i))
	}
	next := 0
	for next < n {
		ds := receive(t, q, 7, 5*time.Second)
		for _, d := range ds {
			if want := fmt.Sprintf("%03d", next); string(d.Payload) != want {
				t.Fatalf("got %q, want %q: entries of one channel must come oldest first", d.Payload, want)
			}
			next++
		}
		ack(t, q, ds...)
	}
}

func testRedelivery(t *testing.T, q switchboard.Queue, redeliver time.Duration) {
	for _, p := range []string{"a", "b", "c"} {
		enqueue(t, q, switchboard.ChannelWhatsApp, p)
	}
	first := receive(t, q, 10, 5*time.Second)
	if got := payloads(first); fmt.Sprint(got) != "[a b c]" {
		t.Fatalf("first delivery = %v, want [a b c]", got)
	}
	held := time.Now()
	byPayload := map[string]switchboard.Delivery{}
	for _, d := range first {
		byPayload[string(d.Payload)] = d
	}
	ack(t, q, byPayload["a"])
	// Within the redelivery time, the held entries stay hidden.
	expectNothing(t, q, redeliver/3)

	// The consumer "died" holding b and c: they come back, a never does.
	second := receive(t, q, 10, redeliver+5*time.Second)
	if since := time.Since(held); since < redeliver*8/10 {
		t.Fatalf("entries redelivered after %v, before the redelivery time %v", since, redeliver)
	}
	if got := payloads(second); fmt.Sprint(got) != "[b c]" {
		t.Fatalf("redelivered = %v, want [b c]", got)
	}
	for _, d := range second {
		if d.Channel != switchboard.ChannelWhatsApp {
			t.Fatalf("redelivered entry on channel %q", d.Channel)
		}
		if string(d.Payload) == "b" {
			ack(t, q, d)
		}
	}
	third := receive(t, q, 10, redeliver+5*time.Second)
	if got := payloads(third); fmt.Sprint(got) != "[c]" {
		t.Fatalf("third delivery = %v, want [c]", got)
	}
	ack(t, q, third...)
	depth(t, q, 0)
	expectNothing(t, q, redeliver*2)
}

func testConcurrent(t *testing.T, q switchboard.Queue) {
	const producers, each = 50, 40
	const total = producers * each
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for g := 0; g < producers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				ch := switchboard.Channels[(g+i)%len(switchboard.Channels)]
				if err := q.Enqueue(context.Background(), ch, []byte(fmt.Sprintf("%s/%d/%d", ch, g, i))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	// Consume while producing, with several consumers.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	seen := map[string]int{}
	count := 0
	var cwg sync.WaitGroup
	cerrs := make(chan error, 4)
	for c := 0; c < 4; c++ {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for {
				mu.Lock()
				done := count >= total
				mu.Unlock()
				if done {
					return
				}
				rctx, rcancel := context.WithTimeout(ctx, time.Second)
				ds, err := q.Receive(rctx, 64)
				rcancel()
				if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
					continue
				}
				if err != nil {
					cerrs <- err
					return
				}
				mu.Lock()
				for _, d := range ds {
					if want := string(d.Channel) + "/"; !bytes.HasPrefix(d.Payload, []byte(want)) {
						cerrs <- fmt.Errorf("payload %q delivered on channel %q", d.Payload, d.Channel)
					}
					seen[string(d.Payload)]++
					count++
				}
				mu.Unlock()
				if err := q.Ack(ctx, ds); err != nil {
					cerrs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Enqueue: %v", err)
	}
	cwg.Wait()
	close(cerrs)
	for err := range cerrs {
		t.Fatalf("consumer: %v", err)
	}
	if len(seen) != total || count != total {
		t.Fatalf("received %d deliveries of %d distinct entries, want %d exactly once", count, len(seen), total)
	}
	for p, n := range seen {
		if n != 1 {
			t.Fatalf("%q delivered %d times", p, n)
		}
	}
	depth(t, q, 0)
}

func testFairness(t *testing.T, q switchboard.Queue, flood int) {
	const max = 256
	fill := func(ch switchboard.Channel, n int) {
		t.Helper()
		work := make(chan int)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var firstErr error
		for w := 0; w < 64; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					if err := q.Enqueue(context.Background(), ch, []byte(fmt.Sprintf("%s-%06d", ch, i))); err != nil {
						mu.Lock()
						firstErr = errors.Join(firstErr, err)
						mu.Unlock()
					}
				}
			}()
		}
		for i := 0; i < n; i++ {
			work <- i
		}
		close(work)
		wg.Wait()
		if firstErr != nil {
			t.Fatalf("Enqueue: %v", firstErr)
		}
	}
	// The flood is on the first channel in switchboard.Channels and the lone
	// entry on the last, so visiting channels in order would not pass.
	fill(switchboard.ChannelEmail, flood)
	fill(switchboard.ChannelWhatsApp, 100)
	enqueue(t, q, switchboard.ChannelLivechat, "lone")
	depth(t, q, int64(flood+101))

	start := time.Now()
	ds := receive(t, q, max, 10*time.Second)
	took := time.Since(start)
	per := map[switchboard.Channel]int{}
	lone := false
	for _, d := range ds {
		per[d.Channel]++
		if string(d.Payload) == "lone" {
			lone = true
		}
	}
	if !lone {
		t.Fatalf("the lone livechat entry is not in the first batch behind %d email entries: %v", flood, per)
	}
	// Shares: livechat can use 1, whatsapp its 100, email the rest; nothing
	// is left unused while email has entries.
	if len(ds) != max || per[switchboard.ChannelLivechat] != 1 || per[switchboard.ChannelWhatsApp] != 100 || per[switchboard.ChannelEmail] != max-101 {
		t.Fatalf("first batch of %d = %v, want 256: livechat 1, whatsapp 100, email 155", len(ds), per)
	}
	t.Logf("first batch of %d behind a flood of %d took %v", len(ds), flood, took)
	ack(t, q, ds...)
	depth(t, q, int64(flood+101-max))

	// The next entry on a quiet channel again comes in the next batch.
	enqueue(t, q, switchboard.ChannelVoice, "lone-2")
	ds = receive(t, q, max, 10*time.Second)
	found := false
	for _, d := range ds {
		found = found || string(d.Payload) == "lone-2"
	}
	if !found || len(ds) != max {
		t.Fatalf("second batch: lone-2 found %v, %d entries", found, len(ds))
	}
}

func testCancel(t *testing.T, q switchboard.Queue) {
	const bound = 1500 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	ds, err := q.Receive(ctx, 10)
	took := time.Since(start)
	if len(ds) != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Receive after cancel = %d entries, %v; want context.Canceled", len(ds), err)
	}
	if took > 200*time.Millisecond+bound {
		t.Fatalf("Receive returned %v after cancel, want within %v", took-200*time.Millisecond, bound)
	}

	start = time.Now()
	_, err = q.Receive(ctxFor(t, 300*time.Millisecond), 10)
	took = time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) || took > 300*time.Millisecond+bound {
		t.Fatalf("Receive with a 300ms deadline: %v after %v", err, took)
	}

	// An entry arriving while Receive waits wakes it.
	done := make(chan []switchboard.Delivery, 1)
	go func() {
		ds, _ := q.Receive(ctxFor(t, 10*time.Second), 10)
		done <- ds
	}()
	time.Sleep(100 * time.Millisecond)
	start = time.Now()
	enqueue(t, q, switchboard.ChannelVoice, "wake")
	select {
	case ds := <-done:
		if len(ds) != 1 || string(ds[0].Payload) != "wake" {
			t.Fatalf("waiting Receive got %s", payloads(ds))
		}
		t.Logf("waiting Receive woke %v after Enqueue", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("waiting Receive did not wake for a new entry")
	}
}

func testSmallMax(t *testing.T, q switchboard.Queue) {
	busy := []switchboard.Channel{switchboard.ChannelSMS, switchboard.ChannelEmail, switchboard.ChannelVoice}
	for i := 0; i < 30; i++ {
		for _, ch := range busy {
			enqueue(t, q, ch, fmt.Sprintf("%s-%02d", ch, i))
		}
	}
	per := map[switchboard.Channel]int{}
	for i := 0; i < 30; i++ {
		ds := receive(t, q, 1, 5*time.Second)
		per[ds[0].Channel]++
		ack(t, q, ds...)
	}
	// Three busy channels, one entry at a time: they take turns.
	for _, ch := range busy {
		if per[ch] < 9 || per[ch] > 11 {
			t.Fatalf("30 receives of max=1 by channel = %v, want about 10 each", per)
		}
	}
	depth(t, q, 60)
}

func testDepth(t *testing.T, q switchboard.Queue) {
	depth(t, q, 0)
	for i := 0; i < 7; i++ {
		enqueue(t, q, switchboard.Channels[i%3], fmt.Sprint(i))
	}
	depth(t, q, 7)
	got := receive(t, q, 3, 5*time.Second)
	if len(got) != 3 {
		t.Fatalf("Receive(max=3) = %d entries", len(got))
	}
	depth(t, q, 7) // held entries are not acked yet
	ack(t, q, got...)
	depth(t, q, 4)
	ack(t, q, got...) // acking twice changes nothing
	depth(t, q, 4)
	var rest []switchboard.Delivery
	for len(rest) < 4 {
		rest = append(rest, receive(t, q, 10, 5*time.Second)...)
	}
	ack(t, q, rest...)
	depth(t, q, 0)
}

func testInvalid(t *testing.T, q switchboard.Queue) {
	ctx := ctxFor(t, 5*time.Second)
	if err := q.Enqueue(ctx, switchboard.Channel("fax"), []byte("x")); err == nil {
		t.Error("Enqueue on an unknown channel succeeded")
	}
	if _, err := q.Receive(ctx, 0); err == nil {
		t.Error("Receive(max=0) succeeded")
	}
	if err := q.Ack(ctx, []switchboard.Delivery{{ID: "not-an-id", Channel: switchboard.ChannelSMS}}); err == nil {
		t.Error("Ack of a malformed id succeeded")
	}
	if err := q.Ack(ctx, nil); err != nil {
		t.Errorf("Ack(nil) = %v", err)
	}
	depth(t, q, 0)
}

func testClose(t *testing.T, q switchboard.Queue) {
	enqueue(t, q, switchboard.ChannelSMS, "before close")
	ack(t, q, receive(t, q, 10, 5*time.Second)...)

	recvDone := make(chan error, 1)
	go func() {
		_, err := q.Receive(ctxFor(t, 30*time.Second), 10)
		recvDone <- err
	}()
	// Enqueuers racing with Close all return, with success or an error.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 20; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := q.Enqueue(context.Background(), switchboard.ChannelSMS, []byte("racing")); err != nil {
					return
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	returned := make(chan struct{})
	go func() { wg.Wait(); close(returned) }()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		close(stop)
		t.Fatal("Enqueue calls hang after Close")
	}
	close(stop)
	select {
	case err := <-recvDone:
		_ = err // it may have taken a racing entry before Close; it must return
	case <-time.After(5 * time.Second):
		t.Fatal("Receive hangs after Close")
	}
	if err := q.Enqueue(ctxFor(t, time.Second), switchboard.ChannelSMS, []byte("after")); err == nil {
		t.Fatal("Enqueue after Close succeeded")
	}
	if _, err := q.Receive(ctxFor(t, time.Second), 1); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive after Close = %v, want a closed error", err)
	}
	if err := q.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// testRestart: a consumer holds entries and stops without acking them (a
// crash, as far as the queue can tell); the same consumer started again
// gets them back at once, not after the redelivery time, and every entry
// exactly once even with several receivers asking at the same time.
func testRestart(t *testing.T, q switchboard.Queue, reopen func(switchboard.Queue) switchboard.Queue) {
	const n = 60
	want := map[string]bool{}
	for i := 0; i < n; i++ {
		p := fmt.Sprintf("r-%02d", i)
		enqueue(t, q, switchboard.Channels[i%len(switchboard.Channels)], p)
		want[p] = true
	}
	var held []switchboard.Delivery
	for len(held) < 40 {
		held = append(held, receive(t, q, 40-len(held), 5*time.Second)...)
	}
	ack(t, q, held[:5]...)
	for _, d := range held[:5] {
		delete(want, string(d.Payload))
	}
	// Crash: the 35 other held entries are never acked.
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	start := time.Now()
	q2 := reopen(q)
	depth(t, q2, n-5)
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	ctx := ctxFor(t, 5*time.Second) // far under the redelivery time
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				done := len(seen) >= len(want)
				mu.Unlock()
				if done {
					return
				}
				rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				ds, err := q2.Receive(rctx, 7)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, d := range ds {
					seen[string(d.Payload)]++
				}
				mu.Unlock()
				if err := q2.Ack(ctx, ds); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("receive after restart (%d of %d back after %v): %v", len(seen), len(want), time.Since(start), err)
	}
	for p := range want {
		if seen[p] != 1 {
			t.Errorf("%q delivered %d times after the restart, want once", p, seen[p])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("delivered %d distinct entries after the restart, want %d (acked ones included?)", len(seen), len(want))
	}
	t.Logf("all %d unacked entries (35 held by the crashed consumer) back %v after the restart", len(want), time.Since(start))
	depth(t, q2, 0)
}
