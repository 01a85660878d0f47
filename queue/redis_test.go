package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	switchboard "github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/queue/queuetest"
)

const redisURLEnv = "SWITCHBOARD_TEST_REDIS_URL"

// testRedis connects to the test Redis, or skips the test when none is
// configured (outside CI, where one must be).
func testRedis(t testing.TB) *redis.Client {
	t.Helper()
	url := os.Getenv(redisURLEnv)
	if url == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set; CI must provide a Redis", redisURLEnv)
		}
		t.Skipf("%s is not set (e.g. redis://127.0.0.1:6379/0); skipping Redis tests", redisURLEnv)
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("%s: %v", redisURLEnv, err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis at %s: %v", url, err)
	}
	return c
}

// testPrefix returns a key prefix of the test's own and deletes its keys
// when the test ends.
func testPrefix(t testing.TB, c *redis.Client) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "switchboard:test:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			_ = c.Del(ctx, iter.Val()).Err()
		}
	})
	return prefix
}

func TestRedis(t *testing.T) {
	c := testRedis(t)
	queuetest.Run(t, queuetest.Harness{
		Open: func(t *testing.T, redeliver time.Duration) switchboard.Queue {
			return NewRedis(c, RedisOptions{
				Prefix: testPrefix(t, c), Consumer: ConsumerName(""),
				MinIdle: redeliver, ReclaimInterval: 50 * time.Millisecond,
			})
		},
		Reopen: func(t *testing.T, q switchboard.Queue, redeliver time.Duration) switchboard.Queue {
			opts := q.(*Redis).opts // the same streams and consumer name
			opts.MinIdle = redeliver
			return NewRedis(c, opts)
		},
		Flood: 50000, // the figure the core issue names
	})
}

func recv(t *testing.T, q *Redis, max int, wait time.Duration) []switchboard.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ds, err := q.Receive(ctx, max)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	return ds
}

func enq(t *testing.T, q *Redis, n int, tag string) map[string]bool {
	t.Helper()
	ps := map[string]bool{}
	for i := 0; i < n; i++ {
		p := fmt.Sprintf("%s-%03d", tag, i)
		if err := q.Enqueue(context.Background(), switchboard.Channels[i%len(switchboard.Channels)], []byte(p)); err != nil {
			t.Fatal(err)
		}
		ps[p] = true
	}
	return ps
}

func TestRedisTwoConsumers(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	a := NewRedis(c, RedisOptions{Prefix: prefix, Consumer: "a"})
	b := NewRedis(c, RedisOptions{Prefix: prefix, Consumer: "b"})
	want := enq(t, a, 100, "e")

	fromA := map[string]bool{}
	for len(fromA) < 30 {
		for _, d := range recv(t, a, 30-len(fromA), 5*time.Second) {
			fromA[string(d.Payload)] = true
		}
	}
	var fromB []switchboard.Delivery
	for len(fromB) < 70 {
		fromB = append(fromB, recv(t, b, 100, 5*time.Second)...)
	}
	for _, d := range fromB {
		if fromA[string(d.Payload)] {
			t.Fatalf("%q delivered to both consumers", d.Payload)
		}
		delete(want, string(d.Payload))
	}
	for p := range fromA {
		delete(want, p)
	}
	if len(want) != 0 || len(fromB) != 70 {
		t.Fatalf("b got %d, never delivered: %v", len(fromB), want)
	}
	// Nothing is left for either, and b's entries are not a's to reclaim.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if ds, _ := a.Receive(ctx, 10); len(ds) != 0 {
		t.Fatalf("a received %d more entries", len(ds))
	}
}

func TestRedisDeadConsumerReclaim(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	const idle = 400 * time.Millisecond
	dead := NewRedis(c, RedisOptions{Prefix: prefix, Consumer: "dead", MinIdle: idle})
	live := NewRedis(c, RedisOptions{Prefix: prefix, Consumer: "live", MinIdle: idle, ReclaimInterval: 50 * time.Millisecond})
	want := enq(t, dead, 10, "d")
	held := recv(t, dead, 10, 5*time.Second)
	heldAt := time.Now()
	if len(held) != 10 {
		t.Fatalf("dead consumer got %d entries, want 10", len(held))
	}
	// The dead consumer never acks. Before MinIdle, live must not take them.
	ctx, cancel := context.WithTimeout(context.Background(), idle/4)
	ds, _ := live.Receive(ctx, 100)
	cancel()
	if len(ds) != 0 {
		t.Fatalf("live consumer took %d entries before they were idle", len(ds))
	}
	got := map[string]int{}
	for len(got) < 10 {
		ds := recv(t, live, 100, 5*time.Second)
		if since := time.Since(heldAt); since < idle*9/10 {
			t.Fatalf("reclaimed after %v, before MinIdle %v", since, idle)
		}
		for _, d := range ds {
			got[string(d.Payload)]++
		}
		if err := live.Ack(context.Background(), ds); err != nil {
			t.Fatal(err)
		}
	}
	for p := range want {
		if got[p] != 1 {
			t.Fatalf("%q processed %d times by the live consumer, want once", p, got[p])
		}
	}
	// Processed once: nothing comes back, and the dead consumer's late ack
	// of what it held is harmless.
	ctx, cancel = context.WithTimeout(context.Background(), 3*idle)
	defer cancel()
	if ds, _ := live.Receive(ctx, 100); len(ds) != 0 {
		t.Fatalf("entries delivered again after ack: %d", len(ds))
	}
	if err := dead.Ack(context.Background(), held); err != nil {
		t.Fatalf("late ack: %v", err)
	}
	if n, err := live.Depth(context.Background()); err != nil || n != 0 {
		t.Fatalf("Depth = %d, %v", n, err)
	}
}

