// Package blobtest is the behaviour every blob store must share, run by
// each implementation's tests against a real backend.
package blobtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	switchboard "github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/blob"
)

// Config describes the store under test.
type Config struct {
	// New returns a store isolated from other tests' (a fresh directory, a
	// fresh key prefix) whose URLs an HTTP GET can fetch.
	New func(t *testing.T) switchboard.BlobStore
}

// LargeSize is the size of the object that must stream through.
const LargeSize = 20 << 20

// Run runs the shared suite.
func Run(t *testing.T, cfg Config) {
	tests := []struct {
		name string
		fn   func(*testing.T, switchboard.BlobStore)
	}{
		{"RoundTrip", testRoundTrip},
		{"EmptyAndUnknownSize", testEmptyAndUnknownSize},
		{"DefaultAndInvalidContentType", testContentType},
		{"Overwrite", testOverwrite},
		{"Delete", testDelete},
		{"SizeMismatch", testSizeMismatch},
		{"InvalidKeys", testInvalidKeys},
		{"CanceledContext", testCanceled},
		{"URLFetch", testURLFetch},
		{"URLTampered", testURLTampered},
		{"URLExpired", testURLExpired},
		{"Large", testLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, cfg.New(t)) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// Put stores data under key and deletes it when the test ends, so that
// stores shared between tests (one S3 bucket) do not fill up.
func Put(t *testing.T, s switchboard.BlobStore, key string, data []byte, ct string) {
	t.Helper()
	t.Cleanup(func() { _ = s.Delete(context.Background(), key) })
	if err := s.Put(ctx(t), key, bytes.NewReader(data), int64(len(data)), ct); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

// Get reads the whole object under key.
func Get(t *testing.T, s switchboard.BlobStore, key string) ([]byte, switchboard.BlobInfo) {
	t.Helper()
	rc, info, err := s.Get(ctx(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q): read: %v", key, err)
	}
	return b, info
}

// ExpectNotFound fails the test unless Get reports key missing.
func ExpectNotFound(t *testing.T, s switchboard.BlobStore, key string) {
	t.Helper()
	rc, _, err := s.Get(ctx(t), key)
	if err == nil {
		rc.Close()
		t.Fatalf("Get(%q) succeeded, want not found", key)
	}
	if !errors.Is(err, blob.ErrNotFound) || switchboard.ErrorCode(err) != switchboard.ENOTFOUND {
		t.Fatalf("Get(%q): %v, want blob.ErrNotFound with code %s", key, err, switchboard.ENOTFOUND)
	}
}

// Fetch GETs u and returns the status, headers and body.
func Fetch(t *testing.T, u string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read: %v", u, err)
	}
	return resp.StatusCode, resp.Header, b
}

func testRoundTrip(t *testing.T, s switchboard.BlobStore) {
	data := []byte("hello, switchboard\n")
	Put(t, s, "att/2026/01/abc/hello.txt", data, "text/plain; charset=utf-8")
	got, info := Get(t, s, "att/2026/01/abc/hello.txt")
	if !bytes.Equal(got, data) {
		t.Fatalf("got %q, want %q", got, data)
	}
	if info.Size != int64(len(data)) || info.ContentType != "text/plain; charset=utf-8" {
		t.Fatalf("info = %+v, want size %d and text/plain; charset=utf-8", info, len(data))
	}
	// Keys are paths: a sibling and a key with awkward characters are
	// objects of their own.
	Put(t, s, "att/2026/01/abc/other name (1)+%.bin", []byte{0, 1, 2}, "application/octet-stream")
	if got, _ := Get(t, s, "att/2026/01/abc/hello.txt"); !bytes.Equal(got, data) {
		t.Fatalf("sibling changed the object: %q", got)
	}
	if got, info := Get(t, s, "att/2026/01/abc/other name (1)+%.bin"); !bytes.Equal(got, []byte{0, 1, 2}) || info.Size != 3 {
		t.Fatalf("got %v %+v", got, info)
	}
}

func testEmptyAndUnknownSize(t *testing.T, s switchboard.BlobStore) {
	Put(t, s, "empty", nil, "text/plain")
	if got, info := Get(t, s, "empty"); len(got) != 0 || info.Size != 0 {
		t.Fatalf("empty object: %q %+v", got, info)
	}
	data := bytes.Repeat([]byte("abc"), 1000)
	t.Cleanup(func() { _ = s.Delete(context.Background(), "unsized") })
	if err := s.Put(ctx(t), "unsized", bytes.NewReader(data), -1, "text/plain"); err != nil {
		t.Fatalf("Put with size -1: %v", err)
	}
	if got, info := Get(t, s, "unsized"); !bytes.Equal(got, data) || info.Size != int64(len(data)) {
		t.Fatalf("unsized object: %d bytes, %+v", len(got), info)
	}
}

func testContentType(t *testing.T, s switchboard.BlobStore) {
	Put(t, s, "untyped", []byte("x"), "")
	if _, info := Get(t, s, "untyped"); info.ContentType != "application/octet-stream" {
		t.Fatalf("content type %q, want application/octet-stream", info.ContentType)
	}
	err := s.Put(ctx(t), "badtype", strings.NewReader("x"), 1, "text/html\r\nSet-Cookie: a=b")
	if switchboard.ErrorCode(err) != switchboard.EINVALID {
		t.Fatalf("Put with a header-splitting type: %v, want code %s", err, switchboard.EINVALID)
	}
	ExpectNotFound(t, s, "badtype")
}

func testOverwrite(t *testing.T, s switchboard.BlobStore) {
	Put(t, s, "doc", []byte("first version, longer"), "image/png")
	Put(t, s, "doc", []byte("second"), "application/pdf")
	got, info := Get(t, s, "doc")
	if string(got) != "second" || info.Size != 6 || info.ContentType != "application/pdf" {
		t.Fatalf("after overwrite: %q %+v", got, info)
	}
}

func testDelete(t *testing.T, s switchboard.BlobStore) {
	ExpectNotFound(t, s, "never/was")
	Put(t, s, "gone", []byte("x"), "text/plain")
	if err := s.Delete(ctx(t), "gone"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	ExpectNotFound(t, s, "gone")
	if err := s.Delete(ctx(t), "gone"); err != nil {
		t.Fatalf("Delete of a missing key: %v, want nil", err)
	}
}

func testSizeMismatch(t *testing.T, s switchboard.BlobStore) {
	for _, tc := range []struct {
		name string
		size int64
	}{{"short", 10}, {"long", 3}, {"long-empty", 0}} {
		key := "mismatch/" + tc.name
		if err := s.Put(ctx(t), key, strings.NewReader("12345"), tc.size, "text/plain"); err == nil {
			_ = s.Delete(context.Background(), key)
			t.Fatalf("%s: Put of 5 bytes with size %d succeeded", tc.name, tc.size)
		}
		ExpectNotFound(t, s, key)
	}
	// A failed overwrite leaves the old object as it was.
	Put(t, s, "mismatch/kept", []byte("old"), "text/plain")
	if err := s.Put(ctx(t), "mismatch/kept", strings.NewReader("new and longer"), 3, "image/png"); err == nil {
		t.Fatal("Put with a size shorter than the data succeeded")
	}
	if got, info := Get(t, s, "mismatch/kept"); string(got) != "old" || info.ContentType != "text/plain" {
		t.Fatalf("after a failed overwrite: %q %+v", got, info)
	}
}

// InvalidKeys returns keys every store refuses.
func InvalidKeys() []string {
	return []string{
		"", "/etc/passwd", "../escape", "a/../../escape", "a/./b", "a//b", "a/", ".", "..",
		`a\b`, `..\escape`, "a\x00b", "a\nb", strings.Repeat("x", 300), strings.Repeat("a/", 600) + "a",
	}
}

func testInvalidKeys(t *testing.T, s switchboard.BlobStore) {
	for _, key := range InvalidKeys() {
		if err := s.Put(ctx(t), key, strings.NewReader("x"), 1, "text/plain"); !errors.Is(err, blob.ErrInvalidKey) {
			_ = s.Delete(context.Background(), key)
			t.Errorf("Put(%q): %v, want blob.ErrInvalidKey", key, err)
		}
		if _, _, err := s.Get(ctx(t), key); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Get(%q): %v, want blob.ErrInvalidKey", key, err)
		}
		if err := s.Delete(ctx(t), key); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Delete(%q): %v, want blob.ErrInvalidKey", key, err)
		}
		if _, err := s.URL(ctx(t), key, time.Minute); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("URL(%q): %v, want blob.ErrInvalidKey", key, err)
		}
	}
}

