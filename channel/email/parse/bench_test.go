package parse

import (
	"fmt"
	"mime/quotedprintable"
	"strings"
	"testing"
)

// typicalMessage is a ~10 KB multipart/alternative reply, Gmail-shaped:
// quoted-printable text and HTML with a quoted history.
func typicalMessage() []byte {
	var text, html strings.Builder
	text.WriteString("Hi team,\n\nThanks for the quick answer. I tried the steps again this morning and the export still fails with the same error; the file is created but stays empty.\n\nBest,\nMaría\n\nOn Fri, Jan 5, 2024 at 3:02 PM Switchboard Support <support@switchboard.example> wrote:\n\n")
	html.WriteString(`<div dir="ltr">Hi team,<div><br></div><div>Thanks for the quick answer. I tried the steps again this morning and the export still fails with the same error; the file is created but stays empty.</div><div><br></div><div>Best,</div><div>María</div></div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Fri, Jan 5, 2024 at 3:02 PM Switchboard Support &lt;<a href="mailto:support@switchboard.example">support@switchboard.example</a>&gt; wrote:<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex">`)
	for i := 0; text.Len() < 4000; i++ {
		line := fmt.Sprintf("Step %d: open Settings, choose Export, pick the date range and press Download — café ✓.", i)
		text.WriteString("> " + line + "\n")
		html.WriteString(`<p style="margin:0 0 8px 0;font-family:Arial,sans-serif">` + line + "</p>\n")
	}
	html.WriteString("</blockquote></div>")
	qp := func(s string) string {
		var b strings.Builder
		w := quotedprintable.NewWriter(&b)
		_, _ = w.Write([]byte(s))
		_ = w.Close()
		return b.String()
	}
	return []byte("Delivered-To: support@switchboard.example\r\nReturn-Path: <maria.garcia@gmail.com>\r\nMIME-Version: 1.0\r\n" +
		"References: <m.1042.a8f3@mail.switchboard.example>\r\nIn-Reply-To: <m.1042.a8f3@mail.switchboard.example>\r\n" +
		"From: Maria Garcia <maria.garcia@gmail.com>\r\nDate: Mon, 8 Jan 2024 19:15:30 +0100\r\nMessage-ID: <CAJx9k2Tq0@mail.gmail.com>\r\n" +
		"Subject: =?UTF-8?Q?Re:_Export_fails_=E2=80=93_order_1042?=\r\nTo: Switchboard Support <support@switchboard.example>\r\n" +
		"Content-Type: multipart/alternative; boundary=\"000000000000a1b2c3\"\r\n\r\n" +
		"--000000000000a1b2c3\r\nContent-Type: text/plain; charset=\"UTF-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + qp(text.String()) +
		"\r\n--000000000000a1b2c3\r\nContent-Type: text/html; charset=\"UTF-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + qp(html.String()) +
		"\r\n--000000000000a1b2c3--\r\n")
}

func BenchmarkParse(b *testing.B) {
	big, _ := bigMessage(1 << 20)
	for _, bm := range []struct {
		name string
		raw  []byte
	}{
		{"typical-10KB", typicalMessage()},
		{"attachment-1MB", big},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.SetBytes(int64(len(bm.raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(bm.raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestTypicalMessage(t *testing.T) {
	raw := typicalMessage()
	if len(raw) < 9<<10 || len(raw) > 14<<10 {
		t.Fatalf("typical message is %d bytes, want about 10 KB", len(raw))
	}
	e, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := "Hi team,\n\nThanks for the quick answer. I tried the steps again this morning and the export still fails with the same error; the file is created but stays empty.\n\nBest,\nMaría"
	if e.Reply != want || e.Subject != "Re: Export fails – order 1042" {
		t.Fatalf("Reply %q Subject %q", e.Reply, e.Subject)
	}
}
