package whatsapp

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-inbox/switchboard"
)

// graphStandIn plays the Cloud API's /{phone-number-id}/messages: it
// records each request and answers with the configured status and body.
type graphStandIn struct {
	mu       sync.Mutex
	requests []recorded
	status   int
	reply    string
}

type recorded struct {
	method, path, auth, contentType, body string
}

func newGraph(t *testing.T, status int, reply string) (*graphStandIn, *httptest.Server) {
	g := &graphStandIn{status: status, reply: reply}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		g.mu.Lock()
		g.requests = append(g.requests, recorded{r.Method, r.URL.EscapedPath(), r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(b)})
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(g.status)
		io.WriteString(w, g.reply)
	}))
	t.Cleanup(srv.Close)
	return g, srv
}

func (g *graphStandIn) all() []recorded {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]recorded(nil), g.requests...)
}

// The documented success reply.
const sendOK = `{"messaging_product":"whatsapp","contacts":[{"input":"16505551234","wa_id":"16505551234"}],"messages":[{"id":"wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"}]}`

const wantWamid = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"

func client(srv *httptest.Server) *Client {
	return &Client{BaseURL: srv.URL + "/v25.0", PhoneNumberID: "106540352242922", Token: "EAAtoken", HTTP: srv.Client()}
}

func TestSendText(t *testing.T) {
	g, srv := newGraph(t, 200, sendOK)
	id, err := client(srv).SendText(context.Background(), "+16505551234", "Your order <#1042> & the lid ship today.")
	if err != nil {
		t.Fatal(err)
	}
	if id != wantWamid {
		t.Fatalf("wamid = %q", id)
	}
	reqs := g.all()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	want := recorded{
		method: "POST", path: "/v25.0/106540352242922/messages", auth: "Bearer EAAtoken", contentType: "application/json",
		body: `{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"text","text":{"body":"Your order <#1042> & the lid ship today."}}`,
	}
	if reqs[0] != want {
		t.Fatalf("request:\n got  %+v\n want %+v", reqs[0], want)
	}
}

func TestSendTemplate(t *testing.T) {
	g, srv := newGraph(t, 200, sendOK)
	c := client(srv)
	id, err := c.SendTemplate(context.Background(), "16505551234", Template{Name: "order_update", Language: "en_US", Params: []string{"#1042"}})
	if err != nil || id != wantWamid {
		t.Fatalf("SendTemplate = %q, %v", id, err)
	}
	// Byte for byte the documented request (research/channels.md §3).
	const documented = `{"messaging_product":"whatsapp","to":"16505551234","type":"template","template":{"name":"order_update","language":{"code":"en_US"},"components":[{"type":"body","parameters":[{"type":"text","text":"#1042"}]}]}}`
	if got := g.all()[0]; got.body != documented || got.path != "/v25.0/106540352242922/messages" || got.auth != "Bearer EAAtoken" || got.method != "POST" {
		t.Fatalf("request %+v", got)
	}

	if _, err := c.SendTemplate(context.Background(), "16505551234", Template{Name: "hello_world", Language: "en_US"}); err != nil {
		t.Fatal(err)
	}
	const noParams = `{"messaging_product":"whatsapp","to":"16505551234","type":"template","template":{"name":"hello_world","language":{"code":"en_US"}}}`
	if got := g.all()[1].body; got != noParams {
		t.Fatalf("body = %s", got)
	}
}

func TestSendRefusesBadInputWithoutCalling(t *testing.T) {
	g, srv := newGraph(t, 200, sendOK)
	c := client(srv)
	ctx := context.Background()
	tests := []struct {
		name string
		send func() (string, error)
		code string
		msg  string
	}{
		{"empty recipient", func() (string, error) { return c.SendText(ctx, " + ", "hi") }, switchboard.EINVALID, "recipient is empty"},
		{"empty text", func() (string, error) { return c.SendText(ctx, "16505551234", " \n") }, switchboard.EINVALID, "text is empty"},
		{"text too long", func() (string, error) { return c.SendText(ctx, "16505551234", strings.Repeat("é", MaxTextLen+1)) }, switchboard.EPOLICY, "4097 characters"},
		{"template without name", func() (string, error) {
			return c.SendTemplate(ctx, "16505551234", Template{Language: "en_US"})
		}, switchboard.EINVALID, "template name is empty"},
		{"template without language", func() (string, error) {
			return c.SendTemplate(ctx, "16505551234", Template{Name: "order_update"})
		}, switchboard.EINVALID, "has no language"},
		{"media without id", func() (string, error) {
			return c.SendMedia(ctx, "16505551234", MediaMessage{Type: TypeImage})
		}, switchboard.EINVALID, "has no media id"},
		{"media of no media type", func() (string, error) {
			return c.SendMedia(ctx, "16505551234", MediaMessage{Type: TypeText, ID: "1"})
		}, switchboard.EINVALID, "not a media message type"},
		{"caption on audio", func() (string, error) {
			return c.SendMedia(ctx, "16505551234", MediaMessage{Type: TypeAudio, ID: "1", Caption: "x"})
		}, switchboard.EINVALID, "audio messages have no caption"},
		{"file name on an image", func() (string, error) {
			return c.SendMedia(ctx, "16505551234", MediaMessage{Type: TypeImage, ID: "1", Filename: "a.png"})
		}, switchboard.EINVALID, "only documents have a file name"},
		{"caption too long", func() (string, error) {
			return c.SendMedia(ctx, "16505551234", MediaMessage{Type: TypeVideo, ID: "1", Caption: strings.Repeat("é", MaxCaptionLen+1)})
		}, switchboard.EPOLICY, "1025 characters"},
		{"template parameter with newline", func() (string, error) {
			return c.SendTemplate(ctx, "16505551234", Template{Name: "order_update", Language: "en_US", Params: []string{"a\nb"}})
		}, switchboard.EINVALID, "newline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.send()
			if err == nil || !switchboard.IsPermanent(err) || switchboard.ErrorCode(err) != tt.code || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v (permanent %v, code %q)", err, switchboard.IsPermanent(err), switchboard.ErrorCode(err))
			}
		})
	}
	if n := len(g.all()); n != 0 {
		t.Fatalf("%d requests made for refused sends", n)
	}
	// Exactly MaxTextLen characters is allowed.
	if _, err := c.SendText(ctx, "16505551234", strings.Repeat("é", MaxTextLen)); err != nil {
		t.Fatal(err)
	}
}

