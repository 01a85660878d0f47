package bus_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/bus"
	"github.com/switchboard-inbox/switchboard/bus/bustest"
)

func TestMemory(t *testing.T) {
	bustest.Run(t, bustest.Config{
		New:    func(t *testing.T) bustest.Bus { return bus.NewMemory(bus.WithBuffer(32)) },
		Buffer: 32,
		NewWithLogAge: func(t *testing.T, age time.Duration) bustest.Bus {
			return bus.NewMemory(bus.WithBuffer(32), bus.WithLog(age, 0))
		},
	})
}

func TestMemoryDefaultBuffer(t *testing.T) {
	bustest.Run(t, bustest.Config{
		New:    func(t *testing.T) bustest.Bus { return bus.NewMemory() },
		Buffer: bus.DefaultBuffer,
		NewWithLogAge: func(t *testing.T, age time.Duration) bustest.Bus {
			return bus.NewMemory(bus.WithLog(age, 0))
		},
	})
}

// TestMemoryChurn subscribes and cancels while others publish; under -race
// it shows that a cancel racing a publish neither panics (send on a closed
// channel) nor loses the channel's close.
func TestMemoryChurn(t *testing.T) {
	b := bus.NewMemory(bus.WithBuffer(4))
	defer b.Close()
	stop := make(chan struct{})
	var pubs sync.WaitGroup
	for p := range 2 {
		pubs.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := b.Publish(context.Background(), bustest.Event(p, i)); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
				// Leave the two cores CI has to the subscribers too.
				runtime.Gosched()
			}
		})
	}
	var subs sync.WaitGroup
	for range 4 {
		subs.Go(func() {
			for range 200 {
				ctx, cancel := context.WithCancel(context.Background())
				ch, err := b.Subscribe(ctx)
				if err != nil {
					t.Errorf("Subscribe: %v", err)
					cancel()
					return
				}
				<-ch // a publisher is running, so something arrives
				cancel()
				for range ch {
				}
			}
		})
	}
	subs.Wait()
	close(stop)
	pubs.Wait()
}

// TestMemoryPublishCopiesData: a publisher may reuse its buffer once
// Publish returns.
func TestMemoryPublishCopiesData(t *testing.T) {
	b := bus.NewMemory()
	defer b.Close()
	ch := bustest.Subscribe(t, b)
	ev := bustest.Event(0, 7)
	bustest.Publish(t, b, ev)
	for i := range ev.Data {
		ev.Data[i] = 'x'
	}
	if _, n := bustest.Seq(t, bustest.Receive(t, ch)); n != 7 {
		t.Fatalf("got %d, want 7", n)
	}
}

// BenchmarkPublishFullLog publishes into a log kept at its size cap, as a
// long-running instance's is: the cost per event must not grow with the
// cap (docs/benchmarks.md).
func BenchmarkPublishFullLog(b *testing.B) {
	for _, max := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("log=%d", max), func(b *testing.B) {
			m := bus.NewMemory(bus.WithLog(time.Hour, max))
			defer m.Close()
			ev := switchboard.BusEvent{Type: switchboard.BusMessageCreated, ConversationID: "c", Data: []byte(`{"id":"m"}`)}
			for i := 0; i < max; i++ {
				m.Publish(context.Background(), ev)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m.Publish(context.Background(), ev)
			}
		})
	}
}

// TestMemoryLogBytes: the log keeps about as many bytes of events as it is
// allowed, dropping the oldest; a reconnect from a dropped event is told
// to resynchronise, one from a kept event gets what followed it.
func TestMemoryLogBytes(t *testing.T) {
	ctx := context.Background()
	b := bus.NewMemory(bus.WithLogBytes(20_000))
	sub, err := b.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(fmt.Sprintf(`"%01000d"`, 0)) // about 1 KB an event
	var ids []string
	for i := range 100 {
		if err := b.Publish(ctx, switchboard.BusEvent{Type: switchboard.BusMessageCreated, ConversationID: fmt.Sprint("c", i), Data: data}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, (<-sub).ID)
	}
	for _, i := range []int{0, 70} {
		if _, err := b.Since(ctx, ids[i], 0); !errors.Is(err, switchboard.ErrResync) {
			t.Errorf("since event %d of 100 events of 1 KB with 20 KB kept: %v, want a resync", i, err)
		}
	}
	evs, err := b.Since(ctx, ids[90], 0)
	if err != nil || len(evs) != 9 || evs[8].ID != ids[99] {
		t.Fatalf("since event 90 of 100: %d events, %v; want the 9 after it", len(evs), err)
	}
}

// TestMemoryLogRing: the log's circular storage keeps events in order and
// replays exactly the ones after a given id while it wraps, grows for a
// burst and shrinks again as the burst ages out.
func TestMemoryLogRing(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1e9, 0)
	b := bus.NewMemory(bus.WithLog(time.Minute, 300), bus.WithClock(func() time.Time { return now }))
	sub, err := b.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	publish := func(n int) {
		for range n {
			i := len(ids)
			if err := b.Publish(ctx, switchboard.BusEvent{Type: switchboard.BusMessageCreated, ConversationID: fmt.Sprint("c", i), Data: []byte(fmt.Sprint(i))}); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, (<-sub).ID)
		}
	}
	// check replays from a few points of what the log should hold: the
	// last keep events.
	check := func(keep int) {
		t.Helper()
		first := len(ids) - keep
		if first > 0 {
			if _, err := b.Since(ctx, ids[first-2], 0); !errors.Is(err, switchboard.ErrResync) {
				t.Fatalf("since event %d with events %d.. kept: %v, want a resync", first-2, first, err)
			}
		}
		for _, from := range []int{max(first-1, 0), len(ids) - keep/2, len(ids) - 2} {
			evs, err := b.Since(ctx, ids[from], 0)
			if err != nil {
				t.Fatalf("since event %d: %v", from, err)
			}
			if len(evs) != len(ids)-1-from {
				t.Fatalf("since event %d of %d: %d events", from, len(ids), len(evs))
			}
			for j, ev := range evs {
				if want := from + 1 + j; ev.ID != ids[want] || string(ev.Data) != fmt.Sprint(want) {
					t.Fatalf("since event %d: event %d is %s %s, want %s %d", from, j, ev.ID, ev.Data, ids[want], want)
				}
			}
			if evs, _ := b.Since(ctx, ids[from], 3); len(evs) != min(3, len(ids)-1-from) {
				t.Fatalf("since event %d, at most 3: %d events", from, len(evs))
			}
		}
	}
	for range 7 { // wraps the ring of 300 several times
		publish(97)
		check(min(len(ids), 300))
	}
	now = now.Add(2 * time.Minute)
	publish(5) // the rest has aged out: the ring shrinks to what is left
	check(5)
	publish(290)
	check(295)
}
