package sms

import "unicode/utf8"

// Encodings an SMS body is sent in.
const (
	EncodingGSM7 = "GSM-7"
	EncodingUCS2 = "UCS-2"
)

// Segment capacities (3GPP TS 23.040): a concatenated part loses room to
// its user data header, 7 septets or 3 UCS-2 units.
const (
	GSM7Single    = 160
	GSM7Multipart = 153
	UCS2Single    = 70
	UCS2Multipart = 67
)

// MaxChars is the longest body Twilio accepts, counted in Unicode code
// points (Twilio advises at most 320).
const MaxChars = 1600

// SegmentInfo describes how a body would be sent.
type SegmentInfo struct {
	Encoding string // EncodingGSM7 or EncodingUCS2
	// Segments is the number of SMS parts billed: 0 for an empty body.
	Segments int
	// Units is the encoded length: septets for GSM-7 (an extension-table
	// character costs two), UTF-16 code units for UCS-2 (a character
	// outside the BMP, most emoji, costs two).
	Units int
	// PerSegment is the capacity of each part in Units: 160/70 for a
	// single part, 153/67 when the body is split.
	PerSegment int
	// ForcedBy is the first character outside the GSM 03.38 tables, which
	// forced UCS-2; "" for GSM-7.
	ForcedBy string
	// Chars is the length in Unicode code points, the unit of MaxChars.
	Chars int
	// TooLong is set when Chars exceeds MaxChars.
	TooLong bool
}

// Segments computes the encoding and part count of text as a carrier would
// send it without any character substitution ("smart encoding").
//
// Parts are counted by packing characters greedily, never splitting a
// character across parts: a GSM-7 escape pair or a UTF-16 surrogate pair
// that does not fit the end of a part moves whole to the next one, so a
// body can need more parts than Units/PerSegment rounded up. Invalid UTF-8
// counts as U+FFFD, which forces UCS-2.
func Segments(text string) SegmentInfo {
	info := SegmentInfo{Encoding: EncodingGSM7, Chars: utf8.RuneCountInString(text)}
	info.TooLong = info.Chars > MaxChars
	for _, r := range text {
		n := gsmSeptets(r)
		if n == 0 {
			info.Encoding = EncodingUCS2
			info.ForcedBy = string(r)
			break
		}
		info.Units += n
	}
	cost, single, multi := gsmSeptets, GSM7Single, GSM7Multipart
	if info.Encoding == EncodingUCS2 {
		cost, single, multi = utf16Units, UCS2Single, UCS2Multipart
		info.Units = 0
		for _, r := range text {
			info.Units += utf16Units(r)
		}
	}
	switch {
	case info.Units == 0:
		info.PerSegment = single
	case info.Units <= single:
		info.Segments, info.PerSegment = 1, single
	default:
		info.PerSegment = multi
		info.Segments = 1
		used := 0
		for _, r := range text {
			n := cost(r)
			if used+n > multi {
				info.Segments++
				used = 0
			}
			used += n
		}
	}
	return info
}

// Cost is the price of sending info's body at pricePerSegment.
func Cost(info SegmentInfo, pricePerSegment float64) float64 {
	return float64(info.Segments) * pricePerSegment
}

func utf16Units(r rune) int {
	if r >= 0x10000 && r <= utf8.MaxRune {
		return 2
	}
	return 1
}

// gsmSeptets returns how many septets r takes in GSM 03.38: 1 for the basic
// table, 2 for the extension table (escape + code), 0 when r is in
// neither. A switch rather than a map keeps the table immutable.
func gsmSeptets(r rune) int {
	if r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
		return 1
	}
	switch r {
	// Basic table: the ASCII punctuation it shares...
	case '\n', '\r', ' ', '!', '"', '#', '$', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
		':', ';', '<', '=', '>', '?', '@', '_',
		// ...and the rest, in table order.
		'£', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', 'Ø', 'ø', 'Å', 'å',
		'Δ', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', 'Æ', 'æ', 'ß', 'É',
		'¤', '¡', 'Ä', 'Ö', 'Ñ', 'Ü', '§', '¿', 'ä', 'ö', 'ñ', 'ü', 'à':
		return 1
	// Extension table, reached through the escape septet.
	case '\f', '^', '{', '}', '\\', '[', '~', ']', '|', '€':
		return 2
	}
	return 0
}
