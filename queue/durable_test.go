package queue

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	switchboard "github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
)

// ownRedis starts a redis-server of the test's own with args.
func ownRedis(t *testing.T, args ...string) (*testenv.RedisServer, *redis.Client) {
	t.Helper()
	s := testenv.StartRedis(t, args...)
	opt, err := redis.ParseURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return s, c
}

func TestCheckDurable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name string
		args []string
		want []string // in the error; none: no error
	}{
		{"no persistence", nil, []string{"appendonly is \"no\"", "redis-server --appendonly yes --appendfsync always", "CONFIG SET appendonly yes"}},
		{"everysec", []string{"--appendonly", "yes", "--appendfsync", "everysec"}, []string{"appendfsync is \"everysec\"", "redis-server --appendonly yes --appendfsync always"}},
		{"fsync no", []string{"--appendonly", "yes", "--appendfsync", "no"}, []string{"appendfsync is \"no\""}},
		{"always", []string{"--appendonly", "yes", "--appendfsync", "always"}, nil},
		{"CONFIG disabled", []string{"--rename-command", "CONFIG", ""}, []string{"cannot read appendonly and appendfsync", "CONFIG", "appendonly yes and appendfsync always"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, c := ownRedis(t, tc.args...)
			err := CheckDurable(ctx, c)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("CheckDurable = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("CheckDurable = nil, want a refusal")
			}
			t.Logf("refusal: %v", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("CheckDurable = %q, want it to say %q", err, w)
				}
			}
		})
	}
	t.Run("fixed with CONFIG SET", func(t *testing.T) {
		_, c := ownRedis(t)
		if CheckDurable(ctx, c) == nil {
			t.Fatal("CheckDurable passed a Redis without AOF")
		}
		// What the refusal says to run on a running server.
		for _, kv := range [][2]string{{"appendonly", "yes"}, {"appendfsync", "always"}} {
			if err := c.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := CheckDurable(ctx, c); err != nil {
			t.Fatalf("CheckDurable after CONFIG SET = %v", err)
		}
		// Turning AOF on starts a rewrite in a forked child: let it end
		// before the directory is removed.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			info, err := c.Info(ctx, "persistence").Result()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(info, "aof_rewrite_in_progress:0") && strings.Contains(info, "aof_rewrite_scheduled:0") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the AOF rewrite did not end within 10s:\n%s", info)
			}
		}
	})
}

// TestRedisCrashKeepsAcknowledged shows why CheckDurable asks for what it
// does: entries Enqueue acknowledged survive a SIGKILL of Redis with
// appendfsync always, and are all gone without AOF.
func TestRedisCrashKeepsAcknowledged(t *testing.T) {
	const n = 300
	for _, tc := range []struct {
		name string
		args []string
		want int64
	}{
		{"appendfsync always", []string{"--appendonly", "yes", "--appendfsync", "always"}, n},
		{"no persistence", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			s, c := ownRedis(t, tc.args...)
			q := NewRedis(c, RedisOptions{Consumer: "c"})
			for i := 0; i < n; i++ {
				if err := q.Enqueue(ctx, switchboard.Channels[i%len(switchboard.Channels)], []byte(fmt.Sprint(i))); err != nil {
					t.Fatal(err)
				}
			}
			s.Kill()
			s.Start()
			got, err := q.Depth(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("after Redis was killed and restarted, %d of %d acknowledged entries are left, want %d", got, n, tc.want)
			}
			if tc.want > 0 {
				if processed := consumeAll(t, q, n, 10*time.Second); len(processed) != n {
					t.Fatalf("received %d distinct entries, want %d", len(processed), n)
				}
			}
		})
	}
}
