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
