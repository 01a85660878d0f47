package parse

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"golang.org/x/text/encoding/charmap"
)

// corruption says how trustworthy decoded bytes are.
type corruption int

const (
	corruptNone    corruption = iota
	corruptBase64             // base64 with characters outside the alphabet: decoded leniently
	corruptUnknown            // unknown Content-Transfer-Encoding: the bytes are still encoded
)

// decodeBody undoes the Content-Transfer-Encoding of r, reading at most
// limit decoded bytes. tooBig reports that the part was larger (its data is
// then nil and the rest is left unread; the multipart reader skips it).
func decodeBody(enc string, r io.Reader, limit int) (data []byte, tooBig bool, c corruption) {
	switch enc {
	case "base64":
		return decodeBase64(r, limit)
	case "quoted-printable":
		return decodeQP(r, limit)
	case "", "7bit", "8bit", "binary":
	default:
		c = corruptUnknown
	}
	data, tooBig = readLimited(r, limit)
	return data, tooBig, c
}

// readLimited reads r up to limit bytes; read errors (a truncated
// multipart) end the data silently.
func readLimited(r io.Reader, limit int) ([]byte, bool) {
	c := collector{limit: limit}
	var buf [32 << 10]byte
	for {
		n, err := r.Read(buf[:])
		if !c.write(buf[:n]) {
			return nil, true
		}
		if err != nil {
			return c.bytes(), false
		}
	}
}

// collector gathers decoded bytes in chunks and joins them once at the
// end: appending to one slice would allocate about five times the data
// for a large attachment (append grows big slices by 1.25x), the chunks
// cost twice the data.
type collector struct {
	chunks [][]byte
	cur    []byte
	n      int
	limit  int
}

// write appends p, reporting false once more than limit bytes were seen.
func (c *collector) write(p []byte) bool {
	c.n += len(p)
	if c.n > c.limit {
		return false
	}
	for len(p) > 0 {
		if len(c.cur) == cap(c.cur) {
			if c.cur != nil {
				c.chunks = append(c.chunks, c.cur)
			}
			c.cur = make([]byte, 0, min(max(2*cap(c.cur), 4<<10), 1<<20))
		}
		k := copy(c.cur[len(c.cur):cap(c.cur)], p)
		c.cur = c.cur[:len(c.cur)+k]
		p = p[k:]
	}
	return true
}

func (c *collector) bytes() []byte {
	if len(c.chunks) == 0 {
		return c.cur
	}
	out := make([]byte, 0, c.n)
	for _, ch := range c.chunks {
		out = append(out, ch...)
	}
	return append(out, c.cur...)
}

// b64 maps a base64 alphabet byte to its value; 0xFF marks other bytes.
var b64 = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alpha); i++ {
		t[alpha[i]] = byte(i)
	}
	return t
}()

// decodeBase64 decodes leniently, the way mail readers do: whitespace is
// skipped, other stray characters are skipped and reported as corruption,
// "=" ends a quantum (so concatenated padded chunks decode), and a final
// unpadded quantum is accepted.
func decodeBase64(r io.Reader, limit int) ([]byte, bool, corruption) {
	c := corruptNone
	col := collector{limit: limit}
	out := make([]byte, 0, 24<<10+3) // decoded bytes of one read
	var q [4]byte                    // pending sextets
	nq := 0
	flush := func() {
		switch nq {
		case 2:
			out = append(out, q[0]<<2|q[1]>>4)
		case 3:
			out = append(out, q[0]<<2|q[1]>>4, q[1]<<4|q[2]>>2)
		case 1:
			c = corruptBase64 // six bits cannot make a byte
		}
		nq = 0
	}
	var in [32 << 10]byte
	for {
		n, err := r.Read(in[:])
		chunk := in[:n]
		for i := 0; i < len(chunk); i++ {
			b := chunk[i]
			// Fast path: whole quanta of alphabet bytes.
			if nq == 0 && i+4 <= len(chunk) {
				a0, a1, a2, a3 := b64[chunk[i]], b64[chunk[i+1]], b64[chunk[i+2]], b64[chunk[i+3]]
				if (a0|a1|a2|a3)&0xC0 == 0 {
					out = append(out, a0<<2|a1>>4, a1<<4|a2>>2, a2<<6|a3)
					i += 3
					continue
				}
			}
			v := b64[b]
			switch {
			case v != 0xFF:
				q[nq] = v
				nq++
				if nq == 4 {
					out = append(out, q[0]<<2|q[1]>>4, q[1]<<4|q[2]>>2, q[2]<<6|q[3])
					nq = 0
				}
			case b == '=':
				flush()
			case b == '\r' || b == '\n' || b == ' ' || b == '\t':
			default:
				c = corruptBase64
			}
		}
		if !col.write(out) {
			return nil, true, c
		}
		out = out[:0]
		if err != nil {
			break
		}
	}
	flush()
	if !col.write(out) {
		return nil, true, c
	}
	return col.bytes(), false, c
}

