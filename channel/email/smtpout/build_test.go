package smtpout_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/email/smtpout"
)

var testDate = time.Date(2026, 3, 14, 15, 9, 26, 0, time.FixedZone("CET", 3600))

// pdfBytes has every byte value, so a base64 or line-ending slip shows.
var pdfBytes = func() []byte {
	b := []byte("%PDF-1.4\r\n")
	for i := range 600 {
		b = append(b, byte(i))
	}
	return b
}()

var pngBytes = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR fake image")

const longName = "Счёт-фактура № 1042 за март 2026 года (копия для бухгалтерии).pdf"

func fullMail() smtpout.Mail {
	return smtpout.Mail{
		From:       smtpout.Address{Name: "Zoë from Support", Addr: "support@shop.example"},
		To:         []smtpout.Address{{Name: "José Núñez", Addr: "jose@customer.example"}},
		Cc:         []smtpout.Address{{Name: "Ops, Team", Addr: "ops@customer.example"}},
		Bcc:        []smtpout.Address{{Name: "Secret Auditor", Addr: "audit@shop.example"}},
		ReplyTo:    []smtpout.Address{{Addr: "support+c1.abc@shop.example"}},
		Subject:    "Re: Ваш заказ #1042 — доставка задерживается",
		MessageID:  "m.msg1.x7f3@mail.shop.example",
		InReplyTo:  "CAF=abc123@mail.customer.example",
		References: []string{"first@mail.customer.example", "CAF=abc123@mail.customer.example"},
		Date:       testDate,
		Text:       "Hola José,\r\n\r\nYour order ships tomorrow. A line with = and trailing space \r\n" + strings.Repeat("long ", 40) + "\r\n-- \r\nZoë",
		HTML:       `<p>Hola José,</p><p>Your order ships tomorrow.</p><img src="cid:logo.1@shop.example">`,
		Attachments: []smtpout.Attachment{
			{Name: longName, ContentType: "application/pdf", Data: pdfBytes},
			{Name: "logo.png", ContentType: "image/png", Data: pngBytes, ContentID: "logo.1@shop.example"},
		},
		Headers: map[string]string{"X-Switchboard-Conversation": "c1", "X-Note": "naïve"},
	}
}

// node is a parsed MIME entity.
type node struct {
	mediaType string
	params    map[string]string
	header    message.Header
	body      []byte
	kids      []*node
}

func parseTree(t *testing.T, e *message.Entity) *node {
	t.Helper()
	mt, params, err := e.Header.ContentType()
	if err != nil {
		t.Fatalf("content type: %v", err)
	}
	n := &node{mediaType: mt, params: params, header: e.Header}
	if mr := e.MultipartReader(); mr != nil {
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("next part: %v", err)
			}
			n.kids = append(n.kids, parseTree(t, p))
		}
		return n
	}
	if n.body, err = io.ReadAll(e.Body); err != nil {
		t.Fatalf("read body of %s: %v", mt, err)
	}
	return n
}

func mustParse(t *testing.T, raw []byte) (*node, gomail.Header) {
	t.Helper()
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("message.Read: %v", err)
	}
	return parseTree(t, e), gomail.Header{Header: e.Header}
}

func shape(n *node) string {
	if len(n.kids) == 0 {
		return n.mediaType
	}
	s := make([]string, len(n.kids))
	for i, k := range n.kids {
		s[i] = shape(k)
	}
	return n.mediaType + "[" + strings.Join(s, " ") + "]"
}

func mustBuild(t *testing.T, m smtpout.Mail) []byte {
	t.Helper()
	raw, err := smtpout.Build(m)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return raw
}

func checkWire(t *testing.T, raw []byte) {
	t.Helper()
	for i, line := range bytes.Split(raw, []byte("\r\n")) {
		if bytes.ContainsAny(line, "\r\n") {
			t.Fatalf("line %d has a bare CR or LF: %q", i+1, line)
		}
		if len(line) > 998 {
			t.Fatalf("line %d is %d bytes long", i+1, len(line))
		}
		for _, c := range line {
			if c >= 0x80 {
				t.Fatalf("line %d has 8-bit data: %q", i+1, line)
			}
		}
	}
}

