package identity

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/switchboard-inbox/switchboard"
)

func TestEmail(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name string
		in   string
		want string // "" means an error is expected
	}{
		{"plain", "bob@example.com", "bob@example.com"},
		{"mixed case", "Bob.Smith@Example.COM", "bob.smith@example.com"},
		{"surrounding space", "  bob@example.com\t\n", "bob@example.com"},
		{"plus tag", "bob+support@example.co.uk", "bob+support@example.co.uk"},
		{"atext symbols", "o'neil!#$%&*=?^_`{|}~-@example.org", "o'neil!#$%&*=?^_`{|}~-@example.org"},
		{"digits and hyphen domain", "x@mail-1.example.com", "x@mail-1.example.com"},
		{"subdomains", "a@b.c.d.example", "a@b.c.d.example"},
		{"idn domain", "user@Bücher.de", "user@bücher.de"},
		{"unicode local", "JOSÉ@example.com", "josé@example.com"},
		{"decomposed is composed", "jose\u0301@example.com", "jos\u00e9@example.com"},
		{"punycode domain", "user@xn--bcher-kva.de", "user@xn--bcher-kva.de"},
		{"local at limit", long(64) + "@example.com", long(64) + "@example.com"},
		{"total at limit", "a@" + long(63) + "." + long(63) + "." + long(63) + "." + long(60), "a@" + long(63) + "." + long(63) + "." + long(63) + "." + long(60)},

		{"empty", "", ""},
		{"spaces only", "   ", ""},
		{"no at", "bob.example.com", ""},
		{"two ats", "bob@foo@example.com", ""},
		{"empty local", "@example.com", ""},
		{"empty domain", "bob@", ""},
		{"no dot in domain", "bob@localhost", ""},
		{"single label", "bob@intranet", ""},
		{"ip literal", "bob@[192.0.2.1]", ""},
		{"dotted ip", "bob@192.0.2.1", ""},
		{"display name", "Bob <bob@example.com>", ""},
		{"angle brackets", "<bob@example.com>", ""},
		{"comment", "bob@example.com (Bob)", ""},
		{"quoted local", `"bob smith"@example.com`, ""},
		{"quoted plain local", `"bob"@example.com`, ""},
		{"space inside", "bob smith@example.com", ""},
		{"leading dot", ".bob@example.com", ""},
		{"trailing dot local", "bob.@example.com", ""},
		{"double dot local", "bo..b@example.com", ""},
		{"double dot domain", "bob@example..com", ""},
		{"trailing dot domain", "bob@example.com.", ""},
		{"leading dot domain", "bob@.example.com", ""},
		{"hyphen start label", "bob@-example.com", ""},
		{"hyphen end label", "bob@example-.com", ""},
		{"underscore domain", "bob@ex_ample.com", ""},
		{"bang domain", "bob@ex!ample.com", ""},
		{"local too long", long(65) + "@example.com", ""},
		{"total too long", "a@" + long(63) + "." + long(63) + "." + long(63) + "." + long(61), ""},
		{"label too long", "a@" + long(64) + ".com", ""},
		{"very long", long(5000) + "@example.com", ""},
		{"invalid utf8", "b\xffob@example.com", ""},
		{"nul", "bob\x00@example.com", ""},
		{"newline", "bob\n@example.com", ""},
		{"header injection", "bob@example.com\r\nBcc: eve@example.com", ""},
		{"zero width space", "bo\u200bb@example.com", ""},
		{"bidi override", "bob\u202e@example.com", ""},
		{"nbsp", "bob\u00a0x@example.com", ""},
		{"emoji", "\U0001F600@example.com", ""},
		{"two addresses", "a@example.com, b@example.com", ""},
		{"group", "team: a@example.com;", ""},
		{"comma", "a,b@example.com", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Email(tt.in)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("Email(%q) = %q, want error", tt.in, got)
				}
				if code := switchboard.ErrorCode(err); code != switchboard.EINVALID {
					t.Errorf("error code = %q, want %q (%v)", code, switchboard.EINVALID, err)
				}
				if got != "" {
					t.Errorf("Email returned %q with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Email(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("Email(%q) = %q, want %q", tt.in, got, tt.want)
			}
			again, err := Email(got)
			if err != nil || again != got {
				t.Fatalf("Email(%q) again = %q, %v; want stable", got, again, err)
			}
		})
	}
}

func TestEmailErrorDoesNotEchoInput(t *testing.T) {
	const secret = "s3cr3t-token"
	for _, in := range []string{secret + "@localhost", "Name <" + secret + "@example.com>", secret, `"` + secret + `"@x.y`} {
		_, err := Email(in)
		if err == nil {
			t.Fatalf("Email(%q): want error", in)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q echoes the input", err)
		}
	}
}

func FuzzEmail(f *testing.F) {
	for _, s := range []string{
		"bob@example.com", "Bob.Smith@Example.COM", "user@Bücher.de", "jose\u0301@example.com",
		"Bob <bob@example.com>", `"a b"@example.com`, "bob@[127.0.0.1]", "a@b", "@", "",
		"\u0130@example.com", "\u212a@example.com", "ǅ@example.com", "ﬀ@example.com",
		"a@xn--bcher-kva.de", "x\xff@example.com", strings.Repeat("a", 64) + "@example.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := Email(in)
		if err != nil {
			if got != "" {
				t.Fatalf("Email(%q) returned %q with error %v", in, got, err)
			}
			if switchboard.ErrorCode(err) != switchboard.EINVALID {
				t.Fatalf("Email(%q): error code %q, want %q", in, switchboard.ErrorCode(err), switchboard.EINVALID)
			}
			return
		}
		if !utf8.ValidString(got) {
			t.Fatalf("Email(%q) = %q: not valid UTF-8", in, got)
		}
		if strings.Count(got, "@") != 1 || len(got) > MaxEmailLen {
			t.Fatalf("Email(%q) = %q breaks the shape rules", in, got)
		}
		if got != strings.ToLower(got) {
			t.Fatalf("Email(%q) = %q is not lower-case", in, got)
		}
		again, err := Email(got)
		if err != nil {
			t.Fatalf("Email(%q) = %q, which is then refused: %v", in, got, err)
		}
		if again != got {
			t.Fatalf("Email not stable: %q -> %q -> %q", in, got, again)
		}
	})
}
