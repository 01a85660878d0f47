package parse

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"mime"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // registers ISO-8859-x, Shift_JIS, ISO-2022-JP, windows-125x... for bodies and RFC 2047 words
	"github.com/emersion/go-message/textproto"
)

// MaxAttachment is the largest decoded part kept, per attachment; larger
// parts are dropped and named in Email.Dropped. Gmail sends up to 25 MB.
const MaxAttachment = 25 << 20

// Limits that keep a hostile message from costing unbounded work.
const (
	maxParts = 1000 // leaf and multipart parts walked
	maxDepth = 32   // multipart nesting
)

// ErrEmpty is returned by Parse for empty input, the one input it cannot
// make a message of.
var ErrEmpty = errors.New("parse: empty message")

// Address is one mailbox: a display name and a lower-cased address.
type Address struct{ Name, Addr string }

// Attachment is one non-body part of a message.
type Attachment struct {
	Name        string // cleaned file name: no path, no control chars, <=255 bytes, never empty
	ContentType string // sniffed from the bytes, refined by the declared type; no parameters
	ContentID   string // without <>, "" if none
	Inline      bool   // Content-Disposition inline, or referenced by cid: from the HTML
	Data        []byte
}

// Email is a parsed inbound message. Every string is valid UTF-8 without
// NUL.
type Email struct {
	MessageID   string   // without <>; "" when missing
	InReplyTo   []string // ids without <>
	References  []string // ids without <>, in order
	From        Address  // From, else Sender; zero when neither parses
	ReplyTo     []Address
	To, Cc      []Address
	DeliveredTo []string  // Delivered-To / X-Original-To / Envelope-To addresses, lower-cased, deduplicated
	Subject     string    // RFC 2047 decoded, unfolded
	Date        time.Time // in UTC; zero when missing or unparseable
	Text        string    // full plain text (the text/plain parts, else derived from the HTML), LF line ends
	// Reply is Text without quoted history and signature (StripReply; for
	// an HTML-only message StripReplyHTML first). It falls back to Text
	// when stripping leaves nothing but Text is not wholly a ">" quote.
	Reply string
	// HTML is the sanitised HTML, "" without an HTML part, with the
	// quoted history and signature that Reply leaves out wrapped in
	// <div data-sb-fold="quote"> and <div data-sb-fold="signature">
	// (FoldHTML). Images are only cid: references, kept as src="cid:ID"
	// for RewriteCID.
	HTML        string
	Attachments []Attachment
	// Dropped names the parts not kept: larger than MaxAttachment, an
	// attachment in an unknown Content-Transfer-Encoding, or base64 with
	// characters outside the alphabet (a corrupt file is worse than none).
	Dropped []string
	// Auto is "" for a human message, else the first reason it is
	// automatic: "Auto-Submitted: <value>", "X-Autoreply", "X-Autorespond",
	// "X-Autoresponder", "Precedence: bulk|junk|list|auto_reply",
	// "X-Auto-Response-Suppress", "List-Id", "Return-Path: <>",
	// "mailer-daemon sender" (MAILER-DAEMON or postmaster), or
	// "multipart/report" (any other report: DSN, MDN).
	Auto string
	// Malformed is "" for a message read as it is, else what had to be
	// repaired or guessed to read it, the reasons joined by "; " (such
	// as "whitespace before the first header" or "no header before the
	// body"). The fields are then what could be recovered, and the raw
	// message is the only faithful copy.
	Malformed string
	// ReturnPath is the envelope sender the delivering MTA recorded (the
	// top Return-Path), lower-cased; "" when missing or null (<>).
	ReturnPath string
	// Bounce is set for a delivery status notification: a message/
	// delivery-status part or a multipart/report with report-type=
	// delivery-status (RFC 3464); and, without a report, for a
	// MAILER-DAEMON/postmaster message that returns a message/rfc822 or
	// text/rfc822-headers part (Exim, qmail), whose recipients then come
	// from X-Failed-Recipients.
	Bounce *Bounce
}

