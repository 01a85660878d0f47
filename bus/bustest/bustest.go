// Package bustest is the behaviour every bus implementation must share,
// run by each implementation's tests against a real instance.
package bustest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	switchboard "github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/bus"
)

// Bus is what the suite needs of an implementation.
type Bus interface {
	switchboard.Bus
	Dropped() uint64
}

// Config describes the implementation under test.
type Config struct {
	// New returns a fresh bus, isolated from those of other tests, whose
	// subscribers buffer Buffer events. The suite closes it.
	New    func(t *testing.T) Bus
	Buffer int
	// NewWithLogAge returns a fresh bus whose log keeps events for age.
	NewWithLogAge func(t *testing.T, age time.Duration) Bus
}

// wait bounds every blocking step so that a broken bus fails instead of
// hanging the test binary.
const wait = 10 * time.Second

// Run runs the shared suite.
func Run(t *testing.T, cfg Config) {
	if cfg.Buffer < 8 {
		t.Fatalf("bustest: Buffer must be at least 8, got %d", cfg.Buffer)
	}
	newBus := func(t *testing.T) Bus {
		b := cfg.New(t)
		t.Cleanup(func() {
			done := make(chan struct{})
			go func() { _ = b.Close(); close(done) }()
			select {
			case <-done:
			case <-time.After(wait):
				t.Error("Close blocked")
			}
		})
		return b
	}
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, newBus(t)) })
	t.Run("ReplayAfterAGap", func(t *testing.T) { testReplay(t, newBus(t)) })
	t.Run("TrimmedLogResyncs", func(t *testing.T) {
		b := cfg.NewWithLogAge(t, 100*time.Millisecond)
		t.Cleanup(func() { b.Close() })
		testTrimmed(t, b)
	})
	t.Run("OrderOnePublisher", func(t *testing.T) { testOrder(t, newBus(t), cfg.Buffer/2) })
	t.Run("EverySubscriberGetsEveryEvent", func(t *testing.T) { testFanOut(t, newBus(t), cfg.Buffer/2) })
	t.Run("ConcurrentPublishers", func(t *testing.T) { testConcurrentPublishers(t, newBus(t), cfg.Buffer/2) })
	t.Run("CancelClosesChannel", func(t *testing.T) { testCancel(t, newBus(t)) })
	t.Run("CanceledContext", func(t *testing.T) { testCanceledContext(t, newBus(t)) })
	t.Run("SlowSubscriberDoesNotBlock", func(t *testing.T) { testSlow(t, newBus(t), cfg.Buffer) })
	t.Run("Close", func(t *testing.T) { testClose(t, cfg.New(t)) })
}

// Event returns the n-th test event from publisher p.
func Event(p, n int) switchboard.BusEvent {
	return switchboard.BusEvent{
		Type:           switchboard.BusMessageCreated,
		ConversationID: fmt.Sprintf("conv-%d", p),
		At:             time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Data:           json.RawMessage(fmt.Sprintf(`{"p":%d,"n":%d}`, p, n)),
	}
}

// Seq decodes the publisher and sequence number of an Event.
func Seq(t testing.TB, ev switchboard.BusEvent) (p, n int) {
	t.Helper()
	var d struct{ P, N int }
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		t.Fatalf("event data %q: %v", ev.Data, err)
	}
	return d.P, d.N
}

// Subscribe subscribes with a context the test cancels at cleanup.
func Subscribe(t testing.TB, b switchboard.Bus) <-chan switchboard.BusEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := b.Subscribe(ctx)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	return ch
}

// Publish publishes or fails the test, and fails it if Publish blocks
// (watched from outside, since a blocked send need not heed ctx).
func Publish(t testing.TB, b switchboard.Bus, ev switchboard.BusEvent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- b.Publish(ctx, ev) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Publish blocked")
	}
}

// Receive returns the next event or fails the test.
func Receive(t testing.TB, ch <-chan switchboard.BusEvent) switchboard.BusEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed while an event was expected")
		}
		return ev
	case <-time.After(wait):
		t.Fatal("timed out waiting for an event")
	}
	panic("unreachable")
}

// ExpectClosed fails the test unless ch closes (after any buffered events).
func ExpectClosed(t testing.TB, ch <-chan switchboard.BusEvent) {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("subscription channel not closed")
		}
	}
}

