package parse

import (
	"crypto/rand"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// foldAttr is the attribute FoldHTML puts on the <div> around quoted
// history ("quote") and around a signature ("signature").
const foldAttr = "data-sb-fold"

// foldKind is what a part of a message is: new text, quote or signature.
type foldKind uint8

const (
	foldNone foldKind = iota
	foldQuote
	foldSignature
)

// String is the kind's data-sb-fold value.
func (k foldKind) String() string {
	switch k {
	case foldQuote:
		return "quote"
	case foldSignature:
		return "signature"
	}
	return ""
}

// FoldHTML sanitises like SanitizeHTML and then marks what StripReply
// would strip, so that a page can fold it: the quoted history, from its
// attribution line ("On ... wrote:") where there is one, is wrapped in
// <div data-sb-fold="quote">, and a signature in
// <div data-sb-fold="signature">. Everything outside these divs is the new
// text. The divs never nest and carry no other attribute; a sender's own
// data-sb-fold attributes never survive. Without anything to mark, the
// result is SanitizeHTML(s) unchanged.
//
// The decision is StripReplyHTML's markup rules (findReplyStructure) and
// then StripReply's line rules (splitReply) on the text HTMLToText makes
// of what is left, carried back to the nodes that text came from. For an
// HTML-only message it is therefore the decision that made Email.Reply,
// up to text the sanitiser removed.
func FoldHTML(s string) string {
	out, _ := foldHTML(s)
	return out
}

// foldHTML is FoldHTML, and returns the marked tree too, nil when the
// output is the sanitiser's unchanged.
func foldHTML(s string) (string, *html.Node) {
	raw := parseBody(s)
	if raw == nil {
		return SanitizeHTML(s), nil
	}
	// The markup rules need classes and ids, which the sanitiser removes,
	// so they run on the raw tree and the nodes they find are tagged with
	// a title (kept by the policy) the sender cannot guess, to be found
	// again after sanitising. Only then are the markers made: a sender
	// cannot bring one through the sanitiser.
	st := findReplyStructure(raw)
	hints := st.drops
	if st.cut != nil {
		hints = append(hints, foldNode{st.cut, foldNone})
	}
	clean, tag := "", ""
	var titles []*string // each hint's own title, nil when it had none
	if len(hints) == 0 {
		clean = SanitizeHTML(s)
	} else {
		tag = "sb-fold-" + rand.Text() + "-"
		for i, h := range hints {
			titles = append(titles, setAttr(h.n, "title", tag+strconv.Itoa(i)))
		}
		clean = SanitizeHTML(renderChildren(raw))
	}

	body := parseBody(clean)
	if body == nil {
		return clean, nil
	}
	forged := removeFoldAttrs(body) // the policy drops them already; this keeps the contract if it ever changes
	st, tagged := untag(body, tag, hints, titles)
	if !foldBody(body, st) && !forged && !tagged {
		return clean, nil
	}
	return renderChildren(body), body
}

// setAttr sets n's attribute key to val and returns its old value, nil
// when it had none.
func setAttr(n *html.Node, key, val string) *string {
	for i, a := range n.Attr {
		if a.Key == key && a.Namespace == "" {
			old := a.Val
			n.Attr[i].Val = val
			return &old
		}
	}
	n.Attr = append(n.Attr, html.Attribute{Key: key, Val: val})
	return nil
}

// removeFoldAttrs removes every data-sb-fold attribute under n and
// reports whether there was one.
func removeFoldAttrs(n *html.Node) bool {
	found := false
	if n.Type == html.ElementNode {
		kept := n.Attr[:0]
		for _, a := range n.Attr {
			if a.Key == foldAttr {
				found = true
				continue
			}
			kept = append(kept, a)
		}
		n.Attr = kept
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		found = removeFoldAttrs(c) || found
	}
	return found
}

// untag finds the hints FoldHTML tagged in the sanitised tree, gives them
// back their own titles, and returns the structure they describe and
// whether any tag was found. A hint the sanitiser dropped is lost; the
// line rules may still find what it marked.
func untag(body *html.Node, tag string, hints []foldNode, titles []*string) (replyStructure, bool) {
	var st replyStructure
	if tag == "" {
		return st, false
	}
	found := false
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			for i, a := range n.Attr {
				if a.Key != "title" || !strings.HasPrefix(a.Val, tag) {
					continue
				}
				found = true
				h, err := strconv.Atoi(a.Val[len(tag):])
				if err != nil || h < 0 || h >= len(hints) {
					n.Attr = slices.Delete(n.Attr, i, i+1)
					break
				}
				if titles[h] != nil {
					n.Attr[i].Val = *titles[h]
				} else {
					n.Attr = slices.Delete(n.Attr, i, i+1)
				}
				switch {
				case hints[h].kind != foldNone:
					st.drops = append(st.drops, foldNode{n, hints[h].kind})
				case st.cut == nil:
					st.cut = n
				}
				break
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(body)
	return st, found
}

// foldItem is a node that shows something, in document order: a text
// node, <img> or <hr>, or a whole subtree of the structure. known is false
// for content the text rendering does not show (an image without alt
// text), which neither starts nor ends a fold.
type foldItem struct {
	n     *html.Node
	kind  foldKind
	known bool
}

// foldBody wraps the quote and signature of body, as st and the line
// rules decide them, in data-sb-fold divs, and reports whether it made
// any.
func foldBody(body *html.Node, st replyStructure) bool {
	p := planFolds(body, st)
	// Last first: wrapping a fold splits nothing before its start, so the
	// folds before it are left as they were planned.
	for i := len(p.runs) - 1; i >= 0; i-- {
		r := p.runs[i]
		wrapFold(r.a, r.last, r.kind)
	}
	return len(p.runs) > 0
}

// foldPlan is what foldBody decided: the lines the decision read, every
// item that shows something with its kind, and the runs to wrap.
type foldPlan struct {
	lines []string
	items []foldItem
	runs  []foldRun
}

// foldRun is one fold to make: from item a to item last, both included.
type foldRun struct {
	a, last *html.Node
	kind    foldKind
}

// planFolds decides body's folds without changing anything but the split
// of <pre> text nodes.
func planFolds(body *html.Node, st replyStructure) foldPlan {
	drops := make(map[*html.Node]foldKind, len(st.drops))
	skip := make(map[*html.Node]bool, len(st.drops))
	for _, d := range st.drops {
		drops[d.n], skip[d.n] = d.kind, true
	}
	// The text StripReplyHTML would leave, and where each line came from.
	t := &textWriter{track: true, skip: skip, stop: st.cut}
	t.node(body)
	t.flushLine()
	kinds := leafKinds(t.pieces, splitReply(t.lines))

	var items []foldItem
	after := false // at or after st.cut: all history
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n == st.cut {
			after = true
		}
		switch {
		case n.Type == html.ElementNode && invisible(n.DataAtom):
			return
		case !after && drops[n] != foldNone:
			if hasContent(n) {
				items = append(items, foldItem{n, drops[n], true})
			}
			return
		case n.Type == html.TextNode && strings.TrimSpace(n.Data) != "",
			n.Type == html.ElementNode && (n.DataAtom == atom.Img || n.DataAtom == atom.Hr):
			k, known := kinds[n]
			if after {
				k, known = foldQuote, true
			}
			items = append(items, foldItem{n, k, known})
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(body)

	// A fold runs from the first item of its kind to the last item before
	// one of another kind (new text included): blank nodes between its
	// items are inside it, those after its last item are not, so that a
	// line break of the new text stays when the fold is hidden. Content
	// the text does not show goes with the fold it follows.
	var runs []foldRun
	var cur *foldRun
	for _, it := range items {
		if cur != nil && (!it.known || it.kind == cur.kind) {
			cur.last = it.n
			continue
		}
		if !it.known {
			continue
		}
		if cur != nil {
			runs = append(runs, *cur)
			cur = nil
		}
		if it.kind != foldNone {
			cur = &foldRun{a: it.n, last: it.n, kind: it.kind}
		}
	}
	if cur != nil {
		runs = append(runs, *cur)
	}
	return foldPlan{lines: t.lines, items: items, runs: runs}
}

// leafKinds gives each node that text came from the kind of its line.
// A <pre> text node whose lines are of different kinds is split where the
// kind changes, so that each node is of one kind.
func leafKinds(pieces []textPiece, cuts replyCuts) map[*html.Node]foldKind {
	kinds := make(map[*html.Node]foldKind, len(pieces))
	for i := 0; i < len(pieces); {
		j := i + 1
		for j < len(pieces) && pieces[j].n == pieces[i].n {
			j++
		}
		n := pieces[i].n
		kinds[n] = cuts.kind(pieces[i].line)
		// Right to left, so that the offsets into n.Data stay valid and
		// each tail goes in just after what is left of n.
		for k := j - 1; k > i; k-- {
			kind := cuts.kind(pieces[k].line)
			if kind == cuts.kind(pieces[k-1].line) {
				continue
			}
			tail := &html.Node{Type: html.TextNode, Data: n.Data[pieces[k].off:]}
			n.Data = n.Data[:pieces[k].off]
			n.Parent.InsertBefore(tail, n.NextSibling)
			kinds[tail] = kind
		}
		i = j
	}
	return kinds
}

// hasContent reports whether n shows anything: text other than white
// space, an image or a rule.
func hasContent(n *html.Node) bool {
	switch n.Type {
	case html.TextNode:
		return strings.TrimSpace(n.Data) != ""
	case html.ElementNode:
		if invisible(n.DataAtom) {
			return false
		}
		if n.DataAtom == atom.Img || n.DataAtom == atom.Hr {
			return true
		}
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if hasContent(c) {
			return true
		}
	}
	return false
}

// wrapFold wraps a, last and everything between them in a data-sb-fold
// div. The div goes into the lowest common ancestor that the two fill
// wholly (so that folding leaves no empty quote border or cell behind)
// and where a <div> child is parsed back where it was put. Ancestors
// below it that show something before a, or after last, are split in two,
// the new half a shallow copy, so that the fold is a run of that
// ancestor's children.
func wrapFold(a, last *html.Node, kind foldKind) {
	l := commonAncestor(a, last)
	for l.DataAtom != atom.Body && l.Parent != nil && !contentBefore(a, l) && !contentAfter(last, l) {
		l = l.Parent
	}
	for !divParentOK(l) {
		l = l.Parent
	}
	// a first: splitting there moves last along if they share an
	// ancestor, and splitting after last moves nothing before it.
	a = splitBefore(a, l)
	last = splitAfter(last, l)
	div := &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div,
		Attr: []html.Attribute{{Key: foldAttr, Val: kind.String()}}}
	l.InsertBefore(div, a)
	for n := a; n != nil; {
		next := n.NextSibling
		l.RemoveChild(n)
		div.AppendChild(n)
		if n == last {
			break
		}
		n = next
	}
}

// contentBefore reports whether anything inside l before n shows.
func contentBefore(n, l *html.Node) bool {
	for ; n != l; n = n.Parent {
		for s := n.PrevSibling; s != nil; s = s.PrevSibling {
			if hasContent(s) {
				return true
			}
		}
	}
	return false
}

// contentAfter reports whether anything inside l after n shows.
func contentAfter(n, l *html.Node) bool {
	for ; n != l; n = n.Parent {
		for s := n.NextSibling; s != nil; s = s.NextSibling {
			if hasContent(s) {
				return true
			}
		}
	}
	return false
}

// commonAncestor returns the lowest node that is a proper ancestor of
// both a and b (neither inside the other).
func commonAncestor(a, b *html.Node) *html.Node {
	a, b = a.Parent, b.Parent
	da, db := depth(a), depth(b)
	for ; da > db; da-- {
		a = a.Parent
	}
	for ; db > da; db-- {
		b = b.Parent
	}
	for a != b {
		a, b = a.Parent, b.Parent
	}
	return a
}

func depth(n *html.Node) int {
	d := 0
	for ; n != nil; n = n.Parent {
		d++
	}
	return d
}

// divParentOK reports whether a <div> put in n is parsed back in n: not in
// table structure (the parser moves it out), not inside a <p> (the
// parser closes the p) and not in SVG or MathML.
func divParentOK(n *html.Node) bool {
	if n.Type != html.ElementNode {
		return n.Type == html.DocumentNode
	}
	if n.DataAtom == atom.Body {
		return true
	}
	switch n.DataAtom {
	case atom.Table, atom.Tbody, atom.Thead, atom.Tfoot, atom.Tr, atom.Colgroup, atom.Col,
		atom.Select, atom.Optgroup, atom.Option, atom.Html, atom.Head, atom.Frameset, atom.Textarea, atom.Xmp, atom.Plaintext:
		return false
	}
	if invisible(n.DataAtom) {
		return false
	}
	for p := n; p != nil && p.DataAtom != atom.Body; p = p.Parent {
		if p.Type == html.ElementNode && (p.DataAtom == atom.P || p.Namespace != "") {
			return false
		}
	}
	return true
}

// splitBefore returns the child of l that starts at n, splitting each
// ancestor of n below l that shows something before n: n and what
// follows it move to a shallow copy of the ancestor, put just after it.
func splitBefore(n, l *html.Node) *html.Node {
	for n.Parent != l {
		p := n.Parent
		if contentBefore(n, p) {
			c := shallowCopy(p)
			p.Parent.InsertBefore(c, p.NextSibling)
			for m := n; m != nil; {
				next := m.NextSibling
				p.RemoveChild(m)
				c.AppendChild(m)
				m = next
			}
			p = c
		}
		n = p
	}
	return n
}

// splitAfter returns the child of l that ends at n, splitting each
// ancestor of n below l that shows something after n: what follows n
// moves to a shallow copy of the ancestor, put just after it.
func splitAfter(n, l *html.Node) *html.Node {
	for n.Parent != l {
		p := n.Parent
		if contentAfter(n, p) {
			c := shallowCopy(p)
			p.Parent.InsertBefore(c, p.NextSibling)
			for m := n.NextSibling; m != nil; {
				next := m.NextSibling
				p.RemoveChild(m)
				c.AppendChild(m)
				m = next
			}
		}
		n = p
	}
	return n
}

func shallowCopy(n *html.Node) *html.Node {
	return &html.Node{Type: n.Type, DataAtom: n.DataAtom, Data: n.Data, Namespace: n.Namespace, Attr: slices.Clone(n.Attr)}
}
