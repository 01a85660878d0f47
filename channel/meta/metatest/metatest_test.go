package metatest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/messenger"
	"github.com/switchboard-inbox/switchboard/channel/meta"
	"github.com/switchboard-inbox/switchboard/channel/whatsapp"
)

const (
	secret = "test_app_secret"
	token  = "test-access-token"
)

var clock = time.Unix(1749416383, 512e6).UTC()

func fixedClock() time.Time { return clock }

// receiver plays switchboard's /webhooks/meta: it records every POST and
// whether its signature was valid.
type receiver struct {
	srv *httptest.Server
	ch  chan received
}

type received struct {
	body   []byte
	sig    string
	valid  bool
	header http.Header
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	rc := &receiver{ch: make(chan received, 100)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sig := r.Header.Get(meta.SignatureHeader)
		got := received{body: body, sig: sig, valid: meta.ValidSignature(secret, body, sig), header: r.Header.Clone()}
		rc.ch <- got
		if !got.valid {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		w.Write([]byte("EVENT_RECEIVED"))
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) url() string { return rc.srv.URL + "/webhooks/meta" }

func (rc *receiver) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-rc.ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no webhook arrived within 5s")
		return received{}
	}
}

// newGraph starts a Server behind httptest, closed (webhooks awaited)
// before the receiver.
func newGraph(t *testing.T, opts ...Option) (*Server, string) {
	t.Helper()
	s := New(secret, token, append([]Option{WithClock(fixedClock)}, opts...)...)
	ts := httptest.NewServer(s.Handler())
	s.SetBaseURL(ts.URL)
	t.Cleanup(func() {
		s.Close()
		ts.Close()
	})
	return s, ts.URL
}

func TestSendWhatsAppText(t *testing.T) {
	rc := newReceiver(t)
	s, _ := newGraph(t)
	ctx := context.Background()
	text := "Does it come in another colour? é/ü 😀 <b>&"

	wamid, resp, err := s.SendWhatsAppText(ctx, nil, rc.url(), "16505551234", "Sheena Nelson", text)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("receiver answered %d", resp.StatusCode)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "EVENT_RECEIVED" {
		t.Errorf("response body %q", b)
	}
	got := rc.next(t)
	if !got.valid {
		t.Fatalf("signature %q does not validate", got.sig)
	}
	if ct := got.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	for _, want := range []string{`"object":"whatsapp_business_account"`, `\u00e9\/\u00fc \ud83d\ude00`, `"field":"messages"`} {
		if !bytes.Contains(got.body, []byte(want)) {
			t.Errorf("body lacks %s:\n%s", want, got.body)
		}
	}
	for _, c := range got.body {
		if c >= 0x80 {
			t.Fatalf("body has a raw non-ASCII byte:\n%s", got.body)
		}
	}

	ev, err := whatsapp.Parse(got.body, clock)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Messages) != 1 || len(ev.Statuses) != 0 {
		t.Fatalf("events %+v", ev)
	}
	m := ev.Messages[0]
	want := whatsapp.Message{ID: wamid, Type: "text", From: "16505551234", Phone: "+16505551234", Name: "Sheena Nelson",
		PhoneNumberID: DefaultPhoneNumberID, DisplayPhoneNumber: DefaultDisplayPhoneNumber, Text: text,
		ContentType: switchboard.ContentText, Timestamp: time.Unix(clock.Unix(), 0).UTC()}
	if m.ID != want.ID || m.Type != want.Type || m.From != want.From || m.Phone != want.Phone || m.Name != want.Name ||
		m.PhoneNumberID != want.PhoneNumberID || m.DisplayPhoneNumber != want.DisplayPhoneNumber || m.Text != want.Text ||
		m.ContentType != want.ContentType || !m.Timestamp.Equal(want.Timestamp) {
		t.Errorf("parsed %+v\nwant %+v", m, want)
	}
	if !strings.HasPrefix(wamid, "wamid.") {
		t.Errorf("wamid %q", wamid)
	}
}

