package webhook_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchboard-inbox/switchboard/channel/fetch/fetchtest"
	"github.com/switchboard-inbox/switchboard/channel/meta"
	"github.com/switchboard-inbox/switchboard/channel/meta/webhook"
)

// TestAttachmentURLStaysWithMeta: a Messenger attachment whose URL names
// an internal address, directly, by a name that resolves to one, or by a
// redirect from an allowed origin, is never fetched; the message is kept
// without it and Meta gets its 200 (a refusal would have Meta redeliver
// the whole batch for days). An attachment on the configured Graph
// stand-in is stored.
func TestAttachmentURLStaysWithMeta(t *testing.T) {
	internal := fetchtest.NewInternal(t, "image/png")
	png := []byte("\x89PNG\r\n\x1a\n a photo of the parcel")
	graph := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, internal.Plain.URL+"/secret", http.StatusFound)
			return
		}
		w.Write(png)
	}))
	defer graph.Close()

	sink := fetchtest.NewSink(t)
	// localhost on the host list leaves only the address rule to stop it.
	h := webhook.New(webhook.Config{AppSecret: secret, Queue: sink.Queue, Blobs: sink.Blobs, GraphAPIURL: graph.URL + "/v25.0",
		AttachmentHosts: append(meta.DefaultMediaHosts(), "localhost")})

	urls := map[string]string{
		"m_internal":  internal.Plain.URL + "/secret",
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

	got := sink.Queued(t)
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
	sink.Untouched(t, internal)
}
