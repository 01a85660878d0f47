package twilio

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"

	"github.com/switchboard-inbox/switchboard/channel/refusal"
)

// maxWebhookBody bounds Twilio's form posts, which are a few kilobytes.
const maxWebhookBody = 64 << 10

// ReadSigned reads a Twilio webhook's form body and checks its
// X-Twilio-Signature against the public URL Twilio called (publicBase plus
// the request URI). On failure it returns the refusal code to answer and a
// reason safe to show; code is "" when the request is good.
func ReadSigned(w http.ResponseWriter, r *http.Request, authToken, publicBase string) (raw []byte, form url.Values, code refusal.Code, reason string) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, nil, refusal.TooLarge, "body too large"
	case err != nil:
		return nil, nil, refusal.Malformed, "body unreadable"
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
		return nil, nil, refusal.UnsupportedMediaType, "want application/x-www-form-urlencoded"
	}
	if form, err = url.ParseQuery(string(raw)); err != nil {
		return nil, nil, refusal.Malformed, "malformed form body"
	}
	if !ValidateSignature(authToken, PublicURL(publicBase, r), form, r.Header.Get(SignatureHeader)) {
		return nil, nil, refusal.BadSignature, "invalid or missing X-Twilio-Signature"
	}
	return raw, form, "", ""
}
