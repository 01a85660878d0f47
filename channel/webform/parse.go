package webform

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/identity"
	"github.com/switchboard-inbox/switchboard/internal/bufpool"
)

// Field names the form posts, in every encoding.
const (
	FieldName    = "name"
	FieldEmail   = "email"
	FieldPhone   = "phone"
	FieldSubject = "subject"
	FieldMessage = "message"
	// FieldHoneypot is hidden from people by the form's CSS; bots that fill
	// every input fill it too.
	FieldHoneypot = "website"
)

// Limits on single-line fields. The message is bounded by the body limit.
const (
	maxNameLen    = 256
	maxSubjectLen = 512
	// maxParts bounds the work a multipart body can ask for; a contact form
	// has half a dozen fields, plus perhaps a button and a CSRF token.
	maxParts = 64
)

// CodeUnsupportedMediaType is the error code ParseSubmission uses beyond
// the root package's.
const CodeUnsupportedMediaType = "unsupported_media_type"

// Submission is a parsed and validated form post.
type Submission struct {
	Name    string // single line, may be empty
	Email   string // normalised by identity.Email
	Phone   string // E.164 by identity.Phone, or empty when not given
	Subject string // single line, may be empty
	Message string // non-empty, line endings normalised to \n
	// Honeypot is set when the hidden field was filled. The other fields are
	// then left empty and unvalidated: the post is to be dropped, and a bot
	// must not learn from a validation error that it was spotted.
	Honeypot bool
}

// ParseSubmission reads and validates a form post: the body is
// application/x-www-form-urlencoded, multipart/form-data (fields only, no
// files) or application/json (an object of string fields), in UTF-8 and at
// most maxBytes long (DefaultMaxBodyBytes when maxBytes <= 0). Phone numbers
// without a country code are read in defaultRegion.
//
// Errors are *switchboard.Error: EINVALID for a malformed body or a bad
// field, ETOOLARGE for an oversize body and CodeUnsupportedMediaType for any
// other content type or charset. Fields not listed above are ignored.
// ParseSubmission has no side effects beyond reading r.Body.
func ParseSubmission(r *http.Request, maxBytes int64, defaultRegion string) (Submission, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBodyBytes
	}
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		return Submission{}, unsupported()
	}
	if cs := params["charset"]; cs != "" && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return Submission{}, switchboard.Errorf(CodeUnsupportedMediaType, "only the UTF-8 charset is accepted")
	}
	if r.ContentLength > maxBytes {
		return Submission{}, tooLarge(maxBytes)
	}
	var body io.Reader = http.NoBody
	if r.Body != nil {
		// A nil ResponseWriter is allowed; the handler wraps the body once
		// more with its writer so that the server drops the connection.
		body = http.MaxBytesReader(nil, r.Body, maxBytes)
	}

	var fields map[string][]string
	switch mt {
	case "application/x-www-form-urlencoded":
		fields, err = readURLEncoded(body, maxBytes)
	case "multipart/form-data":
		fields, err = readMultipart(body, params["boundary"], maxBytes)
	case "application/json":
		fields, err = readJSON(body, maxBytes)
	default:
		return Submission{}, unsupported()
	}
	if err != nil {
		return Submission{}, err
	}
	return validate(fields, defaultRegion)
}

func unsupported() error {
	return switchboard.Errorf(CodeUnsupportedMediaType,
		"Content-Type must be application/x-www-form-urlencoded, multipart/form-data or application/json")
}

func tooLarge(max int64) error {
	return switchboard.Errorf(switchboard.ETOOLARGE, "request body is larger than %d bytes", max)
}

// readErr maps a body read error: the size limit is the client's to fix,
// anything else (a dropped connection, mostly) is a bad request.
func readErr(err error, max int64) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return tooLarge(max)
	}
	return switchboard.Errorf(switchboard.EINVALID, "could not read the request body")
}

// readBody reads the body into a pooled buffer, to give back with
// bufpool.Put: what the form keeps is copied out of it.
func readBody(body io.Reader, max int64) (*bytes.Buffer, error) {
	buf := bufpool.Get()
	if _, err := buf.ReadFrom(body); err != nil {
		bufpool.Put(buf)
		return nil, readErr(err, max)
	}
	return buf, nil
}

func readURLEncoded(body io.Reader, max int64) (map[string][]string, error) {
	buf, err := readBody(body, max)
	if err != nil {
		return nil, err
	}
	defer bufpool.Put(buf)
	values, err := url.ParseQuery(buf.String())
	if err != nil {
		return nil, switchboard.Errorf(switchboard.EINVALID, "form body is not valid URL encoding")
	}
	return values, nil
}

