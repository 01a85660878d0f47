package messenger

import (
	"slices"
	"strings"
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

func TestCheckAttachments(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	rec := func(ch switchboard.Channel, ago time.Duration) switchboard.Recipient {
		return switchboard.Recipient{Identities: []switchboard.IdentityRef{
			{Kind: switchboard.IdentityMessengerPSID, Value: psid}, {Kind: switchboard.IdentityInstagramID, Value: igsid}},
			LastInbound: map[switchboard.Channel]time.Time{ch: now.Add(-ago)}}
	}
	att := func(name, ctype string, size int64) switchboard.Attachment {
		return switchboard.Attachment{Key: "uploads/" + name, Name: name, ContentType: ctype, Size: size}
	}
	png, pdf, mp4 := att("lid.png", "image/png", 300_000), att("invoice.pdf", "application/pdf", 80_000), att("unboxing.mp4", "video/mp4", 9_000_000)
	fb, ig := switchboard.ChannelMessenger, switchboard.ChannelInstagram
	tests := []struct {
		name   string
		ch     switchboard.Channel
		ago    time.Duration
		draft  switchboard.Draft
		reason string   // "" when allowed
		parts  []string // Details["parts"] when allowed
	}{
		{name: "text then files", ch: fb, ago: time.Hour, draft: switchboard.Draft{Text: "Here you go", Attachments: []switchboard.Attachment{png, pdf}},
			parts: []string{"the text", "image lid.png", "file invoice.pdf"}},
		{name: "a file alone", ch: fb, ago: time.Hour, draft: switchboard.Draft{Attachments: []switchboard.Attachment{att("logs.zip", "application/zip", 1000)}},
			parts: []string{"file logs.zip"}},
		{name: "wav as a file on Messenger", ch: fb, ago: time.Hour, draft: switchboard.Draft{Attachments: []switchboard.Attachment{att("a.wav", "audio/wave", 1000)}},
			parts: []string{"file a.wav"}},
		{name: "human agent tag", ch: fb, ago: 30 * time.Hour, draft: switchboard.Draft{Attachments: []switchboard.Attachment{mp4}},
			parts: []string{"video unboxing.mp4"}},
		{name: "25 MB exactly", ch: fb, ago: time.Hour, draft: switchboard.Draft{Attachments: []switchboard.Attachment{att("a.pdf", "application/pdf", MaxAttachmentBytes)}},
			parts: []string{"file a.pdf"}},
		{name: "instagram image and video", ch: ig, ago: time.Hour, draft: switchboard.Draft{Text: "Look", Attachments: []switchboard.Attachment{png, mp4}},
			parts: []string{"the text", "image lid.png", "video unboxing.mp4"}},
		{name: "instagram wav", ch: ig, ago: time.Hour, draft: switchboard.Draft{Attachments: []switchboard.Attachment{att("a.wav", "audio/wave", 1000)}},
			parts: []string{"audio a.wav"}},

		{name: "over 25 MB", ch: fb, ago: time.Hour, draft: switchboard.Draft{Attachments: []switchboard.Attachment{att("a.pdf", "application/pdf", 26_214_400)}},
			reason: "Messenger attachments are limited to 25 MB; a.pdf is 26.2 MB"},
		{name: "instagram image over 8 MB", ch: ig, ago: time.Hour, draft: switchboard.Draft{Attachments: []switchboard.Attachment{att("a.jpg", "image/jpeg", 8_000_001)}},
			reason: "Instagram image files are limited to 8 MB; a.jpg is 8000001 bytes"},
		{name: "instagram pdf", ch: ig, ago: time.Hour, draft: switchboard.Draft{Attachments: []switchboard.Attachment{pdf}},
			reason: "Instagram cannot carry invoice.pdf (application/pdf)"},
		{name: "instagram mp3", ch: ig, ago: time.Hour, draft: switchboard.Draft{Attachments: []switchboard.Attachment{att("a.mp3", "audio/mpeg", 10)}},
			reason: "Instagram cannot carry a.mp3"},
		{name: "instagram gif", ch: ig, ago: time.Hour, draft: switchboard.Draft{Attachments: []switchboard.Attachment{att("a.gif", "image/gif", 10)}},
			reason: "Instagram cannot carry a.gif"},
		{name: "too many files", ch: fb, ago: time.Hour, draft: switchboard.Draft{Attachments: slices.Repeat([]switchboard.Attachment{png}, MaxAttachments+1)},
			reason: "at most 10 files"},
		{name: "text too long", ch: ig, ago: time.Hour, draft: switchboard.Draft{Text: strings.Repeat("a", 1001), Attachments: []switchboard.Attachment{png}},
			reason: "Instagram allows at most 1000"},
		{name: "after 7 days", ch: fb, ago: 8 * 24 * time.Hour, draft: switchboard.Draft{Attachments: []switchboard.Attachment{png}},
			reason: "More than 7 days"},
		{name: "nothing", ch: fb, ago: time.Hour, draft: switchboard.Draft{Text: " "}, reason: "message text is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Channel{Client: &Client{Channel: tt.ch}}
			d := c.Check(rec(tt.ch, tt.ago), tt.draft, now)
			if d.Details["attachment_limits"] != AttachmentLimits(tt.ch) || d.Details["public"] != true {
				t.Errorf("details %v", d.Details)
			}
			if tt.reason != "" {
				if d.Allowed || !strings.Contains(d.Reason, tt.reason) {
					t.Fatalf("decision %+v; want refused with %q", d, tt.reason)
				}
				return
			}
			if !d.Allowed || d.Details["sends"] != len(tt.parts) || !slices.Equal(d.Details["parts"].([]string), tt.parts) {
				t.Fatalf("decision %+v; want allowed as %q", d, tt.parts)
			}
		})
	}
}