func TestBuildFull(t *testing.T) {
	m := fullMail()
	raw := mustBuild(t, m)
	checkWire(t, raw)
	tree, h := mustParse(t, raw)

	if got, want := shape(tree), "multipart/mixed[multipart/alternative[text/plain multipart/related[text/html image/png]] application/pdf]"; got != want {
		t.Fatalf("structure\n got %s\nwant %s", got, want)
	}
	if got := tree.kids[0].kids[1].params["type"]; got != "text/html" {
		t.Errorf("related type = %q, want text/html", got)
	}

	// Headers, decoded.
	if s, err := h.Subject(); err != nil || s != m.Subject {
		t.Errorf("Subject = %q, %v; want %q", s, err, m.Subject)
	}
	if !bytes.Contains(raw, []byte("Subject: =?utf-8?q?")) {
		t.Errorf("non-ASCII subject is not an encoded word")
	}
	for _, c := range []struct {
		key  string
		want []smtpout.Address
	}{{"From", []smtpout.Address{m.From}}, {"To", m.To}, {"Cc", m.Cc}, {"Reply-To", m.ReplyTo}} {
		got, err := h.AddressList(c.key)
		if err != nil {
			t.Fatalf("%s: %v", c.key, err)
		}
		if len(got) != len(c.want) {
			t.Fatalf("%s = %v, want %v", c.key, got, c.want)
		}
		for i := range got {
			if got[i].Name != c.want[i].Name || got[i].Address != c.want[i].Addr {
				t.Errorf("%s[%d] = %q <%s>, want %q <%s>", c.key, i, got[i].Name, got[i].Address, c.want[i].Name, c.want[i].Addr)
			}
		}
	}
	if h.Has("Bcc") || bytes.Contains(bytes.ToLower(raw), []byte("audit@")) || bytes.Contains(raw, []byte("Secret Auditor")) {
		t.Errorf("the Bcc recipient shows in the message")
	}
	if id, err := h.MessageID(); err != nil || id != m.MessageID {
		t.Errorf("Message-ID = %q, %v", id, err)
	}
	if ids, err := h.MsgIDList("In-Reply-To"); err != nil || len(ids) != 1 || ids[0] != m.InReplyTo {
		t.Errorf("In-Reply-To = %q, %v", ids, err)
	}
	if ids, err := h.MsgIDList("References"); err != nil || strings.Join(ids, " ") != strings.Join(m.References, " ") {
		t.Errorf("References = %q, %v", ids, err)
	}
	if d, err := h.Date(); err != nil || !d.Equal(testDate) {
		t.Errorf("Date = %v, %v; want %v", d, err, testDate)
	}
	if !bytes.Contains(raw, []byte("\r\nDate: Sat, 14 Mar 2026 15:09:26 +0100\r\n")) && !bytes.HasPrefix(raw, []byte("Date: Sat, 14 Mar 2026 15:09:26 +0100\r\n")) {
		t.Errorf("Date is not in RFC 5322 form with the sender's zone")
	}
	if v := h.Get("MIME-Version"); v != "1.0" {
		t.Errorf("MIME-Version = %q", v)
	}
	if v := h.Get("X-Switchboard-Conversation"); v != "c1" {
		t.Errorf("X-Switchboard-Conversation = %q", v)
	}
	if v, err := h.Text("X-Note"); err != nil || v != "naïve" {
		t.Errorf("X-Note = %q, %v", v, err)
	}
	for _, k := range []string{"Auto-Submitted", "X-Auto-Response-Suppress", "Precedence"} {
		if h.Has(k) {
			t.Errorf("%s set on a mail that is not automatic", k)
		}
	}

	// Bodies decode to exactly what went in.
	text := tree.kids[0].kids[0]
	if got := string(text.body); got != m.Text {
		t.Errorf("text body\n got %q\nwant %q", got, m.Text)
	}
	if cs := text.params["charset"]; cs != "utf-8" {
		t.Errorf("text charset %q", cs)
	}
	if te := text.header.Get("Content-Transfer-Encoding"); te != "quoted-printable" {
		t.Errorf("text transfer encoding %q", te)
	}
	html := tree.kids[0].kids[1].kids[0]
	if got := string(html.body); got != m.HTML {
		t.Errorf("html body %q", got)
	}
	logo := tree.kids[0].kids[1].kids[1]
	if !bytes.Equal(logo.body, pngBytes) {
		t.Errorf("inline image bytes differ")
	}
	if cid := logo.header.Get("Content-ID"); cid != "<logo.1@shop.example>" {
		t.Errorf("Content-ID = %q", cid)
	}
	if d, p, _ := logo.header.ContentDisposition(); d != "inline" || p["filename"] != "logo.png" {
		t.Errorf("inline disposition %q %v", d, p)
	}
	pdf := tree.kids[1]
	if !bytes.Equal(pdf.body, pdfBytes) {
		t.Errorf("attachment bytes differ: %d vs %d bytes", len(pdf.body), len(pdfBytes))
	}
	if te := pdf.header.Get("Content-Transfer-Encoding"); te != "base64" {
		t.Errorf("attachment transfer encoding %q", te)
	}
	ah := gomail.AttachmentHeader{Header: pdf.header}
	if name, err := ah.Filename(); err != nil || name != longName {
		t.Errorf("attachment filename = %q, %v; want %q", name, err, longName)
	}
	if pdf.params["name"] != longName {
		t.Errorf("Content-Type name = %q", pdf.params["name"])
	}
	if !bytes.Contains(raw, []byte("filename*0*=utf-8''%D0%A1")) {
		t.Errorf("long non-ASCII file name is not in RFC 2231 sections")
	}
}

