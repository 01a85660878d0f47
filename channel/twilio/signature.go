package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// SignatureHeader is the header Twilio puts its request signature in.
const SignatureHeader = "X-Twilio-Signature"

// Sign returns the X-Twilio-Signature Twilio would send for a POST of form
// to fullURL: base64(HMAC-SHA1(authToken, fullURL + name1 + value1 + ...)),
// the parameters sorted by name in byte order (case-sensitive) and a
// repeated name contributing one name+value per value, in the order the
// values appear in form. fullURL is used exactly as given (query included,
// no normalisation). Local stand-ins and tests use it to sign requests.
func Sign(authToken, fullURL string, form url.Values) string {
	return sign(authToken, fullURL, form, false)
}

// ValidateSignature reports whether signature is a valid X-Twilio-Signature
// for a form-encoded request of form to fullURL, the URL Twilio called (see
// PublicURL). form must hold every POST parameter received (Twilio adds
// parameters without notice, and all of them are signed) and no query
// parameters: those are part of fullURL.
//
// To match what Twilio and its SDKs accept it also tries:
//   - the URL without a fragment: Twilio's retry overrides ("#rc=3&rp=all")
//     live in the configured URL but are never sent, nor signed;
//   - the URL with the scheme's default port added or removed (https :443,
//     http :80), because Twilio may sign either form;
//   - for a repeated parameter name, its values sorted and de-duplicated, as
//     the official SDKs compute it, as well as the received order.
//
// An empty authToken or signature never validates (an HMAC under an empty
// key is forgeable by anyone). Comparison is constant-time.
func ValidateSignature(authToken, fullURL string, form url.Values, signature string) bool {
	if authToken == "" || signature == "" {
		return false
	}
	sortedDiffers := hasRepeats(form)
	for _, u := range urlVariants(fullURL) {
		if equal(sign(authToken, u, form, false), signature) {
			return true
		}
		if sortedDiffers && equal(sign(authToken, u, form, true), signature) {
			return true
		}
	}
	return false
}

// BodyHashParam is the query parameter carrying the hex SHA-256 of a JSON
// webhook body.
const BodyHashParam = "bodySHA256"

// ValidateJSONSignature validates a webhook whose body is not form-encoded
// (application/json): Twilio then signs the URL alone, and the URL carries
// the body's hex SHA-256 in the bodySHA256 query parameter. It reports true
// only when the signature is valid for fullURL (with the same fragment and
// port allowances as ValidateSignature) and bodySHA256 is present, single
// and equal to the hash of body.
func ValidateJSONSignature(authToken, fullURL string, body []byte, signature string) bool {
	if authToken == "" || signature == "" {
		return false
	}
	u, err := url.Parse(stripFragment(fullURL))
	if err != nil {
		return false
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return false
	}
	hashes := q[BodyHashParam]
	if len(hashes) != 1 {
		return false
	}
	want, err := hex.DecodeString(hashes[0])
	if err != nil {
		return false
	}
	got := sha256.Sum256(body)
	// Check the signature whatever the hash says, so the time taken does
	// not tell a forger which half failed.
	sigOK := ValidateSignature(authToken, fullURL, nil, signature)
	return hmac.Equal(got[:], want) && sigOK
}

// PublicURL returns the URL Twilio called for r: the configured public base
// URL (SWITCHBOARD_PUBLIC_URL, such as "https://sb.example.com") followed by
// r.URL.RequestURI(), path and query as received. r.Host and forwarding
// headers are never consulted: they are client-controlled, and behind a
// proxy they name the proxy's upstream, not what Twilio signed. A trailing
// slash on base is dropped. base may carry a path prefix for deployments
// whose proxy strips one before the request reaches Switchboard.
func PublicURL(base string, r *http.Request) string {
	return strings.TrimRight(base, "/") + r.URL.RequestURI()
}

func sign(authToken, fullURL string, form url.Values, sortValues bool) string {
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(fullURL))
	names := make([]string, 0, len(form))
	for name := range form {
		names = append(names, name)
	}
	slices.Sort(names) // Go compares strings bytewise: Twilio's order
	for _, name := range names {
		values := form[name]
		if sortValues {
			values = slices.Compact(slices.Sorted(slices.Values(values)))
		}
		for _, v := range values {
			mac.Write([]byte(name))
			mac.Write([]byte(v))
		}
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// hasRepeats reports whether some name has several values, the only case
// where the SDKs' sorted order can differ from the received one.
func hasRepeats(form url.Values) bool {
	for _, vs := range form {
		if len(vs) > 1 {
			return true
		}
	}
	return false
}

func equal(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }

func stripFragment(u string) string {
	if i := strings.IndexByte(u, '#'); i >= 0 {
		return u[:i]
	}
	return u
}

// urlVariants returns fullURL without its fragment and, when the scheme has
// a default port, the same URL with that port toggled. The URL is edited as
// text so that the path and query keep their exact bytes: re-encoding them
// would change what was signed.
func urlVariants(fullURL string) []string {
	u := stripFragment(fullURL)
	out := []string{u}
	schemeEnd := strings.Index(u, "://")
	if schemeEnd <= 0 {
		return out
	}
	var port string
	switch strings.ToLower(u[:schemeEnd]) {
	case "https":
		port = ":443"
	case "http":
		port = ":80"
	default:
		return out
	}
	authStart := schemeEnd + len("://")
	authEnd := len(u)
	if i := strings.IndexAny(u[authStart:], "/?"); i >= 0 {
		authEnd = authStart + i
	}
	authority := u[authStart:authEnd]
	hostStart := authStart
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		hostStart += i + 1 // keep any userinfo as it was
	}
	hostport := u[hostStart:authEnd]
	if hostport == "" {
		return out
	}
	switch {
	case strings.HasSuffix(hostport, port):
		out = append(out, u[:authEnd-len(port)]+u[authEnd:])
	case !hasPort(hostport):
		out = append(out, u[:authEnd]+port+u[authEnd:])
	}
	return out
}

// hasPort reports whether host (possibly a bracketed IPv6 literal) carries
// an explicit port.
func hasPort(hostport string) bool {
	i := strings.LastIndexByte(hostport, ':')
	return i >= 0 && i > strings.LastIndexByte(hostport, ']')
}
