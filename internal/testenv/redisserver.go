package testenv

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RedisServer is a redis-server of the test's own, for tests that crash
// Redis or set its persistence: the shared test Redis must not be
// restarted or reconfigured under other tests.
type RedisServer struct {
	// URL is redis://127.0.0.1:PORT/0.
	URL string

	tb   testing.TB
	bin  string
	dir  string
	port string
	args []string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// StartRedis starts redis-server on a free loopback port, with a
// directory of its own and nothing saved unless args (such as
// "--appendonly", "yes") say otherwise, and kills it when the test ends.
// Without the redis-server binary, the test fails in CI and is skipped
// elsewhere.
func StartRedis(tb testing.TB, args ...string) *RedisServer {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redis-server is not installed: CI must run the tests that start their own Redis (scripts/test.sh installs it)")
		}
		tb.Skipf("redis-server is not installed; skipping a test that starts its own Redis")
	}
	s := &RedisServer{tb: tb, bin: bin, dir: tb.TempDir(), args: args}
	tb.Cleanup(s.Kill)
	// A port found free may be taken before redis-server binds it: retry.
	for attempt := 0; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		_, s.port, _ = net.SplitHostPort(l.Addr().String())
		l.Close()
		s.URL = "redis://127.0.0.1:" + s.port + "/0"
		err = s.start()
		if err == nil {
			return s
		}
		if attempt == 2 {
			tb.Fatal(err)
		}
	}
}

// Start starts the server again, on the same port and directory, after
// Kill.
func (s *RedisServer) Start() {
	s.tb.Helper()
	if err := s.start(); err != nil {
		s.tb.Fatal(err)
	}
}

// Kill kills the server with SIGKILL, as a crash would, and waits for it
// to exit. It does nothing when the server is not running.
func (s *RedisServer) Kill() {
	if s.cmd == nil {
		return
	}
	// The whole process group: a background save or AOF rewrite is a
	// forked child that would otherwise go on writing into the directory
	// the test is about to remove.
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
	s.cmd = nil
}

func (s *RedisServer) start() error {
	logfile := filepath.Join(s.dir, "redis.log")
	args := append([]string{
		"--port", s.port, "--bind", "127.0.0.1", "--dir", s.dir, "--logfile", logfile,
		"--save", "", "--daemonize", "no",
	}, s.args...)
	cmd := exec.Command(s.bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ping("127.0.0.1:" + s.port) {
			return nil
		}
		select {
		case <-done:
			s.cmd = nil
			log, _ := os.ReadFile(logfile)
			return fmt.Errorf("redis-server %s exited:\n%s", strings.Join(args, " "), log)
		default:
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("redis-server on port %s did not answer PING within 10s", s.port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ping reports whether a Redis at addr answers PING (LOADING while it
// reads its files does not count).
func ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}
