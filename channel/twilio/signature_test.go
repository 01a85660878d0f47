package twilio

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http/httptest"
	"net/url"
	"testing"
)

// smsBody is the exact MMS webhook body of channels.md §1.
const smsBody = "AccountSid=AC00000000000000000000000000000000&ApiVersion=2010-04-01&Body=Hi%2C+my+order+%231042+arrived+damaged+%F0%9F%98%9E&From=%2B14155550123&FromCity=SAN+FRANCISCO&FromCountry=US&FromState=CA&FromZip=94107&MediaContentType0=image%2Fjpeg&MediaUrl0=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2FAC00000000000000000000000000000000%2FMessages%2FSM5f1c2e0a9b8d4c3e2f1a0b9c8d7e6f5a%2FMedia%2FME1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d&MessageSid=SM5f1c2e0a9b8d4c3e2f1a0b9c8d7e6f5a&MessagingServiceSid=MG0123456789abcdef0123456789abcdef&NumMedia=1&NumSegments=1&SmsMessageSid=SM5f1c2e0a9b8d4c3e2f1a0b9c8d7e6f5a&SmsSid=SM5f1c2e0a9b8d4c3e2f1a0b9c8d7e6f5a&SmsStatus=received&To=%2B14155550100&ToCity=SAN+FRANCISCO&ToCountry=US&ToState=CA&ToZip=94105"

const (
	smsToken = "test_auth_token_0123456789abcdef"
	smsURL   = "https://switchboard.example.com/webhooks/twilio/sms"
	smsSig   = "nwj6OSJYQrbKugXgp5apKNlfHoo="

	docToken = "12345"
	docURL   = "https://mycompany.com/myapp.php?foo=1&bar=2"
	docSig   = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
)

func docParams() url.Values {
	return url.Values{
		"CallSid": {"CA1234567890ABCDE"},
		"Caller":  {"+12349013030"},
		"Digits":  {"1234"},
		"From":    {"+12349013030"},
		"To":      {"+18005551212"},
	}
}

