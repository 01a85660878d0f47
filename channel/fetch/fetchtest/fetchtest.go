// Package fetchtest holds what the channels' media-fetch tests share: an
// internal service that a forged media URL names and that must never be
// reached, and the queue and object store a channel under test writes to,
// ready to inspect.
package fetchtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/blob"
	"github.com/switchboard-inbox/switchboard/queue"
)

// Secret is what the internal service answers: found anywhere a channel
// keeps files, it was fetched.
const Secret = "internal-secret-never-store-me"

// Internal stands for what an attacker would have the server fetch (cloud
// metadata, an admin API): one handler on loopback, over https (TLS) and
// plain http (Plain), counting every request.
type Internal struct {
	TLS, Plain *httptest.Server
	hits       atomic.Int32
}

// NewInternal starts the internal service, answering Secret as
// contentType; it stops when the test ends.
func NewInternal(t testing.TB, contentType string) *Internal {
	in := &Internal{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in.hits.Add(1)
		w.Header().Set("Content-Type", contentType)
		w.Write([]byte(Secret))
	})
	in.TLS, in.Plain = httptest.NewTLSServer(h), httptest.NewServer(h)
	t.Cleanup(in.TLS.Close)
	t.Cleanup(in.Plain.Close)
	return in
}

// Sink is a fresh embedded queue and local object store for a channel
// under test.
type Sink struct {
	Queue *queue.SQLite
	Blobs *blob.Local
	dir   string
}

// NewSink opens the queue and the object store, closed when the test ends.
func NewSink(t testing.TB) *Sink {
	q, err := queue.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "q.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	dir := t.TempDir()
	blobs, err := blob.NewLocal(dir, "", bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	return &Sink{Queue: q, Blobs: blobs, dir: dir}
}

// Queued returns what the channel queued, by provider id.
func (s *Sink) Queued(t testing.TB) map[string]switchboard.Inbound {
	t.Helper()
	ds, err := s.Queue.Receive(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]switchboard.Inbound{}
	for _, d := range ds {
		var in switchboard.Inbound
		if err := json.Unmarshal(d.Payload, &in); err != nil {
			t.Fatal(err)
		}
		got[in.ProviderID] = in
	}
	return got
}

// Untouched fails the test if the internal service was reached or its
// Secret is in the object store.
func (s *Sink) Untouched(t testing.TB, in *Internal) {
	t.Helper()
	if n := in.hits.Load(); n != 0 {
		t.Errorf("the internal service was reached %d times", n)
	}
	filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(Secret)) {
				t.Errorf("the secret was stored in %s", p)
			}
		}
		return nil
	})
}
