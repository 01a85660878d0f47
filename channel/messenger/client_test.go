package messenger

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

type recorded struct{ method, path, auth, contentType, body string }

type sendStandIn struct {
	mu       sync.Mutex
	requests []recorded
}

func (s *sendStandIn) all() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.requests...)
}

// newSendAPI plays POST /{PAGE_ID}/messages, answering status and reply.
func newSendAPI(t *testing.T, status int, reply string) (*sendStandIn, *httptest.Server) {
	s := &sendStandIn{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.requests = append(s.requests, recorded{r.Method, r.URL.EscapedPath(), r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(b)})
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, reply)
	}))
	t.Cleanup(srv.Close)
	return s, srv
}

const (
	sentMID = "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P"
	sendOK  = `{"recipient_id":"6922891234567890","message_id":"` + sentMID + `"}`
)

func newClient(srv *httptest.Server, ch switchboard.Channel) *Client {
	return &Client{BaseURL: srv.URL + "/v25.0", PageID: pageID, Token: "EAAGpage", HTTP: srv.Client(), Channel: ch}
}

func TestSend(t *testing.T) {
	tests := []struct {
		name string
		tag  Tag
		text string
		body string
	}{
		{"response", "", "It left our warehouse this morning.",
			`{"recipient":{"id":"6922891234567890"},"messaging_type":"RESPONSE","message":{"text":"It left our warehouse this morning."}}`},
		{"human agent", TagHumanAgent, "Sorry for the wait <3 & thanks!",
			`{"recipient":{"id":"6922891234567890"},"messaging_type":"MESSAGE_TAG","tag":"HUMAN_AGENT","message":{"text":"Sorry for the wait <3 & thanks!"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, srv := newSendAPI(t, 200, sendOK)
			mid, err := newClient(srv, "").Send(context.Background(), psid, tt.text, tt.tag)
			if err != nil || mid != sentMID {
				t.Fatalf("Send = %q, %v", mid, err)
			}
			want := recorded{"POST", "/v25.0/" + pageID + "/messages", "Bearer EAAGpage", "application/json", tt.body}
			if got := s.all(); len(got) != 1 || got[0] != want {
				t.Fatalf("requests:\n got  %+v\n want %+v", got, want)
			}
		})
	}
}

func TestSendLimits(t *testing.T) {
	s, srv := newSendAPI(t, 200, sendOK)
	ctx := context.Background()
	fb, ig := newClient(srv, switchboard.ChannelMessenger), newClient(srv, switchboard.ChannelInstagram)
	tests := []struct {
		name string
		c    *Client
		to   string
		text string
		tag  Tag
		code string
		msg  string
	}{
		{"messenger over 2000", fb, psid, strings.Repeat("ß", 2001), "", switchboard.EPOLICY, "text is 2001 characters; Messenger allows at most 2000"},
		{"instagram over 1000", ig, igsid, strings.Repeat("a", 1001), "", switchboard.EPOLICY, "text is 1001 characters; Instagram allows at most 1000"},
		{"empty text", fb, psid, "  ", "", switchboard.EINVALID, "message text is empty"},
		{"empty recipient", fb, "", "hi", "", switchboard.EINVALID, "recipient id is empty"},
		{"unknown tag", fb, psid, "hi", "ACCOUNT_UPDATE", switchboard.EINVALID, `message tag "ACCOUNT_UPDATE" is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.Send(ctx, tt.to, tt.text, tt.tag)
			if err == nil || !switchboard.IsPermanent(err) || switchboard.ErrorCode(err) != tt.code || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v (code %q, permanent %v)", err, switchboard.ErrorCode(err), switchboard.IsPermanent(err))
			}
		})
	}
	if n := len(s.all()); n != 0 {
		t.Fatalf("%d requests made for refused sends", n)
	}
	if _, err := fb.Send(ctx, psid, strings.Repeat("ß", 2000), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := ig.Send(ctx, igsid, strings.Repeat("a", 1000), ""); err != nil {
		t.Fatal(err)
	}
}

