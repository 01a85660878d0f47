package twilio

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/switchboard-inbox/switchboard/channel/refusal"
)

func TestReadSigned(t *testing.T) {
	const token, base, path = "test_auth_token", "https://sb.example.com", "/webhooks/twilio/sms"
	form := url.Values{"MessageSid": {"SM1"}, "Body": {"hi"}}
	req := func(body, ctype, sig string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		r.Header.Set("Content-Type", ctype)
		r.Header.Set(SignatureHeader, sig)
		return r
	}
	good := Sign(token, base+path, form)
	big := url.Values{"Body": {strings.Repeat("x", maxWebhookBody)}}
	for _, tt := range []struct {
		name string
		r    *http.Request
		want refusal.Code
	}{
		{"good", req(form.Encode(), "application/x-www-form-urlencoded; charset=utf-8", good), ""},
		{"bad signature", req(form.Encode(), "application/x-www-form-urlencoded", Sign("other", base+path, form)), refusal.BadSignature},
		{"no signature", req(form.Encode(), "application/x-www-form-urlencoded", ""), refusal.BadSignature},
		{"json", req(`{"MessageSid":"SM1"}`, "application/json", good), refusal.UnsupportedMediaType},
		{"bad form", req("a=%zz", "application/x-www-form-urlencoded", good), refusal.Malformed},
		{"too large", req(big.Encode(), "application/x-www-form-urlencoded", Sign(token, base+path, big)), refusal.TooLarge},
	} {
		_, got, code, reason := ReadSigned(httptest.NewRecorder(), tt.r, token, base)
		if code != tt.want || (code == "") != (reason == "") || (code == "") != (got != nil) {
			t.Errorf("%s: code %q reason %q form %v, want %q", tt.name, code, reason, got, tt.want)
		}
	}
}