func TestWebhookResendAndBadSignature(t *testing.T) {
	rc := newReceiver(t)
	s, _ := newGraph(t, WithPhoneNumber("111", "15550001111"), WithBusinessAccountID("222"))
	ctx := context.Background()
	_, wh, err := s.WhatsAppText(rc.url(), "16505551235", "Ann", "hi")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		resp, err := Send(ctx, nil, wh)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("Send: %v %v", resp, err)
		}
	}
	a, b := rc.next(t), rc.next(t)
	if !bytes.Equal(a.body, b.body) || a.sig != b.sig || !a.valid || !b.valid {
		t.Errorf("a retry must repeat the same signed bytes")
	}
	ev, err := whatsapp.Parse(a.body, clock)
	if err != nil || ev.Messages[0].PhoneNumberID != "111" || ev.Messages[0].DisplayPhoneNumber != "15550001111" {
		t.Errorf("phone number options not applied: %+v %v", ev, err)
	}
	if !bytes.Contains(a.body, []byte(`"id":"222"`)) {
		t.Errorf("entry id not the business account id: %s", a.body)
	}

	resp, err := Send(ctx, nil, wh.WithBadSignature())
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusUnauthorized || rc.next(t).valid {
		t.Errorf("bad signature accepted: %d", resp.StatusCode)
	}
	resp, err = Send(ctx, nil, wh.WithBody(append([]byte(" "), wh.Body...)))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusUnauthorized || rc.next(t).valid {
		t.Errorf("tampered body accepted: %d", resp.StatusCode)
	}

	if _, _, err := s.WhatsAppText(rc.url(), "+16505551234", "x", "y"); err == nil {
		t.Error("a wa_id with + was accepted")
	}
}

func TestSendWhatsAppMediaAndFetch(t *testing.T) {
	rc := newReceiver(t)
	s, base := newGraph(t)
	ctx := context.Background()
	tests := []struct {
		kind, mime, caption string
		contentType         string
		data                []byte
	}{
		{"image", "image/jpeg", "broken lid", switchboard.ContentImage, []byte("\xff\xd8\xff\xe0 fake jpeg")},
		{"audio", "audio/ogg; codecs=opus", "", switchboard.ContentAudio, []byte("OggS fake opus")},
		{"document", "application/pdf", "invoice", switchboard.ContentFile, []byte("%PDF-1.7 fake")},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			wamid, mediaID, resp, err := s.SendWhatsAppMedia(ctx, nil, rc.url(), "16505551234", "Sheena", tt.kind, tt.data, tt.mime, tt.caption)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("send: %v %v", resp, err)
			}
			got := rc.next(t)
			if !got.valid {
				t.Fatal("signature does not validate")
			}
			ev, err := whatsapp.Parse(got.body, clock)
			if err != nil {
				t.Fatal(err)
			}
			m := ev.Messages[0]
			if m.ID != wamid || m.Type != tt.kind || m.ContentType != tt.contentType || m.Media == nil ||
				m.Media.ID != mediaID || m.Media.MimeType != tt.mime || m.Media.Caption != tt.caption || m.Text != tt.caption {
				t.Fatalf("parsed %+v media %+v", m, m.Media)
			}
			if tt.kind == "audio" && !m.Media.Voice {
				t.Error("ogg audio is not a voice note")
			}
			if tt.kind == "document" && m.Media.Filename != "document.pdf" {
				t.Errorf("filename %q", m.Media.Filename)
			}

			mc := whatsapp.MediaClient{BaseURL: base + "/v25.0", Token: token}
			data, mime, err := mc.Fetch(ctx, m.Media.ID, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data, tt.data) || mime != tt.mime {
				t.Errorf("fetched %q %q", data, mime)
			}
			if _, _, err := mc.Fetch(ctx, m.Media.ID, 4); switchboard.ErrorCode(err) != switchboard.ETOOLARGE {
				t.Errorf("maxBytes 4: %v", err)
			}
		})
	}

	id := s.AddMedia([]byte("abc"), "image/png")
	bad := whatsapp.MediaClient{BaseURL: base, Token: "wrong"}
	_, _, err := bad.Fetch(ctx, id, 1<<20)
	if e, ok := meta.AsAPIError(err); !ok || e.StatusCode != http.StatusUnauthorized || e.Code != 190 || e.Type != "OAuthException" || e.FBTraceID == "" {
		t.Errorf("wrong token: %v", err)
	}
	unknown := whatsapp.MediaClient{BaseURL: base, Token: token}
	if _, _, err = unknown.Fetch(ctx, "999", 1<<20); !hasCode(err, 100) {
		t.Errorf("unknown media: %v", err)
	}
}

