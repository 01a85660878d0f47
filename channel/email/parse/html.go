package parse

import (
	"bytes"
	"regexp"
	"strings"
	"sync"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// policy is the sanitiser for e-mail HTML, built once and only read after.
// Mail layout lives in tables, presentational attributes and inline
// styles, so those are kept (styles through a strict grammar); images
// may only come from the message itself (cid:), so that opening a mail
// tells no tracker that it was read.
var policy = sync.OnceValue(func() *bluemonday.Policy {
	p := bluemonday.NewPolicy()
	p.AllowElements("p", "br", "div", "span", "b", "i", "u", "strong", "em", "s", "strike", "del", "ins",
		"sub", "sup", "small", "big", "center", "font", "blockquote", "pre", "code", "tt", "hr",
		"h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "dl", "dt", "dd",
		"table", "thead", "tbody", "tfoot", "tr", "td", "th", "caption", "colgroup", "col",
		"a", "img", "abbr", "address", "cite", "q", "mark", "wbr", "section", "article", "header", "footer")
	p.AllowAttrs("href").OnElements("a")
	p.AllowAttrs("src").Matching(regexp.MustCompile(`(?i)^cid:[^\s"'<>]+$`)).OnElements("img")
	p.AllowAttrs("alt", "width", "height", "border").OnElements("img")
	p.AllowAttrs("align", "valign", "width", "height", "bgcolor", "border", "cellpadding", "cellspacing",
		"colspan", "rowspan", "nowrap").OnElements("table", "thead", "tbody", "tfoot", "tr", "td", "th", "col", "colgroup", "caption")
	p.AllowAttrs("align").OnElements("p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "center")
	p.AllowAttrs("color", "face", "size").OnElements("font")
	p.AllowAttrs("start", "type").OnElements("ol")
	p.AllowAttrs("dir", "title", "lang").Globally()
	// Style attributes pass only in a grammar with no url(), no other
	// function than rgb()/rgba(), no comments, escapes or at-rules; the
	// token pass below then keeps only the allowed properties. (Checking
	// this way is about three times cheaper than bluemonday's per-property
	// CSS parsing, which dominated the cost of a typical message.)
	p.AllowAttrs("style").Matching(styleRE).Globally()
	p.AllowURLSchemes("http", "https", "mailto", "tel", "cid")
	p.RequireParseableURLs(true)
	p.RequireNoFollowOnLinks(true)
	p.AddTargetBlankToFullyQualifiedLinks(true)
	return p
})

var styleRE = regexp.MustCompile(`^\s*(?:[a-zA-Z-]+\s*:(?:[a-zA-Z0-9#.,%'"!\s-]|(?i:rgba?)\(\s*[0-9.,%\s]*\))*(?:;\s*|$))*$`)

// styleProps are the CSS properties kept: colours, fonts, spacing,
// borders and sizes, nothing that positions an element over the page.
var styleProps = map[string]bool{
	"color": true, "background-color": true, "font-family": true, "font-size": true, "font-weight": true,
	"font-style": true, "text-align": true, "text-decoration": true, "vertical-align": true, "line-height": true,
	"white-space": true, "margin": true, "margin-top": true, "margin-bottom": true, "margin-left": true,
	"margin-right": true, "padding": true, "padding-top": true, "padding-bottom": true, "padding-left": true,
	"padding-right": true, "border": true, "border-top": true, "border-bottom": true, "border-left": true,
	"border-right": true, "border-collapse": true, "border-color": true, "border-style": true,
	"border-width": true, "width": true, "max-width": true, "height": true, "display": true,
}

// cleanStyle keeps the allowed declarations of a style attribute that
// already matched styleRE, as "prop: value; prop: value".
func cleanStyle(v string) string {
	var b strings.Builder
	for decl := range strings.SplitSeq(v, ";") {
		prop, val, ok := strings.Cut(decl, ":")
		prop = strings.ToLower(strings.TrimSpace(prop))
		val = strings.Join(strings.Fields(val), " ")
		if !ok || val == "" || !styleProps[prop] || (prop == "display" && val != "none" && val != "block" && val != "inline" && val != "inline-block") {
			continue
		}
		if strings.HasPrefix(prop, "margin") && strings.Contains(val, "-") {
			continue // a negative margin can pull the mail over what surrounds it
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(prop + ": " + val)
	}
	return b.String()
}

// SanitizeHTML makes untrusted mail HTML safe to show to an agent: no
// script, style sheets, event handlers, forms, frames, objects or
// javascript:/data: URLs; images only from cid: references (remote,
// relative and data: images are removed); links get
// rel="nofollow noopener" target="_blank".
func SanitizeHTML(s string) string {
	clean := policy().Sanitize(validString(s))
	// A token pass (no tree rebuilding, so nothing is re-nested) sets the
	// link attributes uniformly, mailto: included, and drops images
	// bluemonday left without a source.
	z := html.NewTokenizer(strings.NewReader(clean))
	var b strings.Builder
	b.Grow(len(clean) + len(clean)/8)
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		t := z.Token()
		if (tt == html.StartTagToken || tt == html.SelfClosingTagToken) && t.DataAtom == atom.Img && attr(t.Attr, "src") == "" {
			continue
		}
		if tt == html.StartTagToken || tt == html.SelfClosingTagToken {
			kept := t.Attr[:0]
			for _, a := range t.Attr {
				if a.Key == "style" {
					if a.Val = cleanStyle(a.Val); a.Val == "" {
						continue
					}
				}
				kept = append(kept, a)
			}
			t.Attr = kept
		}
		if (tt == html.StartTagToken) && t.DataAtom == atom.A && attr(t.Attr, "href") != "" {
			kept := t.Attr[:0]
			for _, a := range t.Attr {
				if a.Key != "rel" && a.Key != "target" {
					kept = append(kept, a)
				}
			}
			t.Attr = append(kept, html.Attribute{Key: "rel", Val: "nofollow noopener"}, html.Attribute{Key: "target", Val: "_blank"})
		}
		b.WriteString(t.String())
	}
	return b.String()
}

func attr(attrs []html.Attribute, key string) string {
	for _, a := range attrs {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, names ...string) bool {
	for c := range strings.FieldsSeq(attr(n.Attr, "class")) {
		for _, name := range names {
			if strings.EqualFold(c, name) {
				return true
			}
		}
	}
	return false
}

// cidSrcs calls fn with the start and end offsets of each cid: reference
// value in src="cid:..." of sanitised HTML (bluemonday always writes
// lower-case names and double quotes), without the "cid:" prefix. A plain
// scan: a case-insensitive regexp costs more than the sanitiser here.
func cidSrcs(s string, fn func(start, end int)) {
	const marker = `src="cid:`
	for off := 0; ; {
		i := strings.Index(s[off:], marker)
		if i < 0 {
			return
		}
		start := off + i + len(marker)
		j := strings.IndexByte(s[start:], '"')
		if j < 0 {
			return
		}
		fn(start, start+j)
		off = start + j
	}
}

// unescapeHTMLAttr decodes the entities of an attribute value.
func unescapeHTMLAttr(s string) string { return html.UnescapeString(s) }

// RewriteCID replaces each src="cid:X" in sanitised HTML with
// src="url(X)" when url reports ok; other references are left as they
// are. The URL is attribute-escaped.
func RewriteCID(s string, url func(cid string) (string, bool)) string {
	var b strings.Builder
	last := 0
	cidSrcs(s, func(start, end int) {
		u, ok := url(unescapeHTMLAttr(s[start:end]))
		if !ok {
			return
		}
		b.WriteString(s[last : start-len("cid:")])
		b.WriteString(html.EscapeString(u))
		last = end
	})
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// parseBody parses an HTML document and returns its body element (the
// parser always makes one).
func parseBody(s string) *html.Node {
	doc, err := html.Parse(strings.NewReader(validString(s)))
	if err != nil {
		return nil
	}
	var find func(*html.Node) *html.Node
	find = func(n *html.Node) *html.Node {
		if n.Type == html.ElementNode && n.DataAtom == atom.Body {
			return n
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if b := find(c); b != nil {
				return b
			}
		}
		return nil
	}
	return find(doc)
}

// StripReplyHTML removes quoted history from an HTML reply: Gmail's
// div.gmail_quote (and its signature div), blockquote[type=cite] (Apple
// Mail, Thunderbird) with Thunderbird's attribution line, Yahoo's
// .yahoo_quoted, and Outlook's #divRplyFwdMsg or #appendonsend or header
// block (a border-top div starting with "From:") together with everything
// after it (and the <hr> before it). It returns the inner HTML of the body.
func StripReplyHTML(s string) string {
	body := parseBody(s)
	if body == nil {
		return ""
	}
	st := findReplyStructure(body)
	for _, d := range st.drops {
		d.n.Parent.RemoveChild(d.n)
	}
	if cut := st.cut; cut != nil {
		for n := cut; n != nil && n != body; n = n.Parent {
			for n.NextSibling != nil {
				n.Parent.RemoveChild(n.NextSibling)
			}
		}
		cut.Parent.RemoveChild(cut)
	}
	return renderChildren(body)
}

// replyStructure is what the markup of an HTML reply says about its
// quoted history and signature, before any text is read.
type replyStructure struct {
	// cut is where Outlook's history starts (its header block, or the
	// <hr> just before it): it and everything after it is history.
	cut *html.Node
	// drops are subtrees wholly quote or signature, in document order,
	// none inside another and all before cut.
	drops []foldNode
}

type foldNode struct {
	n    *html.Node
	kind foldKind
}

// findReplyStructure holds the markup rules of both StripReplyHTML and
// FoldHTML, so that the two cannot drift apart. Content that is not shown
// (script, style, svg...) is not looked into, as HTMLToText skips it too.
func findReplyStructure(body *html.Node) replyStructure {
	var st replyStructure
	var visit func(*html.Node)
	visit = func(n *html.Node) {
		if st.cut != nil {
			return
		}
		if n.Type == html.ElementNode {
			if invisible(n.DataAtom) {
				return
			}
			id := attr(n.Attr, "id")
			switch {
			case id == "divRplyFwdMsg" || id == "appendonsend" || hasClass(n, "OutlookMessageHeader"):
				st.cut = withHrBefore(n)
				return
			case n.DataAtom == atom.Div && strings.Contains(strings.ReplaceAll(strings.ToLower(attr(n.Attr, "style")), " ", ""), "border-top:solid") &&
				outlookHeaderRE.MatchString(strings.TrimSpace(textOf(n))):
				st.cut = withHrBefore(n)
				return
			case hasClass(n, "gmail_signature", "moz-signature"):
				st.drops = append(st.drops, foldNode{n, foldSignature})
				return
			case hasClass(n, "gmail_quote", "gmail_quote_container", "yahoo_quoted", "moz-cite-prefix"),
				n.DataAtom == atom.Blockquote && strings.EqualFold(attr(n.Attr, "type"), "cite"):
				st.drops = append(st.drops, foldNode{n, foldQuote})
				return
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			visit(c)
		}
	}
	for c := body.FirstChild; c != nil; c = c.NextSibling {
		visit(c) // the body itself may carry an id or class, but is never the history
	}
	return st
}

// withHrBefore returns the <hr> Outlook puts just before its header
// block, when there is one (whitespace between allowed), else n.
func withHrBefore(n *html.Node) *html.Node {
	p := n.PrevSibling
	for p != nil && (p.Type == html.CommentNode || p.Type == html.TextNode && strings.TrimSpace(p.Data) == "") {
		p = p.PrevSibling
	}
	if p != nil && p.Type == html.ElementNode && p.DataAtom == atom.Hr {
		return p
	}
	return n
}

// invisible reports the elements whose content is never shown as text.
func invisible(a atom.Atom) bool {
	switch a {
	case atom.Script, atom.Style, atom.Head, atom.Title, atom.Noscript, atom.Template, atom.Iframe, atom.Object, atom.Svg, atom.Math:
		return true
	}
	return false
}

// renderChildren returns the HTML of n's children.
func renderChildren(n *html.Node) string {
	var buf bytes.Buffer
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		_ = html.Render(&buf, c) // writes to memory; errors only come from the writer
	}
	return buf.String()
}

var outlookHeaderRE = regexp.MustCompile(`^(From|Von|De|Van|Da|Från|Fra)\s*:`)

// textOf returns the text content of n.
func textOf(n *html.Node) string {
	var b strings.Builder
	var f func(*html.Node)
	f = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			f(c)
		}
	}
	f(n)
	return b.String()
}

// HTMLToText renders HTML as readable plain text: block elements start new
// lines, list items get "- ", blockquote lines get "> ", <pre> keeps its
// spacing, entities are decoded and script, style and head are dropped.
func HTMLToText(s string) string {
	body := parseBody(s)
	if body == nil {
		return ""
	}
	t := &textWriter{}
	t.node(body)
	return t.String()
}

var blockAtoms = map[atom.Atom]bool{
	atom.P: true, atom.Div: true, atom.Table: true, atom.Tr: true, atom.Ul: true, atom.Ol: true,
	atom.Li: true, atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true, atom.H5: true, atom.H6: true,
	atom.Blockquote: true, atom.Pre: true, atom.Hr: true, atom.Section: true, atom.Article: true,
	atom.Header: true, atom.Footer: true, atom.Dl: true, atom.Dt: true, atom.Dd: true, atom.Address: true,
	atom.Center: true, atom.Form: true, atom.Fieldset: true, atom.Caption: true, atom.Tbody: true,
	atom.Thead: true, atom.Tfoot: true,
}

func isHeading(a atom.Atom) bool {
	switch a {
	case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
		return true
	}
	return false
}

// textWriter accumulates lines of text with collapsed whitespace, block
// gaps and a blockquote depth that prefixes lines with ">".
type textWriter struct {
	lines     []string
	cur       strings.Builder
	curDepth  int  // quote depth of the line being written
	lastDepth int  // quote depth of the last line written
	depth     int  // current blockquote nesting
	pre       int  // <pre> nesting
	space     bool // a collapsed space is pending
	blank     int  // blank lines wanted before the next line

	// With track set (FoldHTML), pieces records which node each line's
	// text came from, so that a decision about lines can be carried back
	// to the tree; the nodes in skip, and stop and everything after it,
	// are left out, as StripReplyHTML removes them.
	track   bool
	pieces  []textPiece
	open    []textPiece // pieces of the line being written
	skip    map[*html.Node]bool
	stop    *html.Node
	stopped bool
}

// textPiece is text from one node on one line: a text node (bytes
// [off:end] of its Data, which differ from the whole only in <pre>), an
// <img> through its alt text or an <hr>.
type textPiece struct {
	n        *html.Node
	off, end int
	line     int
}

// from records that the next text written comes from n[off:end].
func (t *textWriter) from(n *html.Node, off, end int) {
	if t.track {
		t.open = append(t.open, textPiece{n: n, off: off, end: end})
	}
}

func quotePrefix(depth int) string {
	if depth == 0 {
		return ""
	}
	return strings.Repeat(">", depth) + " "
}

func (t *textWriter) flushLine() {
	t.space = false
	if t.cur.Len() == 0 {
		return
	}
	if len(t.lines) > 0 {
		d := min(t.lastDepth, t.curDepth)
		for i := 0; i < t.blank; i++ {
			t.lines = append(t.lines, strings.Repeat(">", d))
		}
	}
	for _, p := range t.open {
		p.line = len(t.lines)
		t.pieces = append(t.pieces, p)
	}
	t.open = t.open[:0]
	t.lines = append(t.lines, quotePrefix(t.curDepth)+t.cur.String())
	t.cur.Reset()
	t.lastDepth = t.curDepth
	t.blank = 0
}

func (t *textWriter) breakLine(n int) {
	t.flushLine()
	if n-1 > t.blank {
		t.blank = n - 1
	}
}

func (t *textWriter) write(s string) {
	if s == "" {
		return
	}
	if t.cur.Len() == 0 {
		t.curDepth = t.depth
	} else if t.space {
		t.cur.WriteByte(' ')
	}
	t.space = false
	t.cur.WriteString(s)
}

// text writes s, the Data of the text node src (nil for other text).
// The parser leaves no CR in text, so offsets into s are offsets into
// src.Data.
func (t *textWriter) text(s string, src *html.Node) {
	if t.pre > 0 {
		off := 0
		for i, line := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
			if i > 0 {
				if t.cur.Len() > 0 {
					t.flushLine()
				} else {
					t.blank++
				}
			}
			if line != "" {
				if t.cur.Len() == 0 {
					t.curDepth = t.depth
				}
				if src != nil {
					t.from(src, off, off+len(line))
				}
				t.cur.WriteString(line)
			}
			off += len(line) + 1
		}
		return
	}
	fields := strings.Fields(s)
	if len(fields) == 0 {
		if s != "" && t.cur.Len() > 0 {
			t.space = true
		}
		return
	}
	if src != nil {
		t.from(src, 0, len(s))
	}
	if startsSpace(s) && t.cur.Len() > 0 {
		t.space = true
	}
	for i, f := range fields {
		if i > 0 {
			t.space = true
		}
		t.write(f)
	}
	if endsSpace(s) {
		t.space = true
	}
}

func startsSpace(s string) bool { return s != "" && strings.IndexByte(" \t\r\n\f", s[0]) >= 0 }
func endsSpace(s string) bool   { return s != "" && strings.IndexByte(" \t\r\n\f", s[len(s)-1]) >= 0 }

func (t *textWriter) node(n *html.Node) {
	if t.track {
		if n == t.stop {
			t.stopped = true
		}
		if t.stopped || t.skip[n] {
			return
		}
	}
	switch n.Type {
	case html.TextNode:
		t.text(n.Data, n)
		return
	case html.ElementNode:
	default:
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			t.node(c)
		}
		return
	}
	if invisible(n.DataAtom) {
		return
	}
	switch n.DataAtom {
	case atom.Br:
		if t.cur.Len() > 0 {
			t.flushLine()
		} else {
			t.blank++
		}
		return
	case atom.Img:
		if alt := strings.TrimSpace(attr(n.Attr, "alt")); alt != "" {
			t.from(n, 0, 0)
			t.text(" "+alt+" ", nil)
		}
		return
	case atom.Hr:
		t.breakLine(1)
		t.from(n, 0, 0)
		t.write("---")
		t.breakLine(1)
		return
	}
	gap := 0
	if blockAtoms[n.DataAtom] {
		gap = 1
		if n.DataAtom == atom.P || n.DataAtom == atom.Blockquote || isHeading(n.DataAtom) {
			gap = 2
		}
		t.breakLine(gap)
	}
	switch n.DataAtom {
	case atom.Blockquote:
		t.depth++
	case atom.Pre:
		t.pre++
	case atom.Li:
		t.write("-")
		t.space = true
	case atom.Td, atom.Th:
		if t.cur.Len() > 0 {
			t.space = true
		}
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		t.node(c)
	}
	switch n.DataAtom {
	case atom.Blockquote:
		t.flushLine()
		t.depth--
	case atom.Pre:
		t.pre--
	}
	if gap > 0 {
		t.breakLine(gap)
	}
}

// String ends the text and returns it.
func (t *textWriter) String() string {
	t.flushLine()
	return strings.Join(t.lines, "\n")
}
