package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/blob"
	"github.com/switchboard-inbox/switchboard/channel/meta"
	"github.com/switchboard-inbox/switchboard/channel/meta/webhook"
	"github.com/switchboard-inbox/switchboard/queue"
)

// TestAttachmentURLStaysWithMeta: a Messenger attachment whose URL names
// an internal address, directly, by a name that resolves to one, or by a
// redirect from an allowed origin, is never fetched; the message is kept
// without it and Meta gets its 200 (a refusal would have Meta redeliver
// the whole batch for days). An attachment on the configured Graph
// stand-in is stored.
func TestAttachmentURLStaysWithMeta(t *testing.T) {
	const secretBody = "internal-secret-never-store-me"
	var internalHits atomic.Int32
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		internalHits.Add(1)
		w.Write([]byte(secretBody))
	}))
	defer internal.Close()
	png := []byte("\x89PNG\r\n\x1a\n a photo of the parcel")
	graph := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, internal.URL+"/secret", http.StatusFound)
			return
		}
		w.Write(png)
	}))
	defer graph.Close()

	ctx := context.Background()
	q, err := queue.OpenSQLite(ctx, filepath.Join(t.TempDir(), "q.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	blobDir := t.TempDir()
	blobs, err := blob.NewLocal(blobDir, "", bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	// localhost on the host list leaves only the address rule to stop it.
	h := webhook.New(webhook.Config{AppSecret: secret, Queue: q, Blobs: blobs, GraphAPIURL: graph.URL + "/v25.0",
		AttachmentHosts: append(meta.DefaultMediaHosts(), "localhost")})

	urls := map[string]string{
		"m_internal":  internal.URL + "/secret",
		"m_private":   "https://10.0.0.7/attachment.jpg",
		"m_metadata":  "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
		"m_localhost": "https://localhost/attachment.jpg",
		"m_redirect":  graph.URL + "/redirect",
		"m_ok":        graph.URL + "/attachment.png",
	}
	var events []string
	for mid, u := range urls {
		events = append(events, fmt.Sprintf(`{"sender":{"id":"6922891234567890"},"recipient":{"id":"1067280970047460"},"timestamp":1749416383201,"message":{"mid":%q,"attachments":[{"type":"image","payload":{"url":%q}}]}}`, mid, u))
	}
	raw := `{"object":"page","entry":[{"id":"1067280970047460","time":1749416383512,"messaging":[` + strings.Join(events, ",") + `]}]}`
	r := httptest.NewRequest(http.MethodPost, "/webhooks/meta", strings.NewReader(raw))
	r.Header.Set(meta.SignatureHeader, meta.Sign(secret, []byte(raw)))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("webhook: %d %s", w.Code, w.Body)
	}

	ds, err := q.Receive(ctx, 20)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]switchboard.Inbound{}
	for _, d := range ds {
		var in switchboard.Inbound
		json.Unmarshal(d.Payload, &in)
		got[in.ProviderID] = in
	}
	if len(got) != len(urls) {
		t.Fatalf("queued %d messages, want %d: every message is kept", len(got), len(urls))
	}
	for mid, in := range got {
		want := 0
		if mid == "m_ok" {
			want = 1
		}
		if len(in.Attachments) != want {
			t.Errorf("%s: %d attachments, want %d", mid, len(in.Attachments), want)
		}
	}
	if n := internalHits.Load(); n != 0 {
		t.Fatalf("the internal server was reached %d times", n)
	}
	filepath.WalkDir(blobDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(secretBody)) {
				t.Errorf("the secret was stored in %s", p)
			}
		}
		return nil
	})
}
