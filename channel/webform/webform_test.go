package webform

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/refusal"
)

// fakeQueue is an in-memory switchboard.Queue that records what was enqueued.
type fakeQueue struct {
	mu    sync.Mutex
	err   error
	items []switchboard.Delivery
}

func (q *fakeQueue) Enqueue(ctx context.Context, ch switchboard.Channel, payload []byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return q.err
	}
	q.items = append(q.items, switchboard.Delivery{ID: fmt.Sprint(len(q.items)), Channel: ch, Payload: bytes.Clone(payload)})
	return nil
}

func (q *fakeQueue) Receive(ctx context.Context, max int) ([]switchboard.Delivery, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (q *fakeQueue) Ack(ctx context.Context, ds []switchboard.Delivery) error { return nil }

func (q *fakeQueue) Depth(ctx context.Context) (int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return int64(len(q.items)), nil
}

func (q *fakeQueue) Close() error { return nil }

func (q *fakeQueue) inbound(t *testing.T) []switchboard.Inbound {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []switchboard.Inbound
	for _, d := range q.items {
		if d.Channel != switchboard.ChannelWebform {
			t.Errorf("enqueued on channel %q, want webform", d.Channel)
		}
		var in switchboard.Inbound
		if err := json.Unmarshal(d.Payload, &in); err != nil {
			t.Fatalf("payload is not an Inbound: %v", err)
		}
		out = append(out, in)
	}
	return out
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// env is a handler mounted on a real ServeMux the way the server mounts it.
type env struct {
	q        *fakeQueue
	clock    *fakeClock
	mux      *http.ServeMux
	logs     *bytes.Buffer
	accepted []string
	rejected []string
	mu       sync.Mutex
}

func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	e := &env{q: &fakeQueue{}, clock: &fakeClock{now: t0}, logs: &bytes.Buffer{}}
	cfg := Config{
		Queue: e.q,
		Forms: map[string]Form{
			"contact": {},
			"support": {ThankYouURL: "https://www.example.com/thanks?lang=en"},
			"locked":  {AllowedOrigins: []string{"https://www.example.com/"}},
		},
		Clock:      e.clock,
		Logger:     slog.New(slog.NewTextHandler(&syncWriter{w: e.logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		RateLimit:  RateLimit{Disabled: true},
		OnAccepted: func(form, id string) { e.mu.Lock(); e.accepted = append(e.accepted, id); e.mu.Unlock() },
		OnRejected: func(form string, code refusal.Code) {
			e.mu.Lock()
			e.rejected = append(e.rejected, string(code))
			e.mu.Unlock()
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	e.mux = http.NewServeMux()
	e.mux.Handle("POST /forms/{form}", New(cfg))
	return e
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (e *env) do(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, req)
	return rec
}

func jsonReq(form string, body any) *http.Request {
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		b, _ = json.Marshal(v)
	}
	r := httptest.NewRequest(http.MethodPost, "/forms/"+form, bytes.NewReader(b))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("User-Agent", "test-agent/1.0")
	return r
}

func formReq(form string, v url.Values) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/forms/"+form, strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func rawFormReq(form, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/forms/"+form, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func multipartReq(form string, fields [][2]string, file bool) *http.Request {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		mw.WriteField(f[0], f[1])
	}
	if file {
		fw, _ := mw.CreateFormFile("attachment", "evil.exe")
		fw.Write([]byte("MZ"))
	}
	mw.Close()
	r := httptest.NewRequest(http.MethodPost, "/forms/"+form, &buf)
	r.Header.Set("Content-Type", mw.FormDataContentType())
	return r
}

func good() map[string]string {
	return map[string]string{"name": "Ada Lovelace", "email": "ada@example.com", "subject": "Engine", "message": "Hello,\r\nthe engine hums."}
}

func with(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "<delete>" {
			delete(out, kv[i])
		} else {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

func values(m map[string]string) url.Values {
	v := url.Values{}
	for k, s := range m {
		v.Set(k, s)
	}
	return v
}

func errorBody(t *testing.T, rec *httptest.ResponseRecorder) (code, msg string) {
	t.Helper()
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body %q is not JSON: %v", rec.Body, err)
	}
	if body.Error.Code == "" || body.Error.Message == "" {
		t.Fatalf("error body %q lacks code or message", rec.Body)
	}
	return body.Error.Code, body.Error.Message
}

func TestScenarios(t *testing.T) {
	tests := []struct {
		name     string
		cfg      func(*Config)
		req      func() *http.Request
		status   int
		code     string // JSON error code, when status >= 400 and JSON
		location string // expected Location, when set
		stored   int    // messages expected on the queue
		check    func(t *testing.T, in switchboard.Inbound, rec *httptest.ResponseRecorder)
	}{
		{
			name: "json ok", req: func() *http.Request { return jsonReq("contact", good()) },
			status: http.StatusAccepted, stored: 1,
			check: func(t *testing.T, in switchboard.Inbound, rec *httptest.ResponseRecorder) {
				var resp struct{ Status, ID string }
				if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.Status != "accepted" {
					t.Fatalf("body %q", rec.Body)
				}
				if resp.ID != in.ProviderID || !strings.HasPrefix(in.ProviderID, "webform:") || len(in.ProviderID) != len("webform:")+32 {
					t.Errorf("provider id %q, response id %q", in.ProviderID, resp.ID)
				}
				if in.Channel != switchboard.ChannelWebform || in.ContentType != switchboard.ContentText {
					t.Errorf("channel %q content type %q", in.Channel, in.ContentType)
				}
				if in.SenderName != "Ada Lovelace" || in.Subject != "Engine" || in.Text != "Hello,\nthe engine hums." {
					t.Errorf("got name %q subject %q text %q", in.SenderName, in.Subject, in.Text)
				}
				want := []switchboard.IdentityRef{{Kind: switchboard.IdentityEmail, Value: "ada@example.com"}}
				if fmt.Sprint(in.Identities) != fmt.Sprint(want) {
					t.Errorf("identities %v, want %v", in.Identities, want)
				}
				if !in.ReceivedAt.Equal(t0) || !in.AcceptedAt.Equal(t0) {
					t.Errorf("times %v %v, want %v", in.ReceivedAt, in.AcceptedAt, t0)
				}
				var meta map[string]string
				if err := json.Unmarshal(in.Metadata, &meta); err != nil {
					t.Fatal(err)
				}
				if meta["form"] != "contact" || meta["client_ip"] != "192.0.2.1" || meta["user_agent"] != "test-agent/1.0" {
					t.Errorf("metadata %s", in.Metadata)
				}
				if err := in.Validate(); err != nil {
					t.Error(err)
				}
			},
		},
		{
			name: "form ok redirects to thank-you page", req: func() *http.Request { return formReq("support", values(good())) },
			status: http.StatusSeeOther, location: "https://www.example.com/thanks?lang=en", stored: 1,
		},
		{
			name: "form ok without thank-you page gets HTML", req: func() *http.Request { return formReq("contact", values(good())) },
			status: http.StatusOK, stored: 1,
			check: func(t *testing.T, _ switchboard.Inbound, rec *httptest.ResponseRecorder) {
				if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(rec.Body.String(), "Thank you") {
					t.Errorf("content type %q body %q", ct, rec.Body)
				}
			},
		},
		{
			name: "form post asking for JSON gets JSON",
			req: func() *http.Request {
				r := formReq("support", values(good()))
				r.Header.Set("Accept", "application/json")
				return r
			},
			status: http.StatusAccepted, stored: 1,
		},
		{
			name: "multipart ok", req: func() *http.Request {
				return multipartReq("support", [][2]string{{"name", "Ada"}, {"email", "ada@example.com"}, {"message", "hi"}, {"submit", "Send"}}, false)
			},
			status: http.StatusSeeOther, location: "https://www.example.com/thanks?lang=en", stored: 1,
		},
		{
			name: "multipart with a file", req: func() *http.Request {
				return multipartReq("contact", [][2]string{{"email", "ada@example.com"}, {"message", "hi"}}, true)
			},
			status: http.StatusBadRequest,
		},
		{
			name: "mixed-case email normalised", req: func() *http.Request { return jsonReq("contact", with(good(), "email", "  Ada.Lovelace@Example.COM ")) },
			status: http.StatusAccepted, stored: 1,
			check: func(t *testing.T, in switchboard.Inbound, _ *httptest.ResponseRecorder) {
				if in.Identities[0] != (switchboard.IdentityRef{Kind: switchboard.IdentityEmail, Value: "ada.lovelace@example.com"}) {
					t.Errorf("identities %v", in.Identities)
				}
			},
		},
		{
			// The phone is normalised and kept as a claim: a form proves no
			// phone number, so it must not link anyone's thread.
			name: "phone normalised, a claim", req: func() *http.Request { return jsonReq("contact", with(good(), "phone", "(415) 555-0123")) },
			status: http.StatusAccepted, stored: 1,
			check: func(t *testing.T, in switchboard.Inbound, _ *httptest.ResponseRecorder) {
				if len(in.Identities) != 1 || in.Identities[0].Kind != switchboard.IdentityEmail {
					t.Errorf("identities %v, want the e-mail address only", in.Identities)
				}
				if len(in.Claims) != 1 || in.Claims[0] != (switchboard.IdentityRef{Kind: switchboard.IdentityPhone, Value: "+14155550123"}) {
					t.Errorf("claims %v", in.Claims)
				}
			},
		},
		{
			name: "phone read in the configured region", cfg: func(c *Config) { c.DefaultRegion = "GB" },
			req:    func() *http.Request { return jsonReq("contact", with(good(), "phone", "07911 123456")) },
			status: http.StatusAccepted, stored: 1,
			check: func(t *testing.T, in switchboard.Inbound, _ *httptest.ResponseRecorder) {
				if len(in.Claims) != 1 || in.Claims[0].Value != "+447911123456" {
					t.Errorf("claims %v", in.Claims)
				}
			},
		},
		{name: "bad phone", req: func() *http.Request { return jsonReq("contact", with(good(), "phone", "12")) }, status: 400, code: "malformed"},
		{name: "missing email", req: func() *http.Request { return jsonReq("contact", with(good(), "email", "<delete>")) }, status: 400, code: "malformed"},
		{name: "blank email", req: func() *http.Request { return jsonReq("contact", with(good(), "email", "  ")) }, status: 400, code: "malformed"},
		{name: "missing message", req: func() *http.Request { return jsonReq("contact", with(good(), "message", "<delete>")) }, status: 400, code: "malformed"},
		{name: "blank message", req: func() *http.Request { return jsonReq("contact", with(good(), "message", " \r\n\t ")) }, status: 400, code: "malformed"},
		{name: "bad email", req: func() *http.Request { return jsonReq("contact", with(good(), "email", "ada@localhost")) }, status: 400, code: "malformed"},
		{name: "email with display name", req: func() *http.Request { return jsonReq("contact", with(good(), "email", "Ada <ada@example.com>")) }, status: 400, code: "malformed"},
		{name: "name with newline", req: func() *http.Request { return jsonReq("contact", with(good(), "name", "Ada\r\nBcc: x")) }, status: 400, code: "malformed"},
		{name: "NUL in message", req: func() *http.Request { return jsonReq("contact", with(good(), "message", "a\x00b")) }, status: 400, code: "malformed"},
		{name: "malformed JSON", req: func() *http.Request { return jsonReq("contact", `{"email": "ada@example.com", "message": "hi"`) }, status: 400, code: "malformed"},
		{name: "JSON array", req: func() *http.Request { return jsonReq("contact", `[{"email": "ada@example.com"}]`) }, status: 400, code: "malformed"},
		{name: "JSON trailing data", req: func() *http.Request { return jsonReq("contact", `{"email":"ada@example.com","message":"hi"} {}`) }, status: 400, code: "malformed"},
		{name: "JSON number field", req: func() *http.Request {
			return jsonReq("contact", `{"email":"ada@example.com","message":"hi","phone":4155550123}`)
		}, status: 400, code: "malformed"},
		{
			name: "JSON null and unknown fields ignored",
			req: func() *http.Request {
				return jsonReq("contact", `{"email":"ada@example.com","message":"hi","phone":null,"company":"ACME","consent":true}`)
			},
			status: http.StatusAccepted, stored: 1,
		},
		{
			name: "10 MB body", req: func() *http.Request {
				return jsonReq("contact", `{"email":"ada@example.com","message":"`+strings.Repeat("x", 10<<20)+`"}`)
			},
			status: http.StatusRequestEntityTooLarge, code: "too_large",
		},
		{
			name: "10 MB body without Content-Length", req: func() *http.Request {
				r := formReq("contact", values(with(good(), "message", strings.Repeat("x", 10<<20))))
				r.ContentLength = -1
				r.Header.Set("Accept", "application/json")
				return r
			},
			status: http.StatusRequestEntityTooLarge, code: "too_large",
		},
		{
			name: "10 MB multipart", req: func() *http.Request {
				r := multipartReq("contact", [][2]string{{"email", "ada@example.com"}, {"message", strings.Repeat("x", 10<<20)}}, false)
				r.ContentLength = -1
				r.Header.Set("Accept", "application/json")
				return r
			},
			status: http.StatusRequestEntityTooLarge, code: "too_large",
		},
		{name: "invalid UTF-8 in JSON", req: func() *http.Request {
			return jsonReq("contact", "{\"email\":\"ada@example.com\",\"message\":\"caf\xe9\"}")
		}, status: 400, code: "malformed"},
		{
			name: "invalid UTF-8 in form", req: func() *http.Request {
				r := rawFormReq("contact", "email=ada%40example.com&message=caf%E9")
				r.Header.Set("Accept", "application/json")
				return r
			},
			status: 400, code: "malformed",
		},
		{
			name: "invalid UTF-8 in multipart", req: func() *http.Request {
				r := multipartReq("contact", [][2]string{{"email", "ada@example.com"}, {"message", "hi"}, {"name", "Jos\xe9"}}, false)
				r.Header.Set("Accept", "application/json")
				return r
			},
			status: 400, code: "malformed",
		},
		{
			name: "invalid UTF-8 in an unknown field", req: func() *http.Request {
				r := rawFormReq("contact", "email=ada%40example.com&message=hi&extra=%FF")
				r.Header.Set("Accept", "application/json")
				return r
			},
			status: 400, code: "malformed",
		},
		{
			name: "Latin-1 charset", req: func() *http.Request {
				r := jsonReq("contact", good())
				r.Header.Set("Content-Type", "application/json; charset=iso-8859-1")
				return r
			},
			status: 415, code: "unsupported_media_type",
		},
		{name: "unknown form", req: func() *http.Request { return jsonReq("nope", good()) }, status: 404, code: "not_found"},
		{
			name: "unknown form from a browser", req: func() *http.Request { return formReq("nope", values(good())) },
			status: 404,
			check: func(t *testing.T, _ switchboard.Inbound, rec *httptest.ResponseRecorder) {
				if !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
					t.Errorf("content type %q", rec.Header().Get("Content-Type"))
				}
			},
		},
		{
			name: "unknown content type", req: func() *http.Request {
				r := jsonReq("contact", good())
				r.Header.Set("Content-Type", "text/plain")
				r.Header.Set("Accept", "application/json")
				return r
			},
			status: 415, code: "unsupported_media_type",
		},
		{
			name: "no content type", req: func() *http.Request {
				r := jsonReq("contact", good())
				r.Header.Del("Content-Type")
				r.Header.Set("Accept", "application/json")
				return r
			},
			status: 415, code: "unsupported_media_type",
		},
		{
			name: "honeypot", req: func() *http.Request { return jsonReq("contact", with(good(), "website", "http://spam.example")) },
			status: http.StatusAccepted, stored: 0,
			check: func(t *testing.T, _ switchboard.Inbound, rec *httptest.ResponseRecorder) {
				var resp struct{ Status, ID string }
				json.Unmarshal(rec.Body.Bytes(), &resp)
				if resp.Status != "accepted" || !strings.HasPrefix(resp.ID, "webform:") {
					t.Errorf("honeypot response %q does not look like success", rec.Body)
				}
			},
		},
		{
			name: "honeypot with invalid fields still looks like success",
			req: func() *http.Request {
				return formReq("support", values(map[string]string{"website": "x", "email": "nope"}))
			},
			status: http.StatusSeeOther, location: "https://www.example.com/thanks?lang=en", stored: 0,
		},
		{name: "empty honeypot is fine", req: func() *http.Request { return formReq("support", values(with(good(), "website", " "))) }, status: 303, stored: 1},
		{
			name: "browser error redirects with code", req: func() *http.Request { return formReq("support", values(with(good(), "email", "bad"))) },
			status: http.StatusSeeOther, location: "https://www.example.com/thanks?error=malformed&lang=en",
		},
		{
			name: "browser error without thank-you page", req: func() *http.Request { return formReq("contact", values(with(good(), "message", ""))) },
			status: http.StatusBadRequest,
			check: func(t *testing.T, _ switchboard.Inbound, rec *httptest.ResponseRecorder) {
				if !strings.Contains(rec.Body.String(), "message is required") {
					t.Errorf("body %q", rec.Body)
				}
			},
		},
		{name: "duplicate field", req: func() *http.Request {
			return rawFormReq("contact", "email=a%40example.com&email=b%40example.com&message=hi")
		}, status: 400},
		{name: "semicolon separator", req: func() *http.Request { return rawFormReq("contact", "email=a%40example.com;message=hi") }, status: 400},
		{
			name: "origin allowed", req: func() *http.Request {
				r := jsonReq("locked", good())
				r.Header.Set("Origin", "https://WWW.example.com")
				return r
			},
			status: http.StatusAccepted, stored: 1,
			check: func(t *testing.T, _ switchboard.Inbound, rec *httptest.ResponseRecorder) {
				if rec.Header().Get("Access-Control-Allow-Origin") != "https://WWW.example.com" {
					t.Errorf("CORS header %q", rec.Header().Get("Access-Control-Allow-Origin"))
				}
			},
		},
		{
			name: "origin refused", req: func() *http.Request {
				r := jsonReq("locked", good())
				r.Header.Set("Origin", "https://evil.example")
				return r
			},
			status: 403, code: "forbidden",
		},
		{name: "origin missing", req: func() *http.Request { return jsonReq("locked", good()) }, status: 403, code: "forbidden"},
		{
			name: "origin ignored when not configured", req: func() *http.Request {
				r := jsonReq("contact", good())
				r.Header.Set("Origin", "https://evil.example")
				return r
			},
			status: http.StatusAccepted, stored: 1,
		},
		{
			name: "idempotency key sets provider id", req: func() *http.Request {
				r := jsonReq("contact", good())
				r.Header.Set("Idempotency-Key", "6f1c1a9e-2b1f-4c1d-9a53-0f0d0e0c0b0a")
				return r
			},
			status: http.StatusAccepted, stored: 1,
			check: func(t *testing.T, in switchboard.Inbound, _ *httptest.ResponseRecorder) {
				if in.ProviderID != "webform:contact:6f1c1a9e-2b1f-4c1d-9a53-0f0d0e0c0b0a" {
					t.Errorf("provider id %q", in.ProviderID)
				}
			},
		},
		{
			name: "bad idempotency key", req: func() *http.Request {
				r := jsonReq("contact", good())
				r.Header.Set("Idempotency-Key", "has space")
				return r
			},
			status: 400, code: "malformed",
		},
		{
			name: "enqueue error", cfg: func(c *Config) { c.Queue.(*fakeQueue).err = errors.New("disk full") },
			req:    func() *http.Request { return jsonReq("contact", good()) },
			status: http.StatusServiceUnavailable, code: "unavailable",
		},
		{
			name: "enqueue error from a browser", cfg: func(c *Config) { c.Queue.(*fakeQueue).err = errors.New("disk full") },
			req:    func() *http.Request { return formReq("support", values(good())) },
			status: http.StatusSeeOther, location: "https://www.example.com/thanks?error=unavailable&lang=en",
		},
		{
			name: "default form exists when Forms is nil", cfg: func(c *Config) { c.Forms = nil },
			req:    func() *http.Request { return jsonReq("contact", good()) },
			status: http.StatusAccepted, stored: 1,
		},
		{
			name: "trusted proxy", cfg: func(c *Config) { c.TrustProxy = true },
			req: func() *http.Request {
				r := jsonReq("contact", good())
				r.Header.Set("X-Forwarded-For", "203.0.113.9, 198.51.100.7")
				return r
			},
			status: http.StatusAccepted, stored: 1,
			check: func(t *testing.T, in switchboard.Inbound, _ *httptest.ResponseRecorder) {
				if !strings.Contains(string(in.Metadata), `"client_ip":"198.51.100.7"`) {
					t.Errorf("metadata %s", in.Metadata)
				}
			},
		},
		{
			name: "untrusted proxy header ignored",
			req: func() *http.Request {
				r := jsonReq("contact", good())
				r.Header.Set("X-Forwarded-For", "203.0.113.9")
				return r
			},
			status: http.StatusAccepted, stored: 1,
			check: func(t *testing.T, in switchboard.Inbound, _ *httptest.ResponseRecorder) {
				if !strings.Contains(string(in.Metadata), `"client_ip":"192.0.2.1"`) {
					t.Errorf("metadata %s", in.Metadata)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.cfg)
			rec := e.do(tt.req())
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d; body %q", rec.Code, tt.status, rec.Body)
			}
			if tt.code != "" {
				if code, _ := errorBody(t, rec); code != tt.code {
					t.Errorf("error code %q, want %q", code, tt.code)
				}
			}
			if tt.location != "" && rec.Header().Get("Location") != tt.location {
				t.Errorf("Location %q, want %q", rec.Header().Get("Location"), tt.location)
			}
			ins := e.q.inbound(t)
			if len(ins) != tt.stored {
				t.Fatalf("%d messages enqueued, want %d", len(ins), tt.stored)
			}
			e.mu.Lock()
			if tt.stored > 0 && len(e.accepted) != tt.stored || tt.stored == 0 && len(e.rejected) != 1 {
				t.Errorf("hooks: accepted %v rejected %v", e.accepted, e.rejected)
			}
			e.mu.Unlock()
			if tt.check != nil {
				var in switchboard.Inbound
				if len(ins) > 0 {
					in = ins[0]
				}
				tt.check(t, in, rec)
			}
			// The message body must never reach the logs.
			if strings.Contains(e.logs.String(), "engine hums") {
				t.Errorf("message text logged: %s", e.logs)
			}
		})
	}
}

func TestRejectionsAreLogged(t *testing.T) {
	e := newEnv(t, nil)
	e.do(jsonReq("contact", with(good(), "email", "nope")))
	e.do(jsonReq("contact", with(good(), "website", "spam")))
	logs := e.logs.String()
	for _, want := range []string{"post rejected", "code=malformed", "reason=", "form=contact", "honeypot"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RateLimit = RateLimit{Interval: 6 * time.Second, Burst: 5} })
	post := func(remote string) *httptest.ResponseRecorder {
		r := jsonReq("contact", good())
		r.RemoteAddr = remote
		return e.do(r)
	}
	for i := range 5 {
		if rec := post("192.0.2.10:1234"); rec.Code != http.StatusAccepted {
			t.Fatalf("post %d: status %d", i+1, rec.Code)
		}
	}
	rec := post("192.0.2.10:5678")
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("post after burst: status %d, want 429", rec.Code)
	}
	if rec.Header().Get("Retry-After") != "6" {
		t.Errorf("Retry-After %q, want 6", rec.Header().Get("Retry-After"))
	}
	if code, _ := errorBody(t, rec); code != string(refusal.RateLimited) {
		t.Errorf("code %q", code)
	}
	// Other clients have their own bucket; an IPv6 client's whole /64 shares one.
	if rec := post("192.0.2.11:1"); rec.Code != http.StatusAccepted {
		t.Errorf("other client: status %d", rec.Code)
	}
	for i := range 5 {
		post(fmt.Sprintf("[2001:db8::%x]:1", i+1))
	}
	if rec := post("[2001:db8::ffff]:1"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("same /64: status %d, want 429", rec.Code)
	}
	// A token comes back after the interval, and only one.
	e.clock.Advance(6 * time.Second)
	if rec := post("192.0.2.10:1"); rec.Code != http.StatusAccepted {
		t.Errorf("after refill: status %d", rec.Code)
	}
	if rec := post("192.0.2.10:1"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("second after refill: status %d", rec.Code)
	}
	if got := len(e.q.inbound(t)); got != 5+1+5+1 {
		t.Errorf("%d enqueued", got)
	}
}

func TestRateLimitIgnoresForwardedForUnlessTrusted(t *testing.T) {
	for _, trust := range []bool{false, true} {
		e := newEnv(t, func(c *Config) { c.RateLimit = RateLimit{Burst: 1}; c.TrustProxy = trust })
		var codes []int
		for i := range 3 {
			r := jsonReq("contact", good())
			r.Header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i))
			codes = append(codes, e.do(r).Code)
		}
		want := []int{202, 429, 429}
		if trust {
			want = []int{202, 202, 202}
		}
		if fmt.Sprint(codes) != fmt.Sprint(want) {
			t.Errorf("trust=%v: statuses %v, want %v", trust, codes, want)
		}
	}
}

