package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard/internal/testenv"
)

// serveOnce runs `switchboard serve` with args (and the variables in env)
// as main does, and returns its error if it stops by itself, or nil once
// it answers /healthz, after stopping it.
func serveOnce(t *testing.T, env map[string]string, args ...string) error {
	t.Helper()
	clearConfigEnv(t)
	for k, v := range env {
		t.Setenv(k, v)
	}
	addr := freeAddr(t)
	args = append([]string{"serve", "--addr", addr, "--data-dir", filepath.Join(t.TempDir(), "data"), "--log-level", "warn"}, args...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		var stdout, stderr bytes.Buffer
		done <- run(ctx, args, &stdout, &stderr)
	}()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case err := <-done:
			if err == nil {
				return errors.New("serve returned nil before it was stopped")
			}
			return err
		case <-deadline:
			t.Fatal("serve neither started nor failed within 30s")
		case <-time.After(50 * time.Millisecond):
		}
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				cancel()
				if err := <-done; err != nil {
					t.Fatalf("serve stopped with %v", err)
				}
				return nil
			}
		}
	}
}

// TestServeRedisPersistence: serve refuses a Redis that would lose
// acknowledged messages on a restart, unless the operator accepts the
// risk, and starts on one with appendonly yes and appendfsync always.
func TestServeRedisPersistence(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server; skipped with -short")
	}
	t.Run("no AOF refused", func(t *testing.T) {
		r := testenv.StartRedis(t, "--appendonly", "no")
		err := serveOnce(t, nil, "--redis-url", r.URL)
		if err == nil {
			t.Fatal("serve started on a Redis without AOF")
		}
		for _, want := range []string{"appendonly", "redis-server --appendonly yes --appendfsync always", "CONFIG SET", "SWITCHBOARD_REDIS_ALLOW_VOLATILE=true"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("serve = %q, want it to say %q", err, want)
			}
		}
		t.Logf("refusal: %v", err)
	})
	t.Run("everysec refused", func(t *testing.T) {
		r := testenv.StartRedis(t, "--appendonly", "yes", "--appendfsync", "everysec")
		err := serveOnce(t, nil, "--redis-url", r.URL)
		if err == nil || !strings.Contains(err.Error(), `appendfsync is "everysec"`) {
			t.Fatalf("serve = %v, want a refusal naming appendfsync", err)
		}
	})
	t.Run("CONFIG disabled refused", func(t *testing.T) {
		r := testenv.StartRedis(t, "--rename-command", "CONFIG", "")
		err := serveOnce(t, nil, "--redis-url", r.URL)
		if err == nil || !strings.Contains(err.Error(), "cannot read appendonly") || !strings.Contains(err.Error(), "SWITCHBOARD_REDIS_ALLOW_VOLATILE") {
			t.Fatalf("serve = %v, want it to say it cannot check and name the override", err)
		}
	})
	t.Run("no AOF with the flag", func(t *testing.T) {
		r := testenv.StartRedis(t, "--appendonly", "no")
		if err := serveOnce(t, nil, "--redis-url", r.URL, "--redis-allow-volatile"); err != nil {
			t.Fatalf("serve --redis-allow-volatile: %v", err)
		}
	})
	t.Run("no AOF with the variable", func(t *testing.T) {
		r := testenv.StartRedis(t, "--appendonly", "no")
		if err := serveOnce(t, map[string]string{"SWITCHBOARD_REDIS_ALLOW_VOLATILE": "true"}, "--redis-url", r.URL); err != nil {
			t.Fatalf("serve with SWITCHBOARD_REDIS_ALLOW_VOLATILE=true: %v", err)
		}
	})
	t.Run("appendfsync always", func(t *testing.T) {
		r := testenv.StartRedis(t, "--appendonly", "yes", "--appendfsync", "always")
		if err := serveOnce(t, nil, "--redis-url", r.URL); err != nil {
			t.Fatalf("serve on a Redis with appendfsync always: %v", err)
		}
	})
	t.Run("override warns", func(t *testing.T) {
		r := testenv.StartRedis(t, "--appendonly", "no")
		var logs testenv.SyncBuffer
		m := &Main{Config: *bindParse(t, nil, "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--redis-url", r.URL, "--redis-allow-volatile")}
		m.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		if err := m.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		m.Close()
		if !strings.Contains(logs.String(), "may lose acknowledged messages") || !strings.Contains(logs.String(), "appendonly") {
			t.Errorf("no warning about the volatile Redis in the logs:\n%s", logs.String())
		}
	})
}
