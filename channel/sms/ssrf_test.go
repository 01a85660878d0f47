package sms_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchboard-inbox/switchboard/channel/fetch/fetchtest"
	"github.com/switchboard-inbox/switchboard/channel/refusal"
	"github.com/switchboard-inbox/switchboard/channel/sms"
	"github.com/switchboard-inbox/switchboard/channel/twilio"
)

// TestMediaURLStaysWithTwilio: an MMS naming an internal service is
// refused with a reason, nothing fetched or kept; a Twilio URL that
// redirects to one keeps the message without that media, as any media
// that cannot be fetched; the configured API's own media is stored.
func TestMediaURLStaysWithTwilio(t *testing.T) {
	internal := fetchtest.NewInternal(t, "image/png")
	png := []byte("\x89PNG\r\n\x1a\n a photo")
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/redirect") {
			http.Redirect(w, r, internal.TLS.URL+"/secret.png", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Write(png)
	}))
	defer api.Close()

	sink := fetchtest.NewSink(t)
	c := sms.New(sms.Config{AuthToken: benchToken, PublicURL: benchBase, DefaultRegion: "US", Queue: sink.Queue, Blobs: sink.Blobs,
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
	for _, u := range []string{internal.TLS.URL + "/secret.png", "https://169.254.169.254/latest/meta-data/", "https://localhost/x"} {
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

	got := sink.Queued(t)
	if len(got) != 2 || len(got["MM2"].Attachments) != 0 || len(got["MM3"].Attachments) != 1 || got["MM2"].Text == "" {
		t.Fatalf("queued %+v; want MM2 without its media and MM3 with it", got)
	}
	sink.Untouched(t, internal)
}