func TestRateLimitBrowserWithoutThankYouPage(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RateLimit = RateLimit{Burst: 1} })
	e.do(formReq("contact", values(good())))
	rec := e.do(formReq("contact", values(good())))
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
}

func TestIdempotencyKeyGivesSameProviderID(t *testing.T) {
	e := newEnv(t, nil)
	var ids []string
	for range 2 {
		r := jsonReq("contact", good())
		r.Header.Set("Idempotency-Key", "retry-me-1")
		rec := e.do(r)
		var resp struct{ ID string }
		json.Unmarshal(rec.Body.Bytes(), &resp)
		ids = append(ids, resp.ID)
	}
	ins := e.q.inbound(t)
	if len(ins) != 2 || ins[0].ProviderID != ins[1].ProviderID || ids[0] != ids[1] || ids[0] != ins[0].ProviderID {
		t.Fatalf("ids %v, enqueued %d", ids, len(ins))
	}
	// Without a key every post gets its own id.
	e.do(jsonReq("contact", good()))
	e.do(jsonReq("contact", good()))
	ins = e.q.inbound(t)
	if ins[2].ProviderID == ins[3].ProviderID {
		t.Errorf("two posts share provider id %q", ins[2].ProviderID)
	}
}

func TestPreflight(t *testing.T) {
	h := New(Config{Queue: &fakeQueue{}, Forms: map[string]Form{"locked": {AllowedOrigins: []string{"https://www.example.com"}}, "open": {}}})
	mux := http.NewServeMux()
	mux.Handle("POST /forms/{form}", h)
	mux.Handle("OPTIONS /forms/{form}", h)
	for _, tt := range []struct {
		form, origin string
		status       int
	}{
		{"locked", "https://www.example.com", http.StatusNoContent},
		{"locked", "https://evil.example", http.StatusForbidden},
		{"open", "https://www.example.com", http.StatusForbidden},
		{"missing", "https://www.example.com", http.StatusNotFound},
	} {
		r := httptest.NewRequest(http.MethodOptions, "/forms/"+tt.form, nil)
		r.Header.Set("Origin", tt.origin)
		r.Header.Set("Access-Control-Request-Method", "POST")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, r)
		if rec.Code != tt.status {
			t.Errorf("%s from %s: status %d, want %d", tt.form, tt.origin, rec.Code, tt.status)
		}
		if tt.status == http.StatusNoContent && rec.Header().Get("Access-Control-Allow-Origin") != tt.origin {
			t.Errorf("preflight headers %v", rec.Header())
		}
	}
}

