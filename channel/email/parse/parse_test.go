package parse

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestParseMalformed: what a strict reader refuses is read as far as it
// goes and marked, never refused; only empty input fails.
func TestParseMalformed(t *testing.T) {
	if e, err := Parse(nil); !errors.Is(err, ErrEmpty) || e != nil {
		t.Errorf("Parse(empty) = %v, %v; want ErrEmpty", e, err)
	}
	tests := []struct {
		name, raw string
		malformed string
		from      Address
		subject   string
		text      string
	}{
		{name: "blank lines then text", raw: "\r\n\r\nbody only",
			malformed: "no header before the body", text: "body only"},
		{name: "text alone", raw: "just some text without any header\n",
			malformed: "no header before the body", text: "just some text without any header"},
		{name: "indented text alone", raw: "   indented first line: x\n\nbody",
			malformed: "no header before the body", text: "   indented first line: x\n\nbody"},
		{name: "no message field", raw: "X-Custom: only an unknown field\n\nbody",
			malformed: "no header before the body", text: "X-Custom: only an unknown field\n\nbody"},
		{name: "binary", raw: "\x00\x01\x02\xff",
			malformed: "no header before the body; control characters in the text", text: "ÿ"},
		{name: "mbox line alone", raw: "From someone",
			malformed: "no header before the body"},
		{name: "whitespace first line", raw: " \r\nFrom: Ann <ann@example.com>\r\nSubject: hi\r\n\r\nHello there\r\n",
			malformed: "whitespace before the first header", from: Address{"Ann", "ann@example.com"}, subject: "hi", text: "Hello there"},
		{name: "continuation first", raw: "\tfolded=?utf-8?q?x?=\nFrom: ann@example.com\n\nhi",
			malformed: "whitespace before the first header", from: Address{"", "ann@example.com"}, text: "hi"},
		{name: "blank first line", raw: "\r\nFrom: ann@example.com\r\nSubject: hi\r\n\r\nhello",
			malformed: "whitespace before the first header", from: Address{"", "ann@example.com"}, subject: "hi", text: "hello"},
		{name: "colon lost after a known name", raw: "From: ann@example.com\nSubject hello there\nTo: b@example.com\n\nbody",
			malformed: "header line without a colon", from: Address{"", "ann@example.com"}, subject: "hello there", text: "body"},
		{name: "colon-less garbage dropped with its continuation", raw: "garbage line\n continued\nFrom: ann@example.com\nSubject: s\n\nbody",
			malformed: "header line without a colon", from: Address{"", "ann@example.com"}, subject: "s", text: "body"},
		{name: "8-bit field name dropped", raw: "From: ann@example.com\nB\xfccher: x\nSubject: s\n\nbody",
			malformed: "invalid header field name", from: Address{"", "ann@example.com"}, subject: "s", text: "body"},
		{name: "body glued to header", raw: "From: a@example.com\nSubject: hi\nthis line is the body\nNote: not a header\n\nmore",
			malformed: "no blank line after the header", from: Address{"", "a@example.com"}, subject: "hi", text: "this line is the body\nNote: not a header\n\nmore"},
		{name: "control characters in the header", raw: "From: a@example.com\nSubject: a\x00b\x01c\n\x00\nTo: x@example.com\n\nx\x00y\x02z",
			malformed: "control characters in the header; control characters in the text", from: Address{"", "a@example.com"}, subject: "abc", text: "xyz"},
		{name: "no sender", raw: "From: not an address\nSubject: x\n\nhello",
			malformed: "no sender address", subject: "x", text: "hello"},
		{name: "multipart whose boundary never comes", raw: "From: a@example.com\nContent-Type: multipart/mixed; boundary=zz\n\nno parts\x07 here\n",
			malformed: "multipart body without parts; control characters in the text", from: Address{"", "a@example.com"}, text: "no parts here"},
		{name: "several problems", raw: " \nFrom: a@example.com\nSubj\x00ect hi\nTo: b@example.com\n\nx",
			malformed: "whitespace before the first header; control characters in the header; header line without a colon", from: Address{"", "a@example.com"}, subject: "hi", text: "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Parse([]byte(tt.raw))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			checkEmail(t, tt.name, e)
			if e.Malformed != tt.malformed || e.From != tt.from || e.Subject != tt.subject || e.Text != tt.text {
				t.Errorf("Malformed %q From %+v Subject %q Text %q\nwant      %q      %+v         %q      %q", e.Malformed, e.From, e.Subject, e.Text, tt.malformed, tt.from, tt.subject, tt.text)
			}
		})
	}
}