// Parse reads one raw message. It never panics and fails only for empty
// input (ErrEmpty): a message a strict reader refuses is recovered as far
// as it goes and marked in Malformed. Headers are read past lines that
// cannot be header fields, bytes after the header that no MIME structure
// explains are taken as text, and input with no header at all is all
// text.
func Parse(raw []byte) (*Email, error) {
	if len(raw) == 0 {
		return nil, ErrEmpty
	}
	hdrBytes, body, problems := splitHeader(raw)
	var th textproto.Header
	if len(hdrBytes) > 0 {
		// The blank line ends the header for ReadHeader even when the
		// input stopped inside it.
		hr := io.MultiReader(bytes.NewReader(hdrBytes), strings.NewReader("\r\n\r\n"))
		var err error
		if th, err = textproto.ReadHeader(bufio.NewReader(hr)); err != nil {
			// splitHeader leaves only field lines; what ReadHeader still
			// refuses ends the header, and the fields before it are kept.
			problems = appendProblem(problems, "unreadable header")
		}
	}
	h := message.Header{Header: th}
	if !looksLikeMessage(h) {
		// No field a mail carries: "a: b" lines of some text, not a
		// header, so all of it is shown.
		h = message.Header{}
		body = content(raw)
		problems = []string{"no header before the body"}
	}

	e := &Email{}
	readHeaders(e, h)
	if h.Len() > 0 && e.From.Addr == "" {
		problems = appendProblem(problems, "no sender address")
	}

	w := &walker{e: e}
	w.walk(h, bytes.NewReader(body), 0, "")
	if w.noParts {
		// A multipart whose boundary never comes: its bytes are the text.
		_, params := mediaType(h)
		w.addText(normalizeNewlines(decodeText(limit(body, MaxAttachment), params["charset"])))
		problems = appendProblem(problems, "multipart body without parts")
	} else if w.noBoundary {
		problems = appendProblem(problems, "multipart without a boundary")
	}
	if w.controls {
		problems = appendProblem(problems, "control characters in the text")
	}
	w.finish(h)
	e.Malformed = strings.Join(problems, "; ")
	return e, nil
}

// appendProblem adds a reason to Malformed's list once.
func appendProblem(problems []string, p string) []string {
	if slices.Contains(problems, p) {
		return problems
	}
	return append(problems, p)
}

