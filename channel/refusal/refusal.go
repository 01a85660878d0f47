// Package refusal is the one way inbound webhooks and forms refuse a
// request: a code from a short fixed list, each with its HTTP status, and a
// helper that answers {"error": {"code": ..., "message": ...}} (the agent
// API's shape), logs the refusal and counts it.
package refusal

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
)

// Code says why a request was refused. Callers branch on it and metrics
// are labelled with it, so the list is short and fixed.
type Code string

// The codes, with the status each is answered with.
const (
	BadSignature         Code = "bad_signature"          // 403: a provider's signature is missing or wrong
	Unauthorized         Code = "unauthorized"           // 401: credentials missing or wrong
	Forbidden            Code = "forbidden"              // 403: not allowed from here, or not configured
	NotFound             Code = "not_found"              // 404: no such form
	Malformed            Code = "malformed"              // 400: the request cannot be read or lacks a field
	Unprocessable        Code = "unprocessable"          // 422: readable, but its content cannot be taken
	TooLarge             Code = "too_large"              // 413
	MethodNotAllowed     Code = "method_not_allowed"     // 405
	UnsupportedMediaType Code = "unsupported_media_type" // 415
	RateLimited          Code = "rate_limited"           // 429
	Unavailable          Code = "unavailable"            // 503: not stored; retry
	Internal             Code = "internal"               // 500
)

// Codes returns every code, in a fixed order.
func Codes() []Code {
	return []Code{BadSignature, Unauthorized, Forbidden, NotFound, Malformed, Unprocessable,
		TooLarge, MethodNotAllowed, UnsupportedMediaType, RateLimited, Unavailable, Internal}
}

// Status returns the HTTP status c is answered with, 0 for a code not in
// the list.
func (c Code) Status() int {
	switch c {
	case BadSignature, Forbidden:
		return http.StatusForbidden
	case Unauthorized:
		return http.StatusUnauthorized
	case NotFound:
		return http.StatusNotFound
	case Malformed:
		return http.StatusBadRequest
	case Unprocessable:
		return http.StatusUnprocessableEntity
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case MethodNotAllowed:
		return http.StatusMethodNotAllowed
	case UnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case RateLimited:
		return http.StatusTooManyRequests
	case Unavailable:
		return http.StatusServiceUnavailable
	case Internal:
		return http.StatusInternalServerError
	}
	return 0
}

// level is how loudly a refusal is logged: failures of ours as errors,
// what may be an attack or a misconfiguration as warnings, and a client's
// mistakes, which are routine, as information.
func (c Code) level() slog.Level {
	switch c {
	case Unavailable, Internal:
		return slog.LevelError
	case BadSignature, Unauthorized, Forbidden, TooLarge, RateLimited:
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// Body is the JSON answer.
type Body struct {
	Error struct {
		Code    Code   `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Refuser answers, logs and counts one handler's refusals. The zero value
// answers without logging or counting.
type Refuser struct {
	Logger *slog.Logger // nil: no log
	// Source names what is refused in the log message, as in
	// "sms: webhook", logged as "sms: webhook rejected".
	Source string
	// OnRejected, when set, counts each refusal.
	OnRejected func(Code)
}

// Refuse answers the request with code's status and the JSON body, after
// logging and counting it. message is shown to the caller; err and attrs
// (slog key-value pairs) only go to the log.
func (x Refuser) Refuse(w http.ResponseWriter, r *http.Request, code Code, message string, err error, attrs ...any) {
	x.RefuseStatus(w, r, code.Status(), code, message, err, attrs...)
}

// RefuseStatus is Refuse with another status than code's. Use it only
// where a provider's documented retry semantics need a given status (Mailgun
// stops retrying only on 406).
func (x Refuser) RefuseStatus(w http.ResponseWriter, r *http.Request, status int, code Code, message string, err error, attrs ...any) {
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if message == "" {
		message = strings.ToLower(http.StatusText(status))
	}
	x.record(r, status, code, message, err, attrs)
	var b Body
	b.Error.Code, b.Error.Message = code, message
	out, _ := json.Marshal(b) // cannot fail: two strings
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(out, '\n'))
}

// Record logs and counts a refusal that is answered some other way, such
// as a form's HTML page or redirect for a browser.
func (x Refuser) Record(r *http.Request, code Code, message string, err error, attrs ...any) {
	x.record(r, code.Status(), code, message, err, attrs)
}

func (x Refuser) record(r *http.Request, status int, code Code, message string, err error, attrs []any) {
	if x.Logger != nil {
		args := make([]any, 0, 10+len(attrs))
		args = append(args, "path", r.URL.Path, "status", status, "code", string(code), "reason", message)
		if err != nil {
			args = append(args, "err", err)
		}
		x.Logger.Log(r.Context(), code.level(), x.Source+" rejected", append(args, attrs...)...)
	}
	if x.OnRejected != nil {
		x.OnRejected(code)
	}
}
