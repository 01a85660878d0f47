package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/meta"
	"github.com/switchboard-inbox/switchboard/channel/meta/metatest"
	"github.com/switchboard-inbox/switchboard/store/storetest"
)

const (
	metaSecret = "test_app_secret"
	metaVerify = "verify-me"
	metaToken  = "graph-test-token"
)

// graphStub serves the two Graph calls media download needs: the media
// id's metadata and the file itself, both behind the Bearer token.
func graphStub(t *testing.T, mediaID string, data []byte, mimeType string) *httptest.Server {
	t.Helper()
	var ts *httptest.Server
	sum := sha256.Sum256(data)
	ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+metaToken {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":{"message":"Invalid OAuth access token.","type":"OAuthException","code":190,"fbtrace_id":"x"}}`)
			return
		}
		switch r.URL.Path {
		case "/" + mediaID:
			json.NewEncoder(w).Encode(map[string]any{"url": ts.URL + "/download/" + mediaID, "mime_type": mimeType,
				"sha256": hex.EncodeToString(sum[:]), "file_size": len(data), "id": mediaID, "messaging_product": "whatsapp"})
		case "/download/" + mediaID:
			w.Header().Set("Content-Type", mimeType)
			w.Write(data)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ts.Close)
	return ts
}

func waBody(wamid, waID, name, message string) string {
	return fmt.Sprintf(`{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":%q},"wa_id":%q}],"messages":[%s]},"field":"messages"}]}]}`,
		name, waID, strings.ReplaceAll(message, "WAMID", wamid))
}

