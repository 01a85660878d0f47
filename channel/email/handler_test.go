package email

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/refusal"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
)

type downQueue struct{ memQueue }

func (*downQueue) Enqueue(context.Context, switchboard.Channel, []byte) error {
	return errors.New("disk full")
}

// TestWebhookRefusals: every refusal answers the one JSON shape with the
// code it is counted under; Mailgun alone gets 406 for what it must not
// retry.
func TestWebhookRefusals(t *testing.T) {
	clock := testenv.NewClock(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	var counted []refusal.Code
	hc := HandlerConfig{Secret: "s3cret-s3cret", Clock: clock, OnRejected: func(c refusal.Code) { counted = append(counted, c) }}
	ch, _, _, _ := newTestChannel()
	h := ch.Handler(hc)
	down := New(Config{Queue: &downQueue{}, Store: &memStore{}, Blobs: &memBlobs{}, Tokens: testTokens, Logger: slog.New(slog.DiscardHandler)}).Handler(hc)
	small := hc
	small.MaxBodyBytes = 100
	closed := hc
	closed.Secret = ""

	raw := func(auth, body string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/webhooks/email", strings.NewReader(body))
		r.Header.Set("Content-Type", "message/rfc822")
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		return r
	}
	mailgun := func(key, body string) *http.Request {
		ts := strconv.FormatInt(clock.Now().Unix(), 10)
		m := hmac.New(sha256.New, []byte(key))
		m.Write([]byte(ts + "tok-" + key + body))
		form := url.Values{"timestamp": {ts}, "token": {"tok-" + key + body}, "signature": {hex.EncodeToString(m.Sum(nil))}, "body-mime": {body}}
		r := httptest.NewRequest(http.MethodPost, "/webhooks/email", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
	const auth = "Bearer s3cret-s3cret"
	tests := []struct {
		name   string
		h      http.Handler
		r      *http.Request
		want   refusal.Code
		status int
	}{
		{"wrong method", h, httptest.NewRequest(http.MethodGet, "/webhooks/email", nil), refusal.MethodNotAllowed, 405},
		{"not configured", ch.Handler(closed), raw(auth, plainMail), refusal.Forbidden, 403},
		{"no credentials", h, raw("", plainMail), refusal.Unauthorized, 401},
		{"wrong Mailgun signature", h, mailgun("other-key", plainMail), refusal.Unauthorized, 401},
		{"oversized", ch.Handler(small), raw(auth, plainMail), refusal.TooLarge, 413},
		{"empty body", h, raw(auth, ""), refusal.Malformed, 400},
		{"Mailgun form without the mail", h, mailgun("s3cret-s3cret", ""), refusal.Unprocessable, 406},
		{"not stored", down, raw(auth, plainMail), refusal.Unavailable, 503},
	}
	for _, tt := range tests {
		counted = nil
		w := httptest.NewRecorder()
		tt.h.ServeHTTP(w, tt.r)
		var b refusal.Body
		if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: answer %d %q is not the refusal shape: %v", tt.name, w.Code, w.Body, err)
			continue
		}
		if w.Code != tt.status || b.Error.Code != tt.want || b.Error.Message == "" || len(counted) != 1 || counted[0] != tt.want {
			t.Errorf("%s: answer %d %q counted %v, want %d %s", tt.name, w.Code, w.Body, counted, tt.status, tt.want)
		}
	}
}

// TestWebhookAcceptsMalformedMail: a malformed mail is answered 2xx once
// durable, never refused (a service stops retrying on 4xx, and Mailgun on
// 406): queued when a sender can be found, the envelope sender the service
// posts included, else kept as a dead letter.
func TestWebhookAcceptsMalformedMail(t *testing.T) {
	clock := testenv.NewClock(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	var refused []refusal.Code
	ch, q, _, _ := newTestChannel()
	h := ch.Handler(HandlerConfig{Secret: "s3cret-s3cret", Clock: clock, OnRejected: func(c refusal.Code) { refused = append(refused, c) }})
	const whitespaceFirst = " \r\nFrom: Ann <ann@example.com>\r\nSubject: locked out\r\nMessage-ID: <ws1@example.com>\r\n\r\nI cannot log in.\r\n"
	const noHeader = "I cannot log in and my mailer lost the header.\r\n"

	r := httptest.NewRequest(http.MethodPost, "/webhooks/email", strings.NewReader(whitespaceFirst))
	r.Header.Set("Content-Type", "message/rfc822")
	r.Header.Set("Authorization", "Bearer s3cret-s3cret")
	if code, body := post(t, h, r); code != http.StatusOK || !strings.Contains(body, `"queued"`) {
		t.Errorf("whitespace first line: %d %s", code, body)
	}

	form := func(fields url.Values) *http.Request {
		ts := strconv.FormatInt(clock.Now().Unix(), 10)
		token := "tok-" + fields.Encode()
		m := hmac.New(sha256.New, []byte("s3cret-s3cret"))
		m.Write([]byte(ts + token))
		fields.Set("timestamp", ts)
		fields.Set("token", token)
		fields.Set("signature", hex.EncodeToString(m.Sum(nil)))
		r := httptest.NewRequest(http.MethodPost, "/webhooks/email", strings.NewReader(fields.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
	if code, body := post(t, h, form(url.Values{"body-mime": {whitespaceFirst}})); code != http.StatusOK {
		t.Errorf("Mailgun, whitespace first line: %d %s", code, body)
	}
	if code, body := post(t, h, form(url.Values{"body-mime": {noHeader}, "sender": {"Ann@Example.com"}})); code != http.StatusOK || !strings.Contains(body, `"queued"`) {
		t.Errorf("Mailgun, no header but an envelope sender: %d %s", code, body)
	}
	sg := httptest.NewRequest(http.MethodPost, "/webhooks/email", strings.NewReader(url.Values{"email": {noHeader + "(SendGrid)"}, "envelope": {`{"to":["support@acme.test"],"from":"bob@example.com"}`}}.Encode()))
	sg.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sg.SetBasicAuth("u", "s3cret-s3cret")
	if code, body := post(t, h, sg); code != http.StatusOK || !strings.Contains(body, `"queued"`) {
		t.Errorf("SendGrid, no header but an envelope: %d %s", code, body)
	}
	if code, body := post(t, h, form(url.Values{"body-mime": {noHeader + "(no sender)"}})); code != http.StatusOK || !strings.Contains(body, `"dead_letter"`) {
		t.Errorf("Mailgun, no sender anywhere: %d %s", code, body)
	}
	if len(refused) != 0 {
		t.Errorf("refused %v", refused)
	}
	if len(q.items) != 4 || len(deadLetters(ch).letters) != 1 {
		t.Fatalf("queued %d, dead letters %d; want 4 and 1", len(q.items), len(deadLetters(ch).letters))
	}
	for i, want := range []string{"ann@example.com", "ann@example.com", "ann@example.com", "bob@example.com"} {
		in := q.items[i]
		var meta map[string]any
		json.Unmarshal(in.Metadata, &meta)
		if in.Identities[0].Value != want || meta["malformed"] == nil {
			t.Errorf("item %d: identity %q, metadata %v", i, in.Identities[0].Value, meta)
		}
	}
	if in := q.items[0]; in.Text != "I cannot log in." || string(in.Original) != whitespaceFirst || in.Subject != "locked out" {
		t.Errorf("whitespace first line stored as %q %q, original kept %v", in.Subject, in.Text, string(in.Original) == whitespaceFirst)
	}
}
