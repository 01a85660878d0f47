package whatsapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/meta"
)

// Channel sends agents' replies on WhatsApp and enforces the 24-hour
// customer-service window and the media limits.
type Channel struct {
	Client *Client
	// Blobs holds the files replies attach; they are uploaded to Meta
	// rather than sent by link, since Meta cannot reach a private
	// deployment's object store.
	Blobs switchboard.BlobStore
	// LastInbound tells the sender when the customer last wrote on
	// WhatsApp; the window may have closed since the reply was queued.
	LastInbound func(ctx context.Context, conversationID string) (time.Time, error)
	// Clock is the time the window is checked at (default: the system
	// clock); the policy is given the time by its caller.
	Clock switchboard.Clock
}

func (c *Channel) now() time.Time {
	if c.Clock == nil {
		return time.Now().UTC()
	}
	return c.Clock.Now()
}

// Check is the WhatsApp policy: free-form text and media only within 24
// hours of the customer's last WhatsApp message; outside it, only an
// approved template, rendered with exactly its number of parameters.
// Attachments must be of a type and size the Cloud API takes (MediaFor);
// Details says what will be sent ("sends", "parts"), whether only a
// template may go now ("templates_only": outside the window) and, always,
// what attachments may be ("attachment_limits").
func (c *Channel) Check(r switchboard.Recipient, d switchboard.Draft, now time.Time) switchboard.Decision {
	dec := switchboard.Decision{Channel: switchboard.ChannelWhatsApp, Allowed: true, Templates: []string{},
		Details: map[string]any{"attachment_limits": AttachmentLimits}}
	for _, t := range r.Templates {
		dec.Templates = append(dec.Templates, t.Name+" ("+t.Language+")")
	}
	last := r.LastInbound[switchboard.ChannelWhatsApp]
	if !last.IsZero() {
		ends := WindowEnds(last)
		dec.WindowEndsAt = &ends
	}
	refuse := func(reason string) switchboard.Decision {
		dec.Allowed, dec.Reason = false, reason
		return dec
	}
	if r.Identity(switchboard.IdentityPhone) == "" {
		return refuse("the customer has no WhatsApp number")
	}
	if d.Template != nil {
		if len(d.Attachments) > 0 {
			return refuse("templates are sent without attachments: send the files once the customer writes again")
		}
		for _, t := range r.Templates {
			if t.Name == d.Template.Name && t.Language == d.Template.Language {
				text, err := RenderTemplate(t.Body, d.Template.Params)
				if err != nil {
					return refuse(fmt.Sprintf("template %s: %s", t.Name, switchboard.ErrorMessage(err)))
				}
				dec.Text = text
				return dec
			}
		}
		return refuse(fmt.Sprintf("no approved template %q in language %q", d.Template.Name, d.Template.Language))
	}
	// Outside the window only a template can go: Details says so, for the
	// composer to offer templates instead of free text (a refusal for any
	// other reason leaves free text to fix).
	switch {
	case last.IsZero():
		dec.Details["templates_only"] = true
		return refuse("the customer has never written on WhatsApp: only an approved template may start the conversation")
	case !CanSendFreeForm(last, now):
		dec.Details["templates_only"] = true
		return refuse(fmt.Sprintf("the 24-hour window closed at %s: WhatsApp accepts only approved templates until the customer writes again", dec.WindowEndsAt.UTC().Format(time.RFC3339)))
	case utf8.RuneCountInString(d.Text) > MaxTextLen:
		return refuse(fmt.Sprintf("WhatsApp text is limited to %d characters", MaxTextLen))
	}
	// Last, so that the composer, which asks before anything is typed,
	// still learns about the window.
	parts, err := plan(d.Text, d.Attachments)
	if err != nil {
		return refuse(switchboard.ErrorMessage(err))
	}
	if len(d.Attachments) > 0 {
		names := make([]string, len(parts))
		for i, p := range parts {
			names[i] = p.name()
		}
		dec.Details["sends"], dec.Details["parts"] = len(parts), names
	}
	return dec
}

// Send is the outbox's sender for WhatsApp.
func (c *Channel) Send(ctx context.Context, m *switchboard.Outbound) (string, error) {
	to := ""
	for _, id := range m.To {
		if id.Kind == switchboard.IdentityPhone {
			to = strings.TrimPrefix(id.Value, "+")
			break
		}
	}
	if to == "" {
		return "", switchboard.Permanent(errors.New("the customer has no WhatsApp number"))
	}
	var md struct {
		Template *switchboard.TemplateRef `json:"template"`
	}
	if len(m.Metadata) > 0 {
		if err := json.Unmarshal(m.Metadata, &md); err != nil {
			return "", switchboard.Permanent(fmt.Errorf("whatsapp: reply metadata: %w", err))
		}
	}
	if t := md.Template; t != nil {
		if len(m.Attachments) > 0 {
			return "", switchboard.Permanent(errors.New("whatsapp: templates are sent without attachments"))
		}
		// Templates are allowed outside the window.
		return c.Client.SendTemplate(ctx, to, Template{Name: t.Name, Language: t.Language, Params: t.Params})
	}
	if c.LastInbound != nil {
		last, err := c.LastInbound(ctx, m.ConversationID)
		if err != nil {
			return "", fmt.Errorf("whatsapp: window: %w", err)
		}
		if !CanSendFreeForm(last, c.now()) {
			return "", switchboard.Permanent(fmt.Errorf("the 24-hour window closed at %s; nothing was sent", WindowEnds(last).UTC().Format(time.RFC3339)))
		}
	}
	if len(m.Attachments) == 0 {
		return c.Client.SendText(ctx, to, m.Text)
	}
	parts, err := plan(m.Text, m.Attachments)
	if err != nil {
		return "", switchboard.Permanent(fmt.Errorf("whatsapp: %w", err))
	}
	// Every file is uploaded before anything is sent: until then a
	// failure reaches no customer and the outbox may retry it all.
	ids := make([]string, len(parts))
	names := make([]string, len(parts))
	for i, p := range parts {
		names[i] = p.name()
		if p.att != nil {
			if ids[i], err = c.upload(ctx, *p.att, p.media); err != nil {
				return "", err
			}
		}
	}
	// The client's errors name the channel already.
	return meta.SendParts(ctx, names, func(ctx context.Context, i int) (string, error) {
		p := parts[i]
		if p.att == nil {
			return c.Client.SendText(ctx, to, p.text)
		}
		msg := MediaMessage{Type: p.media.Type, ID: ids[i], Caption: p.caption}
		if p.media.Type == TypeDocument {
			msg.Filename = p.att.Name
		}
		return c.Client.SendMedia(ctx, to, msg)
	})
}

// upload copies a stored attachment to Meta and returns its media id.
func (c *Channel) upload(ctx context.Context, a switchboard.Attachment, om OutMedia) (string, error) {
	rc, size, err := meta.OpenAttachment(ctx, c.Blobs, a)
	if err != nil {
		return "", fmt.Errorf("whatsapp: %w", err)
	}
	defer rc.Close()
	if size > om.Limit {
		return "", switchboard.Permanent(fmt.Errorf("whatsapp: %w", mediaTooLarge(om, a.Name, size)))
	}
	return c.Client.UploadMedia(ctx, Upload{Name: a.Name, MimeType: om.MimeType, Body: rc, Size: size})
}