// TestMetaWebhook: the handshake, signatures over the raw bytes, a
// WhatsApp customer who is the web form's phone number, media copied into
// the object store, retries stored once, early status reports kept, and
// Messenger and Instagram customers with their own identities.
func TestMetaWebhook(t *testing.T) {
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{9}, 500)...)
	graph := graphStub(t, "1003383421387256", png, "image/png")
	addr := freeAddr(t)
	stored := make(chan int, 100)
	m := &Main{Config: Config{
		Addr: addr, PublicURL: "http://" + addr, DataDir: t.TempDir(), LogLevel: "warn", LogFormat: "text", IngestBatch: 64, OutboxMaxAttempts: 3,
		MetaAppSecret: metaSecret, MetaVerifyToken: metaVerify, MetaAccessToken: metaToken, GraphAPIURL: graph.URL,
		WhatsAppPhoneNumberID: "106540352242922",
	}}
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	m.OnStored = func(_ []switchboard.Inbound, res []switchboard.IngestResult) { stored <- len(res) }
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	wait := func() {
		t.Helper()
		select {
		case <-stored:
		case <-time.After(10 * time.Second):
			t.Fatal("nothing stored within 10s")
		}
	}
	post := func(body, signature string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", m.URL()+"/webhooks/meta", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if signature != "" {
			req.Header.Set(meta.SignatureHeader, signature)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	signed := func(body string) int { return post(body, meta.Sign(metaSecret, []byte(body))) }

	// The verification handshake.
	resp, err := http.Get(m.URL() + "/webhooks/meta?hub.mode=subscribe&hub.verify_token=" + metaVerify + "&hub.challenge=1158201444")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "1158201444" {
		t.Fatalf("handshake: %d %q", resp.StatusCode, b)
	}
	if resp, _ := http.Get(m.URL() + "/webhooks/meta?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1"); resp.StatusCode != 403 {
		t.Fatalf("handshake with a wrong token: %d", resp.StatusCode)
	}

	// A web-form customer with a phone number, then WhatsApp from it.
	form, _ := json.Marshal(map[string]string{"name": "Sheena", "email": "sheena@example.com", "phone": "+1 650 555 1234", "message": "Hi"})
	if resp, err := http.Post(m.URL()+"/forms/contact", "application/json", bytes.NewReader(form)); err != nil || resp.StatusCode != 202 {
		t.Fatalf("form: %v %v", resp, err)
	}
	wait()
	text := waBody("wamid.TEXT1", "16505551234", "Sheena Nelson", `{"from":"16505551234","id":"WAMID","timestamp":"1749416383","type":"text","text":{"body":"Does it come in another color?"}}`)
	if code := post(text, "sha256=0000"); code != 403 {
		t.Fatalf("bad signature: %d", code)
	}
	// Re-encoding the JSON changes its bytes, so its signature must not pass.
	var v any
	json.Unmarshal([]byte(text), &v)
	reencoded, _ := json.MarshalIndent(v, "", " ")
	if code := post(string(reencoded), meta.Sign(metaSecret, []byte(text))); code != 403 {
		t.Fatalf("signature over other bytes: %d", code)
	}
	if code := signed(text); code != 200 {
		t.Fatalf("WhatsApp text: %d", code)
	}
	wait()
	if code := signed(text); code != 200 { // Meta retrying
		t.Fatalf("retry: %d", code)
	}
	wait()
	image := waBody("wamid.IMG1", "16505551234", "Sheena Nelson", `{"from":"16505551234","id":"WAMID","timestamp":"1749416400","type":"image","image":{"caption":"broken lid","mime_type":"image/png","sha256":"x","id":"1003383421387256"}}`)
	if code := signed(image); code != 200 {
		t.Fatalf("WhatsApp image: %d", code)
	}
	wait()

	// The form only claimed the phone: WhatsApp from it is another customer
	// until a supervisor merges them, then one thread.
	mergeClaimed(t, m, "sheena@example.com", "+16505551234")
	convs, _, err := storeOf(t, m).ListConversations(context.Background(), switchboard.ConversationFilter{})
	if err != nil || len(convs) != 2 || convs[0].CustomerID != convs[1].CustomerID {
		t.Fatalf("conversations: %d %v; want the form's and WhatsApp's, one customer's", len(convs), err)
	}
	msgs, _, _ := storeOf(t, m).Timeline(context.Background(), convs[0].CustomerID, "", 1000)
	byID := map[string]switchboard.Message{}
	for _, msg := range msgs {
		byID[msg.ProviderID] = msg
	}
	// WhatsApp's own timestamps (the documented 2025 examples) order the
	// timeline, so look messages up by id.
	txt, img := byID["wamid.TEXT1"], byID["wamid.IMG1"]
	if len(msgs) != 3 || txt.Text != "Does it come in another color?" || txt.Channel != switchboard.ChannelWhatsApp {
		t.Fatalf("timeline: %+v", msgs)
	}
	if len(img.Attachments) != 1 || img.Attachments[0].Size != int64(len(png)) || img.Attachments[0].ContentType != "image/png" || img.Text != "broken lid" {
		t.Fatalf("image message: %+v", img)
	}
	if orig, err := storeOf(t, m).Original(context.Background(), txt.ID); err != nil || !bytes.Contains(orig, []byte("another color")) {
		t.Fatalf("original: %q %v", orig, err)
	}

	// The customer's last WhatsApp message is the documented example's,
	// long ago: the composer and the send path both refuse free-form text.
	_, token := addAgent(t, m, switchboard.Agent{Name: "Sam", Email: "sam@team.example"})
	apiReq := func(method, path, body string, out any) int {
		t.Helper()
		return callAPI(t, m.URL(), token, method, path, body, out)
	}
	var dec switchboard.Decision
	apiReq("GET", "/api/v1/conversations/"+convs[0].ID+"/compose?channel=whatsapp", "", &dec)
	if dec.Allowed || dec.WindowEndsAt == nil || !strings.Contains(dec.Reason, "24-hour window closed") {
		t.Fatalf("compose on WhatsApp outside the window: %+v", dec)
	}
	var refused struct {
		Error struct{ Code, Message string }
	}
	if code := apiReq("POST", "/api/v1/conversations/"+convs[0].ID+"/messages", `{"text":"hello","channel":"whatsapp"}`, &refused); code != 422 || refused.Error.Code != "channel_policy" {
		t.Fatalf("free-form WhatsApp reply outside the window: %d %+v", code, refused)
	}
	if n, _, _ := storeOf(t, m).Timeline(context.Background(), convs[0].CustomerID, "", 1000); len(n) != 3 {
		t.Fatalf("the refused reply was stored: %d messages", len(n))
	}
	// Outside the window an approved template is the way: listed by the
	// composer, its parameter count checked, its rendered text stored.
	if err := m.Inbox.PutTemplate(context.Background(), switchboard.System, switchboard.MessageTemplate{Name: "order_update", Language: "en_US", Category: "UTILITY",
		Body: "Your order {{1}} is {{2}}.", Status: "APPROVED"}); err != nil {
		t.Fatal(err)
	}
	apiReq("GET", "/api/v1/conversations/"+convs[0].ID+"/compose?channel=whatsapp", "", &dec)
	if len(dec.Templates) != 1 || dec.Templates[0] != "order_update (en_US)" {
		t.Fatalf("compose templates: %+v", dec.Templates)
	}
	if code := apiReq("POST", "/api/v1/conversations/"+convs[0].ID+"/messages", `{"channel":"whatsapp","template":{"name":"order_update","language":"en_US","params":["#1042"]}}`, &refused); code != 422 {
		t.Fatalf("template with a missing parameter: %d", code)
	}
	var sent struct{ Text, Status string }
	if code := apiReq("POST", "/api/v1/conversations/"+convs[0].ID+"/messages", `{"channel":"whatsapp","template":{"name":"order_update","language":"en_US","params":["#1042","on its way"]}}`, &sent); code != 202 || sent.Text != "Your order #1042 is on its way." {
		t.Fatalf("template reply: %d %+v", code, sent)
	}

	// A status for a send we have not recorded yet is kept, not refused.
	status := `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"statuses":[{"id":"wamid.OUT1","status":"delivered","timestamp":"1749502800","recipient_id":"16505551234"}]},"field":"messages"}]}]}`
	if code := signed(status); code != 200 {
		t.Fatalf("status: %d", code)
	}
	if code := signed(`{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"messages":[{"id":"x"}]},"field":"messages"}]}]}`); code != 400 {
		t.Fatalf("malformed message: %d, want 400", code)
	}

	// Messenger and Instagram customers are their own people.
	mBody := `{"object":"page","entry":[{"id":"1067280970047460","time":1749416383512,"messaging":[{"sender":{"id":"6922891234567890"},"recipient":{"id":"1067280970047460"},"timestamp":1749416383201,"message":{"mid":"m_AG5Hz2Uq7tuwNEhX","text":"Where is my parcel?"}}]}]}`
	iBody := `{"object":"instagram","entry":[{"id":"17841400000000000","time":1749416383512,"messaging":[{"sender":{"id":"1234567890123456"},"recipient":{"id":"17841400000000000"},"timestamp":1749416383201,"message":{"mid":"aWdfZAG1","text":"Hello from Instagram"}}]}]}`
	echo := `{"object":"page","entry":[{"id":"1067280970047460","time":1749416383512,"messaging":[{"sender":{"id":"1067280970047460"},"recipient":{"id":"6922891234567890"},"timestamp":1749416383201,"message":{"mid":"m_ECHO","is_echo":true,"text":"our own reply"}}]}]}`
	for _, body := range []string{mBody, iBody, echo, mBody} { // the last: Meta retrying the same mid
		if code := signed(body); code != 200 {
			t.Fatalf("messenger/instagram: %d", code)
		}
	}
	// Batches may carry several posts: wait until the queue is empty,
	// every entry stored or recognised as a duplicate.
	for deadline := time.Now().Add(10 * time.Second); ; {
		d, _ := m.Queue.Depth(context.Background())
		if d == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue still holds %d entries", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Open ones: the form's, emptied into WhatsApp's by the merge, is resolved.
	convs, _, _ = storeOf(t, m).ListConversations(context.Background(), switchboard.ConversationFilter{Limit: 10, Status: switchboard.StatusOpen})
	if len(convs) != 3 {
		t.Fatalf("%d conversations, want 3 (echo ignored)", len(convs))
	}
	for _, c := range convs[:2] {
		cust, _ := storeOf(t, m).GetCustomer(context.Background(), c.CustomerID)
		kind := cust.Identities[0].Kind
		if (c.LastChannel == switchboard.ChannelMessenger && kind != switchboard.IdentityMessengerPSID) ||
			(c.LastChannel == switchboard.ChannelInstagram && kind != switchboard.IdentityInstagramID) {
			t.Fatalf("conversation on %s has identity %s", c.LastChannel, kind)
		}
	}
	if got := storetest.InspectURL(t, m.Config.DatabaseURL).MessagesByText("Where is my parcel?"); got["Where is my parcel?"] != 1 {
		t.Fatalf("a retried Messenger mid was stored %d times", got["Where is my parcel?"])
	}
	if got := storetest.InspectURL(t, m.Config.DatabaseURL).MessagesByText("our own reply"); len(got) != 0 {
		t.Fatal("an echo of our own send was stored as a customer message")
	}
}

// TestMetaRepliesThroughStandIn: WhatsApp and Messenger customers write,
// agents answer inside the windows, the Graph stand-in receives exactly
// the documented sends and its signed status and delivery webhooks move
// the replies forward.
func TestMetaRepliesThroughStandIn(t *testing.T) {
	graph, m := metaCustomersWrite(t, "Is it in stock?", "Where is my parcel?")
	ctx := context.Background()
	agent, _ := addAgent(t, m, switchboard.Agent{Name: "Sam", Email: "sam@team.example"})
	convs, _, _ := storeOf(t, m).ListConversations(ctx, switchboard.ConversationFilter{})
	var replies []string
	for _, c := range convs {
		r, err := m.Inbox.Reply(ctx, agent.Actor(), switchboard.Reply{ConversationID: c.ID, Text: "Yes, on its way."})
		if err != nil {
			t.Fatal(err)
		}
		replies = append(replies, r.ID)
	}
	m.Outbox.Notify()
	deadline := time.Now().Add(15 * time.Second)
	for _, id := range replies {
		for {
			msg, _ := storeOf(t, m).GetMessage(ctx, id)
			if msg.Status == switchboard.DeliveryRead || (msg.Channel == switchboard.ChannelMessenger && msg.Status == switchboard.DeliveryDelivered) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("reply on %s is %q (%s) after 15s", msg.Channel, msg.Status, msg.Error)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// And a template, sent as the Cloud API documents it.
	m.Inbox.PutTemplate(ctx, switchboard.System, switchboard.MessageTemplate{Name: "order_update", Language: "en_US", Body: "Order {{1}}: {{2}}", Status: "APPROVED"})
	var waConv string
	for _, c := range convs {
		if c.LastChannel == switchboard.ChannelWhatsApp {
			waConv = c.ID
		}
	}
	tpl := &switchboard.TemplateRef{Name: "order_update", Language: "en_US", Params: []string{"#7", "shipped"}}
	if _, err := m.Inbox.Reply(ctx, agent.Actor(), switchboard.Reply{ConversationID: waConv, Channel: switchboard.ChannelWhatsApp, Template: tpl}); err != nil {
		t.Fatal(err)
	}
	m.Outbox.Notify()
	for len(graph.WhatsAppSends()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the template never reached the Graph stand-in")
		}
		time.Sleep(20 * time.Millisecond)
	}
	wa, fb := graph.WhatsAppSends(), graph.MessengerSends()
	if len(wa) != 2 || wa[0].To != "16505551234" || wa[0].Text != "Yes, on its way." {
		t.Fatalf("WhatsApp sends: %+v", wa)
	}
	if tpl := wa[1].Template; tpl == nil || tpl.Name != "order_update" || tpl.Language != "en_US" || strings.Join(tpl.Params, "|") != "#7|shipped" {
		t.Fatalf("template send: %+v", wa[1])
	}
	if len(fb) != 1 || fb[0].RecipientID != "6922891234567890" || fb[0].MessagingType != "RESPONSE" {
		t.Fatalf("Messenger sends: %+v", fb)
	}
}

// TestTemplateSync: with a WhatsApp Business Account configured, the
// templates on the Graph API are copied into the store at start-up.
func TestTemplateSync(t *testing.T) {
	graph := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/102290129340398/message_templates" || r.Header.Get("Authorization") != "Bearer "+metaToken {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, `{"data":[{"name":"order_update","language":"en_US","status":"APPROVED","category":"UTILITY","components":[{"type":"BODY","text":"Your order {{1}} is {{2}}."}]}]}`)
	}))
	defer graph.Close()
	addr := freeAddr(t)
	m := &Main{Config: Config{
		Addr: addr, PublicURL: "http://" + addr, DataDir: t.TempDir(), LogLevel: "warn", LogFormat: "text", IngestBatch: 64, OutboxMaxAttempts: 3,
		MetaAppSecret: metaSecret, MetaVerifyToken: metaVerify, MetaAccessToken: metaToken, GraphAPIURL: graph.URL,
		WhatsAppPhoneNumberID: "106540352242922", WhatsAppBusinessAccountID: "102290129340398",
	}}
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ts, err := storeOf(t, m).Templates(context.Background())
		if err == nil && len(ts) == 1 && ts[0].Name == "order_update" && ts[0].Body == "Your order {{1}} is {{2}}." && ts[0].Status == "APPROVED" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("templates after 10s: %+v %v", ts, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMetaAttachmentsThroughStandIn: an agent uploads a PNG through the
// API and replies with it on WhatsApp and on Messenger; the Graph
// stand-in receives the file's exact bytes at each upload endpoint, then
// the documented media messages, and the replies become sent and
// delivered. A type WhatsApp does not take is refused while composing.
func TestMetaAttachmentsThroughStandIn(t *testing.T) {
	graph, m := metaCustomersWrite(t, "Is the lid broken in the photo?", "Can you send the invoice?")
	ctx := context.Background()
	_, token := addAgent(t, m, switchboard.Agent{Name: "Sam", Email: "sam@team.example"})
	api := func(method, path, ctype string, body io.Reader, out any) int {
		t.Helper()
		req, _ := http.NewRequest(method, m.URL()+path, body)
		req.Header.Set("Authorization", "Bearer "+token)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(out)
		return resp.StatusCode
	}
	upload := func(name string, data []byte) string {
		t.Helper()
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		fw, _ := mw.CreateFormFile("file", name)
		fw.Write(data)
		mw.Close()
		var up struct{ ID, ContentType string }
		if code := api("POST", "/api/v1/uploads", mw.FormDataContentType(), &buf, &up); code != 201 || up.ID == "" {
			t.Fatalf("upload %s: %d %+v", name, code, up)
		}
		return up.ID
	}
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte("lid"), 40_000)...)
	pngID := upload("lid.png", png)
	gifID := upload("lid.gif", []byte("GIF89a fake gif"))

	convs, _, _ := storeOf(t, m).ListConversations(ctx, switchboard.ConversationFilter{})
	conv := map[switchboard.Channel]string{}
	for _, c := range convs {
		conv[c.LastChannel] = c.ID
	}
	var dec switchboard.Decision
	api("GET", "/api/v1/conversations/"+conv[switchboard.ChannelWhatsApp]+"/compose?channel=whatsapp&attachments="+pngID, "", nil, &dec)
	if !dec.Allowed || dec.Details["sends"] != float64(1) || dec.Details["attachment_limits"] == nil {
		t.Fatalf("compose with the PNG: %+v", dec)
	}
	api("GET", "/api/v1/conversations/"+conv[switchboard.ChannelWhatsApp]+"/compose?channel=whatsapp&attachments="+gifID, "", nil, &dec)
	if dec.Allowed || !strings.Contains(dec.Reason, "WhatsApp cannot carry lid.gif") {
		t.Fatalf("compose with the GIF: %+v", dec)
	}
	var refused struct {
		Error struct{ Code, Message string }
	}
	if code := api("GET", "/api/v1/conversations/"+conv[switchboard.ChannelWhatsApp]+"/compose?channel=whatsapp&attachments=nope", "", nil, &refused); code != 400 || !strings.Contains(refused.Error.Message, "unknown upload") {
		t.Fatalf("compose with an unknown upload: %d %+v", code, refused)
	}
	if code := api("GET", "/api/v1/conversations/"+conv[switchboard.ChannelWhatsApp]+"/compose?channel=whatsapp&attachments=nope", "", nil, &refused); code != 400 || !strings.Contains(refused.Error.Message, "unknown upload") {
		t.Fatalf("compose with an unknown upload: %d %+v", code, refused)
	}
	if code := api("POST", "/api/v1/conversations/"+conv[switchboard.ChannelWhatsApp]+"/messages", "application/json",
		strings.NewReader(`{"text":"see","channel":"whatsapp","attachments":["`+gifID+`"]}`), &refused); code != 422 || refused.Error.Code != "channel_policy" {
		t.Fatalf("GIF reply: %d %+v", code, refused)
	}

	var replies []string
	for _, r := range []struct {
		ch   switchboard.Channel
		text string
	}{{switchboard.ChannelWhatsApp, "Yes: the lid, circled."}, {switchboard.ChannelMessenger, "Here it is."}} {
		var sent struct {
			ID          string
			Status      string
			Attachments []struct{ Name string }
		}
		body := fmt.Sprintf(`{"text":%q,"channel":%q,"attachments":[%q]}`, r.text, r.ch, pngID)
		if code := api("POST", "/api/v1/conversations/"+conv[r.ch]+"/messages", "application/json", strings.NewReader(body), &sent); code != 202 ||
			len(sent.Attachments) != 1 || sent.Attachments[0].Name != "lid.png" {
			t.Fatalf("%s reply: %d %+v", r.ch, code, sent)
		}
		replies = append(replies, sent.ID)
	}
	m.Outbox.Notify()
	deadline := time.Now().Add(15 * time.Second)
	var msgs []switchboard.Message
	for _, id := range replies {
		for {
			msg, _ := storeOf(t, m).GetMessage(ctx, id)
			if msg.Status == switchboard.DeliveryRead || (msg.Channel == switchboard.ChannelMessenger && msg.Status == switchboard.DeliveryDelivered) {
				msgs = append(msgs, msg)
				break
			}
			if msg.Status == switchboard.DeliveryFailed || time.Now().After(deadline) {
				t.Fatalf("reply on %s is %q (%s) after 15s", msg.Channel, msg.Status, msg.Error)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	ups := graph.Uploads()
	if len(ups) != 2 || ups[0].Product != "whatsapp" || ups[1].Product != "messenger" {
		t.Fatalf("uploads %+v", ups)
	}
	for _, u := range ups {
		if !bytes.Equal(u.Data, png) || u.MimeType != "image/png" || u.Filename != "lid.png" {
			t.Errorf("%s upload: %d bytes as %s %q", u.Product, len(u.Data), u.MimeType, u.Filename)
		}
	}
	wa := graph.WhatsAppSends()
	wantWA := `{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"image","image":{"id":"` + ups[0].ID + `","caption":"Yes: the lid, circled."}}`
	if len(wa) != 1 || string(wa[0].Body) != wantWA || msgs[0].ProviderID != wa[0].WAMID {
		t.Fatalf("WhatsApp sends %+v (provider id %q)\nwant %s", wa, msgs[0].ProviderID, wantWA)
	}
	fb := graph.MessengerSends()
	wantFB := []string{
		`{"recipient":{"id":"6922891234567890"},"messaging_type":"RESPONSE","message":{"text":"Here it is."}}`,
		`{"recipient":{"id":"6922891234567890"},"messaging_type":"RESPONSE","message":{"attachment":{"type":"image","payload":{"attachment_id":"` + ups[1].ID + `"}}}}`,
	}
	if len(fb) != 2 || string(fb[0].Body) != wantFB[0] || string(fb[1].Body) != wantFB[1] || msgs[1].ProviderID != fb[0].MID {
		t.Fatalf("Messenger sends %+v (provider id %q)", fb, msgs[1].ProviderID)
	}
}

// metaCustomersWrite starts Switchboard beside a Graph stand-in that posts
// its signed webhooks to it; a WhatsApp customer writes waText and a
// Messenger customer fbText, and it returns once both are stored.
func metaCustomersWrite(t *testing.T, waText, fbText string) (*metatest.Server, *Main) {
	t.Helper()
	addr := freeAddr(t)
	graph := metatest.New(metaSecret, metaToken, metatest.WithWebhook("http://"+addr+"/webhooks/meta"))
	ts := httptest.NewServer(graph.Handler())
	graph.SetBaseURL(ts.URL)
	t.Cleanup(func() { graph.Close(); ts.Close() })
	stored := make(chan int, 100)
	m := &Main{Config: Config{
		Addr: addr, PublicURL: "http://" + addr, DataDir: t.TempDir(), LogLevel: "warn", LogFormat: "text", IngestBatch: 64, OutboxMaxAttempts: 3,
		MetaAppSecret: metaSecret, MetaVerifyToken: metaVerify, MetaAccessToken: metaToken, GraphAPIURL: ts.URL,
		WhatsAppPhoneNumberID: graph.PhoneNumberID(), MessengerPageID: graph.PageID(),
	}}
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	m.OnStored = func(_ []switchboard.Inbound, res []switchboard.IngestResult) { stored <- len(res) }
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	ctx := context.Background()
	hook := m.URL() + "/webhooks/meta"
	if _, resp, err := graph.SendWhatsAppText(ctx, http.DefaultClient, hook, "16505551234", "Sheena", waText); err != nil || resp.StatusCode != 200 {
		t.Fatalf("WhatsApp inbound: %v %v", resp, err)
	}
	if _, resp, err := graph.SendMessengerText(ctx, http.DefaultClient, hook, "6922891234567890", fbText); err != nil || resp.StatusCode != 200 {
		t.Fatalf("Messenger inbound: %v %v", resp, err)
	}
	for i := 0; i < 2; i++ {
		select {
		case <-stored:
		case <-time.After(10 * time.Second):
			t.Fatal("inbound not stored")
		}
	}
	return graph, m
}
