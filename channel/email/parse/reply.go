package parse

import (
	"regexp"
	"strings"
)

// Attribution lines that introduce quoted history ("On <date>, <name>
// wrote:") in the languages customers write most, tried on one line and
// on two lines joined (clients wrap long attributions).
var (
	attributionStartRE = regexp.MustCompile(`(?i)^\s*(On|Le|Am|El|Op|Il|Em|Den|På|W dniu|Dne)\s`)
	attributionRE      = regexp.MustCompile(`(?i)^\s*(` +
		`On\s.{1,300}\swrote\s?:` +
		`|Le\s.{1,300}\sa\sécrit\s?:` +
		`|Am\s.{1,300}\sschrieb\s.{0,300}:` +
		`|El\s.{1,300}\sescribió\s?:` +
		`|Op\s.{1,300}\sschreef\s.{0,300}:` +
		`|Il\s.{1,300}\sha\sscritto\s?:` +
		`|Em\s.{1,300}\sescreveu\s?:` +
		`|Den\s.{1,300}\sskrev\s.{0,300}:` +
		`)\s*$`)
	// "-----Original Message-----" and its translations.
	originalMessageRE = regexp.MustCompile(`(?i)^\s*-{2,}\s*(Original Message|Ursprüngliche Nachricht|Message d'origine|Mensaje original|Messaggio originale|Oorspronkelijk bericht|Mensagem original)\s*-{2,}\s*$`)
	underscoresRE     = regexp.MustCompile(`^\s*_{20,}\s*$`)
	// Outlook's header block: "From:" then "Sent:"/"Date:" (bold markers
	// of an HTML conversion allowed), in a few languages.
	outlookFromRE = regexp.MustCompile(`(?i)^\s*\*?(From|Von|De|Van|Da|Från|Fra)\s?:\*?\s`)
	outlookSentRE = regexp.MustCompile(`(?i)^\s*\*?(Sent|Date|Gesendet|Datum|Envoyé|Enviado|Fecha|Verzonden|Inviato|Data|Skickat|Sendt)\s?:\*?\s`)
	// Mobile and webmail signatures.
	mobileSigRE = regexp.MustCompile(`(?i)^\s*(Sent from my \S.{0,60}|Sent from (Yahoo Mail|Mail for Windows|Outlook|Gmail|Proton ?Mail)\b.{0,60}|Get Outlook for (iOS|Android)(\s*<[^>\s]*>)?|Sent via .{1,60}|Envoyé de mon .{1,40}|Von meinem .{1,40} gesendet|Enviado desde mi .{1,40}|Inviato da .{1,40})\s*$`)
)

// StripReply returns the new text of a plain-text reply: it cuts at the
// first attribution line ("On ... wrote:" and translations), Outlook
// header block or "-----Original Message-----" separator, then drops a
// trailing block of ">"-quoted lines, a "-- " or "--" signature and
// trailing "Sent from my iPhone"-style lines. Quoted lines interleaved with
// new text (an inline reply) are kept, attribution line included. The
// result has no trailing whitespace or leading blank lines and is never
// longer than text, and valid UTF-8 (invalid bytes are dropped).
func StripReply(text string) string {
	text = strings.ToValidUTF8(text, "") // dropping, not replacing, keeps the result no longer than text
	text = strings.ReplaceAll(text, "\r\n", "\n")
	lines := strings.Split(text, "\n")
	lines = lines[:splitReply(lines).text]
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	return strings.TrimRight(strings.Join(lines, "\n"), " \t\n")
}

// replyCuts says where StripReply's steps cut a text, as line indexes.
// Each step removes a tail of what the one before left, so the lines it
// removes form ranges in order, each wholly signature or quote:
// lines[:text] are the new text, lines[text:mobile] signature,
// lines[mobile:quoted] quote, lines[quoted:sig] signature and lines[sig:]
// quote. FoldHTML marks HTML by the same ranges, which is what keeps the
// marked HTML and StripReply in agreement.
type replyCuts struct {
	text   int // end of the new text
	mobile int // end of trailing "Sent from my iPhone"-style lines (and blank ones)
	quoted int // end of a ">" block just before a "-- " signature
	sig    int // end of the "-- " signature; the rest is quoted lines and history
}