func TestMediaEndpoints(t *testing.T) {
	s, base := newGraph(t)
	data := []byte("hello media")
	id := s.AddMedia(data, "text/plain")
	get := func(url, auth string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	for _, prefix := range []string{"", "/v25.0", "/v26.0"} {
		resp, b := get(base+prefix+"/"+id, "Bearer "+token)
		var info map[string]any
		if resp.StatusCode != 200 || json.Unmarshal(b, &info) != nil {
			t.Fatalf("%s: %d %s", prefix, resp.StatusCode, b)
		}
		sum := sha256.Sum256(data)
		want := map[string]any{"url": base + "/media/" + id + "/download", "mime_type": "text/plain",
			"sha256": hex.EncodeToString(sum[:]), "file_size": float64(len(data)),
			"id": id, "messaging_product": "whatsapp"}
		if len(info) != len(want) {
			t.Errorf("%s: keys %v", prefix, info)
		}
		for k, v := range want {
			if info[k] != v {
				t.Errorf("%s: %s = %v, want %v", prefix, k, info[k], v)
			}
		}
	}
	resp, b := get(base+"/media/"+id+"/download", "Bearer "+token)
	if resp.StatusCode != 200 || !bytes.Equal(b, data) || resp.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("download: %d %q %q", resp.StatusCode, b, resp.Header.Get("Content-Type"))
	}
	for _, auth := range []string{"", "Bearer nope", "Basic " + token} {
		resp, b := get(base+"/media/"+id+"/download", auth)
		if e := meta.DecodeAPIError(resp.StatusCode, b); resp.StatusCode != 401 || e.Code != 190 {
			t.Errorf("auth %q: %d %s", auth, resp.StatusCode, b)
		}
	}
	resp, b = get(base+"/"+id+"?access_token="+token, "")
	if resp.StatusCode != 200 {
		t.Errorf("access_token query: %d %s", resp.StatusCode, b)
	}
	resp, b = get(base+"/a/b/c/d", "Bearer "+token)
	if resp.StatusCode != 400 || meta.DecodeAPIError(resp.StatusCode, b).Code != 2500 {
		t.Errorf("unknown path: %d %s", resp.StatusCode, b)
	}
}

func hasCode(err error, code int) bool {
	e, ok := meta.AsAPIError(err)
	return ok && e.Code == code
}

func TestInboundMessengerAndInstagram(t *testing.T) {
	rc := newReceiver(t)
	s, _ := newGraph(t, WithPageID("555"), WithInstagramAccountID("17841400000000999"))
	ctx := context.Background()

	mid, resp, err := s.SendMessengerText(ctx, nil, rc.url(), "6922891234567890", "Where is my parcel? 📦")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	igmid, resp, err := s.SendInstagramText(ctx, nil, rc.url(), "1234567890123456", "Is this still available?")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	tests := []struct {
		ch                         switchboard.Channel
		mid, sender, account, text string
	}{
		{switchboard.ChannelMessenger, mid, "6922891234567890", "555", "Where is my parcel? 📦"},
		{switchboard.ChannelInstagram, igmid, "1234567890123456", "17841400000000999", "Is this still available?"},
	}
	for _, tt := range tests {
		got := rc.next(t)
		if !got.valid {
			t.Fatalf("%s: signature does not validate", tt.ch)
		}
		ev, err := messenger.Parse(got.body)
		if err != nil {
			t.Fatal(err)
		}
		if len(ev.Messages) != 1 {
			t.Fatalf("%s: %+v", tt.ch, ev)
		}
		m := ev.Messages[0]
		if m.Channel != tt.ch || m.ID != tt.mid || m.SenderID != tt.sender || m.RecipientID != tt.account ||
			m.AccountID != tt.account || m.Text != tt.text || !m.Timestamp.Equal(clock) || m.Echo {
			t.Errorf("%s: parsed %+v", tt.ch, m)
		}
	}
	if !strings.HasPrefix(mid, "m_") {
		t.Errorf("mid %q", mid)
	}
}

