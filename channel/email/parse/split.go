package parse

import (
	"bytes"
	"strings"
)

// content is raw without a leading UTF-8 BOM and mbox "From " line.
func content(raw []byte) []byte {
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	if bytes.HasPrefix(raw, []byte("From ")) {
		i := bytes.IndexByte(raw, '\n')
		if i < 0 {
			return nil
		}
		raw = raw[i+1:]
	}
	return raw
}

// splitHeader cuts raw into the header block and the body, repairing what
// a strict reader refuses; problems names each repair (Email.Malformed).
//
// The header ends at the first empty line. A line that cannot be a header
// field ends it too, as a body glued to the header, unless a known header
// field follows before the empty line: then it is a broken field, read as
// "Name: value" when it lacks only the colon after a known name, dropped
// (with its continuation lines) otherwise. Blank and indented lines
// before the first field are skipped, and control characters in the
// header are removed. With no header field at all, the whole input
// (without BOM and mbox line) is the body.
func splitHeader(raw []byte) (hdr, body []byte, problems []string) {
	raw = content(raw)
	noHeader := func() ([]byte, []byte, []string) {
		return nil, raw, []string{"no header before the body"}
	}
	hb := headerBuilder{raw: raw}
	fields := 0
	dropping := false // the last line was dropped: its continuations go too
	nextField := -1   // where lookahead last found a known field
	pos := 0
	for pos < len(raw) {
		start := pos
		var line []byte
		line, pos = nextLine(raw, pos)
		cleaned := hasControl(line)
		if cleaned {
			line = dropControls(line)
			problems = appendProblem(problems, "control characters in the header")
			if len(bytes.Trim(line, " \t")) == 0 {
				continue // only control characters: not the empty line that ends the header
			}
		}
		blank := len(bytes.Trim(line, " \t")) == 0
		indented := len(line) > 0 && (line[0] == ' ' || line[0] == '\t')
		switch {
		case indented && dropping:
			// A continuation of a dropped line goes with it.
		case fields == 0 && (blank || indented):
			// The reported case: a whitespace line where the header
			// should start. It belongs to no field.
			problems = appendProblem(problems, "whitespace before the first header")
		case len(line) == 0:
			return hb.bytes(), raw[pos:], problems
		case indented:
			hb.keep(start, pos, line, cleaned)
		case isFieldLine(line):
			hb.keep(start, pos, line, cleaned)
			fields++
			dropping = false
		default:
			if nextField < start {
				nextField = knownFieldAfter(raw, pos)
			}
			if nextField < 0 {
				// Text, not a field: the body starts here.
				if fields == 0 {
					return noHeader()
				}
				return hb.bytes(), raw[start:], appendProblem(problems, "no blank line after the header")
			}
			if fixed, ok := addColon(line); ok {
				hb.add(fixed)
				fields++
				dropping = false
				problems = appendProblem(problems, "header line without a colon")
				continue
			}
			dropping = true
			if bytes.IndexByte(line, ':') < 0 {
				problems = appendProblem(problems, "header line without a colon")
			} else {
				problems = appendProblem(problems, "invalid header field name")
			}
		}
	}
	if fields == 0 {
		return noHeader()
	}
	return hb.bytes(), nil, problems
}

// headerBuilder collects the header lines kept: a slice of raw while they
// are contiguous and unchanged, a copy once one was dropped or repaired.
type headerBuilder struct {
	raw      []byte
	from, to int
	buf      []byte
	copied   bool
}

// keep adds raw[start:end], whose content is line (changed when cleaned).
func (b *headerBuilder) keep(start, end int, line []byte, cleaned bool) {
	if !b.copied && !cleaned {
		if b.from == b.to {
			b.from, b.to = start, end
			return
		}
		if b.to == start {
			b.to = end
			return
		}
	}
	if cleaned {
		b.add(line)
		return
	}
	b.copy()
	b.buf = append(b.buf, b.raw[start:end]...)
	if !bytes.HasSuffix(b.buf, []byte("\n")) {
		b.buf = append(b.buf, '\r', '\n')
	}
}