// decodeQP decodes quoted-printable leniently: "=XX" is a byte, "=" at
// the end of a line (after optional whitespace) is a soft break, and any
// other "=" is kept literally, as RFC 2045 §6.7 (note 1) suggests.
func decodeQP(r io.Reader, limit int) ([]byte, bool, corruption) {
	br := bufio.NewReaderSize(r, 32<<10)
	col := collector{limit: limit}
	out := make([]byte, 0, 32<<10+2) // decoded bytes of one line
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A very long line: decode what we have; a "=" split at the
			// buffer edge is rare enough to be kept literally.
			err = nil
		}
		hard := bytes.HasSuffix(line, []byte("\n"))
		body := bytes.TrimRight(line, "\r\n")
		if hard {
			body = bytes.TrimRight(body, " \t") // RFC 2045: trailing whitespace is padding
		}
		soft := false
		if len(body) > 0 && body[len(body)-1] == '=' && (hard || err != nil) {
			soft = true
			body = body[:len(body)-1]
		}
		for i := 0; i < len(body); i++ {
			b := body[i]
			if b == '=' && i+2 < len(body) && isHex(body[i+1]) && isHex(body[i+2]) {
				out = append(out, unhex(body[i+1])<<4|unhex(body[i+2]))
				i += 2
				continue
			}
			out = append(out, b)
		}
		if hard && !soft {
			if bytes.HasSuffix(line, []byte("\r\n")) {
				out = append(out, '\r', '\n')
			} else {
				out = append(out, '\n')
			}
		}
		if !col.write(out) {
			return nil, true, corruptNone
		}
		out = out[:0]
		if err != nil {
			return col.bytes(), false, corruptNone
		}
	}
}

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}

func unhex(b byte) byte {
	switch {
	case b <= '9':
		return b - '0'
	case b <= 'F':
		return b - 'A' + 10
	default:
		return b - 'a' + 10
	}
}

// toUTF8 converts a text part from its declared charset. An unknown or
// missing charset keeps valid UTF-8 and otherwise reads windows-1252 (the
// WHATWG reading of "latin1", what such senders mean). NULs are removed.
func toUTF8(data []byte, label string) string {
	return stripNUL(decodeText(data, label))
}

// decodeText is toUTF8 keeping NULs, for callers that remove them with
// the other control characters and want to know they did.
func decodeText(data []byte, label string) string {
	label = strings.ToLower(strings.TrimSpace(label))
	switch label {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
	default:
		if r, err := charset.Reader(label, bytes.NewReader(data)); err == nil {
			if out, err := io.ReadAll(r); err == nil {
				return strings.ToValidUTF8(string(out), "\uFFFD")
			}
		}
	}
	return latin1(data)
}

// latin1Fallback returns data as a string if it is UTF-8, else decoded
// as windows-1252; NULs are removed either way.
func latin1Fallback(data []byte) string {
	return stripNUL(latin1(data))
}

// latin1 returns data as a string if it is UTF-8, else decoded as
// windows-1252; the result is valid UTF-8.
func latin1(data []byte) string {
	if utf8.Valid(data) {
		return string(data)
	}
	out, err := charmap.Windows1252.NewDecoder().Bytes(data)
	if err != nil {
		return strings.ToValidUTF8(string(data), "\uFFFD")
	}
	return strings.ToValidUTF8(string(out), "\uFFFD")
}

// validString makes s valid UTF-8 without NUL.
func validString(s string) string {
	return stripNUL(strings.ToValidUTF8(s, "\uFFFD"))
}

// cleanText removes the control characters but tab and newline from text
// with LF line ends: binary bytes sent as text are noise to a reader, and
// some are escape sequences to a terminal.
func cleanText(s string) string {
	i := strings.IndexFunc(s, isTextControl)
	if i < 0 {
		return s
	}
	return s[:i] + strings.Map(func(r rune) rune {
		if isTextControl(r) {
			return -1
		}
		return r
	}, s[i:])
}

func isTextControl(r rune) bool {
	return (r < ' ' && r != '\t' && r != '\n') || r == 0x7f
}

func stripNUL(s string) string {
	if strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(s, "\x00", "")
}

// headerText returns a raw header value as valid UTF-8: 8-bit bytes that
// are not UTF-8 (RFC 6532 allows UTF-8 only) are read as windows-1252.
func headerText(s string) string {
	if utf8.ValidString(s) {
		return stripNUL(s)
	}
	return latin1Fallback([]byte(s))
}

// wordDecoder decodes RFC 2047 encoded-words with every charset the
// charset package knows.
var wordDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

// decodeWords decodes RFC 2047 encoded-words in a header value; an
// undecodable word is kept as it is.
func decodeWords(s string) string {
	if strings.Contains(s, "=?") {
		if d, err := wordDecoder.DecodeHeader(s); err == nil {
			s = d
		}
	}
	return headerText(s)
}

// unflow joins the soft line breaks of RFC 3676 format=flowed text: a line
// ending in a space continues on the next line (of the same quote depth);
// with delsp=yes that space is removed too. "-- " stays a signature line.
func unflow(s string, delsp bool) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	var b strings.Builder
	b.Grow(len(s))
	prevSoft, prevDepth := false, 0
	for i, line := range lines {
		depth := 0
		for depth < len(line) && line[depth] == '>' {
			depth++
		}
		content := line[depth:]
		content = strings.TrimPrefix(content, " ") // space-stuffing
		if i > 0 {
			if !(prevSoft && depth == prevDepth) {
				b.WriteByte('\n')
				if depth > 0 {
					b.WriteString(strings.Repeat(">", depth) + " ")
				}
			}
		} else if depth > 0 {
			b.WriteString(strings.Repeat(">", depth) + " ")
		}
		soft := strings.HasSuffix(content, " ") && content != "-- "
		if soft && delsp {
			content = content[:len(content)-1]
		}
		b.WriteString(content)
		prevSoft, prevDepth = soft, depth
	}
	return b.String()
}
