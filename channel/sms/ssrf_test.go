package sms_test

import (
	"bytes"
	"context"
	"encoding/json"
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
	"github.com/switchboard-inbox/switchboard/channel/refusal"
	"github.com/switchboard-inbox/switchboard/channel/sms"
	"github.com/switchboard-inbox/switchboard/channel/twilio"
	"github.com/switchboard-inbox/switchboard/queue"
)

// TestMediaURLStaysWithTwilio: an MMS naming an internal service is
// refused with a reason, nothing fetched or kept; a Twilio URL that
// redirects to one keeps the message without that media, as any media
// that cannot be fetched; the configured API's own media is stored.
func TestMediaURLStaysWithTwilio(t *testing.T) {
	const secret = "internal-secret-never-store-me"
	var internalHits atomic.Int32
	internal := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		internalHits.Add(1)
		w.Header().Set("Content-Type", "image/png")
		w.Write([]byte(secret))
	}))
	defer internal.Close()
	png := []byte("\x89PNG\r\n\x1a\n a photo")
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/redirect") {
			http.Redirect(w, r, internal.URL+"/secret.png", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Write(png)
	}))
	defer api.Close()

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
	c := sms.New(sms.Config{AuthToken: benchToken, PublicURL: benchBase, DefaultRegion: "US", Queue: q, Blobs: blobs,
		Client: &twilio.Client{BaseURL: api.URL, AccountSID: "AC1", AuthToken: benchToken, HTTP: api.Client()}})
	post := func(sid, mediaURL string) (int, refusal.Body) {
		t.Helper()
		form := benchForm(sid)
		form.Set("NumMedia", "1")
		form.Set("MediaUrl0", mediaURL)
		form.Set("MediaContentType0", "image/png")
		r := httptest.NewRequest(http.MethodPost, "/webhooks/twilio/sms", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set(twilio.SignatureHeader, twilio.Sign(benchToken, benchBase+"/webhooks/twilio/sms", form))
		w := httptest.NewRecorder()
		c.InboundHandler().ServeHTTP(w, r)
		var b refusal.Body
		json.Unmarshal(w.Body.Bytes(), &b)
		return w.Code, b
	}
	for _, u := range []string{internal.URL + "/secret.png", "https://169.254.169.254/latest/meta-data/", "https://localhost/x"} {
		code, b := post("MM1", u)
		if code != http.StatusUnprocessableEntity || b.Error.Code != refusal.Unprocessable || !strings.Contains(b.Error.Message, "MediaUrl0 is not a Twilio media URL") {
			t.Fatalf("%s: %d %+v", u, code, b)
		}
	}
	if code, _ := post("MM2", api.URL+"/2010-04-01/Accounts/AC1/Messages/MM2/Media/redirect"); code != http.StatusOK {
		t.Fatalf("redirected media: %d", code)
	}
	if code, _ := post("MM3", api.URL+"/2010-04-01/Accounts/AC1/Messages/MM3/Media/ME3"); code != http.StatusOK {
		t.Fatalf("media: %d", code)
	}

	ds, err := q.Receive(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]switchboard.Inbound{}
	for _, d := range ds {
		var in switchboard.Inbound
		json.Unmarshal(d.Payload, &in)
		got[in.ProviderID] = in
	}
	if len(got) != 2 || len(got["MM2"].Attachments) != 0 || len(got["MM3"].Attachments) != 1 || got["MM2"].Text == "" {
		t.Fatalf("queued %+v; want MM2 without its media and MM3 with it", got)
	}
	if n := internalHits.Load(); n != 0 {
		t.Fatalf("the internal service was reached %d times", n)
	}
	filepath.WalkDir(blobDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(secret)) {
				t.Errorf("the secret was stored in %s", p)
			}
		}
		return nil
	})
}