// limit cuts b to at most n bytes.
func limit(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// looksLikeMessage requires at least one field every mail carries, so that
// an arbitrary "a: b" text is not taken for a message.
func looksLikeMessage(h message.Header) bool {
	for _, k := range []string{"From", "Sender", "To", "Cc", "Subject", "Date", "Message-Id",
		"Mime-Version", "Content-Type", "Return-Path", "Received", "Delivered-To"} {
		if h.Has(k) {
			return true
		}
	}
	return false
}

// walker collects the parts of one message.
type walker struct {
	e        *Email
	parts    int
	texts    []string // body text/plain parts, in order
	htmls    []string // body text/html parts, in order
	dsn      []BounceRecipient
	hasDSN   bool
	origID   string // Message-ID of a returned message or its headers
	returned bool   // a message/rfc822 or text/rfc822-headers part was seen
	// The top entity is a multipart whose body has no part (noParts) or
	// that names no boundary (noBoundary, then read as text).
	noParts, noBoundary bool
	controls            bool // control characters were removed from the text
}

// mediaType parses a Content-Type leniently: a broken parameter list keeps
// the type, a missing or broken type is text/plain (RFC 2045 §5.2).
func mediaType(h message.Header) (string, map[string]string) {
	v := h.Get("Content-Type")
	if strings.TrimSpace(v) == "" {
		return "text/plain", map[string]string{}
	}
	t, params, err := mime.ParseMediaType(v)
	if err != nil {
		t, _, _ = strings.Cut(v, ";")
		t = strings.ToLower(strings.TrimSpace(t))
		params = lenientParams(v)
	}
	if !strings.Contains(t, "/") {
		t = "text/plain"
	}
	if params == nil {
		params = map[string]string{}
	}
	for k, p := range params {
		params[k] = decodeWords(p)
	}
	return t, params
}

// lenientParams recovers name=value pairs from a header value that
// mime.ParseMediaType refused (duplicate parameters, stray characters):
// enough to find a boundary, a charset or a name.
func lenientParams(v string) map[string]string {
	params := map[string]string{}
	_, rest, _ := strings.Cut(v, ";")
	for _, kv := range strings.Split(rest, ";") {
		k, val, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		val = strings.Trim(strings.TrimSpace(val), `"`)
		if _, dup := params[k]; !dup && k != "" {
			params[k] = val
		}
	}
	return params
}

// disposition parses Content-Disposition leniently.
func disposition(h message.Header) (string, map[string]string) {
	v := h.Get("Content-Disposition")
	if strings.TrimSpace(v) == "" {
		return "", map[string]string{}
	}
	d, params, err := mime.ParseMediaType(v)
	if err != nil {
		d, _, _ = strings.Cut(v, ";")
		d = strings.ToLower(strings.TrimSpace(d))
		params = lenientParams(v)
	}
	if params == nil {
		params = map[string]string{}
	}
	for k, p := range params {
		params[k] = decodeWords(p)
	}
	return d, params
}

// walk visits one entity: its header h and its still-encoded body. parent
// is the enclosing multipart's media type ("" at the top).
func (w *walker) walk(h message.Header, body io.Reader, depth int, parent string) {
	w.parts++
	if w.parts > maxParts || depth > maxDepth {
		return
	}
	typ, params := mediaType(h)
	disp, dparams := disposition(h)
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}

	if strings.HasPrefix(typ, "multipart/") {
		boundary := params["boundary"]
		if boundary == "" {
			typ = "text/plain" // a multipart without boundary is unreadable as such; show it as text
			w.noBoundary = w.noBoundary || depth == 0
		} else {
			mr := textproto.NewMultipartReader(body, boundary)
			for n := 0; ; n++ {
				p, err := mr.NextPart()
				if err != nil {
					// io.EOF ends a good multipart; anything else is broken
					// MIME, and what was read so far is kept.
					w.noParts = w.noParts || (depth == 0 && n == 0)
					return
				}
				w.walk(message.Header{Header: p.Header}, p, depth+1, typ)
				if w.parts > maxParts {
					return
				}
			}
		}
	}

	enc := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
	data, tooBig, corrupt := decodeBody(enc, body, MaxAttachment)

	switch typ {
	case "message/delivery-status", "message/global-delivery-status":
		w.hasDSN = true
		w.dsn = append(w.dsn, parseDSN(data)...)
		return
	case "text/rfc822-headers", "message/rfc822-headers":
		w.returned = true
		if id := headerMessageID(data); id != "" && w.origID == "" {
			w.origID = id
		}
		return
	case "message/rfc822", "message/global":
		w.returned = true
		if id := headerMessageID(data); id != "" && w.origID == "" {
			w.origID = id
		}
	}

	isText := typ == "text/plain" || typ == "text/html"
	if isText && disp != "attachment" && name == "" {
		if tooBig {
			w.e.Dropped = append(w.e.Dropped, defaultName(typ, typ))
			return
		}
		s := normalizeNewlines(decodeText(data, params["charset"]))
		if typ == "text/html" {
			w.htmls = append(w.htmls, stripNUL(s))
			return
		}
		if strings.EqualFold(params["format"], "flowed") {
			s = unflow(s, strings.EqualFold(params["delsp"], "yes"))
		}
		w.addText(s)
		return
	}
	if parent == "multipart/alternative" && typ != "text/calendar" {
		// Other renderings of the same body (text/watch-html,
		// text/enriched) are neither body nor attachment.
		return
	}

	cleanName := cleanFileName(decodeWords(name))
	if tooBig || corrupt != corruptNone {
		if cleanName == "" {
			cleanName = defaultName(strings.ToLower(typ), typ)
		}
		w.e.Dropped = append(w.e.Dropped, cleanName)
		return
	}
	ct := sniffType(data, typ)
	if cleanName == "" {
		cleanName = defaultName(ct, typ)
	}
	w.e.Attachments = append(w.e.Attachments, Attachment{
		Name:        cleanName,
		ContentType: ct,
		ContentID:   contentID(h.Get("Content-Id")),
		Inline:      disp == "inline",
		Data:        data,
	})
}