func testCanceled(t *testing.T, s switchboard.BlobStore) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Put(c, "canceled", strings.NewReader("x"), 1, "text/plain"); !errors.Is(err, context.Canceled) {
		_ = s.Delete(context.Background(), "canceled")
		t.Fatalf("Put with a canceled context: %v, want context.Canceled", err)
	}
	ExpectNotFound(t, s, "canceled")
}

func testURLFetch(t *testing.T, s switchboard.BlobStore) {
	data := []byte("%PDF-1.4 not really")
	Put(t, s, "files/report 2026.pdf", data, "application/pdf")
	u, err := s.URL(ctx(t), "files/report 2026.pdf", time.Minute)
	if err != nil {
		t.Fatalf("URL: %v", err)
	}
	status, h, body := Fetch(t, u)
	if status != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("GET: %d %q, want 200 %q", status, body, data)
	}
	if ct := h.Get("Content-Type"); ct != "application/pdf" {
		t.Fatalf("Content-Type %q, want application/pdf", ct)
	}
	for _, ttl := range []time.Duration{0, -time.Second, 8 * 24 * time.Hour} {
		if _, err := s.URL(ctx(t), "files/report 2026.pdf", ttl); err == nil {
			t.Errorf("URL with ttl %s succeeded", ttl)
		}
	}
}