func TestParseLenient(t *testing.T) {
	tests := []struct {
		name  string
		raw   string
		check func(t *testing.T, e *Email)
	}{
		{"body glued to header", "From: a@example.com\nSubject: hi\nthis line is the body\nsecond", func(t *testing.T, e *Email) {
			if e.Subject != "hi" || e.Text != "this line is the body\nsecond" {
				t.Errorf("Subject %q Text %q", e.Subject, e.Text)
			}
		}},
		{"mbox From line and BOM", "\xef\xbb\xbfFrom a@example.com Mon Jan  8 10:00:00 2024\nFrom: A <a@example.com>\n\nhi", func(t *testing.T, e *Email) {
			if e.From != (Address{"A", "a@example.com"}) || e.Text != "hi" {
				t.Errorf("From %+v Text %q", e.From, e.Text)
			}
		}},
		{"8-bit latin1 header", "From: J\xf6rg <j@example.de>\nSubject: Gr\xfc\xdfe\n\nx", func(t *testing.T, e *Email) {
			if e.Subject != "Grüße" || e.From.Name != "Jörg" {
				t.Errorf("Subject %q From %+v", e.Subject, e.From)
			}
		}},
		{"raw utf-8 header", "From: Zoë <zoe@example.com>\nSubject: Ça va\n\nx", func(t *testing.T, e *Email) {
			if e.Subject != "Ça va" || e.From.Name != "Zoë" {
				t.Errorf("Subject %q From %+v", e.Subject, e.From)
			}
		}},
		{"broken address list", "From: Smith, John <John@Example.com>\nTo: a@example.com b@example.com, \"Broken <c@example.com>\nCc: <d@example.com>, e@example.com\n\nx", func(t *testing.T, e *Email) {
			if e.From != (Address{"Smith, John", "john@example.com"}) {
				t.Errorf("From %+v", e.From)
			}
			if want := []Address{{"", "a@example.com"}, {"", "b@example.com"}, {"Broken", "c@example.com"}}; !slices.Equal(e.To, want) {
				t.Errorf("To %+v, want %+v", e.To, want)
			}
			if want := []Address{{"", "d@example.com"}, {"", "e@example.com"}}; !slices.Equal(e.Cc, want) {
				t.Errorf("Cc %+v, want %+v", e.Cc, want)
			}
		}},
		{"sender when no from", "Sender: S <s@example.com>\nReply-To: R <R@example.com>\n\nx", func(t *testing.T, e *Email) {
			if e.From != (Address{"S", "s@example.com"}) || !slices.Equal(e.ReplyTo, []Address{{"R", "r@example.com"}}) {
				t.Errorf("From %+v ReplyTo %+v", e.From, e.ReplyTo)
			}
		}},
		{"message ids without brackets", "From: a@example.com\nMessage-ID: abc@example.com\nIn-Reply-To: x@example.com y@example.com\nReferences: <one@x> garbage <two@x>\n\nx", func(t *testing.T, e *Email) {
			if e.MessageID != "abc@example.com" || !slices.Equal(e.InReplyTo, []string{"x@example.com", "y@example.com"}) || !slices.Equal(e.References, []string{"one@x", "two@x"}) {
				t.Errorf("MessageID %q InReplyTo %q References %q", e.MessageID, e.InReplyTo, e.References)
			}
		}},
		{"odd dates", "From: a@example.com\nDate: Mon, 8 Jan 2024 10:15 +0100\n\nx", func(t *testing.T, e *Email) {
			if !e.Date.Equal(time.Date(2024, 1, 8, 9, 15, 0, 0, time.UTC)) {
				t.Errorf("Date %v", e.Date)
			}
		}},
		{"bad date is zero", "From: a@example.com\nDate: yesterday-ish\n\nx", func(t *testing.T, e *Email) {
			if !e.Date.IsZero() {
				t.Errorf("Date %v", e.Date)
			}
		}},
		{"unknown transfer encoding", "From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\nContent-Transfer-Encoding: x-weird\n\nplain text\n--b\nContent-Type: application/zip\nContent-Disposition: attachment; filename=a.zip\nContent-Transfer-Encoding: x-uuencode\n\nbegin 644 a.zip\n--b--\n", func(t *testing.T, e *Email) {
			if e.Text != "plain text" || len(e.Attachments) != 0 || !slices.Equal(e.Dropped, []string{"a.zip"}) {
				t.Errorf("Text %q Attachments %d Dropped %q", e.Text, len(e.Attachments), e.Dropped)
			}
		}},
		{"multipart without boundary", "From: a@example.com\nContent-Type: multipart/mixed\n\nsome text", func(t *testing.T, e *Email) {
			if e.Text != "some text" {
				t.Errorf("Text %q", e.Text)
			}
		}},
		{"broken content-type params", "From: a@example.com\nContent-Type: text/plain; charset=utf-8; charset=latin1\n\ncaf\xc3\xa9", func(t *testing.T, e *Email) {
			if e.Text != "café" {
				t.Errorf("Text %q", e.Text)
			}
		}},
		{"garbage between parts", "From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\nfirst\n--b\nNot A Header Line\n\nsecond\n--b--\n", func(t *testing.T, e *Email) {
			if e.Text != "first" {
				t.Errorf("Text %q", e.Text)
			}
		}},
		{"NUL bytes removed", "From: a@example.com\nSubject: a\x00b\n\nx\x00y", func(t *testing.T, e *Email) {
			if e.Subject != "ab" || e.Text != "xy" {
				t.Errorf("Subject %q Text %q", e.Subject, e.Text)
			}
		}},
		{"watch-html alternative ignored", "From: a@example.com\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: text/watch-html\n\n<b>hi</b>\n--b--\n", func(t *testing.T, e *Email) {
			if e.Text != "hi" || len(e.Attachments) != 0 || e.HTML != "" {
				t.Errorf("Text %q Attachments %d HTML %q", e.Text, len(e.Attachments), e.HTML)
			}
		}},
		{"mdn is automatic", "From: a@example.com\nContent-Type: multipart/report; report-type=disposition-notification; boundary=b\n\n--b\nContent-Type: text/plain\n\nread\n--b--\n", func(t *testing.T, e *Email) {
			if e.Auto != "multipart/report" || e.Bounce != nil {
				t.Errorf("Auto %q Bounce %+v", e.Auto, e.Bounce)
			}
		}},
		{"auto-submitted no is human", "From: a@example.com\nAuto-Submitted: no\n\nx", func(t *testing.T, e *Email) {
			if e.Auto != "" {
				t.Errorf("Auto %q", e.Auto)
			}
		}},
		{"postmaster sender", "From: postmaster@example.com\n\nx", func(t *testing.T, e *Email) {
			if e.Auto != "mailer-daemon sender" {
				t.Errorf("Auto %q", e.Auto)
			}
		}},
		{"x-auto-response-suppress", "From: a@example.com\nX-Auto-Response-Suppress: DR, OOF, AutoReply\n\nx", func(t *testing.T, e *Email) {
			if e.Auto != "X-Auto-Response-Suppress" {
				t.Errorf("Auto %q", e.Auto)
			}
		}},
		{"precedence list", "From: a@example.com\nPrecedence: LIST\n\nx", func(t *testing.T, e *Email) {
			if e.Auto != "Precedence: list" {
				t.Errorf("Auto %q", e.Auto)
			}
		}},
		{"reply falls back to text", "From: a@example.com\n\nOn Mon, Jan 8, 2024 Ann wrote:\n> see below", func(t *testing.T, e *Email) {
			if e.Reply != e.Text || e.Reply == "" {
				t.Errorf("Reply %q Text %q", e.Reply, e.Text)
			}
		}},
		{"wholly quoted reply is empty", "From: a@example.com\n\n> only\n> quotes", func(t *testing.T, e *Email) {
			if e.Reply != "" || e.Text != "> only\n> quotes" {
				t.Errorf("Reply %q Text %q", e.Reply, e.Text)
			}
		}},
		{"cid matched percent-encoded", "From: a@example.com\nContent-Type: multipart/related; boundary=b\n\n--b\nContent-Type: text/html\n\n<img src=\"cid:a%20b@x\">\n--b\nContent-Type: image/gif\nContent-ID: <a b@x>\nContent-Transfer-Encoding: base64\n\nR0lGODlhAQABAAAAACw=\n--b--\n", func(t *testing.T, e *Email) {
			if len(e.Attachments) != 1 || !e.Attachments[0].Inline || e.Attachments[0].Name != "image.gif" || e.Attachments[0].ContentType != "image/gif" {
				t.Errorf("Attachments %+v", e.Attachments)
			}
		}},
		{"html charset undeclared latin1", "From: a@example.com\nContent-Type: text/html\n\n<p>caf\xe9</p>", func(t *testing.T, e *Email) {
			if e.HTML != "<p>café</p>" || e.Text != "café" {
				t.Errorf("HTML %q Text %q", e.HTML, e.Text)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Parse([]byte(tt.raw))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			checkEmail(t, tt.name, e)
			tt.check(t, e)
		})
	}
}

func TestParseLimits(t *testing.T) {
	// Deep nesting and many parts end quietly instead of recursing forever.
	var b strings.Builder
	b.WriteString("From: a@example.com\nContent-Type: multipart/mixed; boundary=b0\n\n")
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&b, "--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n", i, i+1)
	}
	b.WriteString("--b100\nContent-Type: text/plain\n\ndeep\n")
	e, err := Parse([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if e.Text != "" {
		t.Errorf("text beyond maxDepth was read: %q", e.Text)
	}

	b.Reset()
	b.WriteString("From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n")
	for i := 0; i < 2*maxParts; i++ {
		fmt.Fprintf(&b, "--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=f%d\n\nx\n", i)
	}
	b.WriteString("--b--\n")
	e, err = Parse([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Attachments) != maxParts-1 {
		t.Errorf("%d attachments, want %d (maxParts minus the root)", len(e.Attachments), maxParts-1)
	}
}

// bigMessage builds a message with one base64 attachment of n
// pseudo-random bytes in 76-character lines, as mailers write it.
func bigMessage(n int) (raw, data []byte) {
	data = make([]byte, n)
	r := rand.NewChaCha8([32]byte{1, 2, 3})
	_, _ = r.Read(data)
	enc := base64.StdEncoding.EncodeToString(data)
	var b bytes.Buffer
	b.Grow(len(enc) + len(enc)/76*2 + 1024)
	b.WriteString("From: Big Sender <big@example.com>\r\nTo: support@switchboard.example\r\nSubject: big file\r\nMessage-ID: <big@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"BIG\"\r\n\r\n--BIG\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe file.\r\n--BIG\r\nContent-Type: application/octet-stream; name=\"big.bin\"\r\nContent-Disposition: attachment; filename=\"big.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for i := 0; i < len(enc); i += 76 {
		b.WriteString(enc[i:min(i+76, len(enc))])
		b.WriteString("\r\n")
	}
	b.WriteString("--BIG--\r\n")
	return b.Bytes(), data
}

func TestLargeAttachment(t *testing.T) {
	raw, data := bigMessage(20 << 20)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	e, err := Parse(raw)
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Attachments) != 1 || e.Attachments[0].Name != "big.bin" || !bytes.Equal(e.Attachments[0].Data, data) {
		t.Fatalf("attachment not read back exactly (%d attachments)", len(e.Attachments))
	}
	if e.Reply != "The file." || len(e.Dropped) != 0 {
		t.Errorf("Reply %q Dropped %q", e.Reply, e.Dropped)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("20 MiB attachment (%d bytes raw): %v, %.1f MiB allocated (%.2fx the data)", len(raw), elapsed, float64(alloc)/(1<<20), float64(alloc)/float64(len(data)))
	// The decoded bytes are gathered in chunks and joined once (2x the
	// data); everything else is small. More than 2.5x would mean another copy.
	if alloc > 5*uint64(len(data))/2 {
		t.Errorf("allocated %d bytes for a %d-byte attachment", alloc, len(data))
	}

	raw, _ = bigMessage(26 << 20)
	e, err = Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Attachments) != 0 || !slices.Equal(e.Dropped, []string{"big.bin"}) || e.Reply != "The file." {
		t.Errorf("26 MiB: %d attachments, Dropped %q, Reply %q", len(e.Attachments), e.Dropped, e.Reply)
	}
}

func TestDecodeBase64(t *testing.T) {
	tests := []struct {
		in, want string
		c        corruption
	}{
		{"aGVsbG8=", "hello", corruptNone},
		{"aGVs\r\nbG8=\r\n", "hello", corruptNone},
		{"aGVsbG8", "hello", corruptNone},      // missing padding
		{"aGk=aGk=", "hihi", corruptNone},      // concatenated padded chunks
		{"aGV sbG\t8=", "hello", corruptNone},  // spaces and tabs
		{"aGV*sbG8=", "hello", corruptBase64},  // stray character skipped
		{"aGVsbG8gd", "hello ", corruptBase64}, // a lone sextet cannot make a byte
		{"", "", corruptNone},
	}
	for _, tt := range tests {
		got, tooBig, c := decodeBase64(strings.NewReader(tt.in), 100)
		if string(got) != tt.want || tooBig || c != tt.c {
			t.Errorf("decodeBase64(%q) = %q, %v, %v; want %q, false, %v", tt.in, got, tooBig, c, tt.want, tt.c)
		}
	}
	if _, tooBig, _ := decodeBase64(strings.NewReader("aGVsbG8="), 4); !tooBig {
		t.Error("5 bytes with a limit of 4 not reported too big")
	}
	if got, tooBig, _ := decodeBase64(strings.NewReader("aGVsbG8="), 5); tooBig || string(got) != "hello" {
		t.Errorf("5 bytes with a limit of 5: %q, %v", got, tooBig)
	}
}

func TestDecodeQP(t *testing.T) {
	tests := []struct{ in, want string }{
		{"caf=C3=A9", "café"},
		{"soft=\r\nbreak", "softbreak"},
		{"soft=  \nbreak", "softbreak"},
		{"pad   \nnext", "pad\nnext"},
		{"a=3Db", "a=b"},
		{"bad =ZZ escape", "bad =ZZ escape"},
		{"lower =c3=a9", "lower é"},
		{"ends with =", "ends with "},
		{"crlf\r\nkept\r\n", "crlf\r\nkept\r\n"},
	}
	for _, tt := range tests {
		got, tooBig, _ := decodeQP(strings.NewReader(tt.in), 100)
		if string(got) != tt.want || tooBig {
			t.Errorf("decodeQP(%q) = %q, %v; want %q", tt.in, got, tooBig, tt.want)
		}
	}
}

func TestCleanFileName(t *testing.T) {
	long := strings.Repeat("é", 200) + ".pdf" // 404 bytes
	tests := []struct{ in, want string }{
		{"report.pdf", "report.pdf"},
		{"../../etc/passwd", "passwd"},
		{`C:\Users\me\Desktop\photo.jpg`, "photo.jpg"},
		{"invoice\u202efdp.exe", "invoicefdp.exe"},
		{"tab\tand\nnewline.txt", "tab and newline.txt"},
		{"  ..hidden. ", "hidden"},
		{"..", ""},
		{"/", ""},
		{"\x00\x01", ""},
		{long, strings.Repeat("é", 125) + ".pdf"},
	}
	for _, tt := range tests {
		got := cleanFileName(tt.in)
		if got != tt.want {
			t.Errorf("cleanFileName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := cleanFileName(long); len(got) > 255 {
		t.Errorf("long name kept %d bytes", len(got))
	}
}

func TestSniffType(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	tests := []struct {
		data     []byte
		declared string
		want     string
	}{
		{png, "application/octet-stream", "image/png"},
		{png, "application/pdf", "image/png"}, // the bytes win
		{[]byte("BEGIN:VCALENDAR"), "text/calendar", "text/calendar"},
		{[]byte("a,b\n1,2\n"), "text/csv; charset=utf-8", "text/csv"},
		{[]byte("plain"), "text/html", "text/plain"},     // never upgraded to an active type
		{[]byte("plain"), "image/svg+xml", "text/plain"}, // idem
		{[]byte{0, 1, 2, 3}, "application/x-foo", "application/x-foo"},
		{[]byte{0, 1, 2, 3}, "garbage", "application/octet-stream"},
	}
	for _, tt := range tests {
		if got := sniffType(tt.data, tt.declared); got != tt.want {
			t.Errorf("sniffType(%q, %q) = %q, want %q", tt.data, tt.declared, got, tt.want)
		}
	}
}

func TestPermanent(t *testing.T) {
	tests := []struct {
		r    BounceRecipient
		want bool
	}{
		{BounceRecipient{Action: "failed", Status: "5.1.1"}, true},
		{BounceRecipient{Action: "failed", Status: "4.4.7"}, true},
		{BounceRecipient{Action: "delayed", Status: "4.4.7"}, false},
		{BounceRecipient{Action: "delayed", Status: "5.0.0"}, true},
		{BounceRecipient{Action: "delivered", Status: "2.0.0"}, false},
	}
	for _, tt := range tests {
		if got := tt.r.Permanent(); got != tt.want {
			t.Errorf("%+v.Permanent() = %v", tt.r, got)
		}
	}
}

func TestUnflow(t *testing.T) {
	tests := []struct {
		in    string
		delsp bool
		want  string
	}{
		{"one \ntwo\nthree", false, "one two\nthree"},
		{"one \ntwo", true, "onetwo"},
		{"> quoted \n> more\nnew", false, "> quoted more\nnew"},
		{"-- \nsig", false, "-- \nsig"},
		{" >stuffed", false, ">stuffed"},
	}
	for _, tt := range tests {
		if got := unflow(tt.in, tt.delsp); got != tt.want {
			t.Errorf("unflow(%q, %v) = %q, want %q", tt.in, tt.delsp, got, tt.want)
		}
	}
}
