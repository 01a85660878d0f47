package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

// buildBinary compiles switchboard once per test run.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "switchboard-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "switchboard")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// child is a switchboard serve process.
type child struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	logs *testenv.SyncBuffer
}

func startServe(t *testing.T, addr string, env []string) *child {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{t: t, addr: addr, logs: &testenv.SyncBuffer{}}
	c.cmd = exec.Command(bin, "serve")
	c.cmd.Env = append(os.Environ(), append([]string{"SWITCHBOARD_ADDR=" + addr, "SWITCHBOARD_FORM_RATE_LIMIT=0", "SWITCHBOARD_LOG_LEVEL=warn"}, env...)...)
	c.cmd.Stdout, c.cmd.Stderr = c.logs, c.logs
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
			c.cmd.Wait()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("switchboard serve did not become healthy:\n%s", c.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// queueDepth reads the queue depth from /healthz.
func (c *child) queueDepth() int {
	resp, err := http.Get("http://" + c.addr + "/healthz")
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct {
		QueueDepth int `json:"queue_depth"`
	}
	json.NewDecoder(resp.Body).Decode(&h)
	return h.QueueDepth
}

func (c *child) stop() {
	c.cmd.Process.Signal(syscall.SIGTERM)
	c.cmd.Wait()
}

// TestCrashLosesNothing starts switchboard serve, posts forms from several
// clients, kills the process with SIGKILL in the middle of the stream,
// starts it again, and checks that every post that was answered 2xx is
// stored within restartBound of the restart, exactly once, and nothing is
// stored twice. The reclaim timeout is far longer than that: what the
// killed process held must come back because it restarted, not because
// the timeout ran out.
func TestCrashLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes; skipped with -short")
	}
	t.Run("embedded", func(t *testing.T) {
		dir := t.TempDir()
		crashScenario(t, []string{"SWITCHBOARD_DATA_DIR=" + dir, "SWITCHBOARD_QUEUE_RECLAIM_AFTER=10m"}, "sqlite:"+filepath.Join(dir, "switchboard.db"),
			func() int { return sqliteLeased(t, filepath.Join(dir, "queue.db")) })
	})
	t.Run("postgres+redis", func(t *testing.T) {
		redisURL := testenv.URL(t, testenv.RedisURL, "Redis")
		dbURL := storetest.URL(t, "postgres")
		var b [6]byte
		rand.Read(b[:])
		prefix := "sbtest:" + hex.EncodeToString(b[:]) + ":"
		t.Cleanup(func() { cleanRedis(t, redisURL, prefix) })
		crashScenario(t, []string{
			"SWITCHBOARD_DATA_DIR=" + t.TempDir(), "SWITCHBOARD_DATABASE_URL=" + dbURL, "SWITCHBOARD_REDIS_URL=" + redisURL,
			"SWITCHBOARD_REDIS_PREFIX=" + prefix, "SWITCHBOARD_QUEUE_RECLAIM_AFTER=10m",
			// The shared test Redis keeps nothing on disk (scripts/test.sh),
			// and this test kills switchboard, not Redis.
			"SWITCHBOARD_REDIS_ALLOW_VOLATILE=true",
		}, dbURL, func() int { return redisPending(t, redisURL, prefix+"inbound:") })
	})
}

// restartBound is how soon after a restart every accepted message must be
// stored.
const restartBound = 5 * time.Second

// sqliteLeased counts the entries leased in the queue file at path.
func sqliteLeased(t *testing.T, path string) int {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM inbound_queue WHERE lease_until > ?`, time.Now().UnixMilli()).Scan(&n); err != nil {
		t.Fatalf("count leased queue entries: %v", err)
	}
	return n
}

// redisPending counts the entries pending in the inbound streams under
// prefix (the default consumer group's).
func redisPending(t *testing.T, url, prefix string) int {
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	n := 0
	for _, ch := range switchboard.Channels {
		p, err := rdb.XPending(context.Background(), prefix+string(ch), "ingest").Result()
		if err != nil && !redis.HasErrorPrefix(err, "NOGROUP") {
			t.Fatalf("XPENDING %s: %v", prefix+string(ch), err)
		}
		if p != nil {
			n += int(p.Count)
		}
	}
	return n
}

// crashScenario runs the test against a server started with env and
// storing in dbURL; held counts the queue entries the server holds
// unacknowledged, for the log.
func crashScenario(t *testing.T, env []string, dbURL string, held func() int) {
	addr := freeAddr(t)
	c := startServe(t, addr, env)

	const clients = 8
	var mu sync.Mutex
	accepted := map[string]bool{}
	var sent int
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				text := fmt.Sprintf("crash-test message w%d-%d", w, i)
				body, _ := json.Marshal(map[string]string{
					"name": "Crash", "email": fmt.Sprintf("customer%d@example.com", (w*7+i)%40), "message": text,
				})
				resp, err := client.Post("http://"+addr+"/forms/contact", "application/json", bytes.NewReader(body))
				mu.Lock()
				sent++
				if err == nil {
					if resp.StatusCode == http.StatusAccepted {
						accepted[text] = true
					}
					resp.Body.Close()
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}
	// Let a few hundred posts through, then kill the server mid-stream.
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(accepted)
		mu.Unlock()
		if n >= 400 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.cmd.Wait()
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if len(accepted) < 100 {
		t.Fatalf("only %d posts accepted before the kill:\n%s", len(accepted), c.logs)
	}

	// Restart: every accepted post is stored within restartBound, those
	// the killed process held included.
	inFlight := held()
	restart := time.Now()
	c = startServe(t, addr, env)
	healthy := time.Since(restart)
	inspect := storetest.InspectURL(t, dbURL)
	for {
		counts := inspect.MessagesByText("crash-test message %")
		missing := 0
		for text := range accepted {
			if counts[text] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if since := time.Since(restart); since > restartBound {
			t.Fatalf("%d of %d accepted posts still not stored %v after the restart (%d were held by the killed process)", missing, len(accepted), since, inFlight)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("every accepted post stored %v after the restart (healthy after %v); the killed process held %d queue entries", time.Since(restart), healthy, inFlight)

	// Let it drain the rest (posts answered with an error, or not at all).
	drain := time.Now().Add(60 * time.Second)
	for c.queueDepth() > 0 {
		if time.Now().After(drain) {
			t.Fatalf("queue did not drain after restart:\n%s", c.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.stop()

	counts := inspect.MessagesByText("crash-test message %")
	for text := range accepted {
		if counts[text] != 1 {
			t.Errorf("accepted post %q stored %d times, want exactly 1", text, counts[text])
		}
	}
	for text, n := range counts {
		if n > 1 {
			t.Errorf("post %q stored %d times", text, n)
		}
	}
	t.Logf("%d posts sent, %d accepted before SIGKILL, %d stored after restart", sent, len(accepted), len(counts))
}

func cleanRedis(t *testing.T, url, prefix string) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Errorf("parse redis url: %v", err)
		return
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		rdb.Del(ctx, iter.Val())
	}
}
