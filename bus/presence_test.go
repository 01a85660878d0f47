package bus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/bus"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
)

// testPresence is the behaviour both presence implementations share:
// entries are new once, renewals are not news, removal and expiry end
// them, and another handle on the same store sees the same.
func testPresence(t *testing.T, p, other switchboard.Presence) {
	ctx := context.Background()
	conv := fmt.Sprintf("conv-%d", time.Now().UnixNano())
	typing := switchboard.PresenceEntry{ConversationID: conv, AgentID: "a1", Name: "Sarah", Kind: switchboard.PresenceTyping}
	viewing := switchboard.PresenceEntry{ConversationID: conv, AgentID: "a2", Name: "Ben", Kind: switchboard.PresenceViewing}
	must := func(changed bool, err error) bool {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return changed
	}
	if !must(p.Put(ctx, typing, time.Minute)) || must(p.Put(ctx, typing, time.Minute)) {
		t.Fatal("a new entry is news, its renewal is not")
	}
	must(p.Put(ctx, viewing, time.Minute))
	es, err := other.Of(ctx, []string{conv, "nobody-here"})
	if err != nil || len(es) != 2 || es[0] != viewing || es[1] != typing {
		t.Fatalf("Of = %+v, %v; want Ben viewing and Sarah typing, by name", es, err)
	}
	if !must(other.Remove(ctx, typing)) || must(p.Remove(ctx, typing)) {
		t.Fatal("removing a live entry is news, removing it again is not")
	}
	short := switchboard.PresenceEntry{ConversationID: conv, AgentID: "a3", Name: "Kim", Kind: switchboard.PresenceTyping}
	must(p.Put(ctx, short, 200*time.Millisecond))
	time.Sleep(400 * time.Millisecond)
	if es, _ := p.Of(ctx, []string{conv}); len(es) != 1 || es[0] != viewing {
		t.Fatalf("after expiry: %+v, want Ben alone", es)
	}
	if must(p.Remove(ctx, short)) || !must(p.Put(ctx, short, time.Minute)) {
		t.Fatal("an expired entry is gone: removing it is no news, putting it again is")
	}
}

func TestMemoryPresence(t *testing.T) {
	p := bus.NewMemoryPresence(nil)
	testPresence(t, p, p)
}

func TestRedisPresence(t *testing.T) {
	prefix := testChannel(t) + ":"
	testPresence(t, bus.NewRedisPresence(redisClient(t), prefix), bus.NewRedisPresence(redisClient(t), prefix))
}

// TestRedisPresenceWithoutItsScript: Of runs its script by hash, and
// loads it when Redis does not have it: on a fresh server, and after the
// script cache is flushed (as a restart does).
func TestRedisPresenceWithoutItsScript(t *testing.T) {
	ctx := context.Background()
	s := testenv.StartRedis(t)
	opt, err := redis.ParseURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	p := bus.NewRedisPresence(c, "p:")
	e := switchboard.PresenceEntry{ConversationID: "c1", AgentID: "a1", Name: "Sarah", Kind: switchboard.PresenceTyping}
	if _, err := p.Put(ctx, e, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, when := range []string{"on a fresh server", "after SCRIPT FLUSH"} {
		if when == "after SCRIPT FLUSH" {
			if err := c.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		es, err := p.Of(ctx, []string{"c1", "c2"})
		if err != nil || len(es) != 1 || es[0] != e {
			t.Fatalf("%s: Of = %+v, %v; want Sarah typing", when, es, err)
		}
	}
}