func testURLTampered(t *testing.T, s switchboard.BlobStore) {
	Put(t, s, "tamper/a.txt", []byte("a"), "text/plain")
	Put(t, s, "tamper/b.txt", []byte("b"), "text/plain")
	raw, err := s.URL(ctx(t), "tamper/a.txt", time.Minute)
	if err != nil {
		t.Fatalf("URL: %v", err)
	}
	if status, _, _ := Fetch(t, raw); status != http.StatusOK {
		t.Fatalf("untampered URL: %d", status)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}

	// Both schemes sign with a hex SHA-256 HMAC carried in the query.
	hexSig := regexp.MustCompile(`^[0-9a-f]{64}$`)
	bad := *u
	q := u.Query()
	flipped := false
	for name, vs := range q {
		if len(vs) == 1 && hexSig.MatchString(vs[0]) {
			last := "0"
			if vs[0][63] == '0' {
				last = "1"
			}
			q.Set(name, vs[0][:63]+last)
			flipped = true
		}
	}
	if !flipped {
		t.Fatalf("no signature found in %s", raw)
	}
	bad.RawQuery = q.Encode()
	other := *u
	other.Path = strings.TrimSuffix(u.Path, "a.txt") + "b.txt"
	other.RawPath = ""
	unsigned := *u
	unsigned.RawQuery = ""

	for name, v := range map[string]string{"signature": bad.String(), "other key": other.String(), "no query": unsigned.String()} {
		if status, _, body := Fetch(t, v); status != http.StatusForbidden {
			t.Errorf("%s tampered: GET %s = %d %q, want 403", name, v, status, body)
		}
	}
}

func testURLExpired(t *testing.T, s switchboard.BlobStore) {
	Put(t, s, "expiring", []byte("soon gone"), "text/plain")
	u, err := s.URL(ctx(t), "expiring", time.Second)
	if err != nil {
		t.Fatalf("URL: %v", err)
	}
	if status, _, _ := Fetch(t, u); status != http.StatusOK {
		t.Fatalf("fresh URL: %d", status)
	}
	// Both stores count expiry in whole seconds.
	time.Sleep(2500 * time.Millisecond)
	if status, _, body := Fetch(t, u); status != http.StatusForbidden {
		t.Fatalf("expired URL: %d %q, want 403", status, body)
	}
}

// stream is a large object that is never in memory whole and cannot seek,
// so a store must stream it.
func stream() io.Reader {
	return struct{ io.Reader }{io.LimitReader(rand.NewChaCha8([32]byte{7}), LargeSize)}
}

func testLarge(t *testing.T, s switchboard.BlobStore) {
	want := sha256.New()
	if _, err := io.Copy(want, stream()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Delete(context.Background(), "large/blob.bin") })
	if err := s.Put(ctx(t), "large/blob.bin", stream(), LargeSize, "video/mp4"); err != nil {
		t.Fatalf("Put: %v", err)
	}

	rc, info, err := s.Get(ctx(t), "large/blob.bin")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	got := sha256.New()
	n, err := io.Copy(got, rc)
	rc.Close()
	if err != nil || n != LargeSize || info.Size != LargeSize || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("Get: %d bytes (info %+v), err %v, hash match %v", n, info, err, bytes.Equal(got.Sum(nil), want.Sum(nil)))
	}

	u, err := s.URL(ctx(t), "large/blob.bin", time.Minute)
	if err != nil {
		t.Fatalf("URL: %v", err)
	}
	req, _ := http.NewRequestWithContext(ctx(t), http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	got.Reset()
	n, err = io.Copy(got, resp.Body)
	if resp.StatusCode != http.StatusOK || err != nil || n != LargeSize || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("GET: status %d, %d bytes, err %v", resp.StatusCode, n, err)
	}
}
