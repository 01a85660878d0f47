package smtpout

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"mime"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"

	"github.com/switchboard-inbox/switchboard"
)

// Address is a mailbox: an optional display name and an ASCII address.
type Address struct{ Name, Addr string }

// Attachment is a file sent with a mail. With a ContentID (without <>) and
// an HTML body it is an inline part the HTML refers to as cid:ContentID.
type Attachment struct {
	Name        string // file name; may be non-ASCII (RFC 2231)
	ContentType string // application/octet-stream when empty
	Data        []byte
	ContentID   string
}

// Mail is one outbound message.
type Mail struct {
	From        Address
	To, Cc, Bcc []Address // Bcc is envelope only, never a header
	ReplyTo     []Address
	Subject     string
	MessageID   string    // without <>; required, so the caller can store it before sending
	InReplyTo   string    // without <>
	References  []string  // without <>
	Date        time.Time // now when zero
	Text        string    // plain text; required
	HTML        string    // optional: then multipart/alternative text+html
	Attachments []Attachment
	// Auto marks our automatic mail (RFC 3834): Auto-Submitted,
	// X-Auto-Response-Suppress and Precedence headers, and the null
	// envelope sender so that nothing bounces or auto-replies back.
	Auto    bool
	Headers map[string]string // extra unstructured fields (ASCII names, no CR/LF); empty values are left out
}

// reservedHeaders are the fields Build writes itself (or must never write:
// Bcc); Mail.Headers may not set them, so it cannot forge the structure.
var reservedHeaders = []string{
	"bcc", "cc", "content-disposition", "content-id", "content-transfer-encoding",
	"content-type", "date", "dkim-signature", "from", "in-reply-to", "message-id",
	"mime-version", "references", "reply-to", "return-path", "sender", "subject", "to",
	"auto-submitted", "x-auto-response-suppress", "precedence",
}

// recipients returns To, Cc and Bcc addresses, each once (compared without
// case), in that order: the RCPT list.
func (m *Mail) recipients() []string {
	var out []string
	seen := map[string]bool{}
	for _, list := range [][]Address{m.To, m.Cc, m.Bcc} {
		for _, a := range list {
			k := strings.ToLower(a.Addr)
			if !seen[k] {
				seen[k] = true
				out = append(out, a.Addr)
			}
		}
	}
	return out
}

func invalidf(format string, args ...any) error {
	return switchboard.Errorf(switchboard.EINVALID, "smtpout: "+format, args...)
}

// hasBreak reports whether s holds a character that could end a header
// line: the way header injection gets in.
func hasBreak(s string) bool { return strings.ContainsAny(s, "\r\n\x00") }

func checkText(field, s string) error {
	if hasBreak(s) {
		return invalidf("%s contains a line break or NUL", field)
	}
	if !utf8.ValidString(s) {
		return invalidf("%s is not valid UTF-8", field)
	}
	// Other control characters have no business in a header and come
	// back mangled from some readers.
	if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
		return invalidf("%s contains a control character", field)
	}
	return nil
}

func checkAddress(field string, a Address) error {
	if err := checkText(field+" name", a.Name); err != nil {
		return err
	}
	if hasBreak(a.Addr) {
		return invalidf("%s address contains a line break or NUL", field)
	}
	if a.Addr == "" {
		return invalidf("%s address is empty", field)
	}
	for i := 0; i < len(a.Addr); i++ {
		// Non-ASCII addresses need SMTPUTF8 end to end; we do not offer it.
		if c := a.Addr[i]; c <= ' ' || c >= 0x7f {
			return invalidf("%s address %q must be printable ASCII", field, a.Addr)
		}
	}
	p, err := mail.ParseAddress("<" + a.Addr + ">")
	if err != nil || p.Address != a.Addr || !strings.Contains(a.Addr, "@") {
		return invalidf("%s address %q is not a valid address", field, a.Addr)
	}
	return nil
}