func TestSendErrors(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		reply     string
		permanent bool
		code      int
	}{
		{"recipient not allowed", 400, `{"error":{"message":"(#131030) Recipient phone number not in allowed list","type":"OAuthException","code":131030,"error_data":{"messaging_product":"whatsapp","details":"Recipient phone number not in allowed list: Add recipient phone number to recipient list and try again."},"error_subcode":2655007,"fbtrace_id":"Az8or2yhqkZfEZ-_4Qn_Bam"}}`, true, 131030},
		{"expired token", 401, `{"error":{"message":"Error validating access token: Session has expired.","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"A1"}}`, true, 190},
		{"template does not exist", 404, `{"error":{"message":"(#132001) Template name does not exist in the translation","type":"OAuthException","code":132001,"fbtrace_id":"A2"}}`, true, 132001},
		{"throughput", 400, `{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429,"fbtrace_id":"A3"}}`, false, 130429},
		{"pair rate limit", 400, `{"error":{"message":"(#131056) (Business Account, Consumer Account) pair rate limit hit","type":"OAuthException","code":131056,"fbtrace_id":"A4"}}`, false, 131056},
		{"too many requests", 429, `{"error":{"message":"(#80007) Rate limit issues","type":"OAuthException","code":80007,"fbtrace_id":"A5"}}`, false, 80007},
		{"server error", 500, `{"error":{"message":"(#131000) Something went wrong","type":"OAuthException","code":131000,"fbtrace_id":"A6"}}`, false, 131000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newGraph(t, tt.status, tt.reply)
			_, err := client(srv).SendText(context.Background(), "16505551234", "hi")
			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v, want an *APIError", err)
			}
			if apiErr.Code != tt.code || apiErr.StatusCode != tt.status || apiErr.FBTraceID == "" {
				t.Fatalf("APIError = %+v", apiErr)
			}
			if switchboard.IsPermanent(err) != tt.permanent {
				t.Fatalf("permanent = %v, want %v (%v)", switchboard.IsPermanent(err), tt.permanent, err)
			}
			if !strings.HasPrefix(err.Error(), "whatsapp: send text: graph api: HTTP ") {
				t.Fatalf("error lacks context: %v", err)
			}
		})
	}
}

func TestSendReplyWithoutID(t *testing.T) {
	_, srv := newGraph(t, 200, `{"messaging_product":"whatsapp","contacts":[],"messages":[]}`)
	_, err := client(srv).SendText(context.Background(), "16505551234", "hi")
	if err == nil || !switchboard.IsPermanent(err) || !strings.Contains(err.Error(), "no message id") {
		t.Fatalf("err = %v", err)
	}
}

func TestSendMisconfigured(t *testing.T) {
	_, srv := newGraph(t, 200, sendOK)
	for name, c := range map[string]*Client{
		"no token":        {BaseURL: srv.URL, PhoneNumberID: "1"},
		"no phone number": {BaseURL: srv.URL, Token: "t"},
		"bad base URL":    {BaseURL: "graph.facebook.com", PhoneNumberID: "1", Token: "t"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.SendText(context.Background(), "16505551234", "hi")
			if err == nil || !switchboard.IsPermanent(err) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestUploadMediaErrors(t *testing.T) {
	_, srv := newGraph(t, 400, `{"error":{"message":"(#100) Param file must be a file with one of the following types","type":"OAuthException","code":100,"fbtrace_id":"A7"}}`)
	_, err := client(srv).UploadMedia(context.Background(), Upload{Name: "a.png", MimeType: "image/png", Body: strings.NewReader("x"), Size: 1})
	if !switchboard.IsPermanent(err) || !strings.HasPrefix(err.Error(), "whatsapp: upload media: graph api: HTTP 400") {
		t.Fatalf("refused upload: %v", err)
	}
	_, srv = newGraph(t, 503, `{"error":{"message":"Service temporarily unavailable","type":"OAuthException","code":2,"fbtrace_id":"A8"}}`)
	if _, err := client(srv).UploadMedia(context.Background(), Upload{Name: "a.png", MimeType: "image/png", Body: strings.NewReader("x"), Size: 1}); err == nil || switchboard.IsPermanent(err) {
		t.Fatalf("unavailable: %v", err)
	}
	_, srv = newGraph(t, 200, `{}`)
	if _, err := client(srv).UploadMedia(context.Background(), Upload{Name: "a.png", MimeType: "image/png", Body: strings.NewReader("x"), Size: 1}); err == nil || switchboard.IsPermanent(err) {
		t.Fatalf("reply without an id: %v", err)
	}
	if _, err := (&Client{BaseURL: srv.URL, PhoneNumberID: "1"}).UploadMedia(context.Background(), Upload{}); !switchboard.IsPermanent(err) {
		t.Fatalf("no token: %v", err)
	}
}