// readMultipart reads the parts itself rather than through
// Request.ParseMultipartForm, which would spool files to disk: a contact
// form has no business receiving files.
func readMultipart(body io.Reader, boundary string, max int64) (map[string][]string, error) {
	if boundary == "" {
		return nil, switchboard.Errorf(switchboard.EINVALID, "multipart Content-Type has no boundary")
	}
	mr := multipart.NewReader(body, boundary)
	fields := map[string][]string{}
	for n := 0; ; n++ {
		p, err := mr.NextPart()
		if err == io.EOF {
			return fields, nil
		}
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return nil, tooLarge(max)
			}
			return nil, switchboard.Errorf(switchboard.EINVALID, "multipart body is malformed")
		}
		if n >= maxParts {
			return nil, switchboard.Errorf(switchboard.EINVALID, "form has more than %d fields", maxParts)
		}
		if p.FileName() != "" {
			return nil, switchboard.Errorf(switchboard.EINVALID, "file uploads are not accepted")
		}
		v, err := io.ReadAll(p)
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return nil, tooLarge(max)
			}
			return nil, switchboard.Errorf(switchboard.EINVALID, "multipart body is malformed")
		}
		if name := p.FormName(); name != "" {
			fields[name] = append(fields[name], string(v))
		}
	}
}

func readJSON(body io.Reader, max int64) (map[string][]string, error) {
	buf, err := readBody(body, max)
	if err != nil {
		return nil, err
	}
	defer bufpool.Put(buf)
	data := buf.Bytes()
	// encoding/json silently replaces invalid UTF-8 with U+FFFD; check the
	// raw bytes so that JSON is held to the same rule as the form encodings.
	if !utf8.Valid(data) {
		return nil, switchboard.Errorf(switchboard.EINVALID, "request body is not valid UTF-8")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		return nil, switchboard.Errorf(switchboard.EINVALID, "request body must be a JSON object")
	}
	fields := map[string][]string{}
	for _, name := range []string{FieldName, FieldEmail, FieldPhone, FieldSubject, FieldMessage, FieldHoneypot} {
		raw, ok := obj[name]
		if !ok || string(raw) == "null" {
			continue
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, switchboard.Errorf(switchboard.EINVALID, "field %q must be a string", name)
		}
		fields[name] = []string{s}
	}
	return fields, nil
}

// validate turns raw fields into a Submission.
func validate(fields map[string][]string, defaultRegion string) (Submission, error) {
	for k, vs := range fields {
		if !utf8.ValidString(k) {
			return Submission{}, switchboard.Errorf(switchboard.EINVALID, "a field name is not valid UTF-8")
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return Submission{}, switchboard.Errorf(switchboard.EINVALID, "field %q is not valid UTF-8", k)
			}
		}
	}
	// Checked before anything else can fail, so that a bot gets the success
	// response whatever else it sent.
	for _, v := range fields[FieldHoneypot] {
		if strings.TrimSpace(v) != "" {
			return Submission{Honeypot: true}, nil
		}
	}

	var s Submission
	var err error
	if s.Name, err = singleLine(fields, FieldName, maxNameLen); err != nil {
		return Submission{}, err
	}
	if s.Subject, err = singleLine(fields, FieldSubject, maxSubjectLen); err != nil {
		return Submission{}, err
	}
	email, err := one(fields, FieldEmail)
	if err != nil {
		return Submission{}, err
	}
	if strings.TrimSpace(email) == "" {
		return Submission{}, switchboard.Errorf(switchboard.EINVALID, "email is required")
	}
	if s.Email, err = identity.Email(email); err != nil {
		return Submission{}, err
	}
	phone, err := one(fields, FieldPhone)
	if err != nil {
		return Submission{}, err
	}
	if strings.TrimSpace(phone) != "" {
		if s.Phone, err = identity.Phone(phone, defaultRegion); err != nil {
			return Submission{}, err
		}
	}
	msg, err := one(fields, FieldMessage)
	if err != nil {
		return Submission{}, err
	}
	// Browsers submit textarea line breaks as CRLF; store plain \n.
	msg = strings.ReplaceAll(msg, "\r\n", "\n")
	msg = strings.TrimSpace(strings.ReplaceAll(msg, "\r", "\n"))
	if msg == "" {
		return Submission{}, switchboard.Errorf(switchboard.EINVALID, "message is required")
	}
	for _, r := range msg {
		// NUL and escape sequences have no place in a message, and
		// PostgreSQL refuses NUL in text columns outright.
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return Submission{}, switchboard.Errorf(switchboard.EINVALID, "message contains control characters")
		}
	}
	s.Message = msg
	return s, nil
}

// one returns the single value of a field, "" when it is absent. A field
// given twice is refused rather than guessed at.
func one(fields map[string][]string, name string) (string, error) {
	switch vs := fields[name]; len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	}
	return "", switchboard.Errorf(switchboard.EINVALID, "field %q is given more than once", name)
}

// singleLine reads a trimmed one-line text field. Line breaks and other
// control characters are refused: names and subjects end up in e-mail
// headers and list views.
func singleLine(fields map[string][]string, name string, max int) (string, error) {
	v, err := one(fields, name)
	if err != nil {
		return "", err
	}
	v = strings.TrimSpace(v)
	if len(v) > max {
		return "", switchboard.Errorf(switchboard.EINVALID, "%s is longer than %d bytes", name, max)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return "", switchboard.Errorf(switchboard.EINVALID, "%s must be a single line of text", name)
		}
	}
	return v, nil
}
