package refusal

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestEveryCodeHasAStatus(t *testing.T) {
	snake := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	seen := map[Code]bool{}
	for _, c := range Codes() {
		if seen[c] {
			t.Errorf("%q listed twice", c)
		}
		seen[c] = true
		if !snake.MatchString(string(c)) {
			t.Errorf("%q is not snake_case", c)
		}
		if s := c.Status(); s < 400 || s > 599 || http.StatusText(s) == "" {
			t.Errorf("%q: status %d", c, s)
		}
	}
	if Code("nope").Status() != 0 {
		t.Error("a code off the list has a status")
	}
}

func TestRefuse(t *testing.T) {
	var logs bytes.Buffer
	var counted []Code
	x := Refuser{
		Logger:     slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Source:     "test: webhook",
		OnRejected: func(c Code) { counted = append(counted, c) },
	}
	for _, c := range Codes() {
		logs.Reset()
		w := httptest.NewRecorder()
		x.Refuse(w, httptest.NewRequest(http.MethodPost, "/webhooks/test", nil), c, "why not", errors.New("the cause"), "sid", "SM1")
		if w.Code != c.Status() {
			t.Errorf("%s: status %d, want %d", c, w.Code, c.Status())
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", c, ct)
		}
		var raw map[string]map[string]string
		if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
			t.Fatalf("%s: body %q: %v", c, w.Body, err)
		}
		if want := map[string]string{"code": string(c), "message": "why not"}; len(raw) != 1 || len(raw["error"]) != 2 ||
			raw["error"]["code"] != want["code"] || raw["error"]["message"] != want["message"] {
			t.Errorf("%s: body %q", c, w.Body)
		}
		for _, want := range []string{"test: webhook rejected", "code=" + string(c), "reason=\"why not\"", "err=\"the cause\"", "sid=SM1", "path=/webhooks/test"} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("%s: log lacks %q: %s", c, want, logs.String())
			}
		}
		if strings.Contains(w.Body.String(), "the cause") {
			t.Errorf("%s: the error reached the caller: %s", c, w.Body)
		}
	}
	if len(counted) != len(Codes()) || counted[0] != Codes()[0] {
		t.Errorf("counted %v", counted)
	}
}

func TestLevels(t *testing.T) {
	for c, want := range map[Code]string{Malformed: "INFO", BadSignature: "WARN", Unavailable: "ERROR", Internal: "ERROR"} {
		var logs bytes.Buffer
		x := Refuser{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
		x.Refuse(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", nil), c, "m", nil)
		if !strings.Contains(logs.String(), "level="+want) {
			t.Errorf("%s logged as %s", c, logs.String())
		}
	}
}

func TestRefuseStatus(t *testing.T) {
	var counted []Code
	w := httptest.NewRecorder()
	Refuser{OnRejected: func(c Code) { counted = append(counted, c) }}.
		RefuseStatus(w, httptest.NewRequest(http.MethodPost, "/", nil), http.StatusNotAcceptable, Unprocessable, "", nil)
	var b Body
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || w.Code != http.StatusNotAcceptable ||
		b.Error.Code != Unprocessable || b.Error.Message == "" {
		t.Errorf("%d %q (%v)", w.Code, w.Body, err)
	}
	if len(counted) != 1 || counted[0] != Unprocessable {
		t.Errorf("counted %v", counted)
	}
}

func TestRecord(t *testing.T) {
	var counted []Code
	var logs bytes.Buffer
	x := Refuser{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Source: "form", OnRejected: func(c Code) { counted = append(counted, c) }}
	x.Record(httptest.NewRequest(http.MethodPost, "/", nil), RateLimited, "slow down", nil, "form", "contact")
	if len(counted) != 1 || counted[0] != RateLimited || !strings.Contains(logs.String(), "status=429") || !strings.Contains(logs.String(), "form=contact") {
		t.Errorf("counted %v, logs %s", counted, logs.String())
	}
}
