package sendq

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestEveryFrameOnceInOrder: frames pushed from several goroutines while
// writers come and go are each delivered once, each pusher's in its
// order, and never by two writers at a time.
func TestEveryFrameOnceInOrder(t *testing.T) {
	const pushers, each = 8, 5000
	var mu sync.Mutex
	var inside atomic.Int32
	last := make([]int, pushers)
	for i := range last {
		last[i] = -1
	}
	got := 0
	q := New(pushers*each, func(v [2]int) error {
		if inside.Add(1) != 1 {
			t.Error("two writers at once")
		}
		defer inside.Add(-1)
		mu.Lock()
		defer mu.Unlock()
		if v[1] != last[v[0]]+1 {
			t.Errorf("pusher %d: frame %d after %d", v[0], v[1], last[v[0]])
		}
		last[v[0]] = v[1]
		got++
		if got%97 == 0 {
			runtime.Gosched() // let the queue run empty now and then
		}
		return nil
	}, func(err error) { t.Error(err) })
	q.Start()
	var wg sync.WaitGroup
	for p := range pushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if !q.Push([2]int{p, i}) {
					t.Error("queue full")
				}
				if i%500 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		mu.Lock()
		n := got
		mu.Unlock()
		if n == pushers*each {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d frames delivered", n, pushers*each)
		}
	}
	if q.running.Load() {
		// The last writer may still be on its way out.
		time.Sleep(50 * time.Millisecond)
		if q.running.Load() {
			t.Error("a writer still runs on an empty queue")
		}
	}
}

// TestHeldUntilStart: frames pushed before Start wait for it.
func TestHeldUntilStart(t *testing.T) {
	var n atomic.Int32
	q := New(4, func(int) error { n.Add(1); return nil }, func(error) {})
	q.Push(1)
	q.Push(2)
	time.Sleep(20 * time.Millisecond)
	if n.Load() != 0 {
		t.Fatalf("%d frames written before Start", n.Load())
	}
	q.Start()
	for deadline := time.Now().Add(time.Second); n.Load() != 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d frames after Start, want 2", n.Load())
		}
	}
}

// TestFullAndFailed: a full queue refuses, and a failed write stops the
// queue for good, reporting the error once.
func TestFullAndFailed(t *testing.T) {
	boom := errors.New("boom")
	var failures atomic.Int32
	var written atomic.Int32
	q := New(2, func(v int) error {
		written.Add(1)
		if v == 1 {
			return boom
		}
		return nil
	}, func(err error) {
		if !errors.Is(err, boom) {
			t.Errorf("failed(%v)", err)
		}
		failures.Add(1)
	})
	if !q.Push(1) || !q.Push(2) || q.Push(3) {
		t.Fatal("a queue of 2 takes 2 frames and refuses the third")
	}
	q.Start()
	time.Sleep(50 * time.Millisecond)
	q.Push(4)
	time.Sleep(50 * time.Millisecond)
	if failures.Load() != 1 || written.Load() != 1 {
		t.Fatalf("%d failures and %d writes, want 1 and 1: nothing is written after a failure", failures.Load(), written.Load())
	}
}