// kind reports what line i is: new text, signature or quote.
func (c replyCuts) kind(i int) foldKind {
	switch {
	case i < c.text:
		return foldNone
	case i < c.mobile:
		return foldSignature
	case i < c.quoted:
		return foldQuote
	case i < c.sig:
		return foldSignature
	}
	return foldQuote
}

// splitReply applies StripReply's steps to lines: cut at the quoted
// history, drop a trailing ">" block, a "-- " signature, another ">" block,
// then trailing blank and "Sent from my iPhone"-style lines.
func splitReply(lines []string) replyCuts {
	end := len(lines)
	if i := historyStart(lines); i >= 0 {
		end = i
	}
	var c replyCuts
	c.sig = len(dropTrailingQuotes(lines[:end]))
	c.quoted = len(dropSignature(lines[:c.sig]))
	c.mobile = len(dropTrailingQuotes(lines[:c.quoted]))
	c.text = c.mobile
	for c.text > 0 {
		last := strings.TrimSpace(lines[c.text-1])
		if last == "" || mobileSigRE.MatchString(last) {
			c.text--
			continue
		}
		break
	}
	return c
}

// historyStart returns the index of the first line of quoted history, or
// -1.
func historyStart(lines []string) int {
	inline := inlineReplies(lines)
	for i, line := range lines {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, ">") {
			continue
		}
		if attributionStartRE.MatchString(line) {
			// Cheap test first: an attribution ends with a colon.
			if strings.HasSuffix(t, ":") && attributionRE.MatchString(line) && !inline[i+1] {
				return i
			}
			if i+1 < len(lines) && strings.HasSuffix(strings.TrimSpace(lines[i+1]), ":") &&
				attributionRE.MatchString(strings.TrimRight(line, " ")+" "+strings.TrimSpace(lines[i+1])) &&
				!inline[i+2] {
				return i
			}
		}
		if originalMessageRE.MatchString(line) {
			return i
		}
		if underscoresRE.MatchString(line) {
			if j := nextNonBlank(lines, i+1); j >= 0 && outlookFromRE.MatchString(lines[j]) {
				return i
			}
		}
		if outlookFromRE.MatchString(line) {
			if j := nextNonBlank(lines, i+1); j >= 0 && j <= i+2 && outlookSentRE.MatchString(lines[j]) {
				return i
			}
		}
	}
	return -1
}

func nextNonBlank(lines []string, from int) int {
	for j := from; j < len(lines); j++ {
		if strings.TrimSpace(lines[j]) != "" {
			return j
		}
	}
	return -1
}

// inlineReplies reports, for each i in 0..len(lines), whether lines[i:]
// hold an inline reply: new (unquoted) text after a quoted line, before
// any signature. One backward pass, so that many attribution lines cost
// linear time.
func inlineReplies(lines []string) []bool {
	res := make([]bool, len(lines)+2)
	textAfter := false // unquoted text follows, before a signature
	for i := len(lines) - 1; i >= 0; i-- {
		line := lines[i]
		t := strings.TrimSpace(line)
		switch {
		case t == "":
			res[i] = res[i+1]
		case strings.HasPrefix(t, ">"):
			res[i] = textAfter || res[i+1]
		case t == "--" || line == "-- " || mobileSigRE.MatchString(t):
			res[i], textAfter = false, false // the signature ends the reply
		default:
			res[i], textAfter = res[i+1], true
		}
	}
	return res
}

// dropTrailingQuotes removes the trailing block of quoted and blank lines.
func dropTrailingQuotes(lines []string) []string {
	end := len(lines)
	for end > 0 {
		t := strings.TrimSpace(lines[end-1])
		if t == "" || strings.HasPrefix(t, ">") {
			end--
			continue
		}
		break
	}
	return lines[:end]
}

// dropSignature cuts at the first "-- " (RFC 3676 §4.3) or "--" line that
// follows some text.
func dropSignature(lines []string) []string {
	seenText := false
	for i, line := range lines {
		l := strings.TrimRight(line, "\r")
		if seenText && (l == "-- " || l == "--") {
			return lines[:i]
		}
		if strings.TrimSpace(l) != "" {
			seenText = true
		}
	}
	return lines
}
