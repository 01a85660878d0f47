package email

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/internal/testenv"
)

type memQueue struct {
	mu    sync.Mutex
	items []switchboard.Inbound
}

func (q *memQueue) Enqueue(_ context.Context, ch switchboard.Channel, payload []byte) error {
	var in switchboard.Inbound
	if err := json.Unmarshal(payload, &in); err != nil {
		return err
	}
	q.mu.Lock()
	q.items = append(q.items, in)
	q.mu.Unlock()
	return nil
}
func (q *memQueue) Receive(context.Context, int) ([]switchboard.Delivery, error) { return nil, nil }
func (q *memQueue) Ack(context.Context, []switchboard.Delivery) error            { return nil }
func (q *memQueue) Depth(context.Context) (int64, error)                         { return 0, nil }
func (q *memQueue) Close() error                                                 { return nil }

type memStore struct {
	auto    []switchboard.AutoReply
	bounces []switchboard.Bounce
}

func (s *memStore) RecordAutoReply(_ context.Context, a switchboard.AutoReply) (string, bool, error) {
	s.auto = append(s.auto, a)
	return "conv1", true, nil
}

func (s *memStore) RecordBounce(_ context.Context, b switchboard.Bounce) (string, string, error) {
	s.bounces = append(s.bounces, b)
	return "msg1", "conv1", nil
}

type memDeadLetters struct {
	mu      sync.Mutex
	letters [][]byte
	causes  []string
}

func (d *memDeadLetters) DeadLetter(_ context.Context, ch switchboard.Channel, payload []byte, cause string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ch != switchboard.ChannelEmail {
		return errors.New("dead letter on channel " + string(ch))
	}
	d.letters = append(d.letters, payload)
	d.causes = append(d.causes, cause)
	return nil
}

type memBlobs struct {
	mu   sync.Mutex
	objs map[string][]byte
}

func (b *memBlobs) Put(_ context.Context, key string, r io.Reader, _ int64, _ string) error {
	data, err := io.ReadAll(r)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.objs == nil {
		b.objs = map[string][]byte{}
	}
	b.objs[key] = data
	return err
}
func (b *memBlobs) Get(_ context.Context, key string) (io.ReadCloser, switchboard.BlobInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return io.NopCloser(bytes.NewReader(b.objs[key])), switchboard.BlobInfo{Size: int64(len(b.objs[key]))}, nil
}
func (b *memBlobs) Delete(context.Context, string) error { return nil }
func (b *memBlobs) URL(_ context.Context, key string, _ time.Duration) (string, error) {
	return "https://files.test/" + key, nil
}

var testTokens = &Tokens{Key: []byte("0123456789abcdef0123456789abcdef"), Local: "support", Domain: "acme.test"}

func newTestChannel() (*Channel, *memQueue, *memStore, *memBlobs) {
	q, st, bl := &memQueue{}, &memStore{}, &memBlobs{}
	return New(Config{Queue: q, Store: st, Blobs: bl, Tokens: testTokens, DeadLetters: &memDeadLetters{}, Logger: slog.New(slog.DiscardHandler)}), q, st, bl
}

// deadLetters returns the dead letters a test channel kept.
func deadLetters(ch *Channel) *memDeadLetters { return ch.cfg.DeadLetters.(*memDeadLetters) }

func TestTokens(t *testing.T) {
	addr := testTokens.Address("0186f3a2b4c5d6e7")
	if !strings.HasPrefix(addr, "support+c0186f3a2b4c5d6e7.") || !strings.HasSuffix(addr, "@acme.test") {
		t.Fatalf("address = %q", addr)
	}
	if id, ok := testTokens.Conversation(strings.ToUpper(addr)); !ok || id != "0186f3a2b4c5d6e7" {
		t.Fatalf("upper-cased address: %q %v", id, ok)
	}
	for _, bad := range []string{
		strings.Replace(addr, "0186f3a2b4c5d6e7", "0186f3a2b4c5d6e8", 1), // another conversation, same MAC
		strings.Replace(addr, "@acme.test", "@evil.test", 1),
		"support@acme.test",
		"sales+c0186f3a2b4c5d6e7.aaaa@acme.test",
		"support+c0186f3a2b4c5d6e7@acme.test",
	} {
		if id, ok := testTokens.Conversation(bad); ok {
			t.Errorf("%q accepted as %q", bad, id)
		}
	}
	other := &Tokens{Key: []byte("another key another key another k"), Local: "support", Domain: "acme.test"}
	if _, ok := other.Conversation(addr); ok {
		t.Error("a token made with another key was accepted")
	}
	if id, ok := testTokens.Find("someone@else.test", addr); !ok || id != "0186f3a2b4c5d6e7" {
		t.Errorf("Find = %q %v", id, ok)
	}
}

