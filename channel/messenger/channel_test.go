package messenger

import (
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

func TestCheckWindows(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	c := &Channel{Client: &Client{Channel: switchboard.ChannelMessenger}}
	rec := func(ago time.Duration) switchboard.Recipient {
		return switchboard.Recipient{Identities: []switchboard.IdentityRef{{Kind: switchboard.IdentityMessengerPSID, Value: "692"}},
			LastInbound: map[switchboard.Channel]time.Time{switchboard.ChannelMessenger: now.Add(-ago)}}
	}
	for _, tt := range []struct {
		ago     time.Duration
		allowed bool
		mode    string
	}{
		{time.Hour, true, ModeResponse},
		{30 * time.Hour, true, ModeHumanAgent},
		{8 * 24 * time.Hour, false, ""},
	} {
		d := c.Check(rec(tt.ago), switchboard.Draft{Text: "hi"}, now)
		if d.Allowed != tt.allowed || (tt.mode != "" && d.Details["messaging_type"] != tt.mode) || d.Details["public"] != true {
			t.Errorf("%s after the last message: %+v", tt.ago, d)
		}
		if !tt.allowed && d.Reason == "" {
			t.Errorf("%s: refused without a reason", tt.ago)
		}
	}
	ig := &Channel{Client: &Client{Channel: switchboard.ChannelInstagram}}
	if d := ig.Check(rec(time.Hour), switchboard.Draft{Text: "hi"}, now); d.Allowed {
		t.Fatal("an Instagram reply was allowed to a customer known only on Messenger")
	}
}