func TestBuildShapes(t *testing.T) {
	base := smtpout.Mail{
		From:      smtpout.Address{Addr: "a@shop.example"},
		To:        []smtpout.Address{{Addr: "b@customer.example"}},
		MessageID: "id1@shop.example",
		Date:      testDate,
		Text:      "hi",
	}
	att := smtpout.Attachment{Name: "a.txt", ContentType: "text/plain", Data: []byte("file\n")}
	inl := smtpout.Attachment{Name: "i.png", ContentType: "image/png", Data: pngBytes, ContentID: "i1"}
	for _, c := range []struct {
		name  string
		edit  func(*smtpout.Mail)
		shape string
	}{
		{"text", func(m *smtpout.Mail) {}, "text/plain"},
		{"html", func(m *smtpout.Mail) { m.HTML = "<b>hi</b>" }, "multipart/alternative[text/plain text/html]"},
		{"text+file", func(m *smtpout.Mail) { m.Attachments = []smtpout.Attachment{att} }, "multipart/mixed[text/plain text/plain]"},
		{"html+file", func(m *smtpout.Mail) { m.HTML = "x"; m.Attachments = []smtpout.Attachment{att} }, "multipart/mixed[multipart/alternative[text/plain text/html] text/plain]"},
		{"html+inline", func(m *smtpout.Mail) { m.HTML = "x"; m.Attachments = []smtpout.Attachment{inl} }, "multipart/alternative[text/plain multipart/related[text/html image/png]]"},
		// Without HTML nothing refers to the inline part: it travels as a
		// file, still marked inline.
		{"text+inline", func(m *smtpout.Mail) { m.Attachments = []smtpout.Attachment{inl} }, "multipart/mixed[text/plain image/png]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := base
			c.edit(&m)
			raw := mustBuild(t, m)
			checkWire(t, raw)
			tree, _ := mustParse(t, raw)
			if got := shape(tree); got != c.shape {
				t.Fatalf("structure %s, want %s", got, c.shape)
			}
			if c.name == "text" && string(tree.body) != "hi" {
				t.Fatalf("body %q", tree.body)
			}
			if c.name == "text+file" && string(tree.kids[1].body) != "file\n" {
				t.Fatalf("text attachment %q, want exact bytes", tree.kids[1].body)
			}
		})
	}
}

