package parse

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/html"
)

// FuzzParse: any non-empty input is read, never refused (a malformed mail
// is recovered and marked, never lost); only empty input fails, with
// ErrEmpty. Nothing panics, every string is valid UTF-8 without NUL, the
// HTML carries no script, attachments keep their limits, and a mail
// without a sender address is marked malformed.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/corpus/*.eml")
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte("From: a@b\nContent-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/html\n\n<scr<script>ipt>alert(1)</script>\n--x"))
	f.Add([]byte("From: a@b\nContent-Type: text/plain; charset=utf-16\nContent-Transfer-Encoding: base64\n\n//5oAGkA"))
	f.Add([]byte(" \r\nFrom: a@b.example\r\nSubject hi\r\nBr\xfcche: x\r\nTo: c@d.example\r\n\x00\r\n\r\nbody\x00\x1b[31m"))
	f.Add([]byte("\r\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := Parse(raw)
		if len(raw) == 0 {
			if !errors.Is(err, ErrEmpty) || e != nil {
				t.Fatalf("Parse(empty) = %v, %v; want ErrEmpty alone", e, err)
			}
			return
		}
		if err != nil || e == nil {
			t.Fatalf("Parse(%q) = %v, %v; a non-empty mail must always be read", raw, e, err)
		}
		if e.From.Addr == "" && e.Malformed == "" {
			t.Fatalf("Parse(%q): no sender address, yet not marked malformed", raw)
		}
		for field, s := range emailStrings(e) {
			if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
				t.Fatalf("%s = %q is not valid UTF-8 without NUL", field, s)
			}
		}
		if strings.Contains(strings.ToLower(e.HTML), "<script") {
			t.Fatalf("HTML contains a script: %q", e.HTML)
		}
		if strings.Contains(e.HTML, foldAttr) {
			if bad := foldMarkupError(e.HTML); bad != "" {
				t.Fatalf("%s in HTML %q", bad, e.HTML)
			}
		}
		if len(e.Reply) > len(e.Text) {
			t.Fatalf("Reply %q longer than Text %q", e.Reply, e.Text)
		}
		for _, a := range e.Attachments {
			if a.Name == "" || len(a.Name) > 255 || strings.ContainsAny(a.Name, "/\\") || len(a.Data) > MaxAttachment {
				t.Fatalf("attachment %q (%d bytes)", a.Name, len(a.Data))
			}
		}
	})
}

// FuzzStripReply: no panic, valid UTF-8, never longer than the input.
func FuzzStripReply(f *testing.F) {
	for _, c := range corpus {
		raw := readCorpus(f, c.file)
		if e, err := Parse(raw); err == nil {
			f.Add(e.Text)
		}
	}
	f.Add("a\n-- \nb\n> c\nOn Mon, X wrote:\n> d")
	f.Add("On Mon,\nwrote:\n")
	f.Add("\xff\xfe\r\n> \x80")
	f.Fuzz(func(t *testing.T, text string) {
		got := StripReply(text)
		if !utf8.ValidString(got) {
			t.Fatalf("StripReply(%q) = %q is not valid UTF-8", text, got)
		}
		if len(got) > len(text) {
			t.Fatalf("StripReply(%q) = %q is longer than its input", text, got)
		}
		if got != strings.TrimRight(got, " \t\n") {
			t.Fatalf("StripReply(%q) = %q keeps trailing whitespace", text, got)
		}
	})
}

// FuzzFoldHTML: the folds are the text stripper's decision on the same
// HTML, and FoldHTML's output is sanitised, its markers well formed and
// parsed back where they were put. The decision reads exactly the text
// the stripper reads (HTMLToText(StripReplyHTML(s))), every node that
// shows something ends up in a fold of its kind, or outside every fold
// when it is new text, and nothing is lost or doubled on the way.
// (Rendered line breaks may differ: a fold is a block, where
// StripReplyHTML may have removed an inline element.)
func FuzzFoldHTML(f *testing.F) {
	for _, c := range foldCases {
		f.Add(c.in)
	}
	f.Add(`<p>a<br>-- <br>b</p><table><tr><td>On Mon, A wrote:<blockquote>x</blockquote></td></tr></table>c`)
	f.Add("<ul><li>a</li><li>-- </li><li>b</li></ul><div class=gmail_signature>s</div><pre>x\n-- \ny</pre>")
	f.Add(`0<div class="gmail_quote">0</div><br>00<span class="moz-signature">s</span>t`) // a fold ends at its last item
	f.Add(`0<body id="appendonsend">`)                                                    // the body is never the history
	f.Add("<table> 000<br>-- <br0")                                                       // leading white space is lost on parsing
	f.Fuzz(func(t *testing.T, s string) {
		body := parseBody(s)
		before := strings.Join(strings.Fields(textOf(body)), "")
		st := findReplyStructure(body)
		p := planFolds(body, st)
		if got, want := strings.Join(p.lines, "\n"), HTMLToText(StripReplyHTML(s)); got != want {
			t.Fatalf("the decision reads\n%q\nthe text stripper\n%q", got, want)
		}
		for i := len(p.runs) - 1; i >= 0; i-- {
			wrapFold(p.runs[i].a, p.runs[i].last, p.runs[i].kind)
		}
		for _, it := range p.items {
			in := foldNone
			for n := it.n; n != nil; n = n.Parent {
				if v := attr(n.Attr, foldAttr); v != "" {
					in = map[string]foldKind{"quote": foldQuote, "signature": foldSignature}[v]
					break
				}
			}
			if it.known && in != it.kind {
				t.Fatalf("%q of kind %q is in a fold of kind %q:\n%s", textOf(it.n), it.kind, in, renderChildren(body))
			}
		}
		if after := strings.Join(strings.Fields(textOf(body)), ""); after != before {
			t.Fatalf("folding changed the text from\n%q\nto\n%q", before, after)
		}
		if bad := foldMarkupError(renderChildren(body)); bad != "" {
			t.Fatalf("%s in %q", bad, renderChildren(body))
		}

		out, marked := foldHTML(s)
		if bad := unsafeHTML(out); bad != "" {
			t.Fatalf("FoldHTML(%q) contains %q: %q", s, bad, out)
		}
		if strings.Contains(out, foldAttr) {
			if bad := foldMarkupError(out); bad != "" {
				t.Fatalf("%s in %q", bad, out)
			}
			// What a browser parses has the folds that were made, with the
			// same text in each and outside them (white space aside: a
			// fragment's leading white space does not survive parsing).
			if got, want := foldSummary(parseBody(out)), foldSummary(marked); got != want {
				t.Fatalf("FoldHTML(%q) = %q parses to\n%s\nnot\n%s", s, out, got, want)
			}
		}
	})
}

// foldSummary describes the text outside and inside the folds of a
// marked tree, white space aside.
func foldSummary(body *html.Node) string {
	text, quote, sig := foldPartsOf(body)
	norm := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	b := []string{"text: " + norm(text)}
	for _, q := range quote {
		b = append(b, "quote: "+norm(q))
	}
	for _, q := range sig {
		b = append(b, "signature: "+norm(q))
	}
	return strings.Join(b, "\n")
}