// ExpectQuiet fails the test if ch yields anything within d.
func ExpectQuiet(t testing.TB, ch <-chan switchboard.BusEvent, d time.Duration) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if ok {
			t.Fatalf("unexpected event %+v", ev)
		}
		t.Fatal("unexpected close")
	case <-time.After(d):
	}
}

func testRoundTrip(t *testing.T, b Bus) {
	ch := Subscribe(t, b)
	want := switchboard.BusEvent{
		Type:           switchboard.BusConversationUpdated,
		ConversationID: "c1",
		AgentID:        "a1",
		At:             time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.UTC),
		Data:           json.RawMessage(`{"status":"resolved"}`),
	}
	Publish(t, b, want)
	got := Receive(t, ch)
	if got.Type != want.Type || got.ConversationID != want.ConversationID || got.AgentID != want.AgentID ||
		!got.At.Equal(want.At) || string(got.Data) != string(want.Data) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func testOrder(t *testing.T, b Bus, n int) {
	// Publishing right after Subscribe returns is the point: nothing may be
	// missed however soon the first event follows.
	ch := Subscribe(t, b)
	for i := range n {
		Publish(t, b, Event(0, i))
	}
	for i := range n {
		if _, got := Seq(t, Receive(t, ch)); got != i {
			t.Fatalf("event %d arrived as number %d", got, i)
		}
	}
	ExpectQuiet(t, ch, 50*time.Millisecond)
	if d := b.Dropped(); d != 0 {
		t.Fatalf("Dropped = %d, want 0", d)
	}
}

func testFanOut(t *testing.T, b Bus, n int) {
	subs := make([]<-chan switchboard.BusEvent, 3)
	for i := range subs {
		subs[i] = Subscribe(t, b)
	}
	for i := range n {
		Publish(t, b, Event(0, i))
	}
	for s, ch := range subs {
		for i := range n {
			if _, got := Seq(t, Receive(t, ch)); got != i {
				t.Fatalf("subscriber %d: got event %d, want %d", s, got, i)
			}
		}
	}
}

func testConcurrentPublishers(t *testing.T, b Bus, total int) {
	const pubs = 4
	per := total / pubs
	subs := []<-chan switchboard.BusEvent{Subscribe(t, b), Subscribe(t, b)}

	var wg sync.WaitGroup
	errs := make(chan error, pubs)
	for p := range pubs {
		wg.Go(func() {
			for i := range per {
				if err := b.Publish(context.Background(), Event(p, i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Publish: %v", err)
	}
	for s, ch := range subs {
		next := make([]int, pubs)
		for range pubs * per {
			p, n := Seq(t, Receive(t, ch))
			if n != next[p] {
				t.Fatalf("subscriber %d: publisher %d's event %d arrived when %d was due", s, p, n, next[p])
			}
			next[p]++
		}
	}
}

func testCancel(t *testing.T, b Bus) {
	ctx, cancel := context.WithCancel(context.Background())
	gone, err := b.Subscribe(ctx)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	stays := Subscribe(t, b)

	Publish(t, b, Event(0, 0))
	if _, n := Seq(t, Receive(t, gone)); n != 0 {
		t.Fatalf("got event %d, want 0", n)
	}
	Receive(t, stays)

	cancel()
	ExpectClosed(t, gone)

	// The bus and its other subscribers carry on.
	Publish(t, b, Event(0, 1))
	if _, n := Seq(t, Receive(t, stays)); n != 1 {
		t.Fatalf("got event %d, want 1", n)
	}
}

func testCanceledContext(t *testing.T, b Bus) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ch, err := b.Subscribe(ctx)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Subscribe with canceled ctx: %v, want context.Canceled", err)
		}
		return
	}
	// Returning a channel is also fine, as long as it closes.
	ExpectClosed(t, ch)
}

// testSlow has one subscriber that never reads while another keeps up:
// publishing must go on, the idle one keeps the oldest buffer events and
// loses the rest, counted.
func testSlow(t *testing.T, b Bus, buffer int) {
	idle := Subscribe(t, b)
	live := Subscribe(t, b)
	batch := buffer / 2
	total := 4 * buffer
	for start := 0; start < total; start += batch {
		for i := start; i < start+batch; i++ {
			Publish(t, b, Event(0, i))
		}
		// Pace the publisher by the live subscriber, so that only the idle
		// one can overflow.
		for i := start; i < start+batch; i++ {
			if _, n := Seq(t, Receive(t, live)); n != i {
				t.Fatalf("live subscriber: got %d, want %d", n, i)
			}
		}
	}

	want := uint64(total - buffer)
	deadline := time.Now().Add(wait)
	for b.Dropped() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := b.Dropped(); got != want {
		t.Fatalf("Dropped = %d, want %d", got, want)
	}
	for i := range buffer {
		if _, n := Seq(t, Receive(t, idle)); n != i {
			t.Fatalf("idle subscriber: got %d, want %d", n, i)
		}
	}
	ExpectQuiet(t, idle, 50*time.Millisecond)

	// Once drained, the idle subscriber gets new events again.
	Publish(t, b, Event(0, total))
	if _, n := Seq(t, Receive(t, idle)); n != total {
		t.Fatalf("idle subscriber after draining: got %d, want %d", n, total)
	}
}

func testClose(t *testing.T, b Bus) {
	a, c := Subscribe(t, b), Subscribe(t, b)
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ExpectClosed(t, a)
	ExpectClosed(t, c)
	if err := b.Publish(context.Background(), Event(0, 0)); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Publish after Close: %v, want bus.ErrClosed", err)
	}
	if _, err := b.Subscribe(context.Background()); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v, want bus.ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// published publishes n events from publisher p and returns them as a
// subscriber received them, with their ids.
func published(t *testing.T, b Bus, p, n int) []switchboard.BusEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := b.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := b.Publish(ctx, Event(p, i)); err != nil {
			t.Fatal(err)
		}
	}
	var out []switchboard.BusEvent
	for len(out) < n {
		select {
		case ev := <-sub:
			out = append(out, ev)
		case <-time.After(wait):
			t.Fatalf("received %d of %d events", len(out), n)
		}
	}
	return out
}