func TestBuildAuto(t *testing.T) {
	m := fullMail()
	m.Auto = true
	_, h := mustParse(t, mustBuild(t, m))
	for k, want := range map[string]string{
		"Auto-Submitted":           "auto-replied",
		"X-Auto-Response-Suppress": "All",
		"Precedence":               "auto_reply",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func TestBuildDefaultDate(t *testing.T) {
	m := fullMail()
	m.Date = time.Time{}
	before := time.Now().Add(-time.Second)
	_, h := mustParse(t, mustBuild(t, m))
	d, err := h.Date()
	if err != nil || d.Before(before) || d.After(time.Now().Add(time.Second)) {
		t.Fatalf("Date = %v, %v; want about now", d, err)
	}
}

func TestBuildRejects(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*smtpout.Mail)
	}{
		{"CRLF in subject", func(m *smtpout.Mail) { m.Subject = "hi\r\nBcc: victim@example.com" }},
		{"LF in subject", func(m *smtpout.Mail) { m.Subject = "hi\nX-Evil: 1" }},
		{"CR in subject", func(m *smtpout.Mail) { m.Subject = "hi\rX-Evil: 1" }},
		{"NUL in subject", func(m *smtpout.Mail) { m.Subject = "hi\x00" }},
		{"LF in from name", func(m *smtpout.Mail) { m.From.Name = "Zoë\nBcc: x@example.com" }},
		{"LF in to name", func(m *smtpout.Mail) { m.To[0].Name = "A\r\nX: y" }},
		{"LF in to address", func(m *smtpout.Mail) { m.To[0].Addr = "jose@customer.example\r\nBcc: x@example.com" }},
		{"LF in bcc address", func(m *smtpout.Mail) { m.Bcc[0].Addr = "a@b.example\n" }},
		{"LF in reply-to", func(m *smtpout.Mail) { m.ReplyTo[0].Addr = "a@b.example\nX: y" }},
		{"LF in extra header value", func(m *smtpout.Mail) { m.Headers["X-A"] = "1\r\nBcc: x@example.com" }},
		{"colon in extra header name", func(m *smtpout.Mail) { m.Headers["X-A: 1\r\nBcc"] = "x" }},
		{"space in extra header name", func(m *smtpout.Mail) { m.Headers["X A"] = "x" }},
		{"extra header overrides Bcc", func(m *smtpout.Mail) { m.Headers["bcc"] = "x@example.com" }},
		{"extra header overrides From", func(m *smtpout.Mail) { m.Headers["From"] = "x@example.com" }},
		{"extra header overrides Content-Type", func(m *smtpout.Mail) { m.Headers["Content-Type"] = "text/html" }},
		{"LF in message id", func(m *smtpout.Mail) { m.MessageID = "a@b\r\nX: y" }},
		{"brackets in message id", func(m *smtpout.Mail) { m.MessageID = "<a@b>" }},
		{"no @ in message id", func(m *smtpout.Mail) { m.MessageID = "ab" }},
		{"missing message id", func(m *smtpout.Mail) { m.MessageID = "" }},
		{"LF in in-reply-to", func(m *smtpout.Mail) { m.InReplyTo = "a@b>\r\nX: <y@z" }},
		{"space in references", func(m *smtpout.Mail) { m.References = []string{"a@b c@d"} }},
		{"LF in attachment name", func(m *smtpout.Mail) { m.Attachments[0].Name = "a.pdf\r\nX: y" }},
		{"LF in attachment type", func(m *smtpout.Mail) { m.Attachments[0].ContentType = "text/plain\r\nX: y" }},
		{"bad attachment type", func(m *smtpout.Mail) { m.Attachments[0].ContentType = "not a type" }},
		{"bracket in content id", func(m *smtpout.Mail) { m.Attachments[1].ContentID = "a>\r\nX: <b" }},
		{"no recipients", func(m *smtpout.Mail) { m.To, m.Cc, m.Bcc = nil, nil, nil }},
		{"no from", func(m *smtpout.Mail) { m.From = smtpout.Address{} }},
		{"bad address", func(m *smtpout.Mail) { m.To[0].Addr = "not an address" }},
		{"non-ASCII address", func(m *smtpout.Mail) { m.To[0].Addr = "josé@customer.example" }},
		{"no text", func(m *smtpout.Mail) { m.Text = "" }},
		{"invalid UTF-8 subject", func(m *smtpout.Mail) { m.Subject = "caf\xe9" }},
		{"invalid UTF-8 text", func(m *smtpout.Mail) { m.Text = "caf\xe9" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := fullMail()
			m.To = append([]smtpout.Address(nil), m.To...)
			m.Bcc = append([]smtpout.Address(nil), m.Bcc...)
			m.ReplyTo = append([]smtpout.Address(nil), m.ReplyTo...)
			m.Attachments = append([]smtpout.Attachment(nil), m.Attachments...)
			c.edit(&m)
			raw, err := smtpout.Build(m)
			if err == nil {
				t.Fatalf("Build accepted it:\n%s", raw)
			}
			if raw != nil {
				t.Errorf("Build returned bytes with its error")
			}
			var se *switchboard.Error
			if !errors.As(err, &se) || se.Code != switchboard.EINVALID {
				t.Errorf("error %v has code %q, want %q", err, switchboard.ErrorCode(err), switchboard.EINVALID)
			}
		})
	}
}