func TestNew(t *testing.T) {
	var logs bytes.Buffer
	h := New(Config{
		Queue:  &fakeQueue{},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Forms:  map[string]Form{"ok": {}, "bad id": {}, "mismatch": {ID: "other"}, "same": {ID: "same"}},
	})
	for _, id := range []string{"ok", "same"} {
		if _, ok := h.forms[id]; !ok {
			t.Errorf("form %q missing", id)
		}
	}
	for _, id := range []string{"bad id", "mismatch"} {
		if _, ok := h.forms[id]; ok {
			t.Errorf("form %q should be left out", id)
		}
	}
	if strings.Count(logs.String(), "form left out") != 2 {
		t.Errorf("logs: %s", logs.String())
	}
	if h := New(Config{Queue: &fakeQueue{}, Forms: map[string]Form{}}); len(h.forms) != 0 {
		t.Errorf("empty Forms map gave %d forms", len(h.forms))
	}
	defer func() {
		if recover() == nil {
			t.Error("New without a queue did not panic")
		}
	}()
	New(Config{})
}

func TestMethodNotAllowedWhenMountedWithoutMethod(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/forms/{form}", New(Config{Queue: &fakeQueue{}}))
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/forms/contact", nil)
	r.Header.Set("Accept", "application/json")
	mux.ServeHTTP(rec, r)
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "POST" {
		t.Errorf("status %d Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
}

func TestConcurrentPosts(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RateLimit = RateLimit{Burst: 20} })
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			r := jsonReq("contact", good())
			r.RemoteAddr = fmt.Sprintf("192.0.2.%d:1", i%2)
			e.do(r)
		})
	}
	wg.Wait()
	if n := len(e.q.inbound(t)); n != 40 {
		t.Errorf("%d enqueued, want 40", n)
	}
}

