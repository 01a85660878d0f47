package queue

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	switchboard "github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/queue/queuetest"
)

// childEnv names the variable that turns the test binary into a child
// process for the crash tests.
const childEnv = "SWITCHBOARD_QUEUE_TEST_CHILD"

func openSQLiteAt(t testing.TB, path string, opts ...SQLiteOption) *SQLite {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q, err := OpenSQLite(ctx, path, opts...)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

func TestSQLite(t *testing.T) {
	var paths sync.Map // *SQLite -> its file
	open := func(t *testing.T, path string, redeliver time.Duration) switchboard.Queue {
		q := openSQLiteAt(t, path, WithVisibility(redeliver), WithPollInterval(50*time.Millisecond))
		paths.Store(q, path)
		return q
	}
	queuetest.Run(t, queuetest.Harness{
		Open: func(t *testing.T, redeliver time.Duration) switchboard.Queue {
			return open(t, filepath.Join(t.TempDir(), "queue.db"), redeliver)
		},
		Reopen: func(t *testing.T, q switchboard.Queue, redeliver time.Duration) switchboard.Queue {
			path, _ := paths.Load(q)
			return open(t, path.(string), redeliver)
		},
		Flood: 50000, // the figure the core issue names
	})
}

// TestSQLiteGroupCommit checks that concurrent enqueues share transactions.
func TestSQLiteGroupCommit(t *testing.T) {
	q := openSQLiteAt(t, filepath.Join(t.TempDir(), "queue.db"))
	const n = 4000
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 200; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := q.Enqueue(context.Background(), switchboard.ChannelSMS, []byte(fmt.Sprint(i))); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	commits, entries := q.commits.Load(), q.entries.Load()
	if entries != n {
		t.Fatalf("entries committed = %d, want %d", entries, n)
	}
	if per := float64(entries) / float64(commits); per < 4 {
		t.Fatalf("%d entries in %d commits (%.1f per commit): enqueues are not group-committed", entries, commits, per)
	} else {
		t.Logf("%d entries in %d commits (%.1f per commit)", entries, commits, per)
	}
}

// TestSQLiteReopen checks that entries survive closing the file and that
// leases do not: whoever held them has gone, so they come back at once.
func TestSQLiteReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	q, err := OpenSQLite(ctx, path, WithVisibility(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := q.Enqueue(ctx, switchboard.ChannelEmail, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := q.Receive(ctx, 2)
	if err != nil || len(ds) != 2 {
		t.Fatalf("Receive = %d, %v", len(ds), err)
	}
	if err := q.Ack(ctx, ds[:1]); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	q2 := openSQLiteAt(t, path, WithVisibility(time.Hour), WithPollInterval(time.Hour))
	if n, err := q2.Depth(ctx); err != nil || n != 4 {
		t.Fatalf("Depth after reopen = %d, %v; want 4", n, err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
	defer rcancel()
	ds, err = q2.Receive(rctx, 10)
	if err != nil {
		t.Fatalf("Receive after reopen: %v (the lease of an hour was kept?)", err)
	}
	got := map[string]bool{}
	for _, d := range ds {
		got[string(d.Payload)] = true
	}
	if len(ds) != 4 || got["0"] || !got["1"] {
		t.Fatalf("after reopen got %v: want 1 to 4, the leased entry 1 included, at once (%v)", got, time.Since(start))
	}
}

// TestSQLiteOpenKeepsLiveLeases: a second opener while the first is still
// open must not release the first one's leases: it is alive and working on
// them.
func TestSQLiteOpenKeepsLiveLeases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	live := openSQLiteAt(t, path, WithVisibility(time.Hour))
	for i := 0; i < 3; i++ {
		if err := live.Enqueue(ctx, switchboard.ChannelSMS, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	held, err := live.Receive(ctx, 2)
	if err != nil || len(held) != 2 {
		t.Fatalf("Receive = %d, %v", len(held), err)
	}
	other := openSQLiteAt(t, path, WithVisibility(time.Hour), WithPollInterval(50*time.Millisecond))
	ds, err := other.Receive(ctx, 10)
	if err != nil || len(ds) != 1 || string(ds[0].Payload) != "2" {
		t.Fatalf("second opener received %v, %v; want only the entry nobody held", payloadsOf(ds), err)
	}
	// Once both are closed, the next opener is alone and takes everything.
	for _, q := range []*SQLite{live, other} {
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
	}
	third := openSQLiteAt(t, path, WithVisibility(time.Hour))
	if got := consumeAll(t, third, 3, 2*time.Second); len(got) != 3 {
		t.Fatalf("third opener got %v, want all 3 entries at once", got)
	}
}

func payloadsOf(ds []switchboard.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d.Payload)
	}
	return out
}

// TestSQLiteKilledProcess runs a consumer in a child process that enqueues
// entries, leases more and is killed with SIGKILL before acking: what it
// enqueued must be there, and what it leased must come back once its lease
// runs out.
func TestSQLiteKilledProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	q := openSQLiteAt(t, path, WithVisibility(time.Minute), WithPollInterval(50*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want := map[string]bool{}
	for i := 0; i < 50; i++ {
		p := fmt.Sprintf("parent-%02d", i)
		want[p] = true
		if err := q.Enqueue(ctx, switchboard.Channels[i%len(switchboard.Channels)], []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	lines := runChild(t, "TestSQLiteChildProcess", childEnv+"=sqlite", "SWITCHBOARD_QUEUE_TEST_PATH="+path)
	childGot := map[string]bool{}
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "ENQ "):
			want[strings.TrimPrefix(l, "ENQ ")] = true
		case strings.HasPrefix(l, "GOT "):
			childGot[strings.TrimPrefix(l, "GOT ")] = true
		}
	}
	if len(want) != 60 || len(childGot) != 20 {
		t.Fatalf("child enqueued %d and received %d, want 10 and 20", len(want)-50, len(childGot))
	}
	processed := consumeAll(t, q, len(want), 20*time.Second)
	for p := range want {
		if processed[p] != 1 {
			t.Errorf("%q processed %d times, want once", p, processed[p])
		}
	}
	if len(processed) != len(want) {
		t.Errorf("processed %d distinct entries, want %d", len(processed), len(want))
	}
	if n, err := q.Depth(ctx); err != nil || n != 0 {
		t.Fatalf("Depth = %d, %v; want 0", n, err)
	}
}

// TestSQLiteKilledProcessRestart: a process leases entries and is killed
// with SIGKILL; the next process to open the queue gets them at once, not
// after the (here hour-long) lease the dead process took.
func TestSQLiteKilledProcessRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	q := openSQLiteAt(t, path)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want := map[string]bool{}
	for i := 0; i < 30; i++ {
		p := fmt.Sprintf("before-%02d", i)
		want[p] = true
		if err := q.Enqueue(ctx, switchboard.Channels[i%len(switchboard.Channels)], []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	lines := runChild(t, "TestSQLiteChildProcess", childEnv+"=sqlite", "SWITCHBOARD_QUEUE_TEST_PATH="+path, "SWITCHBOARD_QUEUE_TEST_VISIBILITY=1h")
	held := 0
	for _, l := range lines {
		if p, ok := strings.CutPrefix(l, "ENQ "); ok {
			want[p] = true
		}
		if strings.HasPrefix(l, "GOT ") {
			held++
		}
	}
	if len(want) != 40 || held != 20 {
		t.Fatalf("child enqueued %d and held %d, want 10 and 20", len(want)-30, held)
	}

	start := time.Now()
	q2 := openSQLiteAt(t, path, WithVisibility(time.Hour), WithPollInterval(time.Hour))
	processed := consumeAll(t, q2, len(want), 2*time.Second)
	for p := range want {
		if processed[p] != 1 {
			t.Errorf("%q processed %d times, want once", p, processed[p])
		}
	}
	t.Logf("all %d entries, %d leased by the killed process for an hour, back %v after the restart", len(want), held, time.Since(start))
}

// TestSQLiteChildProcess is the child half of TestSQLiteKilledProcess.
func TestSQLiteChildProcess(t *testing.T) {
	if os.Getenv(childEnv) != "sqlite" {
		t.Skip("child process of TestSQLiteKilledProcess")
	}
	ctx := context.Background()
	visibility := 700 * time.Millisecond
	if v := os.Getenv("SWITCHBOARD_QUEUE_TEST_VISIBILITY"); v != "" {
		visibility, _ = time.ParseDuration(v)
	}
	q, err := OpenSQLite(ctx, os.Getenv("SWITCHBOARD_QUEUE_TEST_PATH"), WithVisibility(visibility))
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	for i := 0; i < 10; i++ {
		p := fmt.Sprintf("child-%02d", i)
		if err := q.Enqueue(ctx, switchboard.ChannelVoice, []byte(p)); err != nil {
			fmt.Println("ERR", err)
			os.Exit(2)
		}
		fmt.Println("ENQ", p) // only once durable
	}
	childReceive(q, 20)
}

// childReceive receives n entries, reports them, and waits to be killed.
func childReceive(q switchboard.Queue, n int) {
	got := 0
	for got < n {
		ds, err := q.Receive(context.Background(), n-got)
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(2)
		}
		for _, d := range ds {
			fmt.Println("GOT", string(d.Payload))
		}
		got += len(ds)
	}
	fmt.Println("READY")
	time.Sleep(time.Minute)
	os.Exit(3) // never reached: the parent kills us
}

// runChild re-executes the test binary as a child running test, reads its
// output up to READY, then kills it with SIGKILL and returns the lines.
func runChild(t *testing.T, test string, env ...string) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	linesCh := make(chan []string, 1)
	go func() {
		var lines []string
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if sc.Text() == "READY" || strings.HasPrefix(sc.Text(), "ERR ") {
				break
			}
		}
		linesCh <- lines
	}()
	var lines []string
	select {
	case lines = <-linesCh:
	case <-time.After(30 * time.Second):
		t.Fatal("child did not report READY")
	}
	if len(lines) == 0 || lines[len(lines)-1] != "READY" {
		t.Fatalf("child failed: %q", lines)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v", err)
	}
	return lines
}

// consumeAll receives and acks until n entries have been processed, and
// returns how often each payload was.
func consumeAll(t *testing.T, q switchboard.Queue, n int, wait time.Duration) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	seen := map[string]int{}
	total := 0
	for total < n {
		ds, err := q.Receive(ctx, 16)
		if err != nil {
			t.Fatalf("Receive after %d of %d: %v", total, n, err)
		}
		for _, d := range ds {
			seen[string(d.Payload)]++
		}
		total += len(ds)
		if err := q.Ack(ctx, ds); err != nil {
			t.Fatal(err)
		}
	}
	return seen
}

func payload1K() []byte {
	p := []byte(`{"channel":"sms","provider_id":"SM0123456789abcdef","identities":[{"kind":"phone","value":"+15551234567"}],"content_type":"text","text":"`)
	p = append(p, strings.Repeat("hello there ", 70)...)
	return append(p, `"}`...)
}

// BenchmarkSQLiteEnqueueParallel measures webhook-style enqueues: many
// concurrent callers, each waiting until its entry is committed.
func BenchmarkSQLiteEnqueueParallel(b *testing.B) {
	for _, c := range []struct {
		name string
		opts []SQLiteOption
	}{{"sync=NORMAL", nil}, {"sync=FULL", []SQLiteOption{WithFullSync()}}} {
		b.Run(c.name, func(b *testing.B) {
			q := openSQLiteAt(b, filepath.Join(b.TempDir(), "queue.db"), c.opts...)
			p := payload1K()
			b.SetParallelism(32) // 32 × GOMAXPROCS callers, like concurrent webhook handlers
			b.SetBytes(int64(len(p)))
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := q.Enqueue(context.Background(), switchboard.ChannelSMS, p); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
			if c := q.commits.Load(); c > 0 {
				b.ReportMetric(float64(q.entries.Load())/float64(c), "entries/commit")
			}
		})
	}
}

// BenchmarkSQLiteEnqueueSerial is one caller at a time: one commit each,
// the baseline group commit improves on.
func BenchmarkSQLiteEnqueueSerial(b *testing.B) {
	q := openSQLiteAt(b, filepath.Join(b.TempDir(), "queue.db"))
	p := payload1K()
	b.SetBytes(int64(len(p)))
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := q.Enqueue(context.Background(), switchboard.ChannelSMS, p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}
