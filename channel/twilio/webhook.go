package twilio

import (
	"io"
	"mime"
	"net/http"
	"net/url"
)

// maxWebhookBody bounds Twilio's form posts, which are a few kilobytes.
const maxWebhookBody = 64 << 10

// ReadSigned reads a Twilio webhook's form body and checks its
// X-Twilio-Signature against the public URL Twilio called (publicBase plus
// the request URI). On failure it returns the HTTP status to answer and a
// reason safe to show; status is 0 when the request is good.
func ReadSigned(w http.ResponseWriter, r *http.Request, authToken, publicBase string) (raw []byte, form url.Values, status int, reason string) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		return nil, nil, http.StatusRequestEntityTooLarge, "body too large or unreadable"
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
		return nil, nil, http.StatusUnsupportedMediaType, "want application/x-www-form-urlencoded"
	}
	if form, err = url.ParseQuery(string(raw)); err != nil {
		return nil, nil, http.StatusBadRequest, "malformed form body"
	}
	if !ValidateSignature(authToken, PublicURL(publicBase, r), form, r.Header.Get(SignatureHeader)) {
		return nil, nil, http.StatusForbidden, "invalid or missing X-Twilio-Signature"
	}
	return raw, form, 0, ""
}