// TestRedisKilledProcess runs a consumer in a child process that receives
// entries and is killed with SIGKILL before acking; this process's consumer
// must reclaim them, and every entry is processed.
func TestRedisKilledProcess(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	const idle = 500 * time.Millisecond
	q := NewRedis(c, RedisOptions{Prefix: prefix, Consumer: "parent", MinIdle: idle, ReclaimInterval: 50 * time.Millisecond})
	want := enq(t, q, 50, "k")
	lines := runChild(t, "TestRedisChildProcess", childEnv+"=redis", "SWITCHBOARD_QUEUE_TEST_PREFIX="+prefix)
	childGot := map[string]bool{}
	for _, l := range lines {
		if p, ok := strings.CutPrefix(l, "GOT "); ok {
			childGot[p] = true
		}
	}
	if len(childGot) != 20 {
		t.Fatalf("child received %d entries, want 20", len(childGot))
	}
	ctx := context.Background()
	childPending := int64(0)
	for _, ch := range switchboard.Channels {
		cs, err := c.XInfoConsumers(ctx, prefix+string(ch), defaultRedisGroup).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, cn := range cs {
			if cn.Name == "child" {
				childPending += cn.Pending
			}
		}
	}
	if childPending != 20 {
		t.Fatalf("killed child holds %d pending entries, want 20", childPending)
	}

	processed := consumeAll(t, q, 50, 20*time.Second)
	for p := range want {
		if processed[p] != 1 {
			t.Errorf("%q processed %d times, want once", p, processed[p])
		}
	}
	if len(processed) != 50 {
		t.Errorf("processed %d distinct entries, want 50", len(processed))
	}
	for p := range childGot {
		if !want[p] || processed[p] != 1 {
			t.Errorf("child's entry %q was not reclaimed and processed", p)
		}
	}
	if n, err := q.Depth(ctx); err != nil || n != 0 {
		t.Fatalf("Depth = %d, %v; want 0", n, err)
	}
}

// TestRedisChildProcess is the child half of TestRedisKilledProcess.
func TestRedisChildProcess(t *testing.T) {
	if os.Getenv(childEnv) != "redis" {
		t.Skip("child process of TestRedisKilledProcess")
	}
	opt, err := redis.ParseURL(os.Getenv(redisURLEnv))
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	name := "child"
	if n := os.Getenv("SWITCHBOARD_QUEUE_TEST_CONSUMER"); n != "" {
		name = n
	}
	q := NewRedis(redis.NewClient(opt), RedisOptions{Prefix: os.Getenv("SWITCHBOARD_QUEUE_TEST_PREFIX"), Consumer: name})
	childReceive(q, 20)
}

// TestRedisKilledProcessRestart: a consumer is killed with SIGKILL holding
// entries; a new process under the same consumer name (the same instance
// restarted) gets them back at once, not after MinIdle.
func TestRedisKilledProcessRestart(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	name := ConsumerName("127.0.0.1:8080")
	want := enq(t, NewRedis(c, RedisOptions{Prefix: prefix}), 50, "k")
	lines := runChild(t, "TestRedisChildProcess", childEnv+"=redis", "SWITCHBOARD_QUEUE_TEST_PREFIX="+prefix, "SWITCHBOARD_QUEUE_TEST_CONSUMER="+name)
	held := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "GOT ") {
			held++
		}
	}
	if held != 20 {
		t.Fatalf("child received %d entries, want 20", held)
	}

	start := time.Now()
	q := NewRedis(c, RedisOptions{Prefix: prefix, Consumer: name, MinIdle: time.Hour})
	processed := consumeAll(t, q, 50, 2*time.Second)
	for p := range want {
		if processed[p] != 1 {
			t.Errorf("%q processed %d times, want once", p, processed[p])
		}
	}
	t.Logf("all 50 entries, %d held by the killed process, back %v after the restart", held, time.Since(start))
	if n, err := q.Depth(context.Background()); err != nil || n != 0 {
		t.Fatalf("Depth = %d, %v; want 0", n, err)
	}
}