// add adds a repaired line.
func (b *headerBuilder) add(line []byte) {
	b.copy()
	b.buf = append(append(b.buf, line...), '\r', '\n')
}

func (b *headerBuilder) copy() {
	if !b.copied {
		b.buf = append([]byte(nil), b.raw[b.from:b.to]...)
		if len(b.buf) > 0 && !bytes.HasSuffix(b.buf, []byte("\n")) {
			b.buf = append(b.buf, '\r', '\n')
		}
		b.copied = true
	}
}

func (b *headerBuilder) bytes() []byte {
	if b.copied {
		return b.buf
	}
	return b.raw[b.from:b.to]
}

// isFieldLine reports whether line is "name: value" with a valid name.
func isFieldLine(line []byte) bool {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return false
	}
	for _, c := range bytes.TrimRight(line[:i], " \t") {
		if c <= ' ' || c >= 127 {
			return false
		}
	}
	return true
}

// knownFieldAfter returns the position of the first line from pos, before
// the header's end (an empty line), that is a field with a name mail
// headers use; -1 if there is none. Only such a field shows that a broken
// line is part of the header: "Note: ..." may be text.
func knownFieldAfter(raw []byte, pos int) int {
	for pos < len(raw) {
		start := pos
		var line []byte
		line, pos = nextLine(raw, pos)
		if len(line) == 0 {
			return -1
		}
		if hasControl(line) {
			line = dropControls(line)
		}
		if isFieldLine(line) && knownField(string(line[:bytes.IndexByte(line, ':')])) {
			return start
		}
	}
	return -1
}

// knownField reports whether name is one mail headers commonly carry.
func knownField(name string) bool {
	name = strings.ToLower(strings.TrimSpace(name))
	switch name {
	case "from", "sender", "reply-to", "to", "cc", "bcc", "subject", "date", "message-id",
		"in-reply-to", "references", "mime-version", "return-path", "received", "delivered-to",
		"x-original-to", "envelope-to", "auto-submitted", "precedence", "importance",
		"user-agent", "thread-topic", "thread-index", "organization", "authentication-results",
		"received-spf", "dkim-signature":
		return true
	}
	for _, p := range []string{"x-", "content-", "list-", "arc-", "resent-"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// addColon repairs a field that lost its colon ("Subject hello"): a
// name Parse reads, then whitespace and the value.
func addColon(line []byte) ([]byte, bool) {
	i := bytes.IndexAny(line, " \t")
	if i <= 0 {
		return nil, false
	}
	switch strings.ToLower(string(line[:i])) {
	case "from", "sender", "reply-to", "to", "cc", "subject", "date", "message-id", "in-reply-to", "references":
	default:
		return nil, false
	}
	out := make([]byte, 0, len(line)+1)
	out = append(append(append(out, line[:i]...), ':'), line[i:]...)
	return out, true
}

// hasControl reports whether line holds a control character other than
// tab (line ends are already cut off).
func hasControl(line []byte) bool {
	for _, c := range line {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return true
		}
	}
	return false
}

// dropControls returns a copy of line without control characters but
// tab; a lone CR, which some mailers end lines with, becomes a space so
// that the words it separated stay apart.
func dropControls(line []byte) []byte {
	out := make([]byte, 0, len(line))
	for _, c := range line {
		switch {
		case c == '\r':
			out = append(out, ' ')
		case (c >= ' ' || c == '\t') && c != 0x7f:
			out = append(out, c)
		}
	}
	return out
}

// nextLine returns the line of raw that starts at pos, without its line
// ending (LF or CRLF), and where the next one starts.
func nextLine(raw []byte, pos int) (line []byte, next int) {
	next = len(raw)
	if end := bytes.IndexByte(raw[pos:], '\n'); end >= 0 {
		next = pos + end + 1
	}
	return bytes.TrimSuffix(bytes.TrimSuffix(raw[pos:next], []byte("\n")), []byte("\r")), next
}