// FuzzBuild: whatever the subject, names and extra header hold, Build
// either refuses them or produces a message whose header has exactly the
// expected fields, with the values intact.
func FuzzBuild(f *testing.F) {
	f.Add("Re: hello", "José", "x")
	f.Add("a\r\nBcc: v@example.com", "n\nX: y", "1\r\n2")
	f.Add("=?utf-8?q?=0D=0A?=", "\"quoted\" <x@y>", "=?utf-8?b?DQo=?=")
	f.Add(strings.Repeat("ü", 400), strings.Repeat("ä ", 100), strings.Repeat("x", 1200))
	f.Fuzz(func(t *testing.T, subject, name, extra string) {
		m := smtpout.Mail{
			From:      smtpout.Address{Name: name, Addr: "a@shop.example"},
			To:        []smtpout.Address{{Addr: "b@customer.example"}},
			Subject:   subject,
			MessageID: "id@shop.example",
			Date:      testDate,
			Text:      "body",
			Headers:   map[string]string{"X-Extra": extra},
		}
		raw, err := smtpout.Build(m)
		if err != nil {
			if switchboard.ErrorCode(err) != switchboard.EINVALID {
				t.Fatalf("error %v is not EINVALID", err)
			}
			return
		}
		checkWire(t, raw)
		e, err := message.Read(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("re-read: %v", err)
		}
		h := gomail.Header{Header: e.Header}
		var keys []string
		for f := h.Fields(); f.Next(); {
			keys = append(keys, f.Key())
		}
		want := "Date,From,To,Subject,Message-Id,X-Extra,Mime-Version,Content-Type,Content-Transfer-Encoding"
		if extra == "" {
			want = strings.Replace(want, "X-Extra,", "", 1) // an empty extra field is left out
		}
		if got := strings.Join(keys, ","); got != want {
			t.Fatalf("header fields %s, want %s", got, want)
		}
		if s, err := h.Subject(); err != nil || s != subject {
			t.Fatalf("subject %q, %v; want %q", s, err, subject)
		}
		if v, err := h.Text("X-Extra"); err != nil || v != extra {
			t.Fatalf("X-Extra %q, %v; want %q", v, err, extra)
		}
		from, err := h.AddressList("From")
		if err != nil || len(from) != 1 || from[0].Name != name || from[0].Address != "a@shop.example" {
			t.Fatalf("From %v, %v; want %q", from, err, name)
		}
	})
}