const plainMail = "From: Ann Customer <Ann@Example.COM>\r\n" +
	"To: support@acme.test\r\n" +
	"Cc: Bob <bob@example.com>\r\n" +
	"Subject: =?UTF-8?Q?Caf=C3=A9_order?=\r\n" +
	"Message-ID: <abc123@mail.example.com>\r\n" +
	"In-Reply-To: <sb.m1@acme.test>\r\n" +
	"References: <first@example.com> <sb.m1@acme.test>\r\n" +
	"Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"Where is my order?\r\n" +
	"\r\n" +
	"On Wed, Nov 25, 2026 at 9:00 AM Acme Support <support@acme.test> wrote:\r\n" +
	"> Your order has shipped.\r\n"

func TestAcceptQueuesCustomerMail(t *testing.T) {
	ch, q, st, _ := newTestChannel()
	out, err := ch.Accept(context.Background(), []byte(plainMail), "http")
	if err != nil || out != Queued {
		t.Fatalf("Accept = %q, %v", out, err)
	}
	if len(q.items) != 1 || len(st.auto)+len(st.bounces) != 0 {
		t.Fatalf("queued %d, robots %d/%d", len(q.items), len(st.auto), len(st.bounces))
	}
	in := q.items[0]
	if in.Channel != switchboard.ChannelEmail || in.ProviderID != "abc123@mail.example.com" {
		t.Errorf("channel/provider id = %s/%s", in.Channel, in.ProviderID)
	}
	if len(in.Identities) != 1 || in.Identities[0] != (switchboard.IdentityRef{Kind: switchboard.IdentityEmail, Value: "ann@example.com"}) {
		t.Errorf("identities = %+v", in.Identities)
	}
	if in.Text != "Where is my order?" {
		t.Errorf("text = %q, want the new text alone", in.Text)
	}
	if in.Subject != "Café order" || in.SenderName != "Ann Customer" {
		t.Errorf("subject/name = %q/%q", in.Subject, in.SenderName)
	}
	if want := []string{"sb.m1@acme.test", "first@example.com"}; strings.Join(in.InReplyTo, " ") != strings.Join(want, " ") {
		t.Errorf("in reply to = %v, want %v", in.InReplyTo, want)
	}
	if in.ConversationHint != "" {
		t.Errorf("hint = %q without a token address", in.ConversationHint)
	}
	if string(in.Original) != plainMail {
		t.Error("the original is not kept byte for byte")
	}
	var meta map[string]any
	json.Unmarshal(in.Metadata, &meta)
	if meta["message_id"] != "abc123@mail.example.com" || meta["cc"].([]any)[0] != "bob@example.com" {
		t.Errorf("metadata = %v", meta)
	}
}

