package sms

import "strings"

// KeywordKind is what a Twilio default keyword asks for.
type KeywordKind string

const (
	KeywordNone   KeywordKind = ""
	KeywordOptOut KeywordKind = "opt_out" // STOP and friends: block further sends
	KeywordOptIn  KeywordKind = "opt_in"  // START, YES, UNSTOP: lift the block
	KeywordHelp   KeywordKind = "help"    // HELP, INFO: Twilio answers; log only
)

// Keyword classifies an inbound body by Twilio's default opt-out keywords
// (channels.md §1). Like Twilio, it matches the whole body with surrounding
// white space trimmed, ignoring case: "stop" and " Stop\n" opt out, "stop
// please" and "STOP." do not. Case is folded for ASCII letters only, so
// look-alikes such as "ſtop" (long s) are not keywords.
func Keyword(body string) KeywordKind {
	s := strings.TrimSpace(body)
	if len(s) > len("UNSUBSCRIBE") { // the longest keyword; skips long bodies fast
		return KeywordNone
	}
	switch asciiUpper(s) {
	case "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT":
		return KeywordOptOut
	case "START", "YES", "UNSTOP":
		return KeywordOptIn
	case "HELP", "INFO":
		return KeywordHelp
	}
	return KeywordNone
}

// asciiUpper upper-cases a-z and nothing else: strings.ToUpper would also
// map 'ſ' to 'S' and 'ı' to 'I', turning look-alikes into keywords.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}
