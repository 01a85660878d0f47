package parse

import (
	"regexp"
	"strings"

	"github.com/emersion/go-message"
)

// Bounce is what a delivery status notification says about a message we
// sent.
type Bounce struct {
	Recipients        []BounceRecipient
	OriginalMessageID string // Message-ID of the returned message or its headers, without <>
}

// BounceRecipient is one per-recipient block of an RFC 3464 report.
type BounceRecipient struct {
	FinalRecipient string // address, lower-cased, without the "rfc822;" type
	Action         string // failed, delayed, delivered, relayed, expanded (lower-cased)
	Status         string // RFC 3463 code like "5.1.1"
	Diagnostic     string // Diagnostic-Code without its "smtp;" type
}

// Permanent reports whether delivery to the recipient has failed for good.
func (r BounceRecipient) Permanent() bool {
	return r.Action == "failed" || strings.HasPrefix(r.Status, "5.")
}

var statusRE = regexp.MustCompile(`\b([245]\.\d{1,3}\.\d{1,3})\b`)

// parseDSN reads the per-recipient fields of a message/delivery-status
// body (RFC 3464 §2.3): blocks of header-like fields separated by blank
// lines, the first block being per-message.
func parseDSN(data []byte) []BounceRecipient {
	text := normalizeNewlines(latin1Fallback(data))
	var out []BounceRecipient
	for block := range strings.SplitSeq(text, "\n\n") {
		fields := dsnFields(block)
		if fields["final-recipient"] == "" && fields["original-recipient"] == "" && fields["action"] == "" {
			continue
		}
		rcpt := fields["final-recipient"]
		if rcpt == "" {
			rcpt = fields["original-recipient"]
		}
		r := BounceRecipient{
			FinalRecipient: strings.ToLower(strings.Trim(typed(rcpt), "<> ")),
			Action:         strings.ToLower(firstWord(fields["action"])),
			Diagnostic:     typed(fields["diagnostic-code"]),
		}
		if m := statusRE.FindStringSubmatch(fields["status"]); m != nil {
			r.Status = m[1]
		}
		out = append(out, r)
	}
	return out
}

// dsnFields unfolds and splits one block of "Name: value" lines; the
// first occurrence of a name wins.
func dsnFields(block string) map[string]string {
	fields := map[string]string{}
	var key string
	for line := range strings.SplitSeq(block, "\n") {
		if line == "" {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && key != "" {
			fields[key] += " " + strings.TrimSpace(line)
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			key = ""
			continue
		}
		key = strings.ToLower(strings.TrimSpace(k))
		if _, dup := fields[key]; dup {
			key = "" // keep the first; drop the duplicate's continuation lines
			continue
		}
		fields[key] = strings.TrimSpace(v)
	}
	return fields
}

// typed drops the address-type or diagnostic-type prefix ("rfc822;",
// "smtp;") of a DSN field.
func typed(v string) string {
	if t, rest, ok := strings.Cut(v, ";"); ok && !strings.ContainsAny(t, " <@") {
		return strings.TrimSpace(rest)
	}
	return strings.TrimSpace(v)
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// nonStandardBounce builds a Bounce for a mail-system message that returns
// our message without an RFC 3464 report (Exim and qmail-style bounces):
// the recipients come from Exim's X-Failed-Recipients header, the status
// from the first RFC 3463 code in the text; Action is "failed" since these
// formats only report failures.
func nonStandardBounce(h message.Header, text, origID string) *Bounce {
	b := &Bounce{OriginalMessageID: origID}
	var status string
	if m := statusRE.FindStringSubmatch(text); m != nil {
		status = m[1]
	}
	for _, v := range h.Values("X-Failed-Recipients") {
		for _, a := range addressList(v) {
			b.Recipients = append(b.Recipients, BounceRecipient{FinalRecipient: a.Addr, Action: "failed", Status: status})
		}
	}
	return b
}