func isAtext(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// checkMsgID accepts id-left "@" id-right of RFC 5322 §3.6.4, without the
// angle brackets, in the dot-atom form (plus a domain literal on the right).
// ValidMessageID reports whether id (without <>) may be written in a
// Message-ID, In-Reply-To or References header. Ids from other mail
// systems that are not (RFC 5322 is strict, real mail less so) are best
// dropped from a reply's thread headers rather than failing the reply.
func ValidMessageID(id string) bool { return checkMsgID("id", id) == nil }

func checkMsgID(field, id string) error {
	left, right, ok := strings.Cut(id, "@")
	if !ok || left == "" || right == "" {
		return invalidf("%s %q is not of the form left@right", field, id)
	}
	for i := 0; i < len(left); i++ {
		if c := left[i]; !isAtext(c) && c != '.' {
			return invalidf("%s %q has a character not allowed in a message id", field, id)
		}
	}
	for i := 0; i < len(right); i++ {
		if c := right[i]; !isAtext(c) && c != '.' && c != '[' && c != ']' {
			return invalidf("%s %q has a character not allowed in a message id", field, id)
		}
	}
	return nil
}

// checkContentID is looser than a message id: clients generate all sorts,
// but it still must not break out of <...>.
func checkContentID(id string) error {
	if id == "" {
		return nil
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' {
			return invalidf("attachment content id %q must be printable ASCII without <>", id)
		}
	}
	return nil
}

func checkFieldName(k string) error {
	if k == "" {
		return invalidf("empty header name")
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return invalidf("header name %q is not printable ASCII without ':'", k)
		}
	}
	if slices.Contains(reservedHeaders, strings.ToLower(k)) {
		return invalidf("header %q is set by Build and cannot be overridden", k)
	}
	return nil
}

// Validate checks m without building it.
func (m *Mail) Validate() error {
	if err := checkAddress("from", m.From); err != nil {
		return err
	}
	for _, l := range []struct {
		name string
		list []Address
	}{{"to", m.To}, {"cc", m.Cc}, {"bcc", m.Bcc}, {"reply-to", m.ReplyTo}} {
		for _, a := range l.list {
			if err := checkAddress(l.name, a); err != nil {
				return err
			}
		}
	}
	if len(m.To)+len(m.Cc)+len(m.Bcc) == 0 {
		return invalidf("no recipient")
	}
	if err := checkText("subject", m.Subject); err != nil {
		return err
	}
	if m.MessageID == "" {
		return invalidf("message id is required")
	}
	if err := checkMsgID("message id", m.MessageID); err != nil {
		return err
	}
	if m.InReplyTo != "" {
		if err := checkMsgID("in-reply-to", m.InReplyTo); err != nil {
			return err
		}
	}
	for _, r := range m.References {
		if err := checkMsgID("references", r); err != nil {
			return err
		}
	}
	if m.Text == "" {
		return invalidf("text is required")
	}
	// Bodies may hold line breaks; they are encoded, so only UTF-8 matters.
	if !utf8.ValidString(m.Text) {
		return invalidf("text is not valid UTF-8")
	}
	if !utf8.ValidString(m.HTML) {
		return invalidf("html is not valid UTF-8")
	}
	for i, a := range m.Attachments {
		if err := checkText(fmt.Sprintf("attachment %d name", i), a.Name); err != nil {
			return err
		}
		if hasBreak(a.ContentType) {
			return invalidf("attachment %d content type contains a line break", i)
		}
		if a.ContentType != "" {
			if _, _, err := mime.ParseMediaType(a.ContentType); err != nil {
				return invalidf("attachment %d content type %q: %v", i, a.ContentType, err)
			}
		}
		if err := checkContentID(a.ContentID); err != nil {
			return err
		}
	}
	for k, v := range m.Headers {
		if err := checkFieldName(k); err != nil {
			return err
		}
		if err := checkText("header "+k, v); err != nil {
			return err
		}
	}
	return nil
}

// part is one MIME entity: a leaf with a body or a multipart with children.
type part struct {
	header   message.Header
	body     []byte
	children []*part
}

func newBoundary() string {
	var b [15]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "=_sb" + hex.EncodeToString(b[:])
}

func multipart(subtype string, params map[string]string, children ...*part) *part {
	p := &part{children: children}
	if params == nil {
		params = map[string]string{}
	}
	// Our own boundary keeps go-message from re-setting Content-Type, so
	// header order stays as written.
	params["boundary"] = newBoundary()
	p.header.Set("Content-Type", mime.FormatMediaType("multipart/"+subtype, params))
	return p
}

func textPart(subtype, s string) *part {
	p := &part{body: []byte(s)}
	p.header.Set("Content-Transfer-Encoding", "quoted-printable")
	p.header.Set("Content-Type", "text/"+subtype+"; charset=utf-8")
	return p
}

