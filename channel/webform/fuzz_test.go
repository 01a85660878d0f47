package webform

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/identity"
)

const fuzzMaxBytes = 4 << 10

func FuzzParseSubmission(f *testing.F) {
	const mp = "multipart/form-data; boundary=XyZ"
	seeds := []struct{ ct, body string }{
		{"application/json", `{"name":"Ada","email":"Ada@Example.com","phone":"+1 415 555 0123","subject":"Hi","message":"Hello"}`},
		{"application/json", `{"email":"a@b.co","message":"x","website":"http://spam"}`},
		{"application/json", `{"email":"a@b.co","message":"x","phone":null,"extra":[1,2,{"a":true}]}`},
		{"application/json; charset=utf-8", `{"email":"a@b.co","message":"\u0000"}`},
		{"application/json", `{"email":"a@b.co","message":"\ud800 lone surrogate"}`},
		{"application/json", "{\"email\":\"a@b.co\",\"message\":\"caf\xe9\"}"},
		{"application/json", `[]`},
		{"application/json", `null`},
		{"application/json", `{"email":1}`},
		{"application/x-www-form-urlencoded", "name=Ada&email=ada%40example.com&message=Hi%0D%0Athere"},
		{"application/x-www-form-urlencoded", "email=ada%40example.com&message=hi&website=x"},
		{"application/x-www-form-urlencoded", "email=a%40b.co&email=c%40d.co&message=hi"},
		{"application/x-www-form-urlencoded", "email=a%40b.co;message=hi"},
		{"application/x-www-form-urlencoded", "email=%zz"},
		{"application/x-www-form-urlencoded; charset=latin1", "email=a%40b.co&message=hi"},
		{mp, "--XyZ\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\nada@example.com\r\n--XyZ\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\nhi\r\n--XyZ--\r\n"},
		{mp, "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\nx\r\n--XyZ--\r\n"},
		{mp, "--XyZ\r\nContent-Disposition: form-data; name=\"message\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nh=C3=A9\r\n--XyZ--\r\n"},
		{mp, "--XyZ\r\n\r\n"},
		{"multipart/form-data", "--XyZ--"},
		{"text/plain", "email=a@b.co"},
		{"", ""},
		{"application/json", `{"email":"a@b.co","message":"` + strings.Repeat("x", fuzzMaxBytes) + `"}`},
	}
	for _, s := range seeds {
		f.Add(s.ct, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/forms/contact", bytes.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		if len(body)%2 == 1 {
			r.ContentLength = -1 // exercise the streaming limit as well as the early one
		}
		sub, err := ParseSubmission(r, fuzzMaxBytes, "US")
		if err != nil {
			switch code := switchboard.ErrorCode(err); code {
			case switchboard.EINVALID, switchboard.ETOOLARGE, CodeUnsupportedMediaType:
			default:
				t.Fatalf("error code %q (%v)", code, err)
			}
			if sub != (Submission{}) {
				t.Fatalf("non-zero submission %+v with error %v", sub, err)
			}
			return
		}
		if sub.Honeypot {
			if sub != (Submission{Honeypot: true}) {
				t.Fatalf("honeypot submission carries fields: %+v", sub)
			}
			return
		}
		for _, v := range []string{sub.Name, sub.Email, sub.Phone, sub.Subject, sub.Message} {
			if !utf8.ValidString(v) {
				t.Fatalf("accepted invalid UTF-8 %q", v)
			}
		}
		if e, err := identity.Email(sub.Email); err != nil || e != sub.Email {
			t.Fatalf("email %q not normalised: %q, %v", sub.Email, e, err)
		}
		if sub.Phone != "" {
			if p, err := identity.Phone(sub.Phone, ""); err != nil || p != sub.Phone {
				t.Fatalf("phone %q not normalised: %q, %v", sub.Phone, p, err)
			}
		}
		if sub.Message == "" || strings.TrimSpace(sub.Message) != sub.Message || strings.Contains(sub.Message, "\r") {
			t.Fatalf("message %q not normalised", sub.Message)
		}
		for _, v := range []string{sub.Name, sub.Subject} {
			if strings.IndexFunc(v, unicode.IsControl) >= 0 || strings.TrimSpace(v) != v {
				t.Fatalf("single-line field %q has control characters or padding", v)
			}
		}
		if strings.ContainsRune(sub.Message, 0) {
			t.Fatalf("message has NUL")
		}
	})
}
