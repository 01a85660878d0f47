package whatsapp

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

func TestCheckWindow(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	c := &Channel{}
	rec := func(last time.Time) switchboard.Recipient {
		r := switchboard.Recipient{Identities: []switchboard.IdentityRef{{Kind: switchboard.IdentityPhone, Value: "+16505551234"}},
			LastInbound: map[switchboard.Channel]time.Time{}}
		if !last.IsZero() {
			r.LastInbound[switchboard.ChannelWhatsApp] = last
		}
		return r
	}
	inside := c.Check(rec(now.Add(-23*time.Hour)), switchboard.Draft{Text: "hi"}, now)
	if !inside.Allowed || inside.WindowEndsAt == nil || !inside.WindowEndsAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("23 h after the last message: %+v", inside)
	}
	late := c.Check(rec(now.Add(-25*time.Hour)), switchboard.Draft{Text: "hi"}, now)
	if late.Allowed || !strings.Contains(late.Reason, "24-hour window closed at 2026-03-02T11:00:00Z") || late.Templates == nil {
		t.Fatalf("25 h after: %+v", late)
	}
	if never := c.Check(rec(time.Time{}), switchboard.Draft{Text: "hi"}, now); never.Allowed {
		t.Fatalf("never wrote on WhatsApp: %+v", never)
	}
	noPhone := c.Check(switchboard.Recipient{}, switchboard.Draft{Text: "hi"}, now)
	if noPhone.Allowed {
		t.Fatal("no phone identity allowed")
	}
	if d := c.Check(rec(now.Add(-time.Hour)), switchboard.Draft{Text: "see file", Attachments: []switchboard.Attachment{{Key: "k"}}}, now); d.Allowed {
		t.Fatal("an attachment was allowed though the sender cannot send it")
	}
	if d := c.Check(rec(now.Add(-time.Hour)), switchboard.Draft{Text: "  "}, now); d.Allowed {
		t.Fatal("an empty message was allowed")
	}
	long := c.Check(rec(now.Add(-time.Hour)), switchboard.Draft{Text: strings.Repeat("a", MaxTextLen+1)}, now)
	if long.Allowed {
		t.Fatal("text over the limit allowed")
	}
}
