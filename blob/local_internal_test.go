package blob

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func newTestLocal(t *testing.T) *Local {
	t.Helper()
	l, err := NewLocal(t.TempDir(), "http://sb.test", []byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func serve(l *Local, rawURL string) int {
	u, _ := url.Parse(rawURL)
	rec := httptest.NewRecorder()
	l.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, u.RequestURI(), nil))
	return rec.Code
}

// TestLocalExpiry moves the clock rather than sleeping: a URL is served
// for at least its ttl and refused after, to the second.
func TestLocalExpiry(t *testing.T) {
	l := newTestLocal(t)
	now := time.Date(2026, 5, 6, 7, 8, 9, 500_000_000, time.UTC)
	l.now = func() time.Time { return now }
	if err := l.Put(context.Background(), "k", strings.NewReader("v"), 1, "text/plain"); err != nil {
		t.Fatal(err)
	}
	u, err := l.URL(context.Background(), "k", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	start := now
	for _, tc := range []struct {
		after time.Duration
		want  int
	}{
		{0, http.StatusOK},
		{time.Minute, http.StatusOK}, // rounding up gives at least ttl
		{time.Minute + 499*time.Millisecond, http.StatusOK},
		{time.Minute + 500*time.Millisecond, http.StatusForbidden},
		{time.Hour, http.StatusForbidden},
	} {
		now = start.Add(tc.after)
		if got := serve(l, u); got != tc.want {
			t.Errorf("after %s: %d, want %d", tc.after, got, tc.want)
		}
	}
}

func TestLocalTamperedExp(t *testing.T) {
	l := newTestLocal(t)
	if err := l.Put(context.Background(), "k", strings.NewReader("v"), 1, "text/plain"); err != nil {
		t.Fatal(err)
	}
	raw, _ := l.URL(context.Background(), "k", time.Minute)
	u, _ := url.Parse(raw)
	q := u.Query()
	exp, _ := strconv.ParseInt(q.Get("exp"), 10, 64)
	for _, e := range []string{strconv.FormatInt(exp+3600, 10), "0" + q.Get("exp"), "+" + q.Get("exp"), "", "x"} {
		q.Set("exp", e)
		u.RawQuery = q.Encode()
		if got := serve(l, u.String()); got != http.StatusForbidden {
			t.Errorf("exp=%q: %d, want 403", e, got)
		}
	}
	// The same URL signed by another key is refused.
	other, err := NewLocal(t.TempDir(), "http://sb.test", []byte("fedcba9876543210"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Put(context.Background(), "k", strings.NewReader("v"), 1, "text/plain"); err != nil {
		t.Fatal(err)
	}
	if got := serve(other, raw); got != http.StatusForbidden {
		t.Errorf("URL served by a store with another key: %d, want 403", got)
	}
}

// TestLocalStaleTemps: temporary files a crash left are cleared on open,
// recent ones (an upload in progress elsewhere) are kept.
func TestLocalStaleTemps(t *testing.T) {
	dir := t.TempDir()
	l, err := NewLocal(dir, "", []byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	stale, fresh := filepath.Join(dir, tmpDir, "stale"), filepath.Join(dir, tmpDir, "fresh")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTmp)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	l, err = NewLocal(dir, "", []byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temp file: %v, want removed", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temp file: %v, want kept", err)
	}
}

func TestValidateKey(t *testing.T) {
	for _, k := range []string{"a", "a/b/c.txt", "att/2026/01/x y (1).png", "ünïcode/文件.pdf", ".hidden", "a/.b", "a..b", "..a"} {
		if err := ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q): %v", k, err)
		}
	}
	for _, k := range []string{"", "/a", "a/", "a//b", "./a", "a/..", `a\b`, "a\tb", "a\x7fb", "\xff"} {
		if err := ValidateKey(k); err == nil {
			t.Errorf("ValidateKey(%q) accepted", k)
		}
	}
}
