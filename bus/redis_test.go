package bus_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	switchboard "github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/bus"
	"github.com/switchboard-inbox/switchboard/bus/bustest"
)

// redisClient connects to SWITCHBOARD_TEST_REDIS_URL: a missing server is a
// failure in CI and a skip on a developer's machine.
func redisClient(t *testing.T) *redis.Client {
	t.Helper()
	raw := os.Getenv("SWITCHBOARD_TEST_REDIS_URL")
	if raw == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SWITCHBOARD_TEST_REDIS_URL is not set; CI must run the Redis bus tests")
		}
		t.Skip("SWITCHBOARD_TEST_REDIS_URL is not set (e.g. redis://127.0.0.1:6379/0)")
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		t.Fatalf("SWITCHBOARD_TEST_REDIS_URL: %v", err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis at SWITCHBOARD_TEST_REDIS_URL: %v", err)
	}
	return c
}

// testChannel keeps concurrent test runs sharing one Redis apart.
func testChannel(t *testing.T) string {
	return fmt.Sprintf("switchboard-test:%s:%d", t.Name(), time.Now().UnixNano())
}

func TestRedis(t *testing.T) {
	redisClient(t) // skip or fail once, not in every subtest
	bustest.Run(t, bustest.Config{
		New: func(t *testing.T) bustest.Bus {
			return bus.NewRedis(redisClient(t), testChannel(t), bus.WithBuffer(32))
		},
		Buffer: 32,
		NewWithLogAge: func(t *testing.T, age time.Duration) bustest.Bus {
			return bus.NewRedis(redisClient(t), testChannel(t), bus.WithBuffer(32), bus.WithLog(age, 0))
		},
	})
}

// TestRedisAcrossInstances: two buses with their own clients, as two
// Switchboard processes would have, on one channel.
func TestRedisAcrossInstances(t *testing.T) {
	channel := testChannel(t)
	a := bus.NewRedis(redisClient(t), channel)
	defer a.Close()
	b := bus.NewRedis(redisClient(t), channel)
	defer b.Close()

	onA, onB := bustest.Subscribe(t, a), bustest.Subscribe(t, b)
	bustest.Publish(t, a, bustest.Event(1, 0))
	bustest.Publish(t, b, bustest.Event(2, 0))
	for name, ch := range map[string]<-chan switchboard.BusEvent{"a": onA, "b": onB} {
		seen := map[int]bool{}
		for range 2 {
			p, _ := bustest.Seq(t, bustest.Receive(t, ch))
			seen[p] = true
		}
		if !seen[1] || !seen[2] {
			t.Fatalf("subscriber on %s saw publishers %v, want both 1 and 2", name, seen)
		}
	}

	// Subscribing on b and publishing on a at once must not lose the event:
	// Subscribe returns only once Redis has the subscription.
	for i := range 20 {
		ch := bustest.Subscribe(t, b)
		bustest.Publish(t, a, bustest.Event(1, i))
		if _, n := bustest.Seq(t, bustest.Receive(t, ch)); n != i {
			t.Fatalf("got %d, want %d", n, i)
		}
	}
}

func TestRedisChannelsAreSeparate(t *testing.T) {
	c := redisClient(t)
	a := bus.NewRedis(c, testChannel(t)+":a")
	defer a.Close()
	b := bus.NewRedis(c, testChannel(t)+":b")
	defer b.Close()
	onB := bustest.Subscribe(t, b)
	bustest.Publish(t, a, bustest.Event(0, 0))
	bustest.ExpectQuiet(t, onB, 200*time.Millisecond)
}

// TestRedisForeignPayload: something else publishing on the channel costs
// a counted drop, not the subscription.
func TestRedisForeignPayload(t *testing.T) {
	c := redisClient(t)
	channel := testChannel(t)
	b := bus.NewRedis(c, channel)
	defer b.Close()
	ch := bustest.Subscribe(t, b)
	if err := c.Publish(context.Background(), channel, "not json").Err(); err != nil {
		t.Fatal(err)
	}
	bustest.Publish(t, b, bustest.Event(0, 1))
	if _, n := bustest.Seq(t, bustest.Receive(t, ch)); n != 1 {
		t.Fatalf("got %d, want 1", n)
	}
	if d := b.Dropped(); d != 1 {
		t.Fatalf("Dropped = %d, want 1", d)
	}
}

// TestRedisUnreachable: a Redis that is down is an error from Subscribe and
// Publish, not a hang and not a silently dead channel.
func TestRedisUnreachable(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	b := bus.NewRedis(c, "")
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := b.Subscribe(ctx); err == nil {
		t.Fatal("Subscribe to an unreachable Redis succeeded")
	}
	if err := b.Publish(ctx, bustest.Event(0, 0)); err == nil {
		t.Fatal("Publish to an unreachable Redis succeeded")
	}
	// The failed Subscribe must not leave Close waiting on it.
	done := make(chan struct{})
	go func() { _ = b.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung after a failed Subscribe")
	}
}

// TestRedisOneSubscriptionPerInstance: an instance's subscribers share one
// Pub/Sub subscription (each event crosses from Redis and is decoded once
// per instance), each gets its own copy of the event, and the last one
// leaving does not stop the next from subscribing.
func TestRedisOneSubscriptionPerInstance(t *testing.T) {
	ctx := context.Background()
	c := redisClient(t)
	channel := testChannel(t)
	b := bus.NewRedis(c, channel)
	defer b.Close()
	numsub := func() int64 {
		t.Helper()
		n, err := c.PubSubNumSub(ctx, channel).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n[channel]
	}
	subCtx, cancel := context.WithCancel(ctx)
	first, err := b.Subscribe(subCtx)
	if err != nil {
		t.Fatal(err)
	}
	second, err := b.Subscribe(subCtx)
	if err != nil {
		t.Fatal(err)
	}
	if n := numsub(); n != 1 {
		t.Fatalf("Redis counts %d subscriptions to the channel for one instance with two subscribers, want 1", n)
	}
	bustest.Publish(t, b, bustest.Event(0, 0))
	e1, e2 := bustest.Receive(t, first), bustest.Receive(t, second)
	want := string(e2.Data)
	for i := range e1.Data {
		e1.Data[i] = 'x' // one subscriber scribbling on its event
	}
	if string(e2.Data) != want {
		t.Fatalf("the subscribers share the event's data: %s", e2.Data)
	}
	cancel()
	bustest.ExpectClosed(t, first)
	bustest.ExpectClosed(t, second)
	third := bustest.Subscribe(t, b)
	bustest.Publish(t, b, bustest.Event(0, 1))
	if _, n := bustest.Seq(t, bustest.Receive(t, third)); n != 1 {
		t.Fatalf("got %d, want 1", n)
	}
	if n := numsub(); n != 1 {
		t.Fatalf("Redis counts %d subscriptions after the subscribers changed, want 1", n)
	}
}