// addText adds a body text/plain part, without control characters.
func (w *walker) addText(s string) {
	if c := cleanText(s); len(c) != len(s) {
		w.controls = true
		s = c
	}
	w.texts = append(w.texts, s)
}

// finish derives the body fields, inline flags, Auto and Bounce once every
// part has been seen.
func (w *walker) finish(h message.Header) {
	e := w.e
	rawHTML := strings.Join(w.htmls, "\n")
	if len(w.htmls) > 0 {
		e.HTML = FoldHTML(rawHTML)
	}
	if len(w.texts) > 0 {
		e.Text = trimText(strings.Join(w.texts, "\n"))
		e.Reply = StripReply(e.Text)
	} else if len(w.htmls) > 0 {
		e.Text = trimText(HTMLToText(rawHTML))
		e.Reply = StripReply(HTMLToText(StripReplyHTML(rawHTML)))
	}
	if e.Reply == "" && !whollyQuoted(e.Text) {
		e.Reply = e.Text
	}

	if e.HTML != "" {
		refs := cidRefs(e.HTML)
		for i := range e.Attachments {
			if a := &e.Attachments[i]; a.ContentID != "" && refs[a.ContentID] {
				a.Inline = true
			}
		}
	}

	typ, params := mediaType(h)
	isReport := typ == "multipart/report"
	if w.hasDSN || (isReport && strings.EqualFold(params["report-type"], "delivery-status")) {
		e.Bounce = &Bounce{Recipients: w.dsn, OriginalMessageID: w.origID}
	} else if w.returned && isDaemon(e.From.Addr) {
		e.Bounce = nonStandardBounce(h, e.Text, w.origID)
	}
	e.Auto = autoReason(h, e.From.Addr)
	if e.Auto == "" && isReport {
		e.Auto = "multipart/report"
	}
}

// trimText drops trailing whitespace and leading blank lines.
func trimText(s string) string {
	s = strings.TrimRight(s, " \t\r\n")
	for {
		line, rest, ok := strings.Cut(s, "\n")
		if !ok || strings.TrimSpace(line) != "" {
			return s
		}
		s = rest
	}
}

// normalizeNewlines turns CRLF and lone CR into LF.
func normalizeNewlines(s string) string {
	if strings.IndexByte(s, '\r') < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// whollyQuoted reports whether every non-blank line of s is a ">" quote.
func whollyQuoted(s string) bool {
	for line := range strings.SplitSeq(s, "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, ">") {
			return false
		}
	}
	return true
}

// contentID strips the angle brackets and folding whitespace of a
// Content-ID.
func contentID(v string) string {
	v = strings.TrimSpace(v)
	v = strings.TrimPrefix(v, "<")
	v = strings.TrimSuffix(v, ">")
	return validString(strings.TrimSpace(v))
}

// cidRefs returns the Content-IDs an HTML body references as cid:ID
// (percent-decoded, RFC 2392).
func cidRefs(html string) map[string]bool {
	refs := map[string]bool{}
	cidSrcs(html, func(start, end int) {
		id := unescapeHTMLAttr(html[start:end])
		refs[id] = true
		if u, err := url.PathUnescape(id); err == nil {
			refs[u] = true
		}
	})
	return refs
}