func TestLimiterSweep(t *testing.T) {
	l := newLimiter(time.Second, 2)
	for i := range 1000 {
		l.allow(fmt.Sprint(i), t0)
	}
	l.allow("late", t0.Add(3*time.Second))
	if len(l.buckets) != 1 {
		t.Errorf("%d buckets after sweep, want 1", len(l.buckets))
	}
	// A clock that steps back refills nothing.
	l.allow("x", t0.Add(3*time.Second))
	l.allow("x", t0.Add(3*time.Second))
	if ok, wait := l.allow("x", t0); ok || wait != time.Second {
		t.Errorf("allow after step back = %v, %v", ok, wait)
	}
}

func TestTruncate(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 5, "abc"}, {"abcdef", 3, "abc"}, {"aé", 2, "a"}, {"a\xffb", 10, "a\uFFFDb"},
	} {
		if got := truncate(tt.in, tt.n); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestBadDefaultRegion(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, func(c *Config) {
		c.DefaultRegion = "XX"
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	if !strings.Contains(logs.String(), "DefaultRegion") {
		t.Errorf("bad region not logged: %s", logs.String())
	}
	rec := e.do(jsonReq("contact", with(good(), "phone", "(415) 555-0123")))
	if _, msg := errorBody(t, rec); rec.Code != 400 || !strings.Contains(msg, "must start with +") {
		t.Errorf("status %d message %q", rec.Code, msg)
	}
	if rec := e.do(jsonReq("contact", with(good(), "phone", "+1 415 555 0123"))); rec.Code != http.StatusAccepted {
		t.Errorf("international number: status %d", rec.Code)
	}
}

// TestRefusalShape: every JSON refusal is the one shape, with the status
// of its code, and is counted under that code; a browser gets the same
// code in the redirect.
func TestRefusalShape(t *testing.T) {
	var counted []refusal.Code // the handler runs on the test's goroutine
	h := New(Config{
		Queue: &fakeQueue{err: errors.New("disk full")},
		Forms: map[string]Form{
			"contact": {},
			"support": {ThankYouURL: "https://www.example.com/thanks"},
			"locked":  {AllowedOrigins: []string{"https://www.example.com"}},
		},
		MaxBodyBytes: 1024,
		RateLimit:    RateLimit{Burst: 1, Interval: time.Hour},
		TrustProxy:   true,
		OnRejected:   func(_ string, c refusal.Code) { counted = append(counted, c) },
	})
	mux := http.NewServeMux()
	mux.Handle("/forms/{form}", h)
	client := 0
	req := func(method, form, body string) *http.Request {
		r := httptest.NewRequest(method, "/forms/"+form, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		client++ // each request its own client: only the rate limit case is limited
		r.Header.Set("X-Forwarded-For", fmt.Sprintf("192.0.2.%d", client))
		return r
	}
	good := `{"email":"ada@example.com","message":"hi"}`
	tests := []struct {
		name string
		r    func() *http.Request
		want refusal.Code
	}{
		{"unknown form", func() *http.Request { return req(http.MethodPost, "nope", good) }, refusal.NotFound},
		{"wrong method", func() *http.Request { return req(http.MethodPut, "contact", good) }, refusal.MethodNotAllowed},
		{"malformed body", func() *http.Request { return req(http.MethodPost, "contact", `{"email":`) }, refusal.Malformed},
		{"oversized", func() *http.Request {
			return req(http.MethodPost, "contact", `{"email":"ada@example.com","message":"`+strings.Repeat("x", 2048)+`"}`)
		}, refusal.TooLarge},
		{"not JSON nor a form", func() *http.Request {
			r := req(http.MethodPost, "contact", good)
			r.Header.Set("Content-Type", "text/plain")
			r.Header.Set("Accept", "application/json")
			return r
		}, refusal.UnsupportedMediaType},
		{"origin", func() *http.Request { return req(http.MethodPost, "locked", good) }, refusal.Forbidden},
		{"rate limited", func() *http.Request {
			r := req(http.MethodPost, "contact", good)
			mux.ServeHTTP(httptest.NewRecorder(), r) // spends the client's one post
			counted = nil
			return r.Clone(r.Context())
		}, refusal.RateLimited},
		{"not stored", func() *http.Request { return req(http.MethodPost, "contact", good) }, refusal.Unavailable},
	}
	for _, tt := range tests {
		counted = nil
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, tt.r())
		var b refusal.Body
		if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: answer %d %q is not the refusal shape: %v", tt.name, rec.Code, rec.Body, err)
			continue
		}
		if rec.Code != tt.want.Status() || b.Error.Code != tt.want || b.Error.Message == "" || len(counted) != 1 || counted[0] != tt.want {
			t.Errorf("%s: answer %d %q counted %v, want %s", tt.name, rec.Code, rec.Body, counted, tt.want)
		}
	}

	// A browser is redirected with the same code, and it is counted.
	counted = nil
	r := formReq("support", url.Values{"email": {"nope"}, "message": {"hi"}})
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, r)
	if loc := rec.Header().Get("Location"); rec.Code != http.StatusSeeOther || loc != "https://www.example.com/thanks?error=malformed" || len(counted) != 1 || counted[0] != refusal.Malformed {
		t.Errorf("browser: %d Location %q counted %v", rec.Code, loc, counted)
	}
}