func TestSendErrors(t *testing.T) {
	tests := []struct {
		name          string
		status        int
		reply         string
		permanent     bool
		outsideWindow bool
		code          int
	}{
		{"outside window", 400, `{"error":{"message":"(#10) This message is sent outside of allowed window. Learn more about the new policy here: https://developers.facebook.com/docs/messenger-platform/policy-overview","type":"OAuthException","code":10,"error_subcode":2018278,"fbtrace_id":"H1"}}`, true, true, 10},
		{"user unavailable", 400, `{"error":{"message":"(#551) This person isn't available right now.","type":"OAuthException","code":551,"error_subcode":1545041,"fbtrace_id":"H2"}}`, true, false, 551},
		{"invalid token", 400, `{"error":{"message":"Invalid OAuth access token.","type":"OAuthException","code":190,"fbtrace_id":"H3"}}`, true, false, 190},
		{"rate limited", 400, `{"error":{"message":"(#613) Calls to this api have exceeded the rate limit.","type":"OAuthException","code":613,"fbtrace_id":"H4"}}`, false, false, 613},
		{"server error", 500, `{"error":{"message":"An unknown error has occurred.","type":"OAuthException","code":1,"fbtrace_id":"H5"}}`, false, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newSendAPI(t, tt.status, tt.reply)
			_, err := newClient(srv, "").Send(context.Background(), psid, "hi", "")
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Code != tt.code || apiErr.FBTraceID == "" {
				t.Fatalf("err = %v", err)
			}
			if switchboard.IsPermanent(err) != tt.permanent || IsOutsideWindow(err) != tt.outsideWindow {
				t.Fatalf("permanent %v, outside window %v: %v", switchboard.IsPermanent(err), IsOutsideWindow(err), err)
			}
			if !strings.HasPrefix(err.Error(), "messenger: send: graph api: HTTP ") {
				t.Fatalf("error lacks context: %v", err)
			}
		})
	}
}

func TestSendReplyWithoutID(t *testing.T) {
	_, srv := newSendAPI(t, 200, `{"recipient_id":"6922891234567890"}`)
	_, err := newClient(srv, "").Send(context.Background(), psid, "hi", "")
	if err == nil || !switchboard.IsPermanent(err) || !strings.Contains(err.Error(), "no message_id") {
		t.Fatalf("err = %v", err)
	}
}

func TestSendMisconfigured(t *testing.T) {
	_, srv := newSendAPI(t, 200, sendOK)
	for name, c := range map[string]*Client{
		"no token":   {BaseURL: srv.URL, PageID: pageID},
		"no page id": {BaseURL: srv.URL, Token: "t"},
		"no base":    {PageID: pageID, Token: "t"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := c.Send(context.Background(), psid, "hi", ""); err == nil || !switchboard.IsPermanent(err) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestIsOutsideWindowIgnoresOtherErrors(t *testing.T) {
	if IsOutsideWindow(nil) || IsOutsideWindow(errors.New("x")) || IsOutsideWindow(&APIError{Code: 10}) {
		t.Fatal("IsOutsideWindow true for an unrelated error")
	}
}

func TestSendAttachmentRefusesBadInput(t *testing.T) {
	s, srv := newSendAPI(t, 200, sendOK)
	c := newClient(srv, "")
	ctx := context.Background()
	for name, send := range map[string]func() (string, error){
		"template":        func() (string, error) { return c.SendAttachment(ctx, psid, "template", "1", "") },
		"no id":           func() (string, error) { return c.SendAttachment(ctx, psid, AttachmentImage, " ", "") },
		"no recipient":    func() (string, error) { return c.SendAttachment(ctx, "", AttachmentImage, "1", "") },
		"unsupported tag": func() (string, error) { return c.SendAttachment(ctx, psid, AttachmentImage, "1", "ACCOUNT_UPDATE") },
	} {
		if _, err := send(); !switchboard.IsPermanent(err) || switchboard.ErrorCode(err) != switchboard.EINVALID {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n := len(s.all()); n != 0 {
		t.Fatalf("%d requests made for refused sends", n)
	}
}

func TestUploadAttachmentErrors(t *testing.T) {
	file := func() File {
		return File{Name: "a.png", ContentType: "image/png", Body: strings.NewReader("x"), Size: 1}
	}
	_, srv := newSendAPI(t, 400, `{"error":{"message":"(#100) Upload attachment failure.","type":"OAuthException","code":100,"fbtrace_id":"H6"}}`)
	_, err := newClient(srv, switchboard.ChannelInstagram).UploadAttachment(context.Background(), AttachmentImage, file())
	if !switchboard.IsPermanent(err) || !strings.HasPrefix(err.Error(), "instagram: upload: graph api: HTTP 400") {
		t.Fatalf("refused: %v", err)
	}
	_, srv = newSendAPI(t, 500, `{"error":{"message":"An unknown error has occurred.","type":"OAuthException","code":1,"fbtrace_id":"H7"}}`)
	if _, err := newClient(srv, "").UploadAttachment(context.Background(), AttachmentImage, file()); err == nil || switchboard.IsPermanent(err) {
		t.Fatalf("server error: %v", err)
	}
	_, srv = newSendAPI(t, 200, `{}`)
	if _, err := newClient(srv, "").UploadAttachment(context.Background(), AttachmentImage, file()); err == nil || switchboard.IsPermanent(err) {
		t.Fatalf("no attachment_id: %v", err)
	}
	if _, err := (&Client{BaseURL: srv.URL, PageID: pageID}).UploadAttachment(context.Background(), AttachmentImage, file()); !switchboard.IsPermanent(err) {
		t.Fatalf("no token: %v", err)
	}
}
