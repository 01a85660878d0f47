package whatsapp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/fetch"
)

// mediaStandIn plays GET /{media-id} and the media URL it returns.
type mediaStandIn struct {
	mu    sync.Mutex
	auths map[string]string // path -> Authorization seen
	hits  map[string]int

	meta        func(srvURL string) string // the metadata reply
	metaStatus  int
	data        []byte
	dataStatus  int
	contentType string
}

func newMedia(t *testing.T, m *mediaStandIn) *httptest.Server {
	m.auths, m.hits = map[string]string{}, map[string]int{}
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		m.auths[r.URL.Path] = r.Header.Get("Authorization")
		m.hits[r.URL.Path]++
		m.mu.Unlock()
		if r.Method != http.MethodGet {
			http.Error(w, "method", http.StatusMethodNotAllowed)
			return
		}
		switch r.URL.Path {
		case "/v25.0/1003383421387256":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(max(m.metaStatus, 200))
			w.Write([]byte(m.meta(srv.URL)))
		case "/whatsapp_business/attachments/":
			if r.URL.Query().Get("mid") != "1003383421387256" {
				http.NotFound(w, r)
				return
			}
			if m.contentType != "" {
				w.Header().Set("Content-Type", m.contentType)
			}
			w.WriteHeader(max(m.dataStatus, 200))
			w.Write(m.data)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (m *mediaStandIn) seen(path string) (string, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.auths[path], m.hits[path]
}

var jpeg = []byte("\xff\xd8\xff\xe0 a small stand-in for a photo of a broken lid \xff\xd9")

func hexSum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// mediaMeta is the documented metadata reply.
func mediaMeta(mime, sum string, size int) func(string) string {
	return func(base string) string {
		b, _ := json.Marshal(map[string]any{
			"messaging_product": "whatsapp",
			"url":               base + "/whatsapp_business/attachments/?mid=1003383421387256&ext=1749416400&hash=ATs",
			"mime_type":         mime, "sha256": sum, "file_size": size, "id": "1003383421387256",
		})
		return string(b)
	}
}

func mediaClient(srv *httptest.Server) *MediaClient {
	return &MediaClient{BaseURL: srv.URL + "/v25.0", Token: "EAAtoken", HTTP: srv.Client()}
}

func TestFetch(t *testing.T) {
	m := &mediaStandIn{meta: mediaMeta("image/jpeg", hexSum(jpeg), len(jpeg)), data: jpeg, contentType: "application/octet-stream"}
	srv := newMedia(t, m)
	data, mime, err := mediaClient(srv).Fetch(context.Background(), "1003383421387256", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != string(jpeg) || mime != "image/jpeg" {
		t.Fatalf("got %d bytes, %q", len(data), mime)
	}
	for _, p := range []string{"/v25.0/1003383421387256", "/whatsapp_business/attachments/"} {
		if auth, n := m.seen(p); auth != "Bearer EAAtoken" || n != 1 {
			t.Fatalf("%s: auth %q, %d hits", p, auth, n)
		}
	}
}

func TestFetchAcceptsBase64SumAndFallsBackToContentType(t *testing.T) {
	sum := sha256.Sum256(jpeg)
	m := &mediaStandIn{meta: mediaMeta("", base64.StdEncoding.EncodeToString(sum[:]), len(jpeg)), data: jpeg, contentType: "image/jpeg"}
	srv := newMedia(t, m)
	data, mime, err := mediaClient(srv).Fetch(context.Background(), "1003383421387256", int64(len(jpeg)))
	if err != nil || len(data) != len(jpeg) || mime != "image/jpeg" {
		t.Fatalf("got %d bytes, %q, %v", len(data), mime, err)
	}
}

func TestFetchFailures(t *testing.T) {
	tests := []struct {
		name      string
		m         *mediaStandIn
		id        string
		max       int64
		code      string
		msg       string
		downloads int
	}{
		{
			name: "sha256 mismatch",
			m:    &mediaStandIn{meta: mediaMeta("image/jpeg", hexSum([]byte("other bytes")), len(jpeg)), data: jpeg},
			max:  1 << 20, msg: "sha256 of the", downloads: 1,
		},
		{
			name: "truncated download",
			m:    &mediaStandIn{meta: mediaMeta("image/jpeg", hexSum(jpeg), len(jpeg)), data: jpeg[:10]},
			max:  1 << 20, msg: "sha256 of the 10 bytes", downloads: 1,
		},
		{
			name: "file_size over the limit: no download",
			m:    &mediaStandIn{meta: mediaMeta("image/jpeg", hexSum(jpeg), len(jpeg)), data: jpeg},
			max:  10, code: switchboard.ETOOLARGE, msg: "larger than 10 bytes", downloads: 0,
		},
		{
			name: "body over the limit despite file_size",
			m:    &mediaStandIn{meta: mediaMeta("image/jpeg", hexSum(jpeg), 5), data: jpeg},
			max:  10, code: switchboard.ETOOLARGE, msg: "larger than 10 bytes", downloads: 1,
		},
		{
			name: "no sha256 in metadata",
			m:    &mediaStandIn{meta: mediaMeta("image/jpeg", "", len(jpeg)), data: jpeg},
			max:  1 << 20, msg: "no sha256", downloads: 0,
		},
		{
			name: "download refused",
			m:    &mediaStandIn{meta: mediaMeta("image/jpeg", hexSum(jpeg), len(jpeg)), data: []byte("expired"), dataStatus: 404},
			max:  1 << 20, msg: "download: graph api: HTTP 404", downloads: 1,
		},
		{
			name: "metadata url not http",
			m:    &mediaStandIn{meta: func(string) string { return `{"url":"file:///etc/passwd","sha256":"00","file_size":1}` }},
			max:  1 << 20, msg: "not an absolute http(s) URL", downloads: 0,
		},
		{
			name: "unknown media id",
			m: &mediaStandIn{metaStatus: 400, meta: func(string) string {
				return `{"error":{"message":"Unsupported get request. Object with ID '1003383421387256' does not exist","type":"GraphMethodException","code":100,"error_subcode":33,"fbtrace_id":"F1"}}`
			}},
			max: 1 << 20, msg: "metadata: graph api: HTTP 400", downloads: 0,
		},
		{name: "empty id", m: &mediaStandIn{}, id: " ", max: 1, code: switchboard.EINVALID, msg: "id is empty"},
		{name: "zero limit", m: &mediaStandIn{}, max: 0, code: switchboard.EINVALID, msg: "maxBytes must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newMedia(t, tt.m)
			id := tt.id
			if id == "" {
				id = "1003383421387256"
			}
			data, _, err := mediaClient(srv).Fetch(context.Background(), id, tt.max)
			if err == nil || data != nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("data %d bytes, err = %v; want it to contain %q", len(data), err, tt.msg)
			}
			if tt.code != "" && switchboard.ErrorCode(err) != tt.code {
				t.Fatalf("code = %q, want %q", switchboard.ErrorCode(err), tt.code)
			}
			if _, n := tt.m.seen("/whatsapp_business/attachments/"); n != tt.downloads {
				t.Fatalf("%d downloads, want %d", n, tt.downloads)
			}
		})
	}
}

func TestFetchGraphErrorIsAPIError(t *testing.T) {
	m := &mediaStandIn{metaStatus: 401, meta: func(string) string {
		return `{"error":{"message":"Invalid OAuth access token.","type":"OAuthException","code":190,"fbtrace_id":"F2"}}`
	}}
	srv := newMedia(t, m)
	_, _, err := mediaClient(srv).Fetch(context.Background(), "1003383421387256", 100)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Code != 190 {
		t.Fatalf("err = %v", err)
	}
}

func TestSumMatches(t *testing.T) {
	sum := sha256.Sum256([]byte("x"))
	for _, s := range []string{
		hex.EncodeToString(sum[:]), strings.ToUpper(hex.EncodeToString(sum[:])),
		base64.StdEncoding.EncodeToString(sum[:]), base64.RawURLEncoding.EncodeToString(sum[:]),
	} {
		if !sumMatches(sum[:], s) {
			t.Errorf("sumMatches(%q) = false", s)
		}
	}
	other := sha256.Sum256([]byte("y"))
	for _, s := range []string{"", "zz", hex.EncodeToString(other[:]), base64.StdEncoding.EncodeToString(other[:]), hex.EncodeToString(sum[:16])} {
		if sumMatches(sum[:], s) {
			t.Errorf("sumMatches(%q) = true", s)
		}
	}
}

// TestFetchStaysWithMeta: a media URL in the metadata that leaves Meta's
// hosts and the configured API, or a redirect there, is refused before
// anything reaches it, permanently, so the webhook drops the media rather
// than asking Meta to retry for days.
func TestFetchStaysWithMeta(t *testing.T) {
	var internalHits atomic.Int32
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		internalHits.Add(1)
		w.Write(jpeg)
	}))
	defer internal.Close()
	for name, metaURL := range map[string]func(base string) string{
		"internal host":   func(string) string { return internal.URL + "/whatsapp_business/attachments/?mid=1" },
		"cloud metadata":  func(string) string { return "http://169.254.169.254/latest/meta-data/" },
		"https internal":  func(string) string { return "https://10.0.0.7/media" },
		"redirect inside": func(base string) string { return base + "/redirect" },
	} {
		t.Run(name, func(t *testing.T) {
			var srv *httptest.Server
			srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/v25.0/1003383421387256":
					b, _ := json.Marshal(map[string]any{"url": metaURL(srv.URL), "mime_type": "image/jpeg", "sha256": hexSum(jpeg), "file_size": len(jpeg)})
					w.Write(b)
				case "/redirect":
					http.Redirect(w, r, internal.URL+"/x", http.StatusFound)
				}
			}))
			defer srv.Close()
			_, _, err := mediaClient(srv).Fetch(context.Background(), "1003383421387256", 1<<20)
			if !fetch.IsRefusal(err) || !switchboard.IsPermanent(err) {
				t.Fatalf("err = %v, want a permanent refusal", err)
			}
		})
	}
	if n := internalHits.Load(); n != 0 {
		t.Fatalf("the internal server was reached %d times", n)
	}
	// Configured for Meta itself, nothing local is allowed.
	prod := &MediaClient{BaseURL: "https://graph.facebook.com/v25.0", Token: "t"}
	for _, u := range []string{"https://graph.facebook.com/v25.0/1", "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1"} {
		if err := prod.media().Check(u); err != nil {
			t.Errorf("production client refuses %s: %v", u, err)
		}
	}
	if err := prod.media().Check(internal.URL); !fetch.IsRefusal(err) {
		t.Errorf("production client allows %s: %v", internal.URL, err)
	}
}
