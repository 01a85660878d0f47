package identity

import (
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// maxRawPhoneLen bounds the input handed to phonenumbers. E.164 numbers are
// at most 15 digits; this leaves room for spaces, punctuation and the
// "whatsapp:" prefix while keeping pasted essays away from the parser.
const maxRawPhoneLen = 64

// maxE164Digits is ITU-T E.164's limit, country code included.
const maxE164Digits = 15

// whatsAppPrefix is how Twilio addresses WhatsApp users ("whatsapp:+1415…").
const whatsAppPrefix = "whatsapp:"

// Phone validates a phone number and returns it in E.164 ("+14155550123").
//
// raw may be international ("+1 415-555-0123", "+44 20 7946 0958"), carry
// Twilio's "whatsapp:" prefix, use "tel:" (RFC 3966), or be national
// ("(415) 555-0123"), in which case defaultRegion (an ISO 3166-1 alpha-2
// code such as "US"; case-insensitive) supplies the country. With an empty
// defaultRegion only numbers written with + and a country code are accepted.
//
// A string of digits without + is always read as a national number of
// defaultRegion, never as a country code followed by a number: "447911123456"
// with region US is refused rather than guessed at. WhatsApp's wa_id is
// exactly such a string; use PhoneFromWAID for it.
//
// Numbers must be valid, not merely plausible: the number must fit a range
// assigned in the numbering plan of its country (per libphonenumber's
// metadata), so typos in length or area code are caught. Extensions are
// refused, since an identity must name a line that SMS, WhatsApp and voice
// can all reach.
func Phone(raw, defaultRegion string) (string, error) {
	s := strings.TrimSpace(raw)
	switch {
	case s == "":
		return "", invalid("phone number is empty")
	case len(s) > maxRawPhoneLen:
		return "", invalid("phone number is too long")
	case !utf8.ValidString(s):
		return "", invalid("phone number is not valid UTF-8")
	}
	if len(s) >= len(whatsAppPrefix) && strings.EqualFold(s[:len(whatsAppPrefix)], whatsAppPrefix) {
		s = strings.TrimSpace(s[len(whatsAppPrefix):])
	}
	region := strings.ToUpper(strings.TrimSpace(defaultRegion))
	if region != "" && !ValidRegion(region) {
		return "", invalid("phone region %q is not a known country code", defaultRegion)
	}

	num, err := phonenumbers.Parse(s, region)
	if err != nil {
		return "", parseError(err, region)
	}
	if num.GetExtension() != "" {
		return "", invalid("phone number has an extension; give a number without one")
	}
	if !phonenumbers.IsValidNumber(num) {
		return "", validityError(num)
	}
	e164 := phonenumbers.Format(num, phonenumbers.E164)
	// libphonenumber accepts some national plans' longest numbers (German
	// extensions, for one) beyond E.164's 15 digits; SMS and WhatsApp
	// providers do not.
	if len(e164)-1 > maxE164Digits {
		return "", invalid("phone number has more than %d digits", maxE164Digits)
	}
	return e164, nil
}

// ValidRegion reports whether region (case-insensitive) is an ISO 3166-1
// alpha-2 code that Phone can read national numbers in. Configuration
// checks its default region with it.
func ValidRegion(region string) bool {
	return phonenumbers.GetCountryCodeForRegion(strings.ToUpper(strings.TrimSpace(region))) != 0
}

// PhoneFromWAID turns a WhatsApp wa_id (the E.164 number without its +, as
// the Cloud API sends it in contacts[].wa_id and messages[].from) into an
// E.164 phone identity. It does not consult a default region: a wa_id always
// starts with the country code. The digits must already be canonical: the
// result is always "+" followed by waID, or an error.
func PhoneFromWAID(waID string) (string, error) {
	s := strings.TrimSpace(waID)
	switch {
	case s == "":
		return "", invalid("WhatsApp id is empty")
	case len(s) > maxE164Digits:
		return "", invalid("WhatsApp id is longer than %d digits", maxE164Digits)
	case s[0] == '0':
		return "", invalid("WhatsApp id must start with a country code, not 0")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", invalid("WhatsApp id must contain digits only")
		}
	}
	p, err := Phone("+"+s, "")
	if err != nil {
		return "", err
	}
	// A wa_id is E.164 already. If the parser had to rewrite it (a trunk 0
	// after the country code, say) it is not a wa_id WhatsApp would send,
	// and replies addressed by the stored value would not reach it.
	if p != "+"+s {
		return "", invalid("WhatsApp id is not a number in canonical E.164 form")
	}
	return p, nil
}

func parseError(err error, region string) error {
	switch {
	case errors.Is(err, phonenumbers.ErrInvalidCountryCode):
		if region == "" {
			return invalid("phone number must start with + and a country code")
		}
		return invalid("phone number has an unknown country code")
	case errors.Is(err, phonenumbers.ErrNotANumber):
		return invalid("phone number is not a number")
	case errors.Is(err, phonenumbers.ErrTooShortNSN), errors.Is(err, phonenumbers.ErrTooShortAfterIDD):
		return invalid("phone number is too short")
	case errors.Is(err, phonenumbers.ErrNumTooLong):
		return invalid("phone number is too long")
	}
	return invalid("phone number could not be read")
}

// validityError says why a parsed number is not valid, as precisely as the
// metadata allows, so a customer can fix a typo.
func validityError(num *phonenumbers.PhoneNumber) error {
	cc := num.GetCountryCode()
	where := phonenumbers.GetRegionCodeForNumber(num)
	if where == "" || where == "ZZ" {
		where = phonenumbers.GetRegionCodeForCountryCode(int(cc))
	}
	switch phonenumbers.IsPossibleNumberWithReason(num) {
	case phonenumbers.INVALID_COUNTRY_CODE:
		return invalid("phone number has an unknown country code +%d", cc)
	case phonenumbers.TOO_SHORT:
		return invalid("phone number is too short for country code +%d", cc)
	case phonenumbers.TOO_LONG:
		return invalid("phone number is too long for country code +%d", cc)
	case phonenumbers.INVALID_LENGTH:
		return invalid("phone number has the wrong number of digits for country code +%d", cc)
	}
	if where != "" && where != "ZZ" && where != "001" {
		return invalid("phone number is not a valid number in %s (+%d)", where, cc)
	}
	return invalid("phone number is not a valid number for country code +%d", cc)
}

// FormatPhone writes an E.164 number for people, in the international
// format ("+44 7911 123456"); a string it cannot read comes back as is.
func FormatPhone(e164 string) string {
	num, err := phonenumbers.Parse(e164, "")
	if err != nil {
		return e164
	}
	return phonenumbers.Format(num, phonenumbers.INTERNATIONAL)
}