// TestRedisTakeBackOnlyOwn: the entries another live consumer holds stay
// its own when a consumer starts (they are not idle, and not ours).
func TestRedisTakeBackOnlyOwn(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	other := NewRedis(c, RedisOptions{Prefix: prefix, Consumer: "other", MinIdle: time.Hour})
	enq(t, other, 5, "o")
	if ds := recv(t, other, 5, 5*time.Second); len(ds) != 5 {
		t.Fatalf("other received %d, want 5", len(ds))
	}
	me := NewRedis(c, RedisOptions{Prefix: prefix, Consumer: "me", MinIdle: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	if ds, err := me.Receive(ctx, 10); len(ds) != 0 {
		t.Fatalf("a new consumer took %d entries another live consumer holds (%v)", len(ds), err)
	}
}

func TestConsumerName(t *testing.T) {
	a, b := ConsumerName("0.0.0.0:8080"), ConsumerName("0.0.0.0:8080")
	if a != b {
		t.Errorf("ConsumerName of one address differs between calls: %q, %q", a, b)
	}
	if a == ConsumerName("0.0.0.0:8081") {
		t.Errorf("two listen addresses share the consumer name %q", a)
	}
	for _, addr := range []string{"", "127.0.0.1:0", ":0", "nonsense"} {
		if x, y := ConsumerName(addr), ConsumerName(addr); x == y {
			t.Errorf("ConsumerName(%q) = %q twice: without a fixed port it must be unique per process", addr, x)
		}
	}
}

func TestRedisPayloadMissing(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	q := NewRedis(c, RedisOptions{Prefix: prefix, Consumer: ConsumerName("")})
	ctx := context.Background()
	// Make the groups, then add an entry some other writer got wrong.
	if err := q.ensureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.XAdd(ctx, &redis.XAddArgs{Stream: prefix + "sms", Values: []any{"other", "x"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(ctx, switchboard.ChannelSMS, []byte("good")); err != nil {
		t.Fatal(err)
	}
	ds := recv(t, q, 10, 5*time.Second)
	if len(ds) != 1 || string(ds[0].Payload) != "good" {
		t.Fatalf("got %d deliveries (%v), want only the good one", len(ds), ds)
	}
	if err := q.Ack(ctx, ds); err != nil {
		t.Fatal(err)
	}
	if n, err := q.Depth(ctx); err != nil || n != 0 {
		t.Fatalf("Depth = %d, %v; want 0 (the broken entry dropped)", n, err)
	}
}

func TestRedisStreamDeleted(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	q := NewRedis(c, RedisOptions{Prefix: prefix, Consumer: ConsumerName("")})
	ctx := context.Background()
	if err := q.ensureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	// Someone deletes a stream and its group; Receive must recover.
	if err := c.Del(ctx, prefix+"email").Err(); err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(ctx, switchboard.ChannelEmail, []byte("after delete")); err != nil {
		t.Fatal(err)
	}
	ds := recv(t, q, 10, 5*time.Second)
	if len(ds) != 1 || string(ds[0].Payload) != "after delete" {
		t.Fatalf("got %v", ds)
	}
}

func TestRedisProducerOnly(t *testing.T) {
	c := testRedis(t)
	q := NewRedis(c, RedisOptions{Prefix: testPrefix(t, c)})
	ctx := context.Background()
	if err := q.Enqueue(ctx, switchboard.ChannelSMS, []byte("x")); err != nil {
		t.Fatalf("Enqueue without a consumer name: %v", err)
	}
	if _, err := q.Receive(ctx, 1); err == nil {
		t.Fatal("Receive without a consumer name succeeded")
	}
}

// BenchmarkRedisEnqueueParallel measures concurrent XADDs, each caller
// waiting for Redis's reply.
func BenchmarkRedisEnqueueParallel(b *testing.B) {
	c := testRedis(b)
	q := NewRedis(c, RedisOptions{Prefix: testPrefix(b, c)})
	p := payload1K()
	b.SetParallelism(32)
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
}

// TestRedisSmallMax checks that Receive never returns more than max, even
// when a blocking read wakes on several streams at once.
func TestRedisSmallMax(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	q := NewRedis(c, RedisOptions{Prefix: prefix, Consumer: ConsumerName("")})
	ctx := context.Background()
	if err := q.ensureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	got := make(chan []switchboard.Delivery, 1)
	go func() {
		ds, err := q.Receive(context.Background(), 2)
		if err != nil {
			t.Error(err)
		}
		got <- ds
	}()
	time.Sleep(100 * time.Millisecond) // let it block on the empty streams
	// Three streams become ready in one step.
	if _, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, ch := range []switchboard.Channel{switchboard.ChannelSMS, switchboard.ChannelEmail, switchboard.ChannelVoice} {
			p.XAdd(ctx, &redis.XAddArgs{Stream: prefix + string(ch), Values: []any{payloadField, string(ch)}})
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	first := <-got
	if len(first) == 0 || len(first) > 2 {
		t.Fatalf("Receive(max=2) returned %d entries", len(first))
	}
	seen := map[string]bool{}
	for _, d := range first {
		seen[string(d.Payload)] = true
	}
	for len(seen) < 3 {
		ds := recv(t, q, 2, 5*time.Second)
		for _, d := range ds {
			if seen[string(d.Payload)] {
				t.Fatalf("%q delivered twice", d.Payload)
			}
			seen[string(d.Payload)] = true
		}
	}
}
