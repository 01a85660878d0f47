package switchboard_test

import (
	"testing"

	"github.com/switchboard-inbox/switchboard"
)

func TestCleanText(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                    "plain",
		"café ☕":                   "café ☕",
		"tab\tand\nnewline":        "tab\tand\nnewline",
		"nul\x00byte":              "nulbyte",
		"bell\a, esc\x1b[0m, cr\r": "bell, esc[0m, cr",
		"bad \xff utf-8":           "bad \uFFFD utf-8",
		"\x00":                     "",
	} {
		if got := switchboard.CleanText(in); got != want {
			t.Errorf("CleanText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNormalize(t *testing.T) {
	in := switchboard.Inbound{ProviderID: "id\x00", SenderName: "A\x00na", Subject: "s\x01", Text: "t\x00ext", HTML: "<p>\x00</p>",
		Identities:  []switchboard.IdentityRef{{Kind: switchboard.IdentityEmail, Value: "a\x00@b.c"}},
		Claims:      []switchboard.IdentityRef{{Kind: switchboard.IdentityPhone, Value: "+1\x00"}},
		InReplyTo:   []string{"<x\x00@y>"},
		Attachments: []switchboard.Attachment{{Name: "f\x00.png", Transcript: "hi\x00"}}}
	in.Normalize()
	if in.ProviderID != "id" || in.SenderName != "Ana" || in.Subject != "s" || in.Text != "text" || in.HTML != "<p></p>" ||
		in.Identities[0].Value != "a@b.c" || in.Claims[0].Value != "+1" || in.InReplyTo[0] != "<x@y>" ||
		in.Attachments[0].Name != "f.png" || in.Attachments[0].Transcript != "hi" {
		t.Fatalf("normalised: %+v", in)
	}
}
