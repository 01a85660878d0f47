package sms

import (
	"math"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

func TestSegments(t *testing.T) {
	rep := strings.Repeat
	tests := []struct {
		name       string
		text       string
		enc        string
		segments   int
		units      int
		perSegment int
		forcedBy   string
		tooLong    bool
	}{
		{"empty", "", EncodingGSM7, 0, 0, 160, "", false},
		{"one char", "a", EncodingGSM7, 1, 1, 160, "", false},
		{"GSM-7 160", rep("a", 160), EncodingGSM7, 1, 160, 160, "", false},
		{"GSM-7 161", rep("a", 161), EncodingGSM7, 2, 161, 153, "", false},
		{"GSM-7 153*2", rep("a", 306), EncodingGSM7, 2, 306, 153, "", false},
		{"GSM-7 153*2+1", rep("a", 307), EncodingGSM7, 3, 307, 153, "", false},
		{"GSM-7 basic non-ASCII", "Ça va? 5$ @ £3, ¥ ¤ §¿¡ ÄÖÑÜ äöñüà ΔΦΓΛΩΠΨΣΘΞ ÆæßÉ øØåÅ èéùìò _", EncodingGSM7, 1, 63, 160, "", false},
		{"80 euro signs = 160 septets", rep("€", 80), EncodingGSM7, 1, 160, 160, "", false},
		{"81 euro signs", rep("€", 81), EncodingGSM7, 2, 162, 153, "", false},
		{"every extension char costs two", "^{}\\[~]|€\f", EncodingGSM7, 1, 20, 160, "", false},
		{"159 + extension = 161", rep("a", 159) + "€", EncodingGSM7, 2, 161, 153, "", false},
		// 152 + € would end at 154: the pair moves whole to part 2, which
		// then overflows by one, so 306 septets need 3 parts, not 2.
		{"extension at the part boundary", rep("a", 152) + "€" + rep("a", 152), EncodingGSM7, 3, 306, 153, "", false},
		{"extension just fits the boundary", rep("a", 151) + "€" + rep("a", 153), EncodingGSM7, 2, 306, 153, "", false},

		{"one emoji", "😀", EncodingUCS2, 1, 2, 70, "😀", false},
		{"emoji in text", "Thanks! 👍 see you", EncodingUCS2, 1, 18, 70, "👍", false},
		{"first forcing char reported", "abc😀ж", EncodingUCS2, 1, 6, 70, "😀", false},
		{"UCS-2 70 units", rep("ж", 70), EncodingUCS2, 1, 70, 70, "ж", false},
		{"UCS-2 71 units", rep("ж", 71), EncodingUCS2, 2, 71, 67, "ж", false},
		{"UCS-2 67*2", rep("ж", 134), EncodingUCS2, 2, 134, 67, "ж", false},
		{"UCS-2 67*2+1", rep("ж", 135), EncodingUCS2, 3, 135, 67, "ж", false},
		{"Chinese", "你好，我的订单还没到。", EncodingUCS2, 1, 11, 70, "你", false},
		{"Chinese 2 parts", rep("订单", 36), EncodingUCS2, 2, 72, 67, "订", false},
		{"35 emoji = 70 units", rep("😀", 35), EncodingUCS2, 1, 70, 70, "😀", false},
		{"36 emoji", rep("😀", 36), EncodingUCS2, 2, 72, 67, "😀", false},
		// 66 units + a surrogate pair would straddle unit 67.
		{"emoji at the 67-unit boundary", rep("ж", 66) + "😀" + rep("ж", 66), EncodingUCS2, 3, 134, 67, "ж", false},
		{"emoji fits the 67-unit boundary", rep("ж", 65) + "😀" + rep("ж", 67), EncodingUCS2, 2, 134, 67, "ж", false},
		{"one accent forces UCS-2", "Ça coûte 5€", EncodingUCS2, 1, 11, 70, "û", false},
		{"lower-case ç is not GSM", "ç", EncodingUCS2, 1, 1, 70, "ç", false},
		{"backtick is not GSM", "a`b", EncodingUCS2, 1, 3, 70, "`", false},
		{"tab is not GSM", "a\tb", EncodingUCS2, 1, 3, 70, "\t", false},
		{"curly quote is not GSM", "it’s", EncodingUCS2, 1, 4, 70, "’", false},
		{"invalid UTF-8 reads as U+FFFD", "a\xffb", EncodingUCS2, 1, 3, 70, "\uFFFD", false},
		{"CR LF are GSM", "a\r\nb", EncodingGSM7, 1, 4, 160, "", false},

		{"1600 chars", rep("a", 1600), EncodingGSM7, 11, 1600, 153, "", false},
		{"1601 chars", rep("a", 1601), EncodingGSM7, 11, 1601, 153, "", true},
		// 33 emoji (66 units) fill a part: 1600/33 → 49 parts.
		{"1600 emoji are 1600 chars", rep("😀", 1600), EncodingUCS2, 49, 3200, 67, "😀", false},
		{"1601 emoji", rep("😀", 1601), EncodingUCS2, 49, 3202, 67, "😀", true},
		{"1601 chars in UCS-2", rep("ж", 1601), EncodingUCS2, 24, 1601, 67, "ж", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Segments(tt.text)
			want := SegmentInfo{
				Encoding: tt.enc, Segments: tt.segments, Units: tt.units, PerSegment: tt.perSegment,
				ForcedBy: tt.forcedBy, Chars: utf8.RuneCountInString(tt.text), TooLong: tt.tooLong,
			}
			if got != want {
				t.Errorf("Segments = %+v\n          want %+v", got, want)
			}
		})
	}
}