// waitStatuses collects n WhatsApp status webhooks, checking each.
func waitStatuses(t *testing.T, rc *receiver, n int) []whatsapp.Status {
	t.Helper()
	var out []whatsapp.Status
	for len(out) < n {
		got := rc.next(t)
		if !got.valid {
			t.Fatal("status webhook signature does not validate")
		}
		ev, err := whatsapp.Parse(got.body, clock)
		if err != nil {
			t.Fatal(err)
		}
		if len(ev.Statuses) != 1 || len(ev.Messages) != 0 {
			t.Fatalf("want one status per webhook: %s", got.body)
		}
		out = append(out, ev.Statuses...)
	}
	return out
}

func statusesOf(sts []whatsapp.Status, wamid string) []string {
	var out []string
	for _, st := range sts {
		if st.ID == wamid {
			out = append(out, st.Status)
		}
	}
	return out
}

func TestWhatsAppClientSendAndStatuses(t *testing.T) {
	rc := newReceiver(t)
	s, base := newGraph(t, WithWebhook(rc.url()))
	ctx := context.Background()
	c := whatsapp.Client{BaseURL: base + "/v25.0", PhoneNumberID: DefaultPhoneNumberID, Token: token}

	textID, err := c.SendText(ctx, "+16505551234", "Your parcel left the depot.")
	if err != nil {
		t.Fatal(err)
	}
	tplID, err := c.SendTemplate(ctx, "16505551234", whatsapp.Template{Name: "order_update", Language: "en_US", Params: []string{"#1042"}})
	if err != nil {
		t.Fatal(err)
	}
	sts := waitStatuses(t, rc, 6)
	for _, id := range []string{textID, tplID} {
		if got := strings.Join(statusesOf(sts, id), ","); got != "sent,delivered,read" {
			t.Errorf("%s: statuses %s", id, got)
		}
	}
	for _, st := range sts {
		if st.RecipientID != "16505551234" || st.PhoneNumberID != DefaultPhoneNumberID || !st.Timestamp.Equal(time.Unix(clock.Unix(), 0)) || len(st.Errors) != 0 {
			t.Errorf("status %+v", st)
		}
	}

	sends := s.WhatsAppSends()
	if len(sends) != 2 {
		t.Fatalf("sends %+v", sends)
	}
	if w := sends[0]; w.WAMID != textID || w.To != "16505551234" || w.Type != "text" || w.Text != "Your parcel left the depot." || w.WindowClosed {
		t.Errorf("text send %+v", w)
	}
	if w := sends[1]; w.WAMID != tplID || w.Type != "template" || w.Template == nil ||
		w.Template.Name != "order_update" || w.Template.Language != "en_US" || strings.Join(w.Template.Params, "|") != "#1042" {
		t.Errorf("template send %+v", w)
	}
	s.Close()
	posted := s.Posted()
	if len(posted) != 6 {
		t.Fatalf("posted %d webhooks", len(posted))
	}
	for _, p := range posted {
		if p.Err != nil || p.StatusCode != 200 {
			t.Errorf("posted %+v", p)
		}
	}
}

