package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

// TestBenchRemote: `switchboard bench --url` loads a server running
// elsewhere (here in this process, standing in for `switchboard serve`),
// counts what it accepted, and reads the server's peak memory from /proc.
func TestBenchRemote(t *testing.T) {
	addr := freeAddr(t)
	var stored atomic.Int64
	m := &Main{Config: Config{Addr: addr, DataDir: t.TempDir(), LogLevel: "warn", LogFormat: "text", IngestBatch: 64, OutboxMaxAttempts: 3}}
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	m.OnStored = func(_ []switchboard.Inbound, res []switchboard.IngestResult) { stored.Add(int64(len(res))) }
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })

	var out, errOut bytes.Buffer
	err := runBench(context.Background(), []string{"--url", "http://" + addr, "--server-pid", strconv.Itoa(os.Getpid()),
		"--duration", "1s", "--concurrency", "4", "--rate", "200"}, &out, &errOut)
	if err != nil {
		t.Fatalf("bench: %v\n%s%s", err, out.String(), errOut.String())
	}
	match := regexp.MustCompile(`posts +(\d+) sent, (\d+) accepted \(2xx\), 0 errors`).FindStringSubmatch(out.String())
	if match == nil {
		t.Fatalf("no posts line in\n%s", out.String())
	}
	accepted, _ := strconv.Atoi(match[2])
	if accepted < 50 || match[1] != match[2] {
		t.Errorf("at 200/s for 1 s: %s sent, %s accepted", match[1], match[2])
	}
	// Everything it says was accepted is stored.
	deadline := time.Now().Add(10 * time.Second)
	for stored.Load() < int64(accepted) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := stored.Load(); n != int64(accepted) {
		t.Errorf("%d stored of %d accepted", n, accepted)
	}
	peak := regexp.MustCompile(`server peak memory (\d+) MB resident \(process (\d+), VmHWM\)`).FindStringSubmatch(out.String())
	if peak == nil || peak[2] != fmt.Sprint(os.Getpid()) {
		t.Fatalf("no peak memory of process %d in\n%s", os.Getpid(), out.String())
	}
	if mb, _ := strconv.Atoi(peak[1]); mb < 1 {
		t.Errorf("peak memory %s MB", peak[1])
	}
}
