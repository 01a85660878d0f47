package sms

import (
	"net/url"
	"testing"

	"github.com/switchboard-inbox/switchboard"
)

func TestParseStatus(t *testing.T) {
	base := func(kv ...string) url.Values {
		f := url.Values{
			"AccountSid": {"AC00000000000000000000000000000000"},
			"From":       {"+14155550100"},
			"To":         {"+14155550123"},
			"ApiVersion": {"2010-04-01"},
		}
		for i := 0; i < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return f
	}
	const sid = "SM5f1c2e0a9b8d4c3e2f1a0b9c8d7e6f5a"
	ok := []struct {
		name string
		form url.Values
		want Status
	}{
		{"delivered", base("MessageSid", sid, "MessageStatus", "delivered", "SmsStatus", "delivered"),
			Status{MessageSID: sid, ProviderStatus: "delivered", Delivery: switchboard.DeliveryDelivered, To: "+14155550123", From: "+14155550100"}},
		{"undelivered with code", base("MessageSid", sid, "MessageStatus", "undelivered", "ErrorCode", "30007"),
			Status{MessageSID: sid, ProviderStatus: "undelivered", Delivery: switchboard.DeliveryFailed, ErrorCode: 30007, ErrorMessage: "filtered by the carrier", To: "+14155550123", From: "+14155550100"}},
		{"failed with message", base("MessageSid", sid, "MessageStatus", "failed", "ErrorCode", "30008", "ErrorMessage", "Unknown error"),
			Status{MessageSID: sid, ProviderStatus: "failed", Delivery: switchboard.DeliveryFailed, ErrorCode: 30008, ErrorMessage: "Unknown error", To: "+14155550123", From: "+14155550100"}},
		{"legacy names", url.Values{"SmsSid": {sid}, "SmsStatus": {"sent"}},
			Status{MessageSID: sid, ProviderStatus: "sent", Delivery: switchboard.DeliverySent}},
		{"upper case status", url.Values{"MessageSid": {sid}, "MessageStatus": {"READ"}},
			Status{MessageSID: sid, ProviderStatus: "read", Delivery: switchboard.DeliveryRead}},
		{"empty error code", url.Values{"MessageSid": {sid}, "MessageStatus": {"queued"}, "ErrorCode": {""}},
			Status{MessageSID: sid, ProviderStatus: "queued", Delivery: switchboard.DeliveryQueued}},
		{"unknown fields ignored", url.Values{"MessageSid": {sid}, "MessageStatus": {"sending"}, "RawDlrDoneDate": {"2501011200"}, "ChannelToAddress": {"+1415"}},
			Status{MessageSID: sid, ProviderStatus: "sending", Delivery: switchboard.DeliveryQueued}},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatus(tt.form)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("ParseStatus = %+v\nwant %+v", got, tt.want)
			}
		})
	}

	mapping := map[string]switchboard.DeliveryStatus{
		"queued": "queued", "sending": "queued", "accepted": "queued", "scheduled": "queued",
		"sent": "sent", "delivered": "delivered", "read": "read",
		"undelivered": "failed", "failed": "failed", "canceled": "failed",
		"receiving": "received", "received": "received",
	}
	for provider, want := range mapping {
		got, err := ParseStatus(url.Values{"MessageSid": {sid}, "MessageStatus": {provider}})
		if err != nil || got.Delivery != want {
			t.Errorf("MessageStatus %s → %q, %v; want %q", provider, got.Delivery, err, want)
		}
	}

	bad := map[string]url.Values{
		"no sid":          {"MessageStatus": {"sent"}},
		"sid with space":  {"MessageSid": {"SM 1"}, "MessageStatus": {"sent"}},
		"no status":       {"MessageSid": {sid}},
		"unknown status":  {"MessageSid": {sid}, "MessageStatus": {"exploded"}},
		"bad error code":  {"MessageSid": {sid}, "MessageStatus": {"failed"}, "ErrorCode": {"30x07"}},
		"negative code":   {"MessageSid": {sid}, "MessageStatus": {"failed"}, "ErrorCode": {"-1"}},
		"huge error code": {"MessageSid": {sid}, "MessageStatus": {"failed"}, "ErrorCode": {"99999999999999999999"}},
	}
	for name, form := range bad {
		if _, err := ParseStatus(form); switchboard.ErrorCode(err) != switchboard.EINVALID {
			t.Errorf("%s: err = %v, want EINVALID", name, err)
		}
	}
}

func TestAdvances(t *testing.T) {
	const (
		q, s, d, r, f, rc = switchboard.DeliveryQueued, switchboard.DeliverySent, switchboard.DeliveryDelivered,
			switchboard.DeliveryRead, switchboard.DeliveryFailed, switchboard.DeliveryReceived
	)
	tests := []struct {
		current, next switchboard.DeliveryStatus
		want          bool
	}{
		{q, s, true}, {q, d, true}, {s, d, true}, {d, r, true}, {q, f, true}, {s, f, true}, {"", q, true},
		{q, r, true}, // a read receipt can overtake everything
		{f, r, true}, // read proves delivery

		{d, s, false}, // sent after delivered must not regress
		{f, d, false}, // delivered after failed must not flip
		{d, f, false}, // nor failed after delivered
		{r, d, false}, {r, f, false}, {r, s, false},
		{f, s, false}, {f, q, false}, {s, q, false},
		{q, q, false}, {d, d, false}, {f, f, false}, // repeats are no-ops
		{q, rc, false}, {q, "", false}, {q, "bogus", false}, // unknown never applies
	}
	for _, tt := range tests {
		if got := Advances(tt.current, tt.next); got != tt.want {
			t.Errorf("Advances(%q, %q) = %v, want %v", tt.current, tt.next, got, tt.want)
		}
	}

	// Whatever order callbacks arrive in, the outcome is the same.
	final := func(seq ...switchboard.DeliveryStatus) switchboard.DeliveryStatus {
		cur := q
		for _, n := range seq {
			if Advances(cur, n) {
				cur = n
			}
		}
		return cur
	}
	if got := final(s, d, q, s); got != d {
		t.Errorf("sent, delivered, queued, sent → %s", got)
	}
	if got := final(d, s, q); got != d {
		t.Errorf("delivered, sent, queued → %s", got)
	}
	if got := final(f, s, d); got != f {
		t.Errorf("failed, sent, delivered → %s", got)
	}
	if got := final(r, d, s); got != r {
		t.Errorf("read, delivered, sent → %s", got)
	}
}

func TestErrorText(t *testing.T) {
	if ErrorText(0) != "" || ErrorText(30003) != "unreachable destination handset" || ErrorText(12345) != "Twilio error 12345" {
		t.Errorf("ErrorText: %q %q %q", ErrorText(0), ErrorText(30003), ErrorText(12345))
	}
}
