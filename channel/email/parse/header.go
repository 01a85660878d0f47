package parse

import (
	"bufio"
	"bytes"
	"io"
	"net/mail"
	"regexp"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// readHeaders fills the header-derived fields of e.
func readHeaders(e *Email, h message.Header) {
	e.MessageID = firstMsgID(h.Get("Message-Id"))
	e.InReplyTo = msgIDs(h.Get("In-Reply-To"))
	e.References = msgIDs(h.Get("References"))
	if from := addressList(h.Get("From")); len(from) > 0 {
		e.From = from[0]
	} else if sender := addressList(h.Get("Sender")); len(sender) > 0 {
		e.From = sender[0]
	}
	e.ReplyTo = addressList(h.Get("Reply-To"))
	e.To = addressList(strings.Join(h.Values("To"), ", "))
	e.Cc = addressList(strings.Join(h.Values("Cc"), ", "))
	seen := map[string]bool{}
	for _, k := range []string{"Delivered-To", "X-Original-To", "Envelope-To"} {
		for _, v := range h.Values(k) {
			for _, a := range addressList(v) {
				if !seen[a.Addr] {
					seen[a.Addr] = true
					e.DeliveredTo = append(e.DeliveredTo, a.Addr)
				}
			}
		}
	}
	// The top Return-Path is the one the delivering MTA wrote.
	if rp := h.Values("Return-Path"); len(rp) > 0 {
		if a := addressList(rp[0]); len(a) > 0 {
			e.ReturnPath = a[0].Addr
		}
	}
	e.Subject = strings.TrimSpace(unfold(decodeWords(h.Get("Subject"))))
	e.Date = parseDate(h.Get("Date"))
}

// unfold replaces the line breaks left in a folded header with spaces.
func unfold(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", " ")
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

var msgIDRE = regexp.MustCompile(`<([^<>\s]+)>`)

// msgIDs extracts message ids from In-Reply-To or References. Ids are
// taken from <...>; a value without brackets is split on whitespace and
// commas, as some clients write it.
func msgIDs(v string) []string {
	v = headerText(v)
	if strings.TrimSpace(v) == "" {
		return nil
	}
	var ids []string
	if ms := msgIDRE.FindAllStringSubmatch(v, -1); len(ms) > 0 {
		for _, m := range ms {
			ids = append(ids, m[1])
		}
		return ids
	}
	for f := range strings.FieldsFuncSeq(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\r' || r == '\n' }) {
		if strings.Contains(f, "@") {
			ids = append(ids, f)
		}
	}
	return ids
}

// firstMsgID returns the Message-ID without brackets.
func firstMsgID(v string) string {
	ids := msgIDs(v)
	if len(ids) == 0 {
		if f := strings.Fields(headerText(v)); len(f) > 0 {
			return strings.Trim(f[0], "<>")
		}
		return ""
	}
	return ids[0]
}

// addressParser decodes RFC 2047 display names with every known charset.
var addressParser = &mail.AddressParser{WordDecoder: wordDecoder}

// addressList parses an address list, falling back to picking out what
// looks like addresses when the list does not follow RFC 5322 (unquoted
// commas or dots in names, missing brackets...).
func addressList(v string) []Address {
	v = strings.TrimSpace(unfold(headerText(v)))
	if v == "" {
		return nil
	}
	list, err := addressParser.ParseList(v)
	if err == nil {
		out := make([]Address, 0, len(list))
		for _, a := range list {
			out = append(out, Address{Name: strings.TrimSpace(validString(a.Name)), Addr: strings.ToLower(validString(a.Address))})
		}
		return out
	}
	return lenientAddresses(v)
}

var (
	angleAddrRE = regexp.MustCompile(`^(.*?)<\s*([^<>\s]+@[^<>\s]+)\s*>`)
	bareAddrRE  = regexp.MustCompile(`[^\s<>"(),;:]+@[^\s<>"(),;:]+`)
)

// lenientAddresses reads "Name <addr>" and bare addresses out of a list
// that net/mail refused.
func lenientAddresses(v string) []Address {
	var out []Address
	for v != "" {
		if m := angleAddrRE.FindStringSubmatchIndex(v); m != nil {
			before := v[m[2]:m[3]]
			// Bare addresses before the bracketed one belong to the list too.
			if bs := bareAddrRE.FindAllString(before, -1); len(bs) > 0 {
				for _, b := range bs {
					out = append(out, Address{Addr: strings.ToLower(b)})
				}
				before = before[strings.LastIndex(before, bs[len(bs)-1])+len(bs[len(bs)-1]):]
			}
			name := strings.Trim(strings.TrimSpace(before), `,;"' `)
			out = append(out, Address{Name: decodeWords(name), Addr: strings.ToLower(v[m[4]:m[5]])})
			v = v[m[1]:]
			continue
		}
		for _, b := range bareAddrRE.FindAllString(v, -1) {
			out = append(out, Address{Addr: strings.ToLower(b)})
		}
		break
	}
	return out
}

// dateLayouts are formats seen in the wild that net/mail.ParseDate refuses.
var dateLayouts = []string{
	"Mon, 2 Jan 2006 15:04:05 -0700 (MST)",
	"Mon, 2 Jan 2006 15:04:05 MST",
	"Mon, 2 Jan 2006 15:04 -0700",
	"2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 06 15:04:05 -0700",
	"Mon Jan 2 15:04:05 2006",
	"Mon Jan 2 15:04:05 MST 2006",
	time.RFC3339,
}

// parseDate returns the Date in UTC, zero when missing or unreadable.
func parseDate(v string) time.Time {
	v = strings.TrimSpace(unfold(v))
	if v == "" {
		return time.Time{}
	}
	if t, err := mail.ParseDate(v); err == nil {
		return t.UTC()
	}
	v = strings.Join(strings.Fields(v), " ")
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// headerMessageID returns the Message-ID of a header block (the returned
// message of a bounce, or its headers alone).
func headerMessageID(data []byte) string {
	hdr, _, _ := splitHeader(data)
	if len(hdr) == 0 {
		return ""
	}
	h, _ := textproto.ReadHeader(bufio.NewReader(io.MultiReader(bytes.NewReader(hdr), strings.NewReader("\r\n\r\n"))))
	return firstMsgID(h.Get("Message-Id"))
}

// isDaemon reports whether addr is a mail system's own sender.
func isDaemon(addr string) bool {
	local, _, _ := strings.Cut(addr, "@")
	switch local {
	case "mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon":
		return true
	}
	return false
}

// autoReason says why a message is automatic (RFC 3834, channels.md §5),
// or "" for a human message. The first matching rule names the reason.
func autoReason(h message.Header, from string) string {
	if v := strings.ToLower(strings.TrimSpace(h.Get("Auto-Submitted"))); v != "" {
		v, _, _ = strings.Cut(v, ";")
		if v = strings.TrimSpace(v); v != "no" {
			return "Auto-Submitted: " + headerText(v)
		}
	}
	for _, k := range []string{"X-Autoreply", "X-Autorespond", "X-Autoresponder"} {
		if strings.TrimSpace(h.Get(k)) != "" {
			return k
		}
	}
	switch p := strings.ToLower(strings.TrimSpace(h.Get("Precedence"))); p {
	case "bulk", "junk", "list", "auto_reply":
		return "Precedence: " + p
	}
	if v := strings.TrimSpace(h.Get("X-Auto-Response-Suppress")); v != "" {
		// Exchange marks its own automatic messages (OOF, recalls) so.
		for f := range strings.FieldsFuncSeq(strings.ToLower(v), func(r rune) bool { return r == ',' || r == ' ' }) {
			if f == "all" || f == "oof" || f == "autoreply" {
				return "X-Auto-Response-Suppress"
			}
		}
	}
	if h.Has("List-Id") {
		return "List-Id"
	}
	// The top Return-Path is the one our own MTA wrote at delivery.
	if rp := h.Values("Return-Path"); len(rp) > 0 && strings.ReplaceAll(rp[0], " ", "") == "<>" {
		return "Return-Path: <>"
	}
	if isDaemon(from) {
		return "mailer-daemon sender"
	}
	return ""
}