func attachmentPart(a Attachment, disposition string) *part {
	ct := a.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	mt, params, _ := mime.ParseMediaType(ct) // validated already
	name := a.Name
	if name == "" {
		name = "attachment"
	}
	p := &part{body: a.Data}
	if a.ContentID != "" {
		p.header.Set("Content-Id", "<"+a.ContentID+">")
	}
	p.header.Set("Content-Transfer-Encoding", "base64")
	p.header.Set("Content-Disposition", disposition+paramRFC2231("filename", name))
	delete(params, "name")
	p.header.Set("Content-Type", mime.FormatMediaType(mt, params)+paramRFC2231("name", name))
	return p
}

// attrChar is RFC 2231's attribute-char: what an extended value may carry
// without percent-encoding.
func attrChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$&+-.^_`|~", c) >= 0
}

// paramRFC2231 formats "; key=value". Plain ASCII tokens go as they are;
// anything else is percent-encoded as UTF-8 (RFC 2231 §4) and split into
// numbered sections (§3) with spaces between them, so header folding never
// has to cut inside a value.
func paramRFC2231(key, value string) string {
	simple := len(value) <= 60
	for i := 0; simple && i < len(value); i++ {
		simple = attrChar(value[i])
	}
	if simple {
		return "; " + key + "=" + value
	}
	// Sections end on character boundaries: some decoders turn each
	// section into text on its own.
	const chunk = 54
	var sections []string
	var cur strings.Builder
	for _, r := range value {
		var enc string
		if r < utf8.RuneSelf && attrChar(byte(r)) {
			enc = string(r)
		} else {
			var b [utf8.UTFMax]byte
			for _, c := range b[:utf8.EncodeRune(b[:], r)] {
				enc += fmt.Sprintf("%%%02X", c)
			}
		}
		if cur.Len() > 0 && cur.Len()+len(enc) > chunk {
			sections = append(sections, cur.String())
			cur.Reset()
		}
		cur.WriteString(enc)
	}
	sections = append(sections, cur.String())
	if len(sections) == 1 {
		return "; " + key + "*=utf-8''" + sections[0]
	}
	var b strings.Builder
	for n, s := range sections {
		prefix := ""
		if n == 0 {
			prefix = "utf-8''"
		}
		fmt.Fprintf(&b, "; %s*%d*=%s%s", key, n, prefix, s)
	}
	return b.String()
}

// bodyTree lays out the MIME structure:
//
//	mixed                      (only with ordinary attachments)
//	  alternative              (only with HTML)
//	    text/plain
//	    related                (only with inline parts)
//	      text/html
//	      inline parts
//	  attachments
//
// Inline parts sit with the HTML alone, so text-only readers never list them.
func (m *Mail) bodyTree() *part {
	var inline, attached []Attachment
	for _, a := range m.Attachments {
		if a.ContentID != "" && m.HTML != "" {
			inline = append(inline, a)
		} else {
			attached = append(attached, a)
		}
	}
	body := textPart("plain", m.Text)
	if m.HTML != "" {
		html := textPart("html", m.HTML)
		if len(inline) > 0 {
			kids := []*part{html}
			for _, a := range inline {
				kids = append(kids, attachmentPart(a, "inline"))
			}
			html = multipart("related", map[string]string{"type": "text/html"}, kids...)
		}
		body = multipart("alternative", nil, body, html)
	}
	if len(attached) == 0 {
		return body
	}
	kids := []*part{body}
	for _, a := range attached {
		disp := "attachment"
		if a.ContentID != "" {
			disp = "inline"
		}
		kids = append(kids, attachmentPart(a, disp))
	}
	return multipart("mixed", nil, kids...)
}

// Build renders m as RFC 5322 bytes with CRLF line endings: encoded-word
// (RFC 2047) names and subject, quoted-printable text, base64 attachments
// with RFC 2231 file names. Any CR, LF or NUL in a header value is an
// EINVALID error, so no input can add header fields.
func Build(m Mail) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	root := m.bodyTree()

	fields := [][2]string{
		{"Date", date.Format("Mon, 02 Jan 2006 15:04:05 -0700")},
		{"From", formatAddrs([]Address{m.From})},
	}
	add := func(k, v string) {
		if v != "" {
			fields = append(fields, [2]string{k, v})
		}
	}
	add("Reply-To", formatAddrs(m.ReplyTo))
	add("To", formatAddrs(m.To))
	add("Cc", formatAddrs(m.Cc))
	fields = append(fields, [2]string{"Subject", encodeText(m.Subject)})
	add("Message-ID", "<"+m.MessageID+">")
	if m.InReplyTo != "" {
		add("In-Reply-To", "<"+m.InReplyTo+">")
	}
	if len(m.References) > 0 {
		add("References", "<"+strings.Join(m.References, "> <")+">")
	}
	if m.Auto {
		add("Auto-Submitted", "auto-replied")
		add("X-Auto-Response-Suppress", "All")
		add("Precedence", "auto_reply")
	}
	for _, k := range slices.Sorted(maps.Keys(m.Headers)) {
		// Unstructured text: non-ASCII becomes encoded words.
		add(k, encodeText(m.Headers[k]))
	}
	add("MIME-Version", "1.0")
	add("Content-Type", root.header.Get("Content-Type"))
	add("Content-Transfer-Encoding", root.header.Get("Content-Transfer-Encoding"))

	// textproto writes fields last-added first, so add them in reverse.
	var h message.Header
	for i := len(fields) - 1; i >= 0; i-- {
		h.Add(fields[i][0], fields[i][1])
	}
	var buf bytes.Buffer
	buf.Grow(estimateSize(&m))
	w, err := message.CreateWriter(&buf, h)
	if err != nil {
		return nil, fmt.Errorf("smtpout: build: %w", err)
	}
	if err := writePart(w, root); err != nil {
		return nil, fmt.Errorf("smtpout: build: %w", err)
	}
	return buf.Bytes(), nil
}

// maxWord bounds an unencoded run without white space: header folding can
// only break lines at white space, and a line may not exceed 998 bytes.
const maxWord = 900

// encodeText renders unstructured header text. Plain ASCII goes as it is;
// anything a reader would not get back verbatim (non-ASCII, text that
// looks like an encoded word, edge or tab white space, a word too long to
// fold) becomes RFC 2047 encoded words.
func encodeText(s string) string {
	plain := !strings.Contains(s, "=?") && strings.Trim(s, " \t") == s && !strings.Contains(s, "\t")
	word := 0
	for i := 0; plain && i < len(s); i++ {
		c := s[i]
		plain = c >= ' ' && c <= '~'
		if word++; c == ' ' {
			word = 0
		}
		plain = plain && word <= maxWord
	}
	if plain {
		return s
	}
	return qEncode(s)
}

// qEncode always encodes s as Q encoded words of at most 75 characters
// (RFC 2047 §2), split between characters, never inside one.
func qEncode(s string) string {
	const maxText = 75 - len("=?utf-8?q??=")
	var words []string
	var cur strings.Builder
	for _, r := range s {
		var enc string
		var b [utf8.UTFMax]byte
		for _, c := range b[:utf8.EncodeRune(b[:], r)] {
			switch {
			case c == ' ':
				enc += "_"
			case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!*+-/", c) >= 0:
				enc += string(c)
			default:
				enc += fmt.Sprintf("=%02X", c)
			}
		}
		if cur.Len()+len(enc) > maxText {
			words = append(words, "=?utf-8?q?"+cur.String()+"?=")
			cur.Reset()
		}
		cur.WriteString(enc)
	}
	words = append(words, "=?utf-8?q?"+cur.String()+"?=")
	return strings.Join(words, " ")
}

// formatAddrs renders a list with RFC 2047 encoded names where needed.
func formatAddrs(list []Address) string {
	s := make([]string, len(list))
	for i, a := range list {
		switch {
		case a.Name == "":
			s[i] = "<" + a.Addr + ">"
		case encodeText(a.Name) != a.Name:
			// Encoded words may stand for a phrase (RFC 2047 §5 (3)); qEncode
			// only emits the characters that rule allows.
			s[i] = qEncode(a.Name) + " <" + a.Addr + ">"
		default:
			s[i] = (&mail.Address{Name: a.Name, Address: a.Addr}).String()
		}
	}
	return strings.Join(s, ", ")
}

// estimateSize guesses the built size (base64 grows 4/3, QP a little) to
// spare the buffer its regrowth.
func estimateSize(m *Mail) int {
	n := 2048 + len(m.Text)*11/10 + len(m.HTML)*11/10
	for _, a := range m.Attachments {
		n += len(a.Data)*4/3 + len(a.Data)/38 + 512
	}
	return n
}

// writePart writes p's body or children through w and closes w.
func writePart(w *message.Writer, p *part) error {
	if p.children == nil {
		if _, err := w.Write(p.body); err != nil {
			return err
		}
		return w.Close()
	}
	for _, c := range p.children {
		cw, err := w.CreatePart(c.header)
		if err != nil {
			return err
		}
		if err := writePart(cw, c); err != nil {
			return err
		}
	}
	return w.Close()
}