func TestAcceptFindsTokenAndStoresAttachments(t *testing.T) {
	ch, q, _, blobs := newTestChannel()
	token := testTokens.Address("conv42")
	raw := "From: ann@example.com\r\nTo: " + token + "\r\nSubject: photo\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b1\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n" +
		"--b1\r\nContent-Type: image/png; name=\"../../etc/pic.png\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"../../etc/pic.png\"\r\n\r\n" +
		"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==\r\n--b1--\r\n"
	if out, err := ch.Accept(context.Background(), []byte(raw), "imap:box"); err != nil || out != Queued {
		t.Fatalf("Accept = %q, %v", out, err)
	}
	in := q.items[0]
	if in.ConversationHint != "conv42" {
		t.Errorf("hint = %q, want conv42", in.ConversationHint)
	}
	if !strings.HasPrefix(in.ProviderID, "sha256:") {
		t.Errorf("a mail without Message-ID has provider id %q", in.ProviderID)
	}
	if len(in.Attachments) != 1 {
		t.Fatalf("attachments = %+v", in.Attachments)
	}
	a := in.Attachments[0]
	if a.ContentType != "image/png" || strings.Contains(a.Name, "/") || a.Size != 70 {
		t.Errorf("attachment = %+v", a)
	}
	if got := blobs.objs[a.Key]; len(got) != 70 || !bytes.HasPrefix(got, []byte("\x89PNG")) {
		t.Errorf("stored %d bytes under %s", len(got), a.Key)
	}
	// Accepting the same mail again overwrites the same object.
	ch.Accept(context.Background(), []byte(raw), "http")
	if len(blobs.objs) != 1 || q.items[1].Attachments[0].Key != a.Key {
		t.Errorf("a second accept left %d objects", len(blobs.objs))
	}
}

func TestAcceptRobots(t *testing.T) {
	ch, q, st, _ := newTestChannel()
	ooo := "From: Ann <ann@example.com>\r\nTo: " + testTokens.Address("conv7") + "\r\nSubject: Out of office\r\n" +
		"Message-ID: <ooo1@example.com>\r\nIn-Reply-To: <sb.m9@acme.test>\r\nAuto-Submitted: auto-replied\r\n\r\nI am away until Monday.\r\n"
	if out, err := ch.Accept(context.Background(), []byte(ooo), "http"); err != nil || out != AutoReply {
		t.Fatalf("out-of-office: %q, %v", out, err)
	}
	if len(st.auto) != 1 || st.auto[0].ConversationHint != "conv7" || st.auto[0].InReplyTo[0] != "sb.m9@acme.test" || st.auto[0].From.Value != "ann@example.com" {
		t.Errorf("auto-reply recorded as %+v", st.auto)
	}
	dsn := "From: MAILER-DAEMON@mx.example.com (Mail Delivery System)\r\nTo: support@acme.test\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
		"Message-ID: <dsn1@mx.example.com>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=r\r\n\r\n" +
		"--r\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message could not be delivered.\r\n" +
		"--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n" +
		"Final-Recipient: rfc822; nobody@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown\r\n\r\n" +
		"--r\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@acme.test\r\nTo: nobody@example.com\r\nMessage-ID: <sb.m2@acme.test>\r\nSubject: Re: hello\r\n\r\n--r--\r\n"
	if out, err := ch.Accept(context.Background(), []byte(dsn), "http"); err != nil || out != Bounced {
		t.Fatalf("bounce: %q, %v", out, err)
	}
	if len(st.bounces) != 1 {
		t.Fatalf("bounces = %+v", st.bounces)
	}
	b := st.bounces[0]
	if b.Original != "sb.m2@acme.test" || !b.Permanent || !strings.HasPrefix(b.Diagnostic, "5.1.1 nobody@example.com") || !strings.Contains(b.Diagnostic, "User unknown") {
		t.Errorf("bounce recorded as %+v", b)
	}
	if len(q.items) != 0 {
		t.Errorf("robots became customer messages: %+v", q.items)
	}
}

