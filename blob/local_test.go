package blob_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	switchboard "github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/blob"
	"github.com/switchboard-inbox/switchboard/blob/blobtest"
)

const testKey = "0123456789abcdef0123456789abcdef"

// newLocal returns a store under dir served by a real HTTP server, as the
// suite fetches its URLs over the network.
func newLocal(t *testing.T, dir string) (*blob.Local, *httptest.Server) {
	t.Helper()
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	l, err := blob.NewLocal(dir, srv.URL, []byte(testKey))
	if err != nil {
		t.Fatalf("NewLocal: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	h = l.Handler()
	return l, srv
}

func TestLocal(t *testing.T) {
	blobtest.Run(t, blobtest.Config{
		New: func(t *testing.T) switchboard.BlobStore {
			l, _ := newLocal(t, t.TempDir())
			return l
		},
	})
}

// files lists every regular file and symlink under dir, relative to it.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLocalTraversal: no key reaches outside the store's directory, even
// through a symlink planted inside it.
func TestLocalTraversal(t *testing.T) {
	parent := t.TempDir()
	store := filepath.Join(parent, "store")
	outside := filepath.Join(parent, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, _ := newLocal(t, store)
	ctx := context.Background()

	for _, key := range []string{
		"../outside/pwned", "../../outside/pwned", "a/../../outside/pwned", "/" + outside + "/pwned",
		`..\outside\pwned`, "../outside/secret", "objects/../../outside/pwned",
	} {
		if err := l.Put(ctx, key, strings.NewReader("x"), 1, "text/plain"); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Put(%q): %v, want ErrInvalidKey", key, err)
		}
		if rc, _, err := l.Get(ctx, key); err == nil {
			rc.Close()
			t.Errorf("Get(%q) succeeded", key)
		}
		if err := l.Delete(ctx, key); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Delete(%q): %v, want ErrInvalidKey", key, err)
		}
	}

	// A symlink inside the store pointing out of it.
	if err := os.Symlink(outside, filepath.Join(store, "objects", "link")); err != nil {
		t.Fatal(err)
	}
	if err := l.Put(ctx, "link/pwned", strings.NewReader("x"), 1, "text/plain"); err == nil {
		t.Error("Put through a symlink out of the store succeeded")
	}
	if rc, _, err := l.Get(ctx, "link/secret"); err == nil {
		rc.Close()
		t.Error("Get through a symlink out of the store succeeded")
	}
	if err := l.Delete(ctx, "link/secret"); err == nil {
		if _, serr := os.Stat(filepath.Join(outside, "secret")); serr != nil {
			t.Error("Delete through a symlink removed a file outside the store")
		}
	}

	if got := files(t, outside); len(got) != 1 || got[0] != "secret" {
		t.Fatalf("outside the store: %v, want only the original secret", got)
	}
	if got := files(t, parent); len(got) != 2 { // outside/secret and the link
		t.Fatalf("files under the parent: %v", got)
	}
}

// TestLocalNoPartialFiles: a Put that fails midway leaves the old object
// and no stray files.
func TestLocalNoPartialFiles(t *testing.T) {
	dir := t.TempDir()
	l, _ := newLocal(t, dir)
	ctx := context.Background()
	blobtest.Put(t, l, "k", []byte("old"), "text/plain")

	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader(strings.Repeat("new", 100_000)), errReader{boom})
	if err := l.Put(ctx, "k", r, -1, "image/png"); !errors.Is(err, boom) {
		t.Fatalf("Put with a failing reader: %v, want it wrapped", err)
	}
	if got, info := blobtest.Get(t, l, "k"); string(got) != "old" || info.ContentType != "text/plain" {
		t.Fatalf("after a failed Put: %q %+v", got, info)
	}
	c, cancel := context.WithCancel(ctx)
	cr := &cancelingReader{r: strings.NewReader(strings.Repeat("x", 1<<20)), cancel: cancel}
	if err := l.Put(c, "k2", cr, 1<<20, "text/plain"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put canceled midway: %v", err)
	}
	blobtest.ExpectNotFound(t, l, "k2")
	if got := files(t, dir); strings.Join(got, ",") != "objects/k,types/k" {
		t.Fatalf("files in the store: %v, want only objects/k and types/k", got)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// cancelingReader cancels its context after the first read.
type cancelingReader struct {
	r      io.Reader
	cancel func()
}

func (c *cancelingReader) Read(p []byte) (int, error) {
	defer c.cancel()
	return c.r.Read(p[:min(len(p), 1024)])
}

func TestLocalURLFormat(t *testing.T) {
	l, err := blob.NewLocal(t.TempDir(), "https://inbox.example.com/sb/", []byte(testKey))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	before := time.Now()
	raw, err := l.URL(context.Background(), "att/1/my photo.jpg", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	prefix := "https://inbox.example.com/sb/blobs/att/1/my%20photo.jpg?exp="
	if !strings.HasPrefix(raw, prefix) {
		t.Fatalf("URL %s, want prefix %s", raw, prefix)
	}
	u, _ := url.Parse(raw)
	exp, sig := u.Query().Get("exp"), u.Query().Get("sig")
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || e < before.Add(time.Hour).Unix() || e > time.Now().Add(time.Hour+time.Second).Unix() {
		t.Fatalf("exp %q not about an hour from now", exp)
	}
	m := hmac.New(sha256.New, []byte(testKey))
	m.Write([]byte("att/1/my photo.jpg\n" + exp))
	if want := hex.EncodeToString(m.Sum(nil)); sig != want {
		t.Fatalf("sig %s, want HMAC-SHA256(key, key+\"\\n\"+exp) = %s", sig, want)
	}

	rel, err := blob.NewLocal(t.TempDir(), "", []byte(testKey))
	if err != nil {
		t.Fatal(err)
	}
	defer rel.Close()
	if raw, _ := rel.URL(context.Background(), "a/b", time.Minute); !strings.HasPrefix(raw, "/blobs/a/b?exp=") {
		t.Fatalf("relative URL %s", raw)
	}
}

func TestLocalHandlerHeaders(t *testing.T) {
	l, _ := newLocal(t, t.TempDir())
	ctx := context.Background()
	for _, tc := range []struct {
		key, ct, disposition string
	}{
		{"h/page.html", "text/html; charset=utf-8", `attachment; filename=page.html`},
		{"h/logo.svg", "image/svg+xml", `attachment; filename=logo.svg`},
		{"h/app.js", "text/javascript", `attachment; filename=app.js`},
		{"h/x", "application/octet-stream", `attachment; filename=x`},
		{"h/photo.png", "image/png", `inline; filename=photo.png`},
		{"h/voice.ogg", "audio/ogg", `inline; filename=voice.ogg`},
		{"h/clip.mp4", "video/mp4", `inline; filename=clip.mp4`},
		{"h/doc.pdf", "application/pdf", `inline; filename=doc.pdf`},
		{"h/my file.png", "image/png", `inline; filename="my file.png"`},
	} {
		blobtest.Put(t, l, tc.key, []byte("<script>alert(1)</script>"), tc.ct)
		u, err := l.URL(ctx, tc.key, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		status, h, _ := blobtest.Fetch(t, u)
		if status != http.StatusOK {
			t.Fatalf("%s: status %d", tc.key, status)
		}
		if got := h.Get("Content-Type"); got != tc.ct {
			t.Errorf("%s: Content-Type %q, want %q", tc.key, got, tc.ct)
		}
		if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q", tc.key, got)
		}
		if got := h.Get("Content-Disposition"); got != tc.disposition {
			t.Errorf("%s: Content-Disposition %q, want %q", tc.key, got, tc.disposition)
		}
		if got := h.Get("Cache-Control"); !strings.HasPrefix(got, "private, max-age=") {
			t.Errorf("%s: Cache-Control %q", tc.key, got)
		}
	}
}

func TestLocalHandlerStatuses(t *testing.T) {
	l, srv := newLocal(t, t.TempDir())
	ctx := context.Background()
	blobtest.Put(t, l, "media/song.mp3", []byte("0123456789"), "audio/mpeg")

	// A valid signature for a missing key: 404.
	u, _ := l.URL(ctx, "media/missing.mp3", time.Minute)
	if status, _, _ := blobtest.Fetch(t, u); status != http.StatusNotFound {
		t.Fatalf("signed URL of a missing key: %d, want 404", status)
	}
	// Unsigned: 403 whether or not the key exists, so probing learns nothing.
	for _, p := range []string{"/blobs/media/missing.mp3", "/blobs/media/song.mp3", "/blobs/", "/blobs/media/song.mp3?exp=99999999999&sig=00"} {
		if status, _, _ := blobtest.Fetch(t, srv.URL+p); status != http.StatusForbidden {
			t.Errorf("GET %s: %d, want 403", p, status)
		}
	}

	u, _ = l.URL(ctx, "media/song.mp3", time.Minute)
	// Range requests, which audio and video players make.
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Range", "bytes=2-4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || string(body) != "234" {
		t.Fatalf("range: %d %q, want 206 \"234\"", resp.StatusCode, body)
	}
	// Only GET (and HEAD) are served.
	resp, err = http.Post(u, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d, want 405", resp.StatusCode)
	}
	resp, err = http.Head(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != 10 {
		t.Fatalf("HEAD: %d, length %d", resp.StatusCode, resp.ContentLength)
	}
}

// TestLocalDirectoryKey: a key that is only a directory (because deeper
// keys exist) is not an object.
func TestLocalDirectoryKey(t *testing.T) {
	l, _ := newLocal(t, t.TempDir())
	blobtest.Put(t, l, "a/b", []byte("x"), "text/plain")
	blobtest.ExpectNotFound(t, l, "a")
	if err := l.Delete(context.Background(), "a"); err != nil {
		t.Fatalf("Delete of a directory key: %v", err)
	}
	if got, _ := blobtest.Get(t, l, "a/b"); !bytes.Equal(got, []byte("x")) {
		t.Fatalf("a/b after deleting a: %q", got)
	}
}

func TestNewLocalErrors(t *testing.T) {
	dir := t.TempDir()
	for name, fn := range map[string]func() error{
		"short key":  func() error { _, err := blob.NewLocal(dir, "", []byte("short")); return err },
		"no dir":     func() error { _, err := blob.NewLocal("", "", []byte(testKey)); return err },
		"bad base":   func() error { _, err := blob.NewLocal(dir, "ftp://x", []byte(testKey)); return err },
		"base query": func() error { _, err := blob.NewLocal(dir, "https://x/?a=b", []byte(testKey)); return err },
		"dir is a file": func() error {
			f := filepath.Join(dir, "file")
			_ = os.WriteFile(f, nil, 0o600)
			_, err := blob.NewLocal(f, "", []byte(testKey))
			return err
		},
	} {
		if fn() == nil {
			t.Errorf("%s: NewLocal succeeded", name)
		}
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, raw := range []string{"file:" + dir, "file://" + dir, "FILE:" + dir} {
		s, err := blob.Open(ctx, raw, "http://127.0.0.1:8080", []byte(testKey))
		if err != nil {
			t.Fatalf("Open(%q): %v", raw, err)
		}
		l, ok := s.(*blob.Local)
		if !ok {
			t.Fatalf("Open(%q) = %T, want *blob.Local", raw, s)
		}
		blobtest.Put(t, l, "k", []byte("v"), "")
		l.Close()
	}
	if _, err := os.Stat(filepath.Join(dir, "objects", "k")); err != nil {
		t.Fatalf("file: URL did not store under its directory: %v", err)
	}

	const secret = "TOPSECRETVALUE"
	for raw, want := range map[string]string{
		"":                           "no blob URL",
		"file:":                      "no directory",
		"file://otherhost/x":         "host",
		"http://x/?k=" + secret:      `"http"`,
		"gs://bucket":                `"gs"`,
		"just-a-path":                "no scheme",
		"s3://?secret_key=" + secret: "bucket",
	} {
		_, err := blob.Open(ctx, raw, "", []byte(testKey))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%q): %v, want an error mentioning %s", raw, err, want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("Open(%q): error shows the secret: %v", raw, err)
		}
	}
}
