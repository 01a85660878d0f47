package sms_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/refusal"
	"github.com/switchboard-inbox/switchboard/channel/sms"
	"github.com/switchboard-inbox/switchboard/channel/twilio"
)

type failingQueue struct{ switchboard.Queue }

func (failingQueue) Enqueue(context.Context, switchboard.Channel, []byte) error {
	return errors.New("disk full")
}

type failingStatuses struct{}

func (failingStatuses) ApplyDeliveryStatus(context.Context, switchboard.Channel, string, switchboard.DeliveryStatus, string) (string, string, error) {
	return "", "", errors.New("database down")
}

// TestRefusals: every refused webhook answers the one JSON shape with the
// code and status it names, and is counted with that code.
func TestRefusals(t *testing.T) {
	var counted []refusal.Code
	c := sms.New(sms.Config{
		AuthToken: benchToken, PublicURL: benchBase, Queue: failingQueue{}, Statuses: failingStatuses{}, DefaultRegion: "US",
		OnRejected: func(code refusal.Code) { counted = append(counted, code) },
	})
	signed := func(path string, form url.Values) *http.Request {
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set(twilio.SignatureHeader, twilio.Sign(benchToken, benchBase+path, form))
		return r
	}
	const in, status = "/webhooks/twilio/sms", "/webhooks/twilio/status"
	tests := []struct {
		name string
		h    http.Handler
		req  func() *http.Request
		want refusal.Code
	}{
		{"unsigned", c.InboundHandler(), func() *http.Request {
			r := signed(in, benchForm("SM1"))
			r.Header.Del(twilio.SignatureHeader)
			return r
		}, refusal.BadSignature},
		{"signed for another body", c.InboundHandler(), func() *http.Request {
			r := signed(in, benchForm("SM1"))
			r.Header.Set(twilio.SignatureHeader, twilio.Sign(benchToken, benchBase+in, benchForm("SM2")))
			return r
		}, refusal.BadSignature},
		{"not a form", c.InboundHandler(), func() *http.Request {
			r := signed(in, benchForm("SM1"))
			r.Header.Set("Content-Type", "application/json")
			return r
		}, refusal.UnsupportedMediaType},
		{"oversized", c.InboundHandler(), func() *http.Request {
			return signed(in, url.Values{"Body": {strings.Repeat("x", 70<<10)}})
		}, refusal.TooLarge},
		{"unparseable form", c.InboundHandler(), func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, in, strings.NewReader("From=%zz"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, refusal.Malformed},
		{"no sender", c.InboundHandler(), func() *http.Request { return signed(in, url.Values{"MessageSid": {"SM1"}, "Body": {"hi"}}) }, refusal.Malformed},
		{"queue down", c.InboundHandler(), func() *http.Request { return signed(in, benchForm("SM1")) }, refusal.Unavailable},
		{"unsigned status", c.StatusHandler(), func() *http.Request {
			r := signed(status, url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"delivered"}})
			r.Header.Set(twilio.SignatureHeader, "bm90IGEgc2lnbmF0dXJl")
			return r
		}, refusal.BadSignature},
		{"status without MessageSid", c.StatusHandler(), func() *http.Request { return signed(status, url.Values{"MessageStatus": {"delivered"}}) }, refusal.Malformed},
		{"status not stored", c.StatusHandler(), func() *http.Request {
			return signed(status, url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"delivered"}})
		}, refusal.Unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counted = nil
			w := httptest.NewRecorder()
			tt.h.ServeHTTP(w, tt.req())
			var b refusal.Body
			if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || w.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("answer %d %q %q is not the refusal shape: %v", w.Code, w.Header().Get("Content-Type"), w.Body, err)
			}
			if w.Code != tt.want.Status() || b.Error.Code != tt.want || b.Error.Message == "" {
				t.Errorf("answer %d %q, want %d %s", w.Code, w.Body, tt.want.Status(), tt.want)
			}
			if len(counted) != 1 || counted[0] != tt.want {
				t.Errorf("counted %v, want [%s]", counted, tt.want)
			}
		})
	}
}
