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
)

// Channel sends agents' replies on WhatsApp and enforces the 24-hour
// customer-service window.
type Channel struct {
	Client *Client
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

// Check is the WhatsApp policy: free-form text only within 24 hours of the
// customer's last WhatsApp message; outside it, only an approved template,
// rendered with exactly its number of parameters.
func (c *Channel) Check(r switchboard.Recipient, d switchboard.Draft, now time.Time) switchboard.Decision {
	dec := switchboard.Decision{Channel: switchboard.ChannelWhatsApp, Allowed: true, Templates: []string{}}
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
	if len(d.Attachments) > 0 {
		return refuse("attachments cannot be sent on WhatsApp yet; send a link or use e-mail")
	}
	if d.Template != nil {
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
	switch {
	case last.IsZero():
		return refuse("the customer has never written on WhatsApp: only an approved template may start the conversation")
	case !CanSendFreeForm(last, now):
		return refuse(fmt.Sprintf("the 24-hour window closed at %s: WhatsApp accepts only approved templates until the customer writes again", dec.WindowEndsAt.UTC().Format(time.RFC3339)))
	case strings.TrimSpace(d.Text) == "":
		// Last, so that the composer, which asks before anything is
		// typed, still learns about the window.
		return refuse("the message is empty")
	case utf8.RuneCountInString(d.Text) > MaxTextLen:
		return refuse(fmt.Sprintf("WhatsApp text is limited to %d characters", MaxTextLen))
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
	var meta struct {
		Template *switchboard.TemplateRef `json:"template"`
	}
	if len(m.Metadata) > 0 {
		if err := json.Unmarshal(m.Metadata, &meta); err != nil {
			return "", switchboard.Permanent(fmt.Errorf("whatsapp: reply metadata: %w", err))
		}
	}
	if t := meta.Template; t != nil {
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
	return c.Client.SendText(ctx, to, m.Text)
}