// TestAcceptRefusesOnlyEmptyMail: an empty mail is the one refused; one
// with no header or no usable sender anywhere is kept as a dead letter,
// byte for byte, and reported durable.
func TestAcceptRefusesOnlyEmptyMail(t *testing.T) {
	ch, q, _, _ := newTestChannel()
	if _, err := ch.Accept(context.Background(), nil, "http"); switchboard.ErrorCode(err) != switchboard.EINVALID {
		t.Errorf("empty input: err = %v, want EINVALID", err)
	}
	for name, raw := range map[string]string{
		"no header":  "just some text without any header\r\n",
		"bad sender": "From: not an address\r\nSubject: x\r\n\r\nhello\r\n",
		"no from":    "Subject: x\r\nTo: support@acme.test\r\n\r\nhello\r\n",
	} {
		before := len(deadLetters(ch).letters)
		out, err := ch.Accept(context.Background(), []byte(raw), "http")
		if err != nil || out != DeadLetter {
			t.Errorf("%s: Accept = %q, %v; want a dead letter", name, out, err)
			continue
		}
		d := deadLetters(ch)
		if len(d.letters) != before+1 || string(d.letters[before]) != raw || !strings.Contains(d.causes[before], "sender") {
			t.Errorf("%s: dead letters %d, cause %q", name, len(d.letters), d.causes)
		}
	}
	if len(q.items) != 0 {
		t.Errorf("queued %d mails without a sender", len(q.items))
	}

	// Without a place for dead letters such a mail is an error, so that
	// the IMAP delivery keeps it its own way.
	bare := New(Config{Queue: q, Store: &memStore{}, Logger: slog.New(slog.DiscardHandler)})
	if _, err := bare.Accept(context.Background(), []byte("From: nobody\r\n\r\nhi"), "imap:x"); switchboard.ErrorCode(err) != switchboard.EINVALID {
		t.Errorf("no dead letters configured: err = %v, want EINVALID", err)
	}
}

// TestAcceptSenderFallbacks: a mail whose From has no usable address is
// filed under Reply-To, else the Return-Path, else the envelope sender the
// service reported, and says which.
func TestAcceptSenderFallbacks(t *testing.T) {
	tests := []struct {
		name, raw, envelope string
		want, source        string
	}{
		{"reply-to", "From: Ann (no address)\r\nReply-To: Ann <Ann@Example.com>\r\nReturn-Path: <bounce-1@esp.example>\r\nSubject: hi\r\n\r\nhello", "", "ann@example.com", "reply_to"},
		{"return-path", "From: Ann\r\nReturn-Path: <ann@example.com>\r\nSubject: hi\r\n\r\nhello", "env@example.com", "ann@example.com", "return_path"},
		{"envelope", "\r\nSubject: hi\r\n\r\nhello", "Env@Example.com", "env@example.com", "envelope"},
		{"from wins", "From: Bob <bob@example.com>\r\nReply-To: ann@example.com\r\n\r\nhello", "env@example.com", "bob@example.com", ""},
	}
	for _, tt := range tests {
		ch, q, _, _ := newTestChannel()
		out, err := ch.AcceptFrom(context.Background(), []byte(tt.raw), "http", tt.envelope)
		if err != nil || out != Queued || len(q.items) != 1 {
			t.Errorf("%s: Accept = %q, %v", tt.name, out, err)
			continue
		}
		in := q.items[0]
		var meta map[string]any
		json.Unmarshal(in.Metadata, &meta)
		src, _ := meta["sender_source"].(string)
		if in.Identities[0].Value != tt.want || src != tt.source {
			t.Errorf("%s: identity %q, sender_source %v; want %q, %q", tt.name, in.Identities[0].Value, meta["sender_source"], tt.want, tt.source)
		}
		if in.Text != "hello" || string(in.Original) != tt.raw {
			t.Errorf("%s: text %q, original kept: %v", tt.name, in.Text, string(in.Original) == tt.raw)
		}
	}
}