func smsForm(t *testing.T) url.Values {
	t.Helper()
	f, err := url.ParseQuery(smsBody)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSignVectors(t *testing.T) {
	if got := Sign(docToken, docURL, docParams()); got != docSig {
		t.Errorf("Twilio docs vector: Sign = %q, want %q", got, docSig)
	}
	if got := Sign(smsToken, smsURL, smsForm(t)); got != smsSig {
		t.Errorf("SMS vector: Sign = %q, want %q", got, smsSig)
	}
}

func TestValidateSignature(t *testing.T) {
	sms := smsForm(t)
	changedBody := smsForm(t)
	changedBody.Set("Body", changedBody.Get("Body")+"!")
	extraParam := smsForm(t)
	extraParam.Set("Injected", "1")
	missingParam := smsForm(t)
	missingParam.Del("FromZip")
	// One byte of the signature changed (still valid base64).
	badSig := "mwj6OSJYQrbKugXgp5apKNlfHoo="

	tests := []struct {
		name       string
		token, url string
		form       url.Values
		sig        string
		want       bool
	}{
		{"docs vector", docToken, docURL, docParams(), docSig, true},
		{"sms vector", smsToken, smsURL, sms, smsSig, true},
		{"sms with default port added", smsToken, "https://switchboard.example.com:443/webhooks/twilio/sms", sms, smsSig, true},
		{"sms with fragment", smsToken, smsURL + "#rc=3&rp=all", sms, smsSig, true},
		{"sms with port and fragment", smsToken, "https://switchboard.example.com:443/webhooks/twilio/sms#rc=5", sms, smsSig, true},
		{"docs with port added", docToken, "https://mycompany.com:443/myapp.php?foo=1&bar=2", docParams(), docSig, true},

		{"one byte of the signature changed", smsToken, smsURL, sms, badSig, false},
		{"body changed", smsToken, smsURL, changedBody, smsSig, false},
		{"extra parameter", smsToken, smsURL, extraParam, smsSig, false},
		{"parameter missing", smsToken, smsURL, missingParam, smsSig, false},
		{"wrong path", smsToken, "https://switchboard.example.com/webhooks/twilio/status", sms, smsSig, false},
		{"wrong host", smsToken, "https://evil.example.com/webhooks/twilio/sms", sms, smsSig, false},
		{"wrong scheme", smsToken, "http://switchboard.example.com/webhooks/twilio/sms", sms, smsSig, false},
		{"wrong port", smsToken, "https://switchboard.example.com:8443/webhooks/twilio/sms", sms, smsSig, false},
		{"http default port is not https's", smsToken, "https://switchboard.example.com:80/webhooks/twilio/sms", sms, smsSig, false},
		{"query dropped", docToken, "https://mycompany.com/myapp.php", docParams(), docSig, false},
		{"query reordered", docToken, "https://mycompany.com/myapp.php?bar=2&foo=1", docParams(), docSig, false},
		{"trailing slash", smsToken, smsURL + "/", sms, smsSig, false},
		{"wrong token", "test_auth_token_0123456789abcdeF", smsURL, sms, smsSig, false},
		{"missing signature", smsToken, smsURL, sms, "", false},
		{"empty token never validates", "", smsURL, sms, Sign("", smsURL, sms), false},
		{"signature not base64", smsToken, smsURL, sms, "not a signature", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidateSignature(tt.token, tt.url, tt.form, tt.sig); got != tt.want {
				t.Errorf("ValidateSignature = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestValidateSignaturePortVariants(t *testing.T) {
	form := url.Values{"A": {"1"}}
	tests := []struct{ signed, received string }{
		{"https://h.example/x?y=1", "https://h.example:443/x?y=1"},
		{"https://h.example:443/x?y=1", "https://h.example/x?y=1"},
		{"http://h.example/x", "http://h.example:80/x"},
		{"http://h.example:80/x", "http://h.example/x"},
		{"https://h.example:443", "https://h.example"},
		{"https://h.example?q=1", "https://h.example:443?q=1"},
		{"HTTPS://h.example/x", "HTTPS://h.example:443/x"},
		{"https://user:pw@h.example/x", "https://user:pw@h.example:443/x"},
		{"https://[2001:db8::1]/x", "https://[2001:db8::1]:443/x"},
		{"https://[2001:db8::1]:443/x", "https://[2001:db8::1]/x"},
	}
	for _, tt := range tests {
		sig := Sign("tok", tt.signed, form)
		if !ValidateSignature("tok", tt.received, form, sig) {
			t.Errorf("signed for %q, not accepted at %q", tt.signed, tt.received)
		}
	}
	// A non-default port is never toggled, nor is a default port of the
	// other scheme.
	for _, tt := range []struct{ signed, received string }{
		{"https://h.example/x", "https://h.example:8443/x"},
		{"https://h.example/x", "https://h.example:80/x"},
		{"http://h.example/x", "http://h.example:443/x"},
		{"https://h.example:8443/x", "https://h.example/x"},
		{"https://h.example/x", "https://h.example:/x"},
	} {
		sig := Sign("tok", tt.signed, form)
		if ValidateSignature("tok", tt.received, form, sig) {
			t.Errorf("signed for %q, wrongly accepted at %q", tt.signed, tt.received)
		}
	}
}

func TestSignRepeatedKeys(t *testing.T) {
	// Repeated names contribute name+value per value, in received order.
	form := url.Values{"b": {"2"}, "a": {"z", "y"}, "B": {"0"}}
	// Byte order puts "B" before "a" before "b"; compute by hand through an
	// equivalent URL-only signature: the signed string is the URL plus
	// "B0" "az" "ay" "b2".
	manual := Sign("tok", "https://h.example/pB0azayb2", nil)
	if got := Sign("tok", "https://h.example/p", form); got != manual {
		t.Fatalf("Sign with repeated keys = %q, want %q (URL + B0azayb2)", got, manual)
	}
	if !ValidateSignature("tok", "https://h.example/p", form, manual) {
		t.Error("received-order signature not accepted")
	}
	// The official SDKs sort and de-duplicate repeated values; accept that.
	sdk := Sign("tok", "https://h.example/pB0ayazb2", nil)
	if !ValidateSignature("tok", "https://h.example/p", form, sdk) {
		t.Error("SDK (sorted values) signature not accepted")
	}
	// Values are not interchangeable across names.
	other := url.Values{"b": {"2"}, "a": {"y"}, "B": {"0"}}
	if ValidateSignature("tok", "https://h.example/p", other, manual) {
		t.Error("signature accepted after a repeated value was dropped")
	}
}

func TestValidateJSONSignature(t *testing.T) {
	body := []byte(`{"CallSid":"CA1234567890ABCDE","Caller":"+12349013030"}`)
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	u := "https://example.com/myapp?bodySHA256=" + hash
	sig := Sign("tok", u, nil)

	if !ValidateJSONSignature("tok", u, body, sig) {
		t.Fatal("valid JSON signature refused")
	}
	if !ValidateJSONSignature("tok", "https://example.com:443/myapp?bodySHA256="+hash+"#rc=2", body, sig) {
		t.Error("port and fragment variants refused")
	}
	tampered := append([]byte{}, body...)
	tampered[3] ^= 1
	if ValidateJSONSignature("tok", u, tampered, sig) {
		t.Error("tampered body accepted")
	}
	// A forger who recomputes the hash cannot recompute the signature.
	sum2 := sha256.Sum256(tampered)
	u2 := "https://example.com/myapp?bodySHA256=" + hex.EncodeToString(sum2[:])
	if ValidateJSONSignature("tok", u2, tampered, sig) {
		t.Error("tampered body with matching hash but old signature accepted")
	}
	if ValidateJSONSignature("tok", "https://example.com/myapp", body, Sign("tok", "https://example.com/myapp", nil)) {
		t.Error("URL without bodySHA256 accepted")
	}
	dup := u + "&bodySHA256=" + hash
	if ValidateJSONSignature("tok", dup, body, Sign("tok", dup, nil)) {
		t.Error("repeated bodySHA256 accepted")
	}
	if ValidateJSONSignature("tok", u, body, "") || ValidateJSONSignature("", u, body, Sign("", u, nil)) {
		t.Error("empty signature or token accepted")
	}
	if ValidateJSONSignature("other", u, body, sig) {
		t.Error("wrong token accepted")
	}
}

func TestPublicURL(t *testing.T) {
	r := httptest.NewRequest("POST", "http://internal:8080/webhooks/twilio/sms?x=a%20b&y=1", nil)
	r.Host = "attacker.example"
	for _, base := range []string{"https://sb.example.com", "https://sb.example.com/"} {
		if got, want := PublicURL(base, r), "https://sb.example.com/webhooks/twilio/sms?x=a%20b&y=1"; got != want {
			t.Errorf("PublicURL(%q) = %q, want %q", base, got, want)
		}
	}
	r2 := httptest.NewRequest("POST", "/webhooks/twilio/status", nil)
	if got, want := PublicURL("https://sb.example.com/prefix", r2), "https://sb.example.com/prefix/webhooks/twilio/status"; got != want {
		t.Errorf("PublicURL with prefix = %q, want %q", got, want)
	}
	// End to end: what Twilio signed validates against what we rebuild.
	form := url.Values{"MessageSid": {"SM1"}}
	sig := Sign("tok", "https://sb.example.com/webhooks/twilio/sms?x=a%20b&y=1", form)
	if !ValidateSignature("tok", PublicURL("https://sb.example.com", r), form, sig) {
		t.Error("signature over the public URL not accepted")
	}
}
