package identity

import (
	"strings"
	"testing"

	"github.com/switchboard-inbox/switchboard"
)

func TestPhone(t *testing.T) {
	tests := []struct {
		name, in, region string
		want             string // "" means an error is expected
		errHas           string // substring of the error message, when set
	}{
		{name: "international with dashes", in: "+1 415-555-0123", region: "", want: "+14155550123"},
		{name: "international any region", in: "+1 415-555-0123", region: "GB", want: "+14155550123"},
		{name: "national US", in: "(415) 555-0123", region: "US", want: "+14155550123"},
		{name: "national US lower-case region", in: "415.555.0123", region: "us", want: "+14155550123"},
		{name: "US with trunk 1", in: "1 (415) 555-0123", region: "US", want: "+14155550123"},
		{name: "e164 already", in: "+14155550123", region: "US", want: "+14155550123"},
		{name: "whatsapp prefix", in: "whatsapp:+14155550123", region: "", want: "+14155550123"},
		{name: "whatsapp prefix upper", in: "WhatsApp: +1 415 555 0123", region: "", want: "+14155550123"},
		{name: "tel uri", in: "tel:+1-415-555-0123", region: "", want: "+14155550123"},
		{name: "surrounding space", in: "  +14155550123 \n", region: "", want: "+14155550123"},
		{name: "UK mobile national", in: "07911 123456", region: "GB", want: "+447911123456"},
		{name: "UK mobile international", in: "+44 7911 123456", region: "US", want: "+447911123456"},
		{name: "UK with (0)", in: "+44 (0)20 7946 0958", region: "", want: "+442079460958"},
		{name: "Germany", in: "030 123456789", region: "DE", want: "+4930123456789"},
		{name: "Italy leading zero kept", in: "+39 06 6982 1234", region: "", want: "+390669821234"},
		{name: "Brazil mobile", in: "(11) 91234-5678", region: "BR", want: "+5511912345678"},
		{name: "India", in: "+91 98765 43210", region: "", want: "+919876543210"},
		{name: "IDD from US", in: "011 44 7911 123456", region: "US", want: "+447911123456"},
		{name: "IDD from GB", in: "00 1 415 555 0123", region: "GB", want: "+14155550123"},
		{name: "full-width digits", in: "+１ ４１５ ５５５ ０１２３", region: "", want: "+14155550123"},
		{name: "vanity letters", in: "+1 415 555 CALL", region: "", want: "+14155552255"},

		{name: "empty", in: "", region: "US", errHas: "empty"},
		{name: "spaces", in: "   ", region: "US", errHas: "empty"},
		{name: "national without region", in: "(415) 555-0123", region: "", errHas: "country code"},
		{name: "wa_id needs PhoneFromWAID", in: "447911123456", region: "US"},
		{name: "bad region", in: "4155550123", region: "XX", errHas: "region"},
		{name: "not a number", in: "call me maybe", region: "US", errHas: "not a number"},
		{name: "too short", in: "+1 415", region: "", errHas: "short"},
		{name: "too long", in: "+1 415 555 0123 4567 8901", region: "", errHas: "long"},
		{name: "valid for libphonenumber but over 15 digits", in: "+49 201 0000 2200 200", region: "", errHas: "more than 15 digits"},
		{name: "unknown country code", in: "+999 123456789", region: "", errHas: "country code"},
		{name: "invalid US area code", in: "+1 099 555 0123", region: "", errHas: "not a valid number"},
		{name: "extension", in: "+1 415 555 0123 ext. 12", region: "", errHas: "extension"},
		{name: "invalid utf8", in: "+1415555\xff0123", region: "", errHas: "UTF-8"},
		{name: "huge", in: strings.Repeat("1", 500), region: "US", errHas: "too long"},
		{name: "just plus", in: "+", region: "", errHas: ""},
		{name: "whatsapp prefix only", in: "whatsapp:", region: "US"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Phone(tt.in, tt.region)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("Phone(%q, %q) = %q, want error", tt.in, tt.region, got)
				}
				if code := switchboard.ErrorCode(err); code != switchboard.EINVALID {
					t.Errorf("error code = %q, want %q", code, switchboard.EINVALID)
				}
				if tt.errHas != "" && !strings.Contains(switchboard.ErrorMessage(err), tt.errHas) {
					t.Errorf("error %q does not mention %q", err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("Phone(%q, %q): %v", tt.in, tt.region, err)
			}
			if got != tt.want {
				t.Fatalf("Phone(%q, %q) = %q, want %q", tt.in, tt.region, got, tt.want)
			}
			for _, r := range []string{"", tt.region, "GB"} {
				if again, err := Phone(got, r); err != nil || again != got {
					t.Fatalf("Phone(%q, %q) = %q, %v; want stable", got, r, again, err)
				}
			}
		})
	}
}