// TestAcceptMalformedCorpus: every malformed mail of the parser's corpus
// is queued as a customer message, marked malformed with the parser's
// reason, its text recovered and its original kept byte for byte.
func TestAcceptMalformedCorpus(t *testing.T) {
	tests := []struct {
		file, malformed, text string
	}{
		{"34-malformed-whitespace-first-line.eml", "whitespace before the first header", "Olá, I can't log in since this morning"},
		{"35-malformed-header-without-colon.eml", "header line without a colon", "When will the refund arrive?"},
		{"36-bare-lf-multipart.eml", "", "Thursday morning works"},
		{"37-malformed-nul-bytes.eml", "control characters in the header; control characters in the text", "Could you send me a copy of invoice 5512?"},
		{"38-malformed-8bit-headers.eml", "invalid header field name", "wann kommt meine Rückerstattung?"},
		{"39-random-body.eml", "control characters in the text", ""},
		{"40-headers-only.eml", "", ""},
	}
	for _, tt := range tests {
		raw, err := os.ReadFile(filepath.Join("parse", "testdata", "corpus", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		ch, q, _, _ := newTestChannel()
		out, err := ch.Accept(context.Background(), raw, "http")
		if err != nil || out != Queued || len(q.items) != 1 {
			t.Errorf("%s: Accept = %q, %v", tt.file, out, err)
			continue
		}
		in := q.items[0]
		var meta map[string]any
		json.Unmarshal(in.Metadata, &meta)
		if got, _ := meta["malformed"].(string); got != tt.malformed {
			t.Errorf("%s: malformed = %q, want %q", tt.file, got, tt.malformed)
		}
		if !strings.Contains(in.Text, tt.text) || (tt.file == "39-random-body.eml" && len(in.Text) < 2048) {
			t.Errorf("%s: text %.80q lacks %q", tt.file, in.Text, tt.text)
		}
		if !bytes.Equal(in.Original, raw) || in.Identities[0].Kind != switchboard.IdentityEmail {
			t.Errorf("%s: original kept %v, identity %+v", tt.file, bytes.Equal(in.Original, raw), in.Identities)
		}
	}
}

func post(t *testing.T, h http.Handler, req *http.Request) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestWebhookAuthAndBodies(t *testing.T) {
	clock := testenv.NewClock(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	ch, q, _, _ := newTestChannel()
	h := ch.Handler(HandlerConfig{Secret: "s3cret-s3cret", Clock: clock})

	raw := func(auth string) *http.Request {
		r := httptest.NewRequest("POST", "/webhooks/email", strings.NewReader(plainMail))
		r.Header.Set("Content-Type", "message/rfc822")
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		return r
	}
	if code, _ := post(t, h, raw("")); code != http.StatusUnauthorized {
		t.Errorf("no credentials: %d", code)
	}
	if code, _ := post(t, h, raw("Bearer wrong")); code != http.StatusUnauthorized {
		t.Errorf("wrong bearer: %d", code)
	}
	if code, body := post(t, h, raw("Bearer s3cret-s3cret")); code != http.StatusOK || !strings.Contains(body, `"queued"`) {
		t.Errorf("bearer: %d %s", code, body)
	}
	basic := raw("")
	basic.SetBasicAuth("sendgrid", "s3cret-s3cret")
	if code, _ := post(t, h, basic); code != http.StatusOK {
		t.Errorf("basic: %d", code)
	}

	// SendGrid's raw mode: multipart with the message in "email".
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("email", plainMail)
	mw.WriteField("to", "support@acme.test")
	mw.Close()
	sg := httptest.NewRequest("POST", "/webhooks/email", &buf)
	sg.Header.Set("Content-Type", mw.FormDataContentType())
	sg.SetBasicAuth("u", "s3cret-s3cret")
	if code, body := post(t, h, sg); code != http.StatusOK {
		t.Errorf("sendgrid raw: %d %s", code, body)
	}

	// Mailgun: body-mime signed with timestamp+token.
	mailgun := func(ts int64, token, key, body string) *http.Request {
		m := hmac.New(sha256.New, []byte(key))
		m.Write([]byte(strconv.FormatInt(ts, 10) + token))
		form := url.Values{"timestamp": {strconv.FormatInt(ts, 10)}, "token": {token}, "signature": {hex.EncodeToString(m.Sum(nil))}, "body-mime": {body}}
		r := httptest.NewRequest("POST", "/webhooks/email", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
	now := clock.Now().Unix()
	if code, body := post(t, h, mailgun(now, "tok1", "s3cret-s3cret", plainMail)); code != http.StatusOK {
		t.Errorf("mailgun: %d %s", code, body)
	}
	if code, _ := post(t, h, mailgun(now, "tok1", "s3cret-s3cret", plainMail)); code != http.StatusUnauthorized {
		t.Errorf("mailgun replayed token: %d", code)
	}
	if code, _ := post(t, h, mailgun(now, "tok2", "other-key", plainMail)); code != http.StatusUnauthorized {
		t.Errorf("mailgun wrong key: %d", code)
	}
	if code, _ := post(t, h, mailgun(now-600, "tok3", "s3cret-s3cret", plainMail)); code != http.StatusUnauthorized {
		t.Errorf("mailgun stale: %d", code)
	}
	if code, body := post(t, h, mailgun(now, "tok4", "s3cret-s3cret", "garbage without headers")); code != http.StatusOK || !strings.Contains(body, `"dead_letter"`) {
		t.Errorf("mailgun mail without a header: %d %s, want 200 once kept as a dead letter", code, body)
	}
	if code, _ := post(t, h, mailgun(now, "tok5", "s3cret-s3cret", "")); code != http.StatusNotAcceptable {
		t.Errorf("mailgun without body-mime: %d", code)
	}
	// A 12 MB raw mail in a multipart form field is accepted.
	bigMail := strings.Replace(plainMail, "Where is my order?", "Where is my order?"+strings.Repeat(" padding", 1500000), 1)
	var bbuf bytes.Buffer
	bmw := multipart.NewWriter(&bbuf)
	bmw.WriteField("email", bigMail)
	bmw.Close()
	bigReq := httptest.NewRequest("POST", "/webhooks/email", &bbuf)
	bigReq.Header.Set("Content-Type", bmw.FormDataContentType())
	bigReq.SetBasicAuth("u", "s3cret-s3cret")
	if code, body := post(t, h, bigReq); code != http.StatusOK {
		t.Errorf("12 MB raw mail in a form: %d %s", code, body)
	}
	if len(q.items) != 5 {
		t.Errorf("queued %d, want 5 (bearer, basic, sendgrid, mailgun, big)", len(q.items))
	}

	big := ch.Handler(HandlerConfig{Secret: "s3cret-s3cret", MaxBodyBytes: 100})
	if code, _ := post(t, big, raw("Bearer s3cret-s3cret")); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized: %d", code)
	}
	closed := ch.Handler(HandlerConfig{})
	if code, _ := post(t, closed, raw("Bearer ")); code != http.StatusForbidden {
		t.Errorf("no secret configured: %d", code)
	}
}

func TestLargeOriginalGoesToTheObjectStore(t *testing.T) {
	ch, q, _, blobs := newTestChannel()
	big := strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\r\n", 10000) // ~380 KB of base64
	raw := "From: ann@example.com\r\nSubject: big\r\nMessage-ID: <big@x>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nsee file\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=a.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n" + big + "--b--\r\n"
	if _, err := ch.Accept(context.Background(), []byte(raw), "http"); err != nil {
		t.Fatal(err)
	}
	in := q.items[0]
	var meta map[string]any
	json.Unmarshal(in.Metadata, &meta)
	key, _ := meta[switchboard.MetaOriginalKey].(string)
	if in.Original != nil || key == "" || string(blobs.objs[key]) != raw {
		t.Errorf("original inline %d bytes, key %q holding %d bytes", len(in.Original), key, len(blobs.objs[key]))
	}
	small, _ := newTestChannelAccept(t, plainMail)
	if string(small.Original) != plainMail || strings.Contains(string(small.Metadata), switchboard.MetaOriginalKey) {
		t.Error("a small mail's original is not kept inline")
	}
}

func newTestChannelAccept(t *testing.T, raw string) (switchboard.Inbound, error) {
	t.Helper()
	ch, q, _, _ := newTestChannel()
	_, err := ch.Accept(context.Background(), []byte(raw), "http")
	if err != nil || len(q.items) != 1 {
		t.Fatalf("accept: %v", err)
	}
	return q.items[0], nil
}

func TestAcceptHostileIdentifiers(t *testing.T) {
	ch, q, st, blobs := newTestChannel()
	long := strings.Repeat("x", 4000) + "@example.com"
	ooo := "From: ann@example.com\r\nSubject: away\r\nMessage-ID: <" + long + ">\r\nIn-Reply-To: <" + long + "> <sb.m1@acme.test>\r\nAuto-Submitted: auto-replied\r\n\r\naway\r\n"
	if _, err := ch.Accept(context.Background(), []byte(ooo), "http"); err != nil {
		t.Fatal(err)
	}
	if a := st.auto[0]; !strings.HasPrefix(a.MessageID, "sha256:") || len(a.InReplyTo) != 1 || a.InReplyTo[0] != "sb.m1@acme.test" {
		t.Errorf("an unindexable Message-ID was kept: %.40q %v", a.MessageID, a.InReplyTo)
	}

	// Two mails claiming one Message-ID: the second must not replace the
	// first one's files.
	mail := func(content, name string) string {
		return "From: ann@example.com\r\nSubject: invoice\r\nMessage-ID: <same@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
			"--b\r\nContent-Type: text/plain\r\n\r\nsee file\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"" + name + "\"\r\n\r\n" + content + "\r\n--b--\r\n"
	}
	ch.Accept(context.Background(), []byte(mail("%PDF-1.4 GENUINE", "invoice.pdf")), "http")
	ch.Accept(context.Background(), []byte(mail("%PDF-1.4 FORGED", "invoice.pdf")), "http")
	k1, k2 := q.items[0].Attachments[0].Key, q.items[1].Attachments[0].Key
	if k1 == k2 || !strings.Contains(string(blobs.objs[k1]), "GENUINE") {
		t.Errorf("keys %s and %s; first file now %q", k1, k2, blobs.objs[k1])
	}
	// A very long file name keeps its name but not in the key.
	name := strings.Repeat("n", 250) + ".pdf"
	if _, err := ch.Accept(context.Background(), []byte(mail("%PDF-1.4 x", name)), "http"); err != nil {
		t.Fatalf("a long file name lost the mail: %v", err)
	}
	a := q.items[2].Attachments[0]
	if !strings.HasSuffix(a.Key, "/0.pdf") || len(a.Name) < 200 {
		t.Errorf("attachment = key %q, name of %d bytes", a.Key, len(a.Name))
	}
}

// A report where a Cc failed for good and the customer is only delayed
// names only the Cc as failed, so the reply to the customer is not failed.
func TestMixedBounceNamesOnlyPermanentFailures(t *testing.T) {
	ch, _, st, _ := newTestChannel()
	dsn := "From: MAILER-DAEMON@mx.example.com\r\nTo: support@acme.test\r\nSubject: Delivery Status Notification\r\nMessage-ID: <dsn9@mx.example.com>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=r\r\n\r\n" +
		"--r\r\nContent-Type: text/plain\r\n\r\nreport\r\n" +
		"--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n" +
		"Final-Recipient: rfc822; boss@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n" +
		"Final-Recipient: rfc822; ann@example.com\r\nAction: delayed\r\nStatus: 4.4.1\r\n\r\n" +
		"--r\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <sb.m5@acme.test>\r\n\r\n--r--\r\n"
	if out, err := ch.Accept(context.Background(), []byte(dsn), "http"); err != nil || out != Bounced {
		t.Fatalf("Accept = %q, %v", out, err)
	}
	b := st.bounces[0]
	if !b.Permanent || len(b.Recipients) != 1 || b.Recipients[0] != "boss@example.com" {
		t.Errorf("bounce = %+v, want only boss@ as failed for good", b)
	}
}

// The sender's Date orders a backlog, within a day; an older one is not
// believed (the store then uses the time of arrival).
func TestAcceptUsesRecentDate(t *testing.T) {
	for _, c := range []struct {
		date time.Time
		want bool
	}{{time.Now().Add(-3 * time.Hour), true}, {time.Now().Add(-72 * time.Hour), false}} {
		raw := strings.Replace(plainMail, "Date: Thu, 26 Nov 2026 10:00:00 +0000", "Date: "+c.date.Format(time.RFC1123Z), 1)
		in, _ := newTestChannelAccept(t, raw)
		if got := !in.ReceivedAt.IsZero(); got != c.want || (c.want && !in.ReceivedAt.Equal(c.date.Truncate(time.Second).UTC())) {
			t.Errorf("Date %v: received at %v", c.date, in.ReceivedAt)
		}
	}
}
