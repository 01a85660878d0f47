package sms

import "testing"

func TestKeyword(t *testing.T) {
	tests := map[string]KeywordKind{
		"STOP": KeywordOptOut, "stop": KeywordOptOut, " Stop\n": KeywordOptOut, "\tsToP  ": KeywordOptOut,
		"STOPALL": KeywordOptOut, "unsubscribe": KeywordOptOut, "Cancel": KeywordOptOut, "END": KeywordOptOut,
		"quit": KeywordOptOut, "REVOKE": KeywordOptOut, "optout": KeywordOptOut,
		"START": KeywordOptIn, "yes": KeywordOptIn, "Unstop": KeywordOptIn,
		"HELP": KeywordHelp, "info": KeywordHelp, "\u00a0HELP\u00a0": KeywordHelp,

		"":                   KeywordNone,
		"   ":                KeywordNone,
		"stop please":        KeywordNone,
		"please stop":        KeywordNone,
		"STOP.":              KeywordNone,
		"STOP!":              KeywordNone,
		"S T O P":            KeywordNone,
		"opt out":            KeywordNone,
		"OPT-OUT":            KeywordNone,
		"UNSUBSCRIBEME":      KeywordNone,
		"yes please":         KeywordNone,
		"ſtop":               KeywordNone, // long s folds to s in Unicode, not in Twilio's match
		"ınfo":               KeywordNone, // dotless i
		"STOP\x00":           KeywordNone,
		"Hi, my order #1042": KeywordNone,
	}
	for body, want := range tests {
		if got := Keyword(body); got != want {
			t.Errorf("Keyword(%q) = %q, want %q", body, got, want)
		}
	}
}
