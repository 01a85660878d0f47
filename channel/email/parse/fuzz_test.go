package parse

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
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
