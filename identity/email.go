package identity

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Limits from RFC 5321 §4.5.3.1: 64 octets of local part, and 254 for the
// whole address (the 256-octet path minus its angle brackets).
const (
	MaxEmailLocalLen = 64
	MaxEmailLen      = 254

	maxLabelLen = 63
	// maxRawEmailLen rejects absurd input before it reaches the parser;
	// surrounding white space counts here, so it is generous.
	maxRawEmailLen = 1024
)

// Email validates a bare e-mail address (name@example.com, no display name,
// no angle brackets, no comments) and returns it in the form identities are
// stored in: surrounding white space removed, Unicode NFC, lower-cased.
//
// The whole address is lower-cased, local part included: RFC 5321 lets a
// server treat the local part as case-sensitive, but no mainstream one does,
// and two identities for Bob@ and bob@ would split one customer in two.
//
// Rules beyond RFC 5322 syntax, chosen for a helpdesk where an address must
// be one a reply can reach:
//   - exactly one @, non-empty local part and domain;
//   - quoted local parts ("a b"@example.com) are refused: legal, but
//     practically never real, and a common vector for confusing look-alikes;
//   - the domain is a public-looking host name: at least two labels
//     (user@localhost and user@intranet are refused), each 1-63 octets of
//     letters, digits and inner hyphens, and a top-level label that is not
//     all digits; IP literals (user@[192.0.2.1]) are refused;
//   - internationalised addresses (RFC 6531) are accepted, but non-ASCII
//     characters must be letters, marks or digits, which keeps out invisible
//     and bidi-control characters used for spoofing;
//   - at most 64 octets of local part and 254 in total, counted on the
//     normalised form.
func Email(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	switch {
	case s == "":
		return "", invalid("email address is empty")
	case len(s) > maxRawEmailLen:
		return "", invalid("email address is longer than %d octets", MaxEmailLen)
	case !utf8.ValidString(s):
		return "", invalid("email address is not valid UTF-8")
	}
	// Normalise first so that every check below, the length limits above
	// all, applies to the value that is stored, not to what was typed.
	s = normaliseEmail(s)

	local, domain, ok := strings.Cut(s, "@")
	switch {
	case !ok:
		return "", invalid("email address has no @")
	case strings.Contains(domain, "@"):
		return "", invalid("email address must contain exactly one @")
	case local == "":
		return "", invalid("email address has nothing before the @")
	case domain == "":
		return "", invalid("email address has no domain after the @")
	case strings.HasPrefix(local, `"`):
		return "", invalid("email addresses with a quoted local part are not accepted")
	case strings.HasPrefix(domain, "["):
		return "", invalid("email addresses with an IP address as domain are not accepted")
	}

	a, err := mail.ParseAddress(s)
	if err != nil {
		// net/mail's errors quote the input; keep them out of the message.
		return "", invalid("email address is not a valid address")
	}
	// ParseAddress also accepts "Name <addr>", comments and quoting, and
	// returns the address unquoted; only an input that is already the bare
	// address survives this comparison.
	if a.Name != "" || a.Address != s {
		return "", invalid("email address must be a bare address like name@example.com")
	}

	switch {
	case len(local) > MaxEmailLocalLen:
		return "", invalid("email address has more than %d octets before the @", MaxEmailLocalLen)
	case len(s) > MaxEmailLen:
		return "", invalid("email address is longer than %d octets", MaxEmailLen)
	}
	if !plainRunes(local) {
		return "", invalid("email address contains characters that are not letters or digits")
	}
	if err := checkDomain(domain); err != nil {
		return "", err
	}
	return s, nil
}

// normaliseEmail lower-cases and NFC-composes s, repeating until the value
// is stable. One round is enough for every string seen in practice; the
// loop guarantees Email(Email(x)) == Email(x) for the rare code points whose
// lower-case form composes differently.
func normaliseEmail(s string) string {
	for range 4 {
		n := norm.NFC.String(strings.ToLower(s))
		if n == s {
			break
		}
		s = n
	}
	return s
}

// plainRunes reports whether every non-ASCII rune in s is a letter, mark or
// number. ASCII is left to net/mail's atext rules.
func plainRunes(s string) bool {
	for _, r := range s {
		if r >= utf8.RuneSelf && !unicode.IsLetter(r) && !unicode.IsMark(r) && !unicode.IsNumber(r) {
			return false
		}
	}
	return true
}

// checkDomain applies host-name rules (RFC 1123, with U-labels allowed).
func checkDomain(domain string) error {
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return invalid("email address domain must be a full domain name like example.com")
	}
	for _, l := range labels {
		switch {
		case l == "":
			return invalid("email address domain has an empty label")
		case len(l) > maxLabelLen:
			return invalid("email address domain has a label longer than %d octets", maxLabelLen)
		case l[0] == '-' || l[len(l)-1] == '-':
			return invalid("email address domain has a label that starts or ends with a hyphen")
		}
		for _, r := range l {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			case r >= utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsNumber(r)):
			default:
				return invalid("email address domain contains a character not allowed in host names")
			}
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return invalid("email address domain must be a domain name, not an IP address")
	}
	return nil
}