// testReplay: ids increase; Since gives a reconnecting client exactly the
// events after the one it saw last, in order, with the ids subscribers
// saw; an id the log never held means resync.
func testReplay(t *testing.T, b Bus) {
	ctx := context.Background()
	evs := published(t, b, 1, 10)
	for i := 1; i < len(evs); i++ {
		if evs[i].ID == "" || switchboard.CompareEventIDs(evs[i-1].ID, evs[i].ID) >= 0 {
			t.Fatalf("ids do not increase: %q then %q", evs[i-1].ID, evs[i].ID)
		}
	}
	got, err := b.Since(ctx, evs[2].ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 7 {
		t.Fatalf("Since the third: %d events, want the 7 after it", len(got))
	}
	for i, ev := range got {
		want := evs[3+i]
		if ev.ID != want.ID || string(ev.Data) != string(want.Data) || ev.Type != want.Type || ev.ConversationID != want.ConversationID {
			t.Fatalf("replayed %d: %+v, want %+v", i, ev, want)
		}
	}
	if got, err := b.Since(ctx, evs[2].ID, 2); err != nil || len(got) != 2 || got[1].ID != evs[4].ID {
		t.Fatalf("Since with max 2: %v %v", got, err)
	}
	if got, err := b.Since(ctx, evs[9].ID, 0); err != nil || len(got) != 0 {
		t.Fatalf("Since the last: %v %v, want nothing", got, err)
	}
	for _, bad := range []string{"", "nonsense", "99999999999999-0"} {
		if _, err := b.Since(ctx, bad, 0); !errors.Is(err, switchboard.ErrResync) {
			t.Fatalf("Since(%q) = %v, want ErrResync", bad, err)
		}
	}
}

// testTrimmed: once the log has dropped events after since (older than its
// age), a client must resync; what is still in the log replays.
func testTrimmed(t *testing.T, b Bus) {
	ctx := context.Background()
	old := published(t, b, 1, 2)
	time.Sleep(300 * time.Millisecond)
	fresh := published(t, b, 2, 2)
	if _, err := b.Since(ctx, old[0].ID, 0); !errors.Is(err, switchboard.ErrResync) {
		t.Fatalf("Since an event whose successor was trimmed: %v, want ErrResync", err)
	}
	got, err := b.Since(ctx, fresh[0].ID, 0)
	if err != nil || len(got) != 1 || got[0].ID != fresh[1].ID {
		t.Fatalf("Since a kept event: %v %v", got, err)
	}
}