func TestPhoneFromWAID(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"14155550123", "+14155550123"},
		{"447911123456", "+447911123456"},
		{" 5511912345678 ", "+5511912345678"},
		{"", ""},
		{"+14155550123", ""},
		{"04155550123", ""},
		{"1415555012a", ""},
		{"1 415 555 0123", ""},
		{"1234567890123456", ""},
		{"999123456789", ""},
		{"1415", ""},
		{"430217000000", ""}, // trunk 0 after the country code: not canonical
	}
	for _, tt := range tests {
		got, err := PhoneFromWAID(tt.in)
		if tt.want == "" {
			if err == nil || switchboard.ErrorCode(err) != switchboard.EINVALID {
				t.Errorf("PhoneFromWAID(%q) = %q, %v; want EINVALID error", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("PhoneFromWAID(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func FuzzPhone(f *testing.F) {
	for _, s := range [][2]string{
		{"+1 415-555-0123", ""}, {"(415) 555-0123", "US"}, {"whatsapp:+14155550123", ""},
		{"14155550123", "US"}, {"07911 123456", "GB"}, {"+44 (0)20 7946 0958", ""},
		{"tel:+1-415-555-0123;ext=1", ""}, {"011 44 7911 123456", "US"}, {"+", ""},
		{"+800 1234 5678", ""}, {"+1 415 555 CALL", "zz"}, {"+39 06 6982 1234", "IT"},
		{"\uff0b\uff11\uff14", ""}, {"*#06#", "US"}, {"tel:7042;phone-context=example.com", "US"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, in, region string) {
		got, err := Phone(in, region)
		if err != nil {
			if got != "" || switchboard.ErrorCode(err) != switchboard.EINVALID {
				t.Fatalf("Phone(%q, %q) = %q, %v; want \"\" and EINVALID", in, region, got, err)
			}
			return
		}
		if len(got) < 3 || got[0] != '+' || len(got) > 16 {
			t.Fatalf("Phone(%q, %q) = %q: not E.164", in, region, got)
		}
		for _, c := range got[1:] {
			if c < '0' || c > '9' {
				t.Fatalf("Phone(%q, %q) = %q: not E.164", in, region, got)
			}
		}
		for _, r := range []string{"", region, "US"} {
			again, err := Phone(got, r)
			if err != nil || again != got {
				t.Fatalf("Phone(%q, %q) = %q, then Phone(%q, %q) = %q, %v", in, region, got, got, r, again, err)
			}
		}
		if w, err := PhoneFromWAID(got[1:]); err != nil || w != got {
			t.Fatalf("PhoneFromWAID(%q) = %q, %v; want %q", got[1:], w, err, got)
		}
	})
}

func FuzzPhoneFromWAID(f *testing.F) {
	for _, s := range []string{"14155550123", "447911123456", "0", "", "1234567890123456", "+1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := PhoneFromWAID(in)
		if err != nil {
			if got != "" || switchboard.ErrorCode(err) != switchboard.EINVALID {
				t.Fatalf("PhoneFromWAID(%q) = %q, %v", in, got, err)
			}
			return
		}
		if got != "+"+strings.TrimSpace(in) {
			t.Fatalf("PhoneFromWAID(%q) = %q, want the digits with +", in, got)
		}
		if again, err := Phone(got, ""); err != nil || again != got {
			t.Fatalf("Phone(%q) = %q, %v; want stable", got, again, err)
		}
	})
}

func TestValidRegion(t *testing.T) {
	for _, r := range []string{"US", "us", " GB ", "DE", "BR"} {
		if !ValidRegion(r) {
			t.Errorf("ValidRegion(%q) = false", r)
		}
	}
	for _, r := range []string{"", "XX", "ZZ", "USA", "001", "u"} {
		if ValidRegion(r) {
			t.Errorf("ValidRegion(%q) = true", r)
		}
	}
}
