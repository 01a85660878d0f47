package whatsapp

import (
	"slices"
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
	if late.Allowed || !strings.Contains(late.Reason, "24-hour window closed at 2026-03-02T11:00:00Z") || late.Templates == nil || late.Details["templates_only"] != true {
		t.Fatalf("25 h after: %+v", late)
	}
	if inside.Details["templates_only"] != nil {
		t.Fatalf("inside the window, templates only: %+v", inside)
	}
	if never := c.Check(rec(time.Time{}), switchboard.Draft{Text: "hi"}, now); never.Allowed || never.Details["templates_only"] != true {
		t.Fatalf("never wrote on WhatsApp: %+v", never)
	}
	noPhone := c.Check(switchboard.Recipient{}, switchboard.Draft{Text: "hi"}, now)
	if noPhone.Allowed {
		t.Fatal("no phone identity allowed")
	}
	if d := c.Check(rec(now.Add(-time.Hour)), switchboard.Draft{Text: "see file", Attachments: []switchboard.Attachment{{Key: "k", Name: "a.png", ContentType: "image/png", Size: 10}}}, now); !d.Allowed || d.Details["sends"] != 1 {
		t.Fatalf("an image inside the window: %+v", d)
	}
	if d := c.Check(rec(now.Add(-time.Hour)), switchboard.Draft{Text: "  "}, now); d.Allowed {
		t.Fatal("an empty message was allowed")
	}
	long := c.Check(rec(now.Add(-time.Hour)), switchboard.Draft{Text: strings.Repeat("a", MaxTextLen+1)}, now)
	if long.Allowed || long.Details["templates_only"] != nil {
		t.Fatalf("text over the limit: %+v (refused, but free text stays: the composer keeps the Reply box)", long)
	}
}

func TestCheckAttachments(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	c := &Channel{}
	rec := func(ago time.Duration) switchboard.Recipient {
		return switchboard.Recipient{Identities: []switchboard.IdentityRef{{Kind: switchboard.IdentityPhone, Value: "+16505551234"}},
			LastInbound: map[switchboard.Channel]time.Time{switchboard.ChannelWhatsApp: now.Add(-ago)},
			Templates:   []switchboard.MessageTemplate{{Name: "hello", Language: "en_US", Body: "Hello", Status: "APPROVED"}}}
	}
	att := func(name, ctype string, size int64) switchboard.Attachment {
		return switchboard.Attachment{Key: "uploads/" + name, Name: name, ContentType: ctype, Size: size}
	}
	png, pdf, mp3 := att("lid.png", "image/png", 300_000), att("invoice.pdf", "application/pdf", 80_000), att("note.mp3", "audio/mpeg", 1_000_000)
	tests := []struct {
		name   string
		ago    time.Duration
		draft  switchboard.Draft
		reason string   // "" when allowed
		parts  []string // what Details["parts"] says when allowed
	}{
		{name: "image with its caption", ago: time.Hour, draft: switchboard.Draft{Text: "The lid", Attachments: []switchboard.Attachment{png}},
			parts: []string{"image lid.png with the text as its caption"}},
		{name: "image alone", ago: time.Hour, draft: switchboard.Draft{Attachments: []switchboard.Attachment{png}}, parts: []string{"image lid.png"}},
		{name: "audio cannot carry the text", ago: time.Hour, draft: switchboard.Draft{Text: "Listen", Attachments: []switchboard.Attachment{mp3, pdf}},
			parts: []string{"the text", "audio note.mp3", "document invoice.pdf"}},
		{name: "text too long for a caption", ago: time.Hour, draft: switchboard.Draft{Text: strings.Repeat("a", MaxCaptionLen+1), Attachments: []switchboard.Attachment{pdf}},
			parts: []string{"the text", "document invoice.pdf"}},
		{name: "caption of exactly the limit", ago: time.Hour, draft: switchboard.Draft{Text: strings.Repeat("é", MaxCaptionLen), Attachments: []switchboard.Attachment{pdf, png}},
			parts: []string{"document invoice.pdf with the text as its caption", "image lid.png"}},
		{name: "word document", ago: time.Hour, draft: switchboard.Draft{Attachments: []switchboard.Attachment{att("Offer.DOCX", "application/zip", 9000)}},
			parts: []string{"document Offer.DOCX"}},
		{name: "video of 16 MB", ago: time.Hour, draft: switchboard.Draft{Attachments: []switchboard.Attachment{att("a.mp4", "video/mp4", MaxVideoBytes)}},
			parts: []string{"video a.mp4"}},
		{name: "image of exactly 5 MB", ago: time.Hour, draft: switchboard.Draft{Attachments: []switchboard.Attachment{att("a.jpg", "image/jpeg", MaxImageBytes)}},
			parts: []string{"image a.jpg"}},

		{name: "image over 5 MB", ago: time.Hour, draft: switchboard.Draft{Attachments: []switchboard.Attachment{att("big.png", "image/png", MaxImageBytes+1)}},
			reason: "WhatsApp image files are limited to 5 MB; big.png is 5000001 bytes"},
		{name: "video over 16 MB", ago: time.Hour, draft: switchboard.Draft{Attachments: []switchboard.Attachment{att("a.mp4", "video/mp4", 20_000_000)}},
			reason: "WhatsApp video files are limited to 16 MB; a.mp4 is 20 MB"},
		{name: "audio over 16 MB", ago: time.Hour, draft: switchboard.Draft{Attachments: []switchboard.Attachment{att("a.mp3", "audio/mpeg", 16_500_000)}},
			reason: "WhatsApp audio files are limited to 16 MB; a.mp3 is 16.5 MB"},
		{name: "gif", ago: time.Hour, draft: switchboard.Draft{Attachments: []switchboard.Attachment{att("a.gif", "image/gif", 10)}},
			reason: "WhatsApp cannot carry a.gif (image/gif): it takes images (JPEG, PNG) up to 5 MB"},
		{name: "webp", ago: time.Hour, draft: switchboard.Draft{Attachments: []switchboard.Attachment{att("a.webp", "image/webp", 10)}},
			reason: "it takes WebP only as a sticker"},
		{name: "zip", ago: time.Hour, draft: switchboard.Draft{Attachments: []switchboard.Attachment{att("logs.zip", "application/zip", 10)}},
			reason: "WhatsApp cannot carry logs.zip (application/zip)"},
		{name: "wav", ago: time.Hour, draft: switchboard.Draft{Attachments: []switchboard.Attachment{att("a.wav", "audio/wave", 10)}},
			reason: "cannot carry a.wav"},
		{name: "too many files", ago: time.Hour, draft: switchboard.Draft{Attachments: slices.Repeat([]switchboard.Attachment{png}, MaxAttachments+1)},
			reason: "at most 10 files"},
		{name: "outside the window", ago: 25 * time.Hour, draft: switchboard.Draft{Attachments: []switchboard.Attachment{png}},
			reason: "24-hour window closed"},
		{name: "with a template", ago: 25 * time.Hour, draft: switchboard.Draft{Template: &switchboard.TemplateRef{Name: "hello", Language: "en_US"}, Attachments: []switchboard.Attachment{png}},
			reason: "templates are sent without attachments"},
		{name: "nothing at all", ago: time.Hour, draft: switchboard.Draft{Text: " "}, reason: "the message is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := c.Check(rec(tt.ago), tt.draft, now)
			if d.Details["attachment_limits"] != AttachmentLimits {
				t.Errorf("limits not said: %v", d.Details)
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
