package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/meta"
	"github.com/switchboard-inbox/switchboard/channel/meta/webhook"
	"github.com/switchboard-inbox/switchboard/channel/refusal"
)

type failingQueue struct{ switchboard.Queue }

func (failingQueue) Enqueue(context.Context, switchboard.Channel, []byte) error {
	return errors.New("disk full")
}

// TestRefusals: every refusal answers the one JSON shape with the code it
// is counted under.
func TestRefusals(t *testing.T) {
	var counted []refusal.Code
	h := webhook.New(webhook.Config{AppSecret: secret, VerifyToken: "verify-me", Queue: failingQueue{},
		OnRejected: func(code refusal.Code) { counted = append(counted, code) }})
	post := func(b, sig string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/webhooks/meta", strings.NewReader(b))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set(meta.SignatureHeader, sig)
		return r
	}
	signed := func(b string) *http.Request { return post(b, meta.Sign(secret, []byte(b))) }
	huge := `{"object":"page","pad":"` + strings.Repeat("x", 4<<20) + `"}`
	tests := []struct {
		name string
		r    *http.Request
		want refusal.Code
	}{
		{"wrong verify token", httptest.NewRequest(http.MethodGet, "/webhooks/meta?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1", nil), refusal.Forbidden},
		{"wrong method", httptest.NewRequest(http.MethodPut, "/webhooks/meta", nil), refusal.MethodNotAllowed},
		{"unsigned", post(body, ""), refusal.BadSignature},
		{"signed by another app", post(body, meta.Sign("other", []byte(body))), refusal.BadSignature},
		{"oversized", signed(huge), refusal.TooLarge},
		{"not JSON", signed("object=page"), refusal.Malformed},
		{"malformed message", signed(`{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"messages":[{"id":"x"}]},"field":"messages"}]}]}`), refusal.Malformed},
		{"queue down", signed(body), refusal.Unavailable},
	}
	for _, tt := range tests {
		counted = nil
		w := httptest.NewRecorder()
		h.ServeHTTP(w, tt.r)
		var b refusal.Body
		if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: answer %d %q is not the refusal shape: %v", tt.name, w.Code, w.Body, err)
			continue
		}
		if w.Code != tt.want.Status() || b.Error.Code != tt.want || b.Error.Message == "" || len(counted) != 1 || counted[0] != tt.want {
			t.Errorf("%s: answer %d %q counted %v, want %s", tt.name, w.Code, w.Body, counted, tt.want)
		}
		if tt.want == refusal.MethodNotAllowed && w.Header().Get("Allow") != "GET, POST" {
			t.Errorf("Allow %q", w.Header().Get("Allow"))
		}
	}
}