func TestWindowClosed(t *testing.T) {
	rc := newReceiver(t)
	s, base := newGraph(t, WithWebhook(rc.url()), WithWindowClosed("16505551234"))
	ctx := context.Background()
	c := whatsapp.Client{BaseURL: base, PhoneNumberID: DefaultPhoneNumberID, Token: token}

	textID, err := c.SendText(ctx, "16505551234", "Are you still there?")
	if err != nil {
		t.Fatalf("a send outside the window must still be accepted: %v", err)
	}
	sts := waitStatuses(t, rc, 1)
	st := sts[0]
	if st.ID != textID || st.Status != "failed" || st.Delivery() != switchboard.DeliveryFailed ||
		len(st.Errors) != 1 || st.Errors[0].Code != 131047 || st.Errors[0].Title != "Re-engagement message" ||
		!strings.Contains(st.Errors[0].Details, "24 hours") {
		t.Fatalf("status %+v", st)
	}
	if !s.WhatsAppSends()[0].WindowClosed {
		t.Error("send not marked WindowClosed")
	}

	tplID, err := c.SendTemplate(ctx, "16505551234", whatsapp.Template{Name: "reengage", Language: "en"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(statusesOf(waitStatuses(t, rc, 3), tplID), ","); got != "sent,delivered,read" {
		t.Errorf("template statuses %s", got)
	}

	// A message from the customer reopens the window.
	if _, _, err := s.SendWhatsAppText(ctx, nil, rc.url(), "16505551234", "Sheena", "yes!"); err != nil {
		t.Fatal(err)
	}
	rc.next(t)
	againID, err := c.SendText(ctx, "16505551234", "Great")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(statusesOf(waitStatuses(t, rc, 3), againID), ","); got != "sent,delivered,read" {
		t.Errorf("after reopening: %s", got)
	}
}

func TestMessengerClientSendAndDelivery(t *testing.T) {
	rc := newReceiver(t)
	s, base := newGraph(t, WithWebhook(rc.url()), WithMessengerWindowClosed("700"))
	ctx := context.Background()
	c := messenger.Client{BaseURL: base + "/v25.0", PageID: DefaultPageID, Token: token}

	mid, err := c.Send(ctx, "6922891234567890", "Your parcel is on its way.", "")
	if err != nil {
		t.Fatal(err)
	}
	got := rc.next(t)
	if !got.valid {
		t.Fatal("delivery webhook signature does not validate")
	}
	ev, err := messenger.Parse(got.body)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Deliveries) != 1 {
		t.Fatalf("%s", got.body)
	}
	d := ev.Deliveries[0]
	if d.Channel != switchboard.ChannelMessenger || d.SenderID != "6922891234567890" || d.RecipientID != DefaultPageID ||
		len(d.MIDs) != 1 || d.MIDs[0] != mid || !d.Watermark.Equal(clock) {
		t.Errorf("delivery %+v", d)
	}

	// HUMAN_AGENT passes the closed window; a plain RESPONSE does not.
	if _, err := c.Send(ctx, "700", "An agent here.", messenger.TagHumanAgent); err != nil {
		t.Fatal(err)
	}
	rc.next(t)
	if _, err := c.Send(ctx, "700", "hello", ""); !messenger.IsOutsideWindow(err) || !switchboard.IsPermanent(err) {
		t.Errorf("closed window: %v", err)
	}

	sends := s.MessengerSends()
	if len(sends) != 2 || sends[0].MID != mid || sends[0].MessagingType != "RESPONSE" || sends[0].Text != "Your parcel is on its way." ||
		sends[1].MessagingType != "MESSAGE_TAG" || sends[1].Tag != "HUMAN_AGENT" || sends[0].Instagram {
		t.Errorf("sends %+v", sends)
	}
}

func TestInstagramReplyRead(t *testing.T) {
	rc := newReceiver(t)
	s, base := newGraph(t, WithWebhook(rc.url()))
	ctx := context.Background()
	if _, _, err := s.SendInstagramText(ctx, nil, rc.url(), "1234567890123456", "hi"); err != nil {
		t.Fatal(err)
	}
	rc.next(t)
	c := messenger.Client{BaseURL: base, PageID: DefaultPageID, Token: token, Channel: switchboard.ChannelInstagram}
	mid, err := c.Send(ctx, "1234567890123456", "Yes, it is.", "")
	if err != nil {
		t.Fatal(err)
	}
	got := rc.next(t)
	ev, err := messenger.Parse(got.body)
	if err != nil || !got.valid || len(ev.Reads) != 1 || ev.Reads[0].MID != mid || ev.Reads[0].Channel != switchboard.ChannelInstagram {
		t.Fatalf("%v %s", err, got.body)
	}
	if !s.MessengerSends()[0].Instagram {
		t.Error("send to an IGSID not marked Instagram")
	}
}

func TestSendValidation(t *testing.T) {
	s, base := newGraph(t)
	post := func(path, auth, body string) (int, *meta.APIError, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, meta.DecodeAPIError(resp.StatusCode, b), b
	}
	wa := "/v25.0/" + DefaultPhoneNumberID + "/messages"
	pg := "/" + DefaultPageID + "/messages"
	bearer := "Bearer " + token
	long := strings.Repeat("x", 4097)
	tests := []struct {
		name, path, auth, body string
		status, code, subcode  int
	}{
		{"no token", wa, "", `{"messaging_product":"whatsapp","to":"1","type":"text","text":{"body":"x"}}`, 401, 190, 0},
		{"wrong token", wa, "Bearer x", `{"messaging_product":"whatsapp","to":"1","type":"text","text":{"body":"x"}}`, 401, 190, 0},
		{"no product", wa, bearer, `{"to":"1","type":"text","text":{"body":"x"}}`, 400, 100, 0},
		{"not json", wa, bearer, `{`, 400, 100, 0},
		{"to with +", wa, bearer, `{"messaging_product":"whatsapp","to":"+16505551234","type":"text","text":{"body":"x"}}`, 400, 100, 0},
		{"no body", wa, bearer, `{"messaging_product":"whatsapp","to":"1","type":"text","text":{"body":""}}`, 400, 100, 0},
		{"too long", wa, bearer, `{"messaging_product":"whatsapp","to":"1","type":"text","text":{"body":"` + long + `"}}`, 400, 100, 0},
		{"no template name", wa, bearer, `{"messaging_product":"whatsapp","to":"1","type":"template","template":{"language":{"code":"en"}}}`, 400, 100, 0},
		{"no language", wa, bearer, `{"messaging_product":"whatsapp","to":"1","type":"template","template":{"name":"t"}}`, 400, 100, 0},
		{"bad type", wa, bearer, `{"messaging_product":"whatsapp","to":"1","type":"carousel"}`, 400, 100, 0},
		{"unknown object", "/v25.0/42/messages", bearer, `{}`, 400, 100, 33},
		{"tag missing", pg, bearer, `{"recipient":{"id":"1"},"messaging_type":"MESSAGE_TAG","message":{"text":"x"}}`, 400, 100, 0},
		{"wrong tag", pg, bearer, `{"recipient":{"id":"1"},"messaging_type":"MESSAGE_TAG","tag":"ACCOUNT_UPDATE","message":{"text":"x"}}`, 400, 100, 0},
		{"no recipient", pg, bearer, `{"messaging_type":"RESPONSE","message":{"text":"x"}}`, 400, 100, 0},
		{"no messaging_type", pg, bearer, `{"recipient":{"id":"1"},"message":{"text":"x"}}`, 400, 100, 0},
		{"messenger too long", pg, bearer, `{"recipient":{"id":"1"},"messaging_type":"RESPONSE","message":{"text":"` + strings.Repeat("x", 2001) + `"}}`, 400, 100, 0},
		{"read receipt", wa, bearer, `{"messaging_product":"whatsapp","status":"read","message_id":"wamid.X","typing_indicator":{"type":"text"}}`, 200, 0, 0},
		{"sender action", pg, bearer, `{"recipient":{"id":"1"},"sender_action":"typing_on"}`, 200, 0, 0},
		{"image by link", wa, bearer, `{"messaging_product":"whatsapp","to":"1","type":"image","image":{"link":"https://example.com/a.jpg","caption":"c"}}`, 200, 0, 0},
	}
	for _, tt := range tests {
		status, e, b := post(tt.path, tt.auth, tt.body)
		if status != tt.status || (tt.code != 0 && (e.Code != tt.code || e.Subcode != tt.subcode || e.FBTraceID == "" || e.Type == "")) {
			t.Errorf("%s: %d %s", tt.name, status, b)
		}
	}
	if n := len(s.WhatsAppSends()); n != 1 {
		t.Errorf("%d WhatsApp sends recorded, want only the image", n)
	}
	if n := len(s.MessengerSends()); n != 0 {
		t.Errorf("%d Messenger sends recorded", n)
	}

	// The documented reply shape, key for key.
	status, _, b := post(wa, bearer, `{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"text","text":{"body":"hi"}}`)
	var rep struct {
		MessagingProduct string `json:"messaging_product"`
		Contacts         []struct {
			Input string `json:"input"`
			WAID  string `json:"wa_id"`
		} `json:"contacts"`
		Messages []struct {
			ID string `json:"id"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(b, &rep); status != 200 || err != nil || rep.MessagingProduct != "whatsapp" ||
		len(rep.Contacts) != 1 || rep.Contacts[0].Input != "16505551234" || rep.Contacts[0].WAID != "16505551234" ||
		len(rep.Messages) != 1 || !strings.HasPrefix(rep.Messages[0].ID, "wamid.") {
		t.Errorf("reply %d %s", status, b)
	}
	status, _, b = post(pg, bearer, `{"recipient":{"id":"6922891234567890"},"messaging_type":"RESPONSE","message":{"text":"hi"}}`)
	var mrep map[string]string
	if err := json.Unmarshal(b, &mrep); status != 200 || err != nil || len(mrep) != 2 || mrep["recipient_id"] != "6922891234567890" || !strings.HasPrefix(mrep["message_id"], "m_") {
		t.Errorf("messenger reply %d %s", status, b)
	}
}

func TestCloseWaitsAndStopsWebhooks(t *testing.T) {
	rc := newReceiver(t)
	s := New(secret, token, WithWebhook(rc.url()), WithStatusDelay(20*time.Millisecond))
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	c := whatsapp.Client{BaseURL: ts.URL, PhoneNumberID: DefaultPhoneNumberID, Token: token}
	if _, err := c.SendText(context.Background(), "1", "x"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if n := len(s.Posted()); n != 3 {
		t.Errorf("Close returned with %d of 3 webhooks posted", n)
	}
	if _, err := c.SendText(context.Background(), "1", "y"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(s.Posted()); n != 3 {
		t.Errorf("webhooks posted after Close: %d", n)
	}
}

func TestMetaJSON(t *testing.T) {
	in := map[string]string{"s": "a/b é 😀 \u2028 <&> \"q\""}
	out := metaJSON(in)
	if want := `{"s":"a\/b \u00e9 \ud83d\ude00 \u2028 \u003c\u0026\u003e \"q\""}`; string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
	var back map[string]string
	if err := json.Unmarshal(out, &back); err != nil || back["s"] != in["s"] {
		t.Errorf("round trip: %q %v", back, err)
	}
}

func TestSignature(t *testing.T) {
	// research/channels.md §9: the documented body and signature.
	body := []byte(`{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234"}],"messages":[{"from":"16505551234","id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=","timestamp":"1749416383","type":"text","text":{"body":"Does it come in another color?"}}]},"field":"messages"}]}]}`)
	s := New(secret, token)
	wh := s.webhook("", json.RawMessage(body))
	if !bytes.Equal(wh.Body, body) || wh.Signature != "sha256=ded1d1d9621cffa39832ccf2b330fa476b4dc8ec2a5d102e1e554312b3f21d42" {
		t.Errorf("got %s\n%s", wh.Signature, wh.Body)
	}
	if bad := wh.WithBadSignature(); meta.ValidSignature(secret, bad.Body, bad.Signature) {
		t.Error("bad signature validates")
	}
}