// TestGSMTables pins the size of GSM 03.38's tables: 127 basic characters
// (128 codes less the escape) and 10 in the extension table.
func TestGSMTables(t *testing.T) {
	basic, ext := 0, 0
	for r := rune(0); r <= utf8.MaxRune; r++ {
		switch gsmSeptets(r) {
		case 1:
			basic++
		case 2:
			ext++
		}
	}
	if basic != 127 || ext != 10 {
		t.Errorf("tables have %d basic and %d extension characters, want 127 and 10", basic, ext)
	}
}

func TestCost(t *testing.T) {
	if got := Cost(Segments(strings.Repeat("a", 161)), 0.0079); math.Abs(got-0.0158) > 1e-12 {
		t.Errorf("Cost = %v, want 0.0158", got)
	}
	if got := Cost(Segments(""), 0.0079); got != 0 {
		t.Errorf("Cost of nothing = %v", got)
	}
}

func FuzzSegments(f *testing.F) {
	for _, s := range []string{"", "a", "€", "😀", strings.Repeat("a", 152) + "€a", "ж\xff", "\f\t`", strings.Repeat("你😀", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		info := Segments(s)
		if info.Chars != utf8.RuneCountInString(s) || info.TooLong != (info.Chars > MaxChars) {
			t.Fatalf("chars %d tooLong %v for %d runes", info.Chars, info.TooLong, utf8.RuneCountInString(s))
		}
		if (s == "") != (info.Segments == 0) {
			t.Fatalf("%d segments for %q", info.Segments, s)
		}
		switch info.Encoding {
		case EncodingGSM7:
			if info.ForcedBy != "" {
				t.Fatalf("GSM-7 forced by %q", info.ForcedBy)
			}
			septets := 0
			for _, r := range s {
				n := gsmSeptets(r)
				if n == 0 {
					t.Fatalf("GSM-7 chosen for %q", r)
				}
				septets += n
			}
			if info.Units != septets || info.Units < info.Chars || info.Units > 2*info.Chars {
				t.Fatalf("GSM-7 units %d, septets %d, chars %d", info.Units, septets, info.Chars)
			}
		case EncodingUCS2:
			forced, _ := utf8.DecodeRuneInString(info.ForcedBy)
			if info.ForcedBy == "" || gsmSeptets(forced) != 0 || !strings.Contains(strings.ToValidUTF8(s, "\uFFFD"), info.ForcedBy) {
				t.Fatalf("UCS-2 forced by %q", info.ForcedBy)
			}
			if want := len(utf16.Encode([]rune(s))); info.Units != want {
				t.Fatalf("UCS-2 units %d, want %d", info.Units, want)
			}
		default:
			t.Fatalf("encoding %q", info.Encoding)
		}
		if info.Segments == 0 {
			return
		}
		single, multi := GSM7Single, GSM7Multipart
		if info.Encoding == EncodingUCS2 {
			single, multi = UCS2Single, UCS2Multipart
		}
		switch {
		case info.Units <= single:
			if info.Segments != 1 || info.PerSegment != single {
				t.Fatalf("%d units in %d segments of %d", info.Units, info.Segments, info.PerSegment)
			}
		default:
			// Keeping pairs whole wastes at most one unit per part.
			lo := (info.Units + multi - 1) / multi
			hi := (info.Units + multi - 2) / (multi - 1)
			if info.PerSegment != multi || info.Segments < lo || info.Segments > hi {
				t.Fatalf("%d units in %d segments of %d, want %d..%d", info.Units, info.Segments, info.PerSegment, lo, hi)
			}
		}
	})
}
